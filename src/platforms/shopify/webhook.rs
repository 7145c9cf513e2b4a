//! Verifying a Shopify webhook: the HMAC of the raw body first (401 on every topic, compliance
//! topics included), then the headers that name the delivery.

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};

use super::events::COMPLIANCE_TOPICS;
use super::{normalize_shop, signature};
use crate::platforms::{Verified, WebhookError, header};

pub fn verify(
    secrets: &[String],
    req: &HttpRequest,
    body: &[u8],
) -> Result<Verified, WebhookError> {
    let hmac = header(req, "X-Shopify-Hmac-Sha256").ok_or_else(|| {
        WebhookError::Unauthenticated("X-Shopify-Hmac-Sha256 header is missing".into())
    })?;
    if !signature::verify_body(secrets, body, hmac) {
        return Err(WebhookError::Unauthenticated(
            "webhook signature is not valid".into(),
        ));
    }
    let required = |name: &str| {
        header(req, name)
            .ok_or_else(|| WebhookError::Malformed(format!("{name} header is missing")))
    };
    let topic = required("X-Shopify-Topic")?;
    let domain = required("X-Shopify-Shop-Domain")?;
    let webhook_id = required("X-Shopify-Webhook-Id")?;
    let shop_key = normalize_shop(domain).ok_or_else(|| {
        WebhookError::Malformed("X-Shopify-Shop-Domain is not a shop domain".into())
    })?;
    let triggered_at = header(req, "X-Shopify-Triggered-At")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(Verified {
        shop_key,
        topic: topic.to_string(),
        delivery_id: webhook_id.to_string(),
        event_id: header(req, "X-Shopify-Event-Id").map(str::to_string),
        api_version: header(req, "X-Shopify-API-Version").map(str::to_string),
        triggered_at,
        applies_when_uninstalled: COMPLIANCE_TOPICS.contains(&topic),
    })
}
