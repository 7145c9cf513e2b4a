//! Settings of one sandbox run.

use crate::store::Plan;
use chrono::{DateTime, Utc};

/// Deliveries in flight per shop unless set: Shopify does not publish its figure; this is wide
/// enough that ingest, not the sandbox, is what a flood measures.
pub const DEFAULT_DELIVERY_CONCURRENCY: usize = 64;

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: String,
    /// Number of shops, named `demo-1`, `demo-2`, … unless `names` is given.
    pub shops: usize,
    pub names: Vec<String>,
    pub customers: usize,
    pub seed: u64,
    pub client_id: String,
    pub client_secret: String,
    /// The app's public URL; may be set later with `POST /_sandbox/app`.
    pub app_url: Option<String>,
    /// Scopes granted when the app asks for none (managed install / token exchange).
    pub scopes: String,
    /// Live events per second per shop; `None` = no live traffic.
    pub live_rate: Option<f64>,
    /// Treatment effect of a personal discount code in live traffic: a holder buys at
    /// (1 + uplift) times their natural rate until they use it (0 = no effect).
    pub live_uplift: f64,
    /// How much faster than real time webhook retry intervals pass (3600 = 4 h in 4 s).
    pub time_scale: f64,
    /// Webhook deliveries in flight at once per shop (and address); the rest wait their turn,
    /// as on the platform, so a flood reaches the app as a steady stream of bounded width.
    pub delivery_concurrency: usize,
    pub auto_approve: bool,
    pub plan: Plan,
    pub history_days: u32,
    /// End of the generated history; default: midnight UTC today, so runs on one day agree.
    pub history_end: Option<DateTime<Utc>>,
    /// The platform the seeded shops simulate.
    pub platform: crate::ecwid::Platform,
    /// Plan of seeded Ecwid shops (business has customer groups; free and venture do not).
    pub ecwid_plan: crate::ecwid::EcwidPlan,
    pub ecwid_client_id: String,
    pub ecwid_client_secret: String,
    /// Scopes an Ecwid store grants the app (space separated).
    pub ecwid_scopes: String,
    /// Ecwid's REST rate limit per token and minute (600 on the platform); tests lower it.
    pub ecwid_requests_per_minute: u32,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            bind: "127.0.0.1:0".into(),
            shops: 1,
            names: vec![],
            customers: 1000,
            seed: 42,
            client_id: "sandbox-client-id".into(),
            client_secret: "sandbox-client-secret".into(),
            app_url: None,
            scopes: "read_customers,write_customers,read_orders,read_discounts,write_discounts"
                .into(),
            live_rate: None,
            live_uplift: 0.0,
            time_scale: 1.0,
            delivery_concurrency: DEFAULT_DELIVERY_CONCURRENCY,
            auto_approve: true,
            plan: Plan::Standard,
            history_days: 730,
            history_end: None,
            platform: crate::ecwid::Platform::Shopify,
            ecwid_plan: crate::ecwid::EcwidPlan::Business,
            ecwid_client_id: "sandbox-ecwid-client-id".into(),
            ecwid_client_secret: "sandbox-ecwid-client-secret".into(),
            ecwid_scopes: crate::ecwid::FULL_SCOPES.into(),
            ecwid_requests_per_minute: crate::ecwid::REQUESTS_PER_MINUTE,
        }
    }
}

impl SandboxConfig {
    pub fn shop_names(&self) -> Vec<String> {
        if self.names.is_empty() {
            (1..=self.shops).map(|i| format!("demo-{i}")).collect()
        } else {
            self.names.clone()
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.client_id.is_empty(), "client_id must not be empty");
        anyhow::ensure!(
            !self.client_secret.is_empty(),
            "client_secret must not be empty"
        );
        anyhow::ensure!(
            self.time_scale.is_finite() && self.time_scale > 0.0,
            "time_scale must be a positive number"
        );
        anyhow::ensure!(
            self.delivery_concurrency > 0,
            "delivery_concurrency must be at least 1"
        );
        anyhow::ensure!(
            self.ecwid_requests_per_minute > 0,
            "ecwid_requests_per_minute must be at least 1"
        );
        if let Some(r) = self.live_rate {
            anyhow::ensure!(
                r.is_finite() && r > 0.0 && r <= 10_000.0,
                "live rate must be in (0, 10000] per second"
            );
        }
        anyhow::ensure!(
            self.live_uplift.is_finite() && (0.0..=10.0).contains(&self.live_uplift),
            "live uplift must be in [0, 10] (0.3 = +30 %)"
        );
        if let Some(u) = &self.app_url {
            url::Url::parse(u).map_err(|e| anyhow::anyhow!("app_url '{u}' is not a URL: {e}"))?;
        }
        for n in self.shop_names() {
            anyhow::ensure!(
                crate::seed::valid_shop_name(&n),
                "shop name '{n}' is invalid"
            );
        }
        Ok(())
    }
}
