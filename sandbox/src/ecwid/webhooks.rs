//! Ecwid webhooks: one JSON body per event naming ids and statuses only, posted to
//! `{app_url}/webhooks/ecwid?eventtype={eventType}`, signed with
//! `X-Ecwid-Webhook-Signature: base64(HMAC-SHA256(client_secret, "{eventCreated}.{eventId}"))`
//! (the body itself is not signed), and retried on Ecwid's schedule through the shared
//! dispatcher.

use super::payloads;
use crate::state::{Shop, State};
use crate::store::Change;
use crate::webhooks::delivery::{Outgoing, RetryPolicy};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

pub const SIGNATURE_HEADER: &str = "X-Ecwid-Webhook-Signature";

/// The signature of an event: base64 HMAC-SHA256 over `"{eventCreated}.{eventId}"`.
pub fn sign(secret: &str, event_created: i64, event_id: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(format!("{event_created}.{event_id}").as_bytes());
    STANDARD.encode(m.finalize().into_bytes())
}

/// When retry `n` (1-based) happens, in unscaled seconds after the first attempt: 15, 30 and
/// 45 min, then every hour from 1 h to 24 h (27 retries).
pub fn retry_offset_secs(n: u32) -> f64 {
    match n {
        0 => 0.0,
        1..=3 => f64::from(n) * 900.0,
        _ => f64::from(n - 3) * 3600.0,
    }
}

/// Retries after the first attempt: the last one 24 h after it.
pub const RETRIES: u32 = 27;

fn delay_secs(n: u32) -> f64 {
    retry_offset_secs(n) - retry_offset_secs(n - 1)
}

/// 200, 201, 202, 204 and 209 count as delivered; 203, 208 and other 2xx/3xx do not.
pub fn delivered(code: u16) -> bool {
    matches!(code, 200 | 201 | 202 | 204 | 209)
}

/// Ecwid: connect 3 s, response 10 s, the schedule above.
pub const POLICY: RetryPolicy = RetryPolicy {
    retries: RETRIES,
    delay_secs,
    delivered,
    connect_timeout: Duration::from_secs(3),
    timeout: Duration::from_secs(13),
};

/// The Ecwid event a change of the shared model causes: (eventType, entityId, data).
fn event_for(shop: &Shop, store_id: u64, change: &Change) -> Option<(&'static str, Value, Value)> {
    let p = &change.payload;
    let order = |event: &'static str| {
        let id = p.get("id")?.as_u64()?;
        let data = shop.data.read();
        let (pay, ful) = match data.orders.get(id) {
            Some(o) => (payloads::payment_status(o), payloads::fulfillment_status(o)),
            None => ("CANCELLED", "WILL_NOT_DELIVER"),
        };
        Some((
            event,
            json!(id),
            json!({"orderId": id.to_string(), "newPaymentStatus": pay, "newFulfillmentStatus": ful}),
        ))
    };
    let customer = |event: &'static str| {
        let id = p.get("id")?.as_u64()?;
        Some((
            event,
            json!(id),
            json!({"customerEmail": p.get("email").cloned().unwrap_or(Value::Null)}),
        ))
    };
    let cart = |event: &'static str| {
        let id = p.get("id")?.as_u64()?;
        Some((
            event,
            json!(id.to_string()),
            json!({"cartId": id.to_string(), "orderId": id.to_string()}),
        ))
    };
    let privacy = |event: &'static str| {
        let c = p.get("customer")?;
        let id = c.get("id")?.as_u64()?;
        Some((
            event,
            json!(id),
            json!({"customerEmail": c.get("email").cloned().unwrap_or(Value::Null)}),
        ))
    };
    match change.topic {
        "customers/create" => customer("customer.created"),
        "customers/update" => customer("customer.updated"),
        "customers/delete" => customer("customer.deleted"),
        "orders/create" => order("order.created"),
        "orders/updated" => order("order.updated"),
        "orders/delete" => order("order.deleted"),
        "checkouts/create" => cart("unfinished_order.created"),
        // A completed checkout leaves the store's carts: Ecwid says the cart is deleted.
        "checkouts/update" if !p.get("completed_at").is_none_or(Value::is_null) => {
            cart("unfinished_order.deleted")
        }
        "checkouts/update" => cart("unfinished_order.updated"),
        "app/uninstalled" => Some(("application.uninstalled", json!(store_id), Value::Null)),
        "customers/redact" => privacy("customer.personalDataRemovalRequest"),
        "customers/data_request" => privacy("customer.personalDataExportRequest"),
        // orders/paid, orders/cancelled and refunds/create come with an orders/updated (or
        // orders/create); shop/redact has no Ecwid counterpart.
        _ => None,
    }
}

/// Events that reach the app even when it is not installed (any more).
fn always_sent(event: &str) -> bool {
    matches!(
        event,
        "application.uninstalled"
            | "customer.personalDataRemovalRequest"
            | "customer.personalDataExportRequest"
    )
}

/// Sends the Ecwid webhooks for `changes` to the app's single webhook URL.
pub fn emit(state: &State, shop: &Arc<Shop>, changes: Vec<Change>) {
    let Some(eco) = super::model::EcwidShop::of(shop) else {
        return;
    };
    let app = state.app.read().clone();
    let Some(app_url) = app.app_url.as_ref().map(|u| u.trim_end_matches('/')) else {
        return;
    };
    let installed = shop.auth.lock().installed;
    let faults = state.faults.read().clone();
    for change in &changes {
        let Some((event, entity, data)) = event_for(shop, eco.store_id, change) else {
            continue;
        };
        if !installed && !always_sent(event) {
            continue;
        }
        let now = Utc::now();
        let event_id = uuid::Uuid::new_v4().to_string();
        let created = now.timestamp();
        let mut body = json!({
            "eventId": event_id,
            "eventCreated": created,
            "storeId": eco.store_id,
            "entityId": entity,
            "eventType": event,
        });
        if !data.is_null() {
            body["data"] = data;
        }
        let signature = sign(
            &app.app(super::model::NAME).client_secret,
            created,
            &event_id,
        );
        state.dispatcher.send_one(
            shop.deliveries.clone(),
            &shop.info.domain,
            Outgoing {
                topic: event,
                body: serde_json::to_vec(&body).expect("JSON values serialise"),
                address: format!("{app_url}/webhooks/ecwid?eventtype={event}"),
                headers: vec![
                    ("User-Agent", "Ecwid-Webhooks".to_string()),
                    (SIGNATURE_HEADER, signature),
                ],
                webhook_id: event_id.clone(),
                event_id,
                policy: POLICY,
                on_give_up: None,
            },
            now,
            &faults,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_reference_vector() {
        // platforms.md §3.6 (self-computed, not official).
        assert_eq!(
            sign(
                "abcde123456789",
                1234567,
                "80aece08-40e8-4145-8764-6c2f0d38678"
            ),
            "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358="
        );
        assert_ne!(
            sign(
                "abcde12345678",
                1234567,
                "80aece08-40e8-4145-8764-6c2f0d38678"
            ),
            "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358="
        );
    }

    #[test]
    fn schedule_is_ecwids() {
        let offsets: Vec<f64> = (1..=RETRIES).map(retry_offset_secs).collect();
        assert_eq!(&offsets[..5], &[900.0, 1800.0, 2700.0, 3600.0, 7200.0]);
        assert_eq!(*offsets.last().unwrap(), 86_400.0);
        let total: f64 = (1..=RETRIES).map(delay_secs).sum();
        assert_eq!(total, 86_400.0);
        assert!((1..=RETRIES).all(|n| delay_secs(n) > 0.0));
    }

    #[test]
    fn delivered_codes() {
        for c in [200, 201, 202, 204, 209] {
            assert!(delivered(c));
        }
        for c in [203, 208, 206, 301, 404, 500] {
            assert!(!delivered(c));
        }
    }
}
