//! `POST /webhooks/{platform}`. The platform verifies the delivery on its raw bytes; the
//! handler hands it to the inbox writer (`ingest::intake`, which commits it in a batch) and
//! answers. It does nothing else, so it answers in milliseconds and a 200 always means the
//! delivery is durable.

use std::sync::atomic::Ordering;

use actix_web::{HttpRequest, HttpResponse, post, web};

use super::ApiError;
use crate::ingest::intake::{Outcome, Submission};
use crate::platforms::WebhookError;
use crate::state::AppState;
use crate::store::inbox;

/// What a 503 asks the platform to wait before sending the delivery again.
const RETRY_AFTER_SECS: u32 = 5;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(webhook);
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Unauthenticated(m) => ApiError::Unauthorized(m),
            WebhookError::Malformed(m) => ApiError::BadRequest(m),
        }
    }
}

#[post("/webhooks/{platform}")]
async fn webhook(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let reject = |e: ApiError| {
        state
            .metrics
            .webhooks_rejected
            .fetch_add(1, Ordering::Relaxed);
        e
    };
    let platform = state
        .platforms
        .get(&path)
        .ok_or_else(|| reject(ApiError::NotFound(format!("no platform `{path}`"))))?;
    let v = platform
        .verify_webhook(&req, &body)
        .map_err(|e| reject(e.into()))?;
    let submission = Submission {
        delivery: inbox::Delivery {
            platform: platform.name(),
            shop_domain: v.shop_key,
            topic: v.topic,
            webhook_id: v.delivery_id,
            event_id: v.event_id,
            api_version: v.api_version,
            triggered_at: v.triggered_at,
            body: body.into(),
        },
        applies_when_uninstalled: v.applies_when_uninstalled,
    };
    let (shop, topic) = (
        submission.delivery.shop_domain.clone(),
        submission.delivery.topic.clone(),
    );
    // The shop is checked when the row is written; see `ingest::intake`.
    match state.intake.submit(submission).await {
        Ok(Outcome::Stored { duplicate }) => {
            state
                .metrics
                .webhooks_accepted
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%topic, duplicate, "webhook stored");
        }
        // Unknown or uninstalled shops get a 200 (otherwise the platform retries for hours)
        // and nothing is stored.
        Ok(Outcome::Ignored) => {
            tracing::info!(%shop, %topic, "webhook for an unknown or uninstalled shop: acknowledged, not applied");
        }
        Err(e) => {
            state
                .metrics
                .webhooks_deferred
                .fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::Busy {
                message: format!("{e}; please retry"),
                retry_after: RETRY_AFTER_SECS,
            });
        }
    }
    Ok(HttpResponse::Ok().finish())
}
