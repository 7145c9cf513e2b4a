//! Settings of one sandbox run.

use crate::flavours;
use crate::state::{AppCredentials, FlavourSettings};
use crate::store::Plan;
use chrono::{DateTime, Utc};
use std::any::Any;
use std::collections::BTreeMap;

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
    /// The app's public URL; may be set later with `POST /_sandbox/app`.
    pub app_url: Option<String>,
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
    /// The flavour the seeded shops simulate ("shopify", "ecwid"; see `crate::flavours`).
    pub platform: String,
    /// App credentials by flavour name; a flavour not named here uses its defaults.
    pub apps: BTreeMap<String, AppCredentials>,
    /// Settings by flavour name, each of the flavour's own type; absent: its defaults.
    pub settings: BTreeMap<String, FlavourSettings>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            bind: "127.0.0.1:0".into(),
            shops: 1,
            names: vec![],
            customers: 1000,
            seed: 42,
            app_url: None,
            live_rate: None,
            live_uplift: 0.0,
            time_scale: 1.0,
            delivery_concurrency: DEFAULT_DELIVERY_CONCURRENCY,
            auto_approve: true,
            plan: Plan::Standard,
            history_days: 730,
            history_end: None,
            platform: flavours::DEFAULT.into(),
            apps: BTreeMap::new(),
            settings: BTreeMap::new(),
        }
    }
}

impl SandboxConfig {
    /// The same, with flavour `name`'s app credentials (its default scopes unless set before).
    pub fn with_app(
        mut self,
        name: &str,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> anyhow::Result<Self> {
        let name = name.to_ascii_lowercase();
        let default = flavours::default_app(&name)
            .ok_or_else(|| anyhow::anyhow!(flavours::unknown(&name)))?;
        let (scopes, withheld_scopes) = self
            .apps
            .get(&name)
            .map_or((default.scopes, default.withheld_scopes), |a| {
                (a.scopes.clone(), a.withheld_scopes.clone())
            });
        self.apps.insert(
            name,
            AppCredentials {
                client_id: client_id.into(),
                client_secret: client_secret.into(),
                scopes,
                withheld_scopes,
            },
        );
        Ok(self)
    }

    /// The same, with flavour `name`'s settings (of its own type, e.g. `ecwid::Settings`).
    pub fn with_settings<T: Any + Send + Sync>(mut self, name: &str, settings: T) -> Self {
        self.settings
            .insert(name.to_ascii_lowercase(), FlavourSettings::new(settings));
        self
    }

    /// Flavour `name`'s app credentials: configured or its defaults.
    pub fn app(&self, name: &str) -> Option<AppCredentials> {
        self.apps
            .get(name)
            .cloned()
            .or_else(|| flavours::default_app(name))
    }

    pub fn shop_names(&self) -> Vec<String> {
        if self.names.is_empty() {
            (1..=self.shops).map(|i| format!("demo-{i}")).collect()
        } else {
            self.names.clone()
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            flavours::known(&self.platform),
            flavours::unknown(&self.platform)
        );
        for (name, app) in &self.apps {
            anyhow::ensure!(flavours::known(name), flavours::unknown(name));
            anyhow::ensure!(!app.client_id.is_empty(), "client_id must not be empty");
            anyhow::ensure!(
                !app.client_secret.is_empty(),
                "client_secret must not be empty"
            );
        }
        for name in self.settings.keys() {
            anyhow::ensure!(flavours::known(name), flavours::unknown(name));
        }
        anyhow::ensure!(
            self.time_scale.is_finite() && self.time_scale > 0.0,
            "time_scale must be a positive number"
        );
        anyhow::ensure!(
            self.delivery_concurrency > 0,
            "delivery_concurrency must be at least 1"
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
