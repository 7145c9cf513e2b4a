//! Ecwid webhooks. The signature (`X-Ecwid-Webhook-Signature`) is base64 HMAC-SHA256 of
//! `"{eventCreated}.{eventId}"` with the app's client secret: the body itself is not signed, so
//! nothing in it but those two fields is trusted. A delivery only names what changed; the
//! record is read through the API (`ShopEvent::FetchRequested`).

use actix_web::HttpRequest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::model::{DataEvent, Event, PrivacyRequest, Resource, ShopEvent};
use crate::platforms::{DecodeError, Verified, WebhookError, header};

pub const SIGNATURE_HEADER: &str = "X-Ecwid-Webhook-Signature";
/// Ecwid retries a delivery for 24 hours; an event created longer ago than this is a replay.
const MAX_AGE_SECS: i64 = 48 * 3600;
/// Clock skew allowed for an event "from the future".
const MAX_AHEAD_SECS: i64 = 300;

/// Privacy requests still apply to a store that has uninstalled.
const PRIVACY_TOPICS: [&str; 2] = [
    "customer.personalDataRemovalRequest",
    "customer.personalDataExportRequest",
];

/// The signature of an event, as Ecwid computes it.
pub fn sign(secret: &str, event_created: &str, event_id: &str) -> String {
    STANDARD.encode(mac(secret, event_created, event_id).finalize().into_bytes())
}

fn mac(secret: &str, event_created: &str, event_id: &str) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(event_created.as_bytes());
    m.update(b".");
    m.update(event_id.as_bytes());
    m
}

/// The signed fields of a body: `eventCreated` as the JSON text it was sent as, and `eventId`.
fn signed_fields(body: &Value) -> Option<(String, String)> {
    let created = match body.get("eventCreated")? {
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let id = body.get("eventId")?.as_str()?.to_string();
    Some((created, id))
}

pub fn verify(
    secrets: &[String],
    req: &HttpRequest,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Verified, WebhookError> {
    let signature = header(req, SIGNATURE_HEADER).ok_or_else(|| {
        WebhookError::Unauthenticated(format!("{SIGNATURE_HEADER} header is missing"))
    })?;
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("the body is not JSON: {e}")))?;
    let (created, event_id) = signed_fields(&json).ok_or_else(|| {
        WebhookError::Malformed("`eventCreated` (a number) and `eventId` are required".into())
    })?;
    let given = STANDARD
        .decode(signature)
        .map_err(|_| WebhookError::Unauthenticated("webhook signature is not valid".into()))?;
    if !secrets
        .iter()
        .any(|s| mac(s, &created, &event_id).verify_slice(&given).is_ok())
    {
        return Err(WebhookError::Unauthenticated(
            "webhook signature is not valid".into(),
        ));
    }
    let created_at = created
        .parse::<i64>()
        .ok()
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .ok_or_else(|| WebhookError::Malformed("`eventCreated` is not a timestamp".into()))?;
    let age = (now - created_at).num_seconds();
    if !(-MAX_AHEAD_SECS..=MAX_AGE_SECS).contains(&age) {
        return Err(WebhookError::Malformed(format!(
            "the event was created {created_at}, outside the window deliveries are retried in"
        )));
    }
    let shop_key = match json.get("storeId") {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|id| id > 0) => n.to_string(),
        _ => {
            return Err(WebhookError::Malformed(
                "`storeId` must be a store number".into(),
            ));
        }
    };
    let topic = json
        .get("eventType")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 100)
        .ok_or_else(|| WebhookError::Malformed("`eventType` is missing".into()))?
        .to_string();
    Ok(Verified {
        applies_when_uninstalled: PRIVACY_TOPICS.contains(&topic.as_str()),
        shop_key,
        topic,
        delivery_id: event_id.clone(),
        event_id: Some(event_id),
        api_version: None,
        triggered_at: Some(created_at),
    })
}

/// The id a delivery names, as text (Ecwid sends numbers or strings).
fn named(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A stored delivery as events. Only ids are read from it (the body is not signed).
pub fn decode(topic: &str, body: &[u8]) -> Result<Vec<Event>, DecodeError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| DecodeError(format!("not JSON: {e}")))?;
    let need = |pointer: &str| {
        named(&v, pointer).ok_or_else(|| DecodeError(format!("`{topic}` without `{pointer}`")))
    };
    let fetch = |resource, platform_id| {
        Ok(vec![
            ShopEvent::FetchRequested {
                resource,
                platform_id,
            }
            .into(),
        ])
    };
    let privacy = |v: &Value| -> Result<PrivacyRequest, DecodeError> {
        Ok(PrivacyRequest {
            customer_platform_id: Some(
                named(v, "/entityId").ok_or_else(|| DecodeError("no `entityId`".into()))?,
            ),
            email: None,
            order_platform_ids: Vec::new(),
            request_id: named(v, "/eventId"),
        })
    };
    let order_id = || named(&v, "/data/orderId").or_else(|| named(&v, "/entityId"));
    match topic {
        "order.created" | "order.updated" => {
            let id =
                order_id().ok_or_else(|| DecodeError("an order event without an id".into()))?;
            fetch(Resource::Orders, id)
        }
        "order.deleted" => {
            let platform_id =
                order_id().ok_or_else(|| DecodeError("an order event without an id".into()))?;
            Ok(vec![DataEvent::OrderDeleted { platform_id }.into()])
        }
        "unfinished_order.created" | "unfinished_order.updated" => {
            fetch(Resource::Checkouts, need("/data/cartId")?)
        }
        // The cart became an order or was deleted: either way it is no longer abandoned.
        "unfinished_order.deleted" => Ok(vec![
            DataEvent::CheckoutRemoved {
                platform_id: need("/data/cartId")?,
            }
            .into(),
        ]),
        "customer.created" | "customer.updated" => fetch(Resource::Customers, need("/entityId")?),
        "customer.deleted" => Ok(vec![
            DataEvent::CustomerDeleted {
                platform_id: need("/entityId")?,
            }
            .into(),
        ]),
        "application.uninstalled" => Ok(vec![ShopEvent::AppUninstalled.into()]),
        "customer.personalDataRemovalRequest" => Ok(vec![
            ShopEvent::CustomerRedactRequested(privacy(&v)?).into(),
        ]),
        "customer.personalDataExportRequest" => {
            Ok(vec![ShopEvent::CustomerDataRequested(privacy(&v)?).into()])
        }
        // Other events are not Lifecycle's business.
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_vector_signs_as_computed() {
        // platforms.md §3.6 (self-computed, not official).
        assert_eq!(
            sign(
                "abcde123456789",
                "1234567",
                "80aece08-40e8-4145-8764-6c2f0d38678"
            ),
            "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358="
        );
    }

    #[test]
    fn events_name_what_to_fetch_and_never_trust_the_body() {
        let body = br#"{"eventId":"e1","eventCreated":1,"storeId":1003,"entityId":9,
            "eventType":"order.updated","data":{"orderId":"EBJFT","newPaymentStatus":"PAID"}}"#;
        assert_eq!(
            decode("order.updated", body).unwrap(),
            vec![Event::Shop(ShopEvent::FetchRequested {
                resource: Resource::Orders,
                platform_id: "EBJFT".into()
            })]
        );
        let customer =
            br#"{"eventId":"e2","entityId":77,"data":{"customerEmail":"x@example.com"}}"#;
        assert_eq!(
            decode("customer.updated", customer).unwrap(),
            vec![Event::Shop(ShopEvent::FetchRequested {
                resource: Resource::Customers,
                platform_id: "77".into()
            })]
        );
        assert_eq!(
            decode("application.uninstalled", b"{}").unwrap(),
            vec![Event::Shop(ShopEvent::AppUninstalled)]
        );
        // A cart that became an order (or was deleted) leaves the abandoned ones.
        let gone = br#"{"eventId":"e3","data":{"cartId":"C-1","orderId":"EBJFT"}}"#;
        assert_eq!(
            decode("unfinished_order.deleted", gone).unwrap(),
            vec![Event::Data(DataEvent::CheckoutRemoved {
                platform_id: "C-1".into()
            })]
        );
        assert!(decode("unfinished_order.deleted", b"{}").is_err());
        assert!(decode("product.updated", b"{}").unwrap().is_empty());
        assert!(decode("customer.updated", b"{}").is_err());
        assert!(decode("order.created", b"not json").is_err());
    }
}
