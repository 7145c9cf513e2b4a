//! Shopify webhooks: one REST-shaped JSON body per event and subscriber, signed over the exact
//! body with `X-Shopify-Hmac-Sha256`, sent with Shopify's headers and retried on its schedule
//! (a 1 s connect and 5 s total timeout, 8 retries with growing intervals over 4 hours of
//! scaled time) through the shared dispatcher. Subscribers are the app's configuration file
//! (app-specific subscriptions) and its Admin API subscriptions (shop-specific); only the
//! latter are dropped after the last retry fails.

use super::signing::webhook_hmac;
use crate::state::{Shop, State};
use crate::store::Change;
use crate::webhooks::delivery::{Outgoing, RetryPolicy};
use chrono::{SecondsFormat, Utc};
use std::sync::Arc;
use std::time::Duration;

/// The app's configuration, as `shopify app deploy` would release it: its
/// `[[webhooks.subscriptions]]` are app-specific subscriptions, delivered to every shop the app
/// is installed on without any Admin API call.
const APP_CONFIG: &str = include_str!("../../../plugin-manifest/shopify.app.toml");

#[derive(Debug, serde::Deserialize)]
struct AppConfig {
    webhooks: AppWebhooks,
}

#[derive(Debug, serde::Deserialize)]
struct AppWebhooks {
    /// The version app-specific deliveries are serialised in.
    api_version: String,
    #[serde(default)]
    subscriptions: Vec<AppSubscription>,
}

/// One `[[webhooks.subscriptions]]` table.
#[derive(Debug, serde::Deserialize)]
pub struct AppSubscription {
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub compliance_topics: Vec<String>,
    /// An absolute URL, or a path resolved against the app's URL.
    pub uri: String,
}

fn app_webhooks() -> &'static AppWebhooks {
    static WEBHOOKS: std::sync::OnceLock<AppWebhooks> = std::sync::OnceLock::new();
    WEBHOOKS.get_or_init(|| {
        toml::from_str::<AppConfig>(APP_CONFIG)
            .expect("plugin-manifest/shopify.app.toml is valid")
            .webhooks
    })
}

/// The app-specific subscriptions of the app's configuration file.
pub fn app_subscriptions() -> &'static [AppSubscription] {
    &app_webhooks().subscriptions
}

/// Where the app-specific subscriptions of `topic` deliver (none if the app has no URL yet).
pub fn app_webhook_urls(app_url: Option<&str>, topic: &str) -> Vec<String> {
    let Some(app_url) = app_url else {
        return vec![];
    };
    app_subscriptions()
        .iter()
        .filter(|s| {
            s.topics
                .iter()
                .chain(&s.compliance_topics)
                .any(|t| t == topic)
        })
        .map(|s| {
            if s.uri.starts_with("http://") || s.uri.starts_with("https://") {
                s.uri.clone()
            } else {
                format!(
                    "{}/{}",
                    app_url.trim_end_matches('/'),
                    s.uri.trim_start_matches('/')
                )
            }
        })
        .collect()
}

/// Topics delivered whether or not the app is installed: its own uninstall, and the privacy
/// topics that follow it.
const AFTER_UNINSTALL_TOPICS: [&str; 4] = [
    "app/uninstalled",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
];

/// Retries after the first attempt (reference §2).
pub const RETRIES: u32 = 8;
/// The retries spread over four hours, each interval double the one before.
const RETRY_SPAN_SECS: f64 = 4.0 * 3600.0;

/// Delay before retry `n` (1-based), in unscaled seconds: 56 s, 113 s, … 2 h, summing to 4 h.
pub fn retry_delay_secs(n: u32) -> f64 {
    let unit = RETRY_SPAN_SECS / f64::from((1u32 << RETRIES) - 1);
    unit * f64::from(1u32 << (n - 1))
}

fn shopify_delivered(code: u16) -> bool {
    (200..300).contains(&code)
}

/// Shopify's policy (reference §2): 1 s connect, 5 s total, 8 doubling retries over 4 h.
pub const SHOPIFY_POLICY: RetryPolicy = RetryPolicy {
    retries: RETRIES,
    delay_secs: retry_delay_secs,
    delivered: shopify_delivered,
    connect_timeout: Duration::from_secs(1),
    timeout: Duration::from_secs(5),
};

/// Sends the webhooks for `changes`: one event per change, one delivery per subscriber.
pub fn emit(state: &State, shop: &Arc<Shop>, changes: Vec<Change>) {
    let app = state.app.read().clone();
    let secret = app.app(super::shop::NAME).client_secret.clone();
    let installed = shop.auth.lock().installed;
    for change in changes {
        let mut targets: Vec<(String, String, Option<u64>)> = Vec::new();
        let reachable = installed || AFTER_UNINSTALL_TOPICS.contains(&change.topic);
        if installed {
            let data = shop.data.read();
            for s in data.webhooks.values().filter(|s| s.topic == change.topic) {
                targets.push((s.callback_url.clone(), s.api_version.clone(), Some(s.id)));
            }
        }
        // An API subscription of a topic the configuration also subscribes is a second
        // subscription: Shopify delivers to each (same event id, its own webhook id).
        if reachable {
            for url in app_webhook_urls(app.app_url.as_deref(), change.topic) {
                targets.push((url, app_webhooks().api_version.clone(), None));
            }
        }
        if targets.is_empty() {
            continue;
        }
        let body = serde_json::to_vec(&change.payload).expect("JSON values serialise");
        dispatch(state, shop, change.topic, body, targets, &secret);
    }
}

/// One event, one delivery per subscriber, signed over the exact body.
fn dispatch(
    state: &State,
    shop: &Arc<Shop>,
    topic: &'static str,
    body: Vec<u8>,
    targets: Vec<(String, String, Option<u64>)>,
    secret: &str,
) {
    let faults = state.faults.read().clone();
    let event_id = uuid::Uuid::new_v4().to_string();
    let triggered_at = Utc::now();
    let hmac = webhook_hmac(secret, &body);
    let triggered = triggered_at.to_rfc3339_opts(SecondsFormat::Micros, true);
    for (address, api_version, subscription_id) in targets {
        let webhook_id = uuid::Uuid::new_v4().to_string();
        let headers = vec![
            ("User-Agent", "Shopify-Captain-Hook".to_string()),
            ("X-Shopify-Topic", topic.to_string()),
            ("X-Shopify-Hmac-Sha256", hmac.clone()),
            ("X-Shopify-Shop-Domain", shop.info.domain.clone()),
            ("X-Shopify-API-Version", api_version),
            ("X-Shopify-Webhook-Id", webhook_id.clone()),
            ("X-Shopify-Event-Id", event_id.clone()),
            ("X-Shopify-Triggered-At", triggered.clone()),
        ];
        // Shopify deletes Admin API subscriptions after 8 consecutive failed retries.
        let on_give_up = subscription_id.map(|id| {
            let shop = shop.clone();
            let address = address.clone();
            Box::new(move || {
                shop.data.write().webhooks.remove(&id);
                tracing::warn!(topic, address = %address, "webhook subscription removed after repeated failures");
            }) as crate::webhooks::delivery::GiveUp
        });
        state.dispatcher.send_one(
            shop.deliveries.clone(),
            &shop.info.domain,
            Outgoing {
                topic,
                body: body.clone(),
                address,
                headers,
                webhook_id,
                event_id: event_id.clone(),
                policy: SHOPIFY_POLICY,
                on_give_up,
            },
            triggered_at,
            &faults,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_grow_and_span_four_hours() {
        let total: f64 = (1..=RETRIES).map(retry_delay_secs).sum();
        assert!((total - 14_400.0).abs() < 1e-6);
        for n in 2..=RETRIES {
            assert!(retry_delay_secs(n) > retry_delay_secs(n - 1));
        }
    }
}
