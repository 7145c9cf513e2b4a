//! `POST /webhooks/shopify`. The handler verifies the signature on the raw bytes, hands the
//! delivery to the inbox writer (`ingest::intake`, which commits it in a batch) and answers; it
//! does nothing else, so it answers in milliseconds and a 200 always means the delivery is
//! durable.

use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{DateTime, Utc};

use super::ApiError;
use crate::ingest::intake::{Outcome, Submission};
use crate::platforms::shopify::{self, events::COMPLIANCE_TOPICS, normalize_shop, signature};
use crate::state::AppState;
use crate::store::inbox;

/// What a 503 asks the platform to wait before sending the delivery again.
const RETRY_AFTER_SECS: u32 = 5;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(shopify_webhook);
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[post("/webhooks/shopify")]
async fn shopify_webhook(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let reject = |e: ApiError| {
        state
            .metrics
            .webhooks_rejected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        e
    };
    // Unsigned or wrongly signed: 401 on every topic, compliance topics included.
    let hmac = header(&req, "X-Shopify-Hmac-Sha256").ok_or_else(|| {
        reject(ApiError::Unauthorized(
            "X-Shopify-Hmac-Sha256 header is missing".into(),
        ))
    })?;
    if !signature::verify_body(&state.shopify.secrets, &body, hmac) {
        return Err(reject(ApiError::Unauthorized(
            "webhook signature is not valid".into(),
        )));
    }
    let missing = |name: &str| reject(ApiError::BadRequest(format!("{name} header is missing")));
    let topic = header(&req, "X-Shopify-Topic").ok_or_else(|| missing("X-Shopify-Topic"))?;
    let domain =
        header(&req, "X-Shopify-Shop-Domain").ok_or_else(|| missing("X-Shopify-Shop-Domain"))?;
    let webhook_id =
        header(&req, "X-Shopify-Webhook-Id").ok_or_else(|| missing("X-Shopify-Webhook-Id"))?;
    let shop_domain = normalize_shop(domain).ok_or_else(|| {
        reject(ApiError::BadRequest(
            "X-Shopify-Shop-Domain is not a shop domain".into(),
        ))
    })?;

    let triggered_at = header(&req, "X-Shopify-Triggered-At")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let submission = Submission {
        delivery: inbox::Delivery {
            platform: shopify::PLATFORM,
            shop_domain,
            topic: topic.to_string(),
            webhook_id: webhook_id.to_string(),
            event_id: header(&req, "X-Shopify-Event-Id").map(str::to_string),
            api_version: header(&req, "X-Shopify-API-Version").map(str::to_string),
            triggered_at,
            body: body.into(),
        },
        // Privacy requests still apply to a shop that has uninstalled.
        applies_when_uninstalled: COMPLIANCE_TOPICS.contains(&topic),
    };
    // The shop is checked when the row is written; see `ingest::intake`.
    match state.intake.submit(submission).await {
        Ok(Outcome::Stored { duplicate }) => {
            state
                .metrics
                .webhooks_accepted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(%topic, %webhook_id, duplicate, "webhook stored");
        }
        // Unknown or uninstalled shops get a 200 (otherwise Shopify retries for hours) and
        // nothing is stored.
        Ok(Outcome::Ignored) => {
            tracing::info!(shop = %domain, %topic, "webhook for an unknown or uninstalled shop: acknowledged, not applied");
        }
        Err(e) => {
            state
                .metrics
                .webhooks_deferred
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(ApiError::Busy {
                message: format!("{e}; please retry"),
                retry_after: RETRY_AFTER_SECS,
            });
        }
    }
    Ok(HttpResponse::Ok().finish())
}
