//! Everything the running sandbox holds: app settings, faults, shops, and the shared handles
//! (GraphQL schema, webhook dispatcher).

use crate::auth_state::AuthState;
use crate::bulk::BulkOperation;
use crate::faults::Faults;
use crate::store::{Change, Plan, ShopData, ShopInfo};
use crate::throttle::Bucket;
use crate::webhooks::delivery::{DeliveryLog, Dispatcher};
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct AppSettings {
    pub client_id: String,
    #[serde(skip)]
    pub client_secret: String,
    pub app_url: Option<String>,
    /// Scopes granted by managed install / token exchange when none were requested.
    pub scopes: String,
    pub auto_approve: bool,
    /// The Ecwid flavour's app credentials; the secret also signs Ecwid webhooks.
    pub ecwid_client_id: String,
    #[serde(skip)]
    pub ecwid_client_secret: String,
    /// Scopes an Ecwid store grants (space separated).
    pub ecwid_scopes: String,
}

impl AppSettings {
    /// App-level (TOML) subscriptions deliver here.
    pub fn webhook_url(&self) -> Option<String> {
        self.app_url
            .as_ref()
            .map(|u| format!("{}/webhooks/shopify", u.trim_end_matches('/')))
    }
}

/// Topics the TOML config subscribes to; everything else needs `webhookSubscriptionCreate`.
pub const APP_LEVEL_TOPICS: [&str; 4] = [
    "app/uninstalled",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
];

#[derive(Debug, Clone, Serialize, Default)]
pub struct RequestLog {
    pub time: DateTime<Utc>,
    /// "query" or "mutation".
    pub kind: String,
    pub root_fields: Vec<String>,
    pub requested_cost: Option<u64>,
    pub actual_cost: Option<u64>,
    pub throttled: bool,
    pub status: u16,
    /// REST flavours (Ecwid): the method and path (with query) of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What a write created or changed, e.g. the code of a created coupon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub struct Shop {
    pub info: ShopInfo,
    pub data: RwLock<ShopData>,
    pub auth: Mutex<AuthState>,
    pub bucket: Mutex<Bucket>,
    pub requests: Mutex<Vec<RequestLog>>,
    pub deliveries: Arc<DeliveryLog>,
    pub bulk: Mutex<Vec<BulkOperation>>,
    /// Staged upload targets for bulk mutations, oldest first.
    pub staged: Mutex<Vec<crate::staged::Staged>>,
    pub live: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub live_mirror: Mutex<Option<crate::live::LiveMirror>>,
    /// The generator's true parameters, when the shop was seeded by it.
    pub true_params: Option<serde_json::Value>,
    /// Set for an Ecwid-flavoured shop (its store id, plan and Ecwid-only state).
    pub ecwid: Option<crate::ecwid::EcwidShop>,
}

impl Shop {
    pub fn new(info: ShopInfo, data: ShopData, true_params: Option<serde_json::Value>) -> Self {
        let plan = info.plan;
        Shop {
            info,
            data: RwLock::new(data),
            auth: Mutex::new(AuthState::default()),
            bucket: Mutex::new(Bucket::new(
                plan.bucket_size(),
                plan.restore_rate(),
                Instant::now(),
            )),
            requests: Mutex::new(Vec::new()),
            deliveries: Arc::new(DeliveryLog::default()),
            bulk: Mutex::new(Vec::new()),
            staged: Mutex::new(Vec::new()),
            live: Mutex::new(None),
            live_mirror: Mutex::new(None),
            true_params,
            ecwid: None,
        }
    }

    pub fn log_request(&self, entry: RequestLog) {
        let mut log = self.requests.lock();
        // Bounded so a long-running demo does not grow without limit.
        if log.len() >= 100_000 {
            log.drain(..10_000);
        }
        log.push(entry);
    }
}

pub struct State {
    pub app: RwLock<AppSettings>,
    pub faults: RwLock<Faults>,
    pub shops: RwLock<BTreeMap<String, Arc<Shop>>>,
    pub base_url: RwLock<String>,
    pub default_plan: Plan,
    pub dispatcher: Dispatcher,
    pub schema: crate::graphql::AdminSchema,
    pub cost_model: crate::graphql::cost::TypeMap,
    pub live_rate: Option<f64>,
    /// The treatment effect of personal codes in live traffic (see `live`).
    pub live_uplift: f64,
    pub seed: u64,
    /// The next Ecwid store id (1001, 1002, …).
    pub next_store_id: std::sync::atomic::AtomicU64,
    /// Ecwid's REST limit per token and minute (600 on the platform).
    pub ecwid_requests_per_minute: u32,
}

impl State {
    pub fn shop(&self, domain: &str) -> Option<Arc<Shop>> {
        self.shops.read().get(&domain.to_ascii_lowercase()).cloned()
    }

    pub fn base_url(&self) -> String {
        self.base_url.read().clone()
    }

    /// Sends the webhooks for `changes`: one event per change, one delivery per subscriber.
    pub fn emit(&self, shop: &Arc<Shop>, changes: Vec<Change>) {
        if shop.ecwid.is_some() {
            crate::ecwid::webhooks::emit(self, shop, changes);
            return;
        }
        let app = self.app.read().clone();
        let installed = shop.auth.lock().installed;
        for change in changes {
            let mut targets: Vec<(String, String, Option<u64>)> = Vec::new();
            if APP_LEVEL_TOPICS.contains(&change.topic) {
                if let Some(url) = app.webhook_url() {
                    targets.push((url, crate::API_VERSION.to_string(), None));
                }
            } else if installed {
                let data = shop.data.read();
                for s in data.webhooks.values().filter(|s| s.topic == change.topic) {
                    targets.push((s.callback_url.clone(), s.api_version.clone(), Some(s.id)));
                }
            }
            if targets.is_empty() {
                continue;
            }
            let body = serde_json::to_vec(&change.payload).expect("JSON values serialise");
            self.dispatcher.dispatch(
                shop.clone(),
                change.topic,
                body,
                targets,
                &app.client_secret,
                self.faults.read().clone(),
            );
        }
    }
}
