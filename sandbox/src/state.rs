//! Everything the running sandbox holds: app settings, faults, shops, and the shared handles
//! (webhook dispatcher, the flavours in use). What differs between platforms is a flavour's:
//! the app-wide [`Flavour`] and each shop's [`ShopFlavour`].

use crate::auth_state::AuthState;
use crate::faults::Faults;
use crate::live::mirror::{LiveMirror, LiveShop};
use crate::store::model::Order;
use crate::store::{Change, Plan, ShopData, ShopInfo};
use crate::throttle::Bucket;
use crate::webhooks::delivery::{DeliveryLog, Dispatcher};
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// One flavour's app credentials; the secret also signs that flavour's webhooks.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: String,
    /// Scopes granted when the app asks for none (the flavour's own syntax).
    pub scopes: String,
    /// Scopes the platform has not approved the app for (Shopify's `read_all_orders` needs
    /// its approval): never granted, whatever the app asks.
    pub withheld_scopes: String,
}

impl AppCredentials {
    /// What a grant of `asked` gives: `asked` without the withheld scopes, in its own syntax
    /// (comma- or space-separated).
    pub fn grantable(&self, asked: &str) -> String {
        let sep = if asked.contains(',') { "," } else { " " };
        let withheld: Vec<&str> = self
            .withheld_scopes
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .collect();
        asked
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty() && !withheld.contains(s))
            .collect::<Vec<_>>()
            .join(sep)
    }
}

/// One flavour's settings of a run, of the flavour's own type (e.g. `ecwid::Settings`).
#[derive(Clone)]
pub struct FlavourSettings(pub Arc<dyn Any + Send + Sync>);

impl FlavourSettings {
    pub fn new<T: Any + Send + Sync>(settings: T) -> Self {
        FlavourSettings(Arc::new(settings))
    }
}

impl std::fmt::Debug for FlavourSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlavourSettings(..)")
    }
}

#[derive(Debug, Clone)]
pub struct AppSettings {
    pub app_url: Option<String>,
    pub auto_approve: bool,
    /// Credentials per flavour name; every flavour in use has an entry.
    pub apps: BTreeMap<String, AppCredentials>,
    /// How each flavour names its credentials in the control API (`{prefix}client_id`, …).
    pub prefixes: BTreeMap<String, &'static str>,
}

impl AppSettings {
    /// The credentials of flavour `name`.
    pub fn app(&self, name: &str) -> &AppCredentials {
        self.apps
            .get(name)
            .unwrap_or_else(|| panic!("flavour '{name}' has app credentials"))
    }

    pub fn app_mut(&mut self, name: &str) -> &mut AppCredentials {
        self.apps
            .get_mut(name)
            .unwrap_or_else(|| panic!("flavour '{name}' has app credentials"))
    }

    /// The control API's view: the app's URL and, per flavour, its id and scopes (never the
    /// secret).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("app_url".into(), json!(self.app_url));
        m.insert("auto_approve".into(), json!(self.auto_approve));
        for (name, app) in &self.apps {
            let p = self.prefixes.get(name).copied().unwrap_or_default();
            m.insert(format!("{p}client_id"), json!(app.client_id));
            m.insert(format!("{p}scopes"), json!(app.scopes));
            m.insert(format!("{p}withheld_scopes"), json!(app.withheld_scopes));
        }
        Value::Object(m)
    }
}

impl Serialize for AppSettings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

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
    /// REST flavours: the method and path (with query) of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What a write created or changed, e.g. the code of a created coupon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A platform the sandbox simulates, app-wide: its settings and how it makes a shop its own.
/// Built once per run by `crate::flavours`.
pub trait Flavour: Send + Sync + 'static {
    /// "shopify", "ecwid", …
    fn name(&self) -> &'static str;
    fn as_any(&self) -> &dyn Any;
    /// How the control API names this flavour's credentials: `{prefix}client_id`, ….
    fn app_prefix(&self) -> &'static str;
    /// The shop's API plan for a control-API `plan` (checks a flavour's own plan names too).
    fn api_plan(&self, requested: Option<&str>, default: Plan) -> Result<Plan, String>;
    /// The key a new shop named `name` gets, when known before it is built (to refuse twins).
    fn domain_for(&self, name: &str) -> Option<String>;
    /// Makes a freshly built shop one of this flavour's (its key, its per-shop value);
    /// `plan` is the control API's `plan`, if any.
    fn adopt(&self, state: &State, shop: &mut Shop, plan: Option<&str>) -> Result<(), String>;
    /// Maps this flavour's own event name to the shared model's topic.
    fn topic_of(&self, _event: &str) -> Option<&'static str> {
        None
    }
}

/// What a flavour keeps and does per shop: its install URL, its view in the control API, and
/// how the shared model's changes reach the app (payloads, signing, retry policy).
pub trait ShopFlavour: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn as_any(&self) -> &dyn Any;
    /// The URL that starts an install, if the app's URL is known.
    fn install_url(&self, state: &State, shop: &Shop) -> Option<String>;
    /// The control API's answer for an install URL.
    fn install_url_answer(&self, url: String) -> Value {
        json!({ "install_url": url })
    }
    /// Adds the flavour's fields to the control API's summary of the shop.
    fn summary(&self, v: &mut Value);
    /// Changes the store's plan as its merchant would.
    fn set_plan(&self, plan: &str) -> Result<(), String>;
    /// Adds the flavour's fields to the control API's customer rows (in `data`'s order).
    fn customer_rows(&self, _data: &ShopData, _rows: &mut [Value]) {}
    /// Adds the flavour's fields to a control API order row.
    fn order_row(&self, _o: &Order, _data: &ShopData, _info: &ShopInfo, _row: &mut Value) {}
    /// Adds the flavour's fields to a control API checkout row.
    fn checkout_row(&self, _id: u64, _row: &mut Value) {}
    /// Adds the flavour's fields to the control API's answer for a created order.
    fn created_order(&self, _id: u64, _row: &mut Value) {}
    /// The discount of a control-API order naming `code` but no amount: `None` = none.
    fn coupon_discount(
        &self,
        _data: &ShopData,
        _code: &str,
        _amount_minor: i64,
    ) -> Option<Result<i64, String>> {
        None
    }
    /// Live traffic: a generated order that used no personal code may use a store coupon.
    fn live_order(&self, _data: &ShopData, _order: &mut Order, _now: DateTime<Utc>) {}
    /// Sends the webhooks for `changes`.
    fn emit(&self, state: &State, shop: &Arc<Shop>, changes: Vec<Change>);
    /// Lets go of what the shop holds outside memory (temp files) when the sandbox stops.
    fn shutdown(&self, _shop: &Shop) {}
}

/// A shop no flavour has adopted yet (straight from the seeder): it sends nothing.
pub struct Unadopted;

impl ShopFlavour for Unadopted {
    fn name(&self) -> &'static str {
        "none"
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn install_url(&self, _: &State, _: &Shop) -> Option<String> {
        None
    }
    fn summary(&self, _: &mut Value) {}
    fn set_plan(&self, _: &str) -> Result<(), String> {
        Err("this shop has no plan to change".into())
    }
    fn emit(&self, _: &State, _: &Arc<Shop>, _: Vec<Change>) {}
}

pub struct Shop {
    pub info: ShopInfo,
    pub data: RwLock<ShopData>,
    pub auth: Mutex<AuthState>,
    pub bucket: Mutex<Bucket>,
    pub requests: Mutex<Vec<RequestLog>>,
    pub deliveries: Arc<DeliveryLog>,
    pub live: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub live_mirror: Mutex<Option<LiveMirror>>,
    /// The generator's true parameters, when the shop was seeded by it.
    pub true_params: Option<serde_json::Value>,
    /// The platform the shop simulates and what that platform keeps per shop.
    pub flavour: Box<dyn ShopFlavour>,
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
            live: Mutex::new(None),
            live_mirror: Mutex::new(None),
            true_params,
            flavour: Box::new(Unadopted),
        }
    }

    /// The shop's per-shop flavour value, if it is of type `T`.
    pub fn flavour_as<T: 'static>(&self) -> Option<&T> {
        self.flavour.as_any().downcast_ref::<T>()
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

impl LiveShop for Shop {
    fn info(&self) -> &ShopInfo {
        &self.info
    }
    fn data(&self) -> &RwLock<ShopData> {
        &self.data
    }
    fn live_order(&self, data: &ShopData, order: &mut Order, now: DateTime<Utc>) {
        self.flavour.live_order(data, order, now);
    }
}

pub struct State {
    pub app: RwLock<AppSettings>,
    pub faults: RwLock<Faults>,
    pub shops: RwLock<BTreeMap<String, Arc<Shop>>>,
    pub base_url: RwLock<String>,
    pub default_plan: Plan,
    pub dispatcher: Dispatcher,
    /// The flavours of this run, by name.
    pub flavours: BTreeMap<&'static str, Arc<dyn Flavour>>,
    /// The flavour of shops the control API creates without naming one.
    pub default_flavour: &'static str,
    pub live_rate: Option<f64>,
    /// The treatment effect of personal codes in live traffic (see `live`).
    pub live_uplift: f64,
    pub seed: u64,
}

impl State {
    pub fn shop(&self, domain: &str) -> Option<Arc<Shop>> {
        self.shops.read().get(&domain.to_ascii_lowercase()).cloned()
    }

    pub fn base_url(&self) -> String {
        self.base_url.read().clone()
    }

    /// Registers a freshly built (and adopted) shop and keeps the generator state for live
    /// traffic.
    pub fn add_shop(
        &self,
        built: (Shop, crate::generate::GenConfig, crate::generate::LiveSeed),
    ) -> Arc<Shop> {
        let (shop, config, from) = built;
        // A seed per shop so live traffic differs between shops.
        let live_seed = config.seed.wrapping_add(0x5eed);
        let mut mirror = LiveMirror::new(live_seed, &config, from);
        mirror.set_uplift(self.live_uplift);
        *shop.live_mirror.lock() = Some(mirror);
        let shop = Arc::new(shop);
        self.shops
            .write()
            .insert(shop.info.domain.clone(), shop.clone());
        shop
    }

    /// The app-wide value of flavour `name`, if it is of type `T`.
    pub fn flavour_as<T: 'static>(&self, name: &str) -> Option<&T> {
        self.flavours.get(name)?.as_any().downcast_ref::<T>()
    }

    /// Sends the webhooks for `changes`, as the shop's flavour does.
    /// Uninstall (the merchant's, or the app's own): revoke every grant, drop the shop's
    /// subscriptions, tell the app.
    pub fn uninstall(&self, shop: &Arc<Shop>) {
        shop.auth.lock().revoke_all();
        shop.data.write().webhooks.clear();
        self.emit(
            shop,
            vec![Change {
                topic: "app/uninstalled",
                payload: crate::store::payloads::shop(&shop.info),
            }],
        );
    }

    pub fn emit(&self, shop: &Arc<Shop>, changes: Vec<Change>) {
        shop.flavour.emit(self, shop, changes);
    }
}
