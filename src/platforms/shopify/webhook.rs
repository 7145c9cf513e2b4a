//! Verifying a Shopify webhook: the HMAC of the raw body first (401 on every topic, compliance
//! topics included), then the headers that name the delivery. The shop header is not signed, so
//! where the signed body names its shop too (`myshopify_domain` of the shop and app topics,
//! `shop_domain` of the privacy topics) the two must agree.

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};

use super::events::COMPLIANCE_TOPICS;
use super::{shop_domain, signature};
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
    let shop_key = shop_domain(domain)
        .map_err(|e| WebhookError::Malformed(format!("X-Shopify-Shop-Domain: {e}")))?;
    payload_names_same_shop(body, &shop_key)?;
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

/// The fields of a payload that name its shop; every other field is skipped unread.
#[derive(serde::Deserialize)]
struct ShopFields {
    #[serde(default)]
    myshopify_domain: Option<serde_json::Value>,
    #[serde(default)]
    shop_domain: Option<serde_json::Value>,
}

/// Refuses a delivery whose signed body names another shop than its header (a signed body
/// replayed under another shop's header). A body that is not a JSON object names no shop here;
/// decoding it reports it later.
fn payload_names_same_shop(body: &[u8], shop_key: &str) -> Result<(), WebhookError> {
    // A struct also deserialises from an array, by position: only objects name fields.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Ok(());
    }
    let Ok(fields) = serde_json::from_slice::<ShopFields>(body) else {
        return Ok(());
    };
    for (field, value) in [
        ("myshopify_domain", fields.myshopify_domain),
        ("shop_domain", fields.shop_domain),
    ] {
        let named = match value {
            None | Some(serde_json::Value::Null) => continue,
            Some(serde_json::Value::String(s)) => shop_domain(&s).ok(),
            Some(_) => None,
        };
        if named.as_deref() != Some(shop_key) {
            return Err(WebhookError::Malformed(format!(
                "the signed payload's `{field}` names another shop than X-Shopify-Shop-Domain ({shop_key})"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_shop_must_match_the_header() {
        let shop = "a.myshopify.com";
        for ok in [
            r#"{"id":1,"myshopify_domain":"a.myshopify.com"}"#,
            r#"{"shop_domain":"A.myshopify.com","shop_id":1}"#,
            r#"{"myshopify_domain":null,"domain":"shop.example.com"}"#,
            r#"{"id":1,"email":"x@example.com"}"#,
            "[1,2]",
            "not json",
        ] {
            assert!(payload_names_same_shop(ok.as_bytes(), shop).is_ok(), "{ok}");
        }
        for bad in [
            r#"{"myshopify_domain":"b.myshopify.com"}"#,
            r#"{"shop_domain":"b.myshopify.com"}"#,
            r#"{"shop_domain":"evil.com"}"#,
            r#"{"shop_domain":42}"#,
            r#"{"myshopify_domain":"a.myshopify.com","shop_domain":"b.myshopify.com"}"#,
        ] {
            assert!(
                matches!(
                    payload_names_same_shop(bad.as_bytes(), shop),
                    Err(WebhookError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }
}
