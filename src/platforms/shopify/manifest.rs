//! The app's `shopify.app.toml`, embedded at build time and read at start-up: it is the one
//! list of webhook topics and scopes, shared by Shopify's deploy and the app itself.

use serde::Deserialize;

const MANIFEST: &str = include_str!("../../../plugin-manifest/shopify.app.toml");

/// The scope that lifts Shopify's 60-day window on orders.
pub const ALL_ORDERS: &str = "read_all_orders";
/// How far back Shopify shows orders to an app without [`ALL_ORDERS`].
pub const ORDER_WINDOW_DAYS: u32 = 60;

#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub access_scopes: AccessScopes,
    pub webhooks: Webhooks,
}

#[derive(Debug, Deserialize)]
pub struct AccessScopes {
    pub scopes: String,
}

#[derive(Debug, Deserialize)]
pub struct Webhooks {
    pub api_version: String,
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

#[derive(Debug, Deserialize)]
pub struct Subscription {
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub compliance_topics: Vec<String>,
    pub uri: String,
}

impl Manifest {
    pub fn load() -> Manifest {
        toml::from_str(MANIFEST)
            .expect("plugin-manifest/shopify.app.toml is valid (checked by tests)")
    }

    /// The scopes Lifecycle works without, at a cost the admin states: `read_all_orders` needs
    /// Shopify's approval of the app, and without it the history is the last 60 days.
    pub const OPTIONAL_SCOPES: [&str; 1] = [ALL_ORDERS];

    /// The scopes an install must grant.
    pub fn required_scopes(&self) -> Vec<String> {
        self.scopes()
            .into_iter()
            .filter(|s| !Self::OPTIONAL_SCOPES.contains(&s.as_str()))
            .collect()
    }

    /// Every scope the app asks for.
    pub fn scopes(&self) -> Vec<String> {
        self.access_scopes
            .scopes
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Topics the manifest declares that Shopify delivers as app-specific subscriptions, with no
    /// Admin API call. Subscribing them through the API as well would deliver every event twice.
    pub fn app_specific_topics(&self) -> Vec<String> {
        self.subscription_topics()
            .filter(|t| app_specific_capable(t))
            .collect()
    }

    /// Topics that must be registered through the Admin API at install: those the manifest
    /// cannot deliver as app-specific subscriptions (none of Lifecycle's today). Compliance
    /// topics exist only in the manifest, so they are never among them.
    pub fn api_topics(&self) -> Vec<String> {
        self.subscription_topics()
            .filter(|t| !app_specific_capable(t))
            .collect()
    }

    fn subscription_topics(&self) -> impl Iterator<Item = String> + '_ {
        self.webhooks
            .subscriptions
            .iter()
            .flat_map(|s| s.topics.iter().cloned())
    }

    /// Every topic the app must handle.
    pub fn all_topics(&self) -> Vec<String> {
        self.webhooks
            .subscriptions
            .iter()
            .flat_map(|s| s.topics.iter().chain(s.compliance_topics.iter()).cloned())
            .collect()
    }
}

/// App-specific (TOML) subscriptions take every topic but `product_feeds/*` (reference §6).
fn app_specific_capable(topic: &str) -> bool {
    !topic.starts_with("product_feeds/")
}

/// Whether `granted` (a comma-separated scope list) covers every scope in `required`.
/// `write_x` implies `read_x`.
pub fn scopes_cover(granted: &str, required: &[String]) -> bool {
    let granted: Vec<&str> = granted.split(',').map(str::trim).collect();
    required.iter().all(|r| {
        granted.contains(&r.as_str())
            || r.strip_prefix("read_")
                .is_some_and(|rest| granted.contains(&format!("write_{rest}").as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_manifest_topic_has_a_handler_and_every_handler_a_topic() {
        let m = Manifest::load();
        let mut declared = m.all_topics();
        declared.sort();
        let mut handled: Vec<String> = super::super::events::HANDLED_TOPICS
            .iter()
            .map(|s| s.to_string())
            .collect();
        handled.sort();
        assert_eq!(declared, handled);
    }

    #[test]
    fn manifest_topics_need_no_api_subscription() {
        let m = Manifest::load();
        assert!(m.api_topics().is_empty(), "{:?}", m.api_topics());
        assert!(m.app_specific_topics().contains(&"orders/create".to_string()));
        assert!(!app_specific_capable("product_feeds/create"));
    }

    #[test]
    fn scopes() {
        let req = vec!["read_customers".to_string(), "write_discounts".to_string()];
        assert!(scopes_cover("write_customers,write_discounts", &req));
        assert!(!scopes_cover("read_customers", &req));
    }
}
