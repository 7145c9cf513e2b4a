//! The Ecwid flavour of the sandbox: the same shop model and generator as the Shopify flavour,
//! served the way Ecwid (Lightspeed E-Series) serves a store: OAuth at `/api/oauth/*`, REST at
//! `/api/v3/{storeId}/*` with a per-token rate limit, and ids-only webhooks signed over
//! `"{eventCreated}.{eventId}"` with Ecwid's retry schedule.
//!
//! An Ecwid shop is a `Shop` whose flavour is an [`EcwidShop`]; its key in the control API (and
//! `ShopInfo::domain`) is the store id as text.

pub mod model;
pub mod oauth;
pub mod payloads;
pub mod rest;
pub mod webhooks;

pub use model::*;

use crate::state::{AppCredentials, Flavour, Shop, ShopFlavour, State};
use crate::store::model::Order;
use crate::store::{Change, Plan, ShopData, ShopInfo};
use actix_web::web;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::any::Any;
use std::sync::Arc;

/// Live traffic in an Ecwid store: a generated order that uses a discount code uses one of
/// the store's own coupons instead, when one is active and not used up (the amounts stay the
/// generator's, so the shop's totals do not change).
pub fn use_store_coupon(eco: &EcwidShop, data: &ShopData, order: &mut Order, now: DateTime<Utc>) {
    if order.discount_codes.is_empty() || data.discounts.is_empty() {
        return;
    }
    let mut st = eco.state.lock();
    let usable: Vec<&crate::store::model::DiscountCode> = data
        .discounts
        .values()
        .filter(|d| {
            d.starts_at <= now
                && d.ends_at.is_none_or(|e| e > now)
                && !st.coupon_status.contains_key(&d.id)
                && d.usage_limit
                    .is_none_or(|l| st.coupon_uses.get(&d.id).copied().unwrap_or(0) < l)
        })
        .collect();
    if usable.is_empty() {
        return;
    }
    let d = usable[(order.id % usable.len() as u64) as usize];
    order.discount_codes = vec![d.code.clone()];
    *st.coupon_uses.entry(d.id).or_default() += 1;
}

/// The app's credentials unless configured.
pub fn default_app() -> AppCredentials {
    AppCredentials {
        client_id: "sandbox-ecwid-client-id".into(),
        client_secret: "sandbox-ecwid-client-secret".into(),
        scopes: FULL_SCOPES.into(),
        withheld_scopes: String::new(),
    }
}

/// `lifecycle sandbox` flags of the Ecwid flavour.
#[derive(Debug, Clone, clap::Args)]
pub struct EcwidArgs {
    /// Plan of Ecwid stores: business (customer groups), free or venture (none).
    #[arg(long, default_value = "business")]
    pub ecwid_plan: String,
    #[arg(
        long,
        env = "LIFECYCLE_ECWID_CLIENT_ID",
        default_value = "sandbox-ecwid-client-id"
    )]
    pub ecwid_client_id: String,
    #[arg(
        long,
        env = "LIFECYCLE_ECWID_CLIENT_SECRET",
        default_value = "sandbox-ecwid-client-secret",
        hide_env_values = true
    )]
    pub ecwid_client_secret: String,
    /// Ecwid REST requests per minute and token before 429.
    #[arg(long, default_value_t = REQUESTS_PER_MINUTE)]
    pub ecwid_requests_per_minute: u32,
}

impl EcwidArgs {
    pub fn app(&self) -> AppCredentials {
        AppCredentials {
            client_id: self.ecwid_client_id.clone(),
            client_secret: self.ecwid_client_secret.clone(),
            scopes: FULL_SCOPES.into(),
            withheld_scopes: String::new(),
        }
    }

    pub fn settings(&self) -> Result<Settings, String> {
        Ok(Settings {
            plan: self.ecwid_plan.parse()?,
            requests_per_minute: self.ecwid_requests_per_minute,
        })
    }
}

impl Flavour for Ecwid {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn app_prefix(&self) -> &'static str {
        "ecwid_"
    }
    fn api_plan(&self, requested: Option<&str>, default: Plan) -> Result<Plan, String> {
        // `plan` names the store's Ecwid plan; the shared API plan stays the default.
        if let Some(p) = requested {
            p.parse::<EcwidPlan>()?;
        }
        Ok(default)
    }
    fn domain_for(&self, _name: &str) -> Option<String> {
        None
    }
    /// Turns a freshly built shop into the next Ecwid store: its key becomes the store id.
    fn adopt(&self, _state: &State, shop: &mut Shop, plan: Option<&str>) -> Result<(), String> {
        let plan = match plan {
            Some(p) => p.parse()?,
            None => self.settings.plan,
        };
        let store_id = self.next_store_id();
        shop.info.id = store_id;
        shop.info.domain = store_id.to_string();
        shop.info.email = format!("owner@{}.ecwid.example", shop.info.name);
        shop.flavour = Box::new(EcwidShop {
            store_id,
            plan: Mutex::new(plan),
            state: Mutex::new(EcwidState {
                next_group_id: 1,
                ..Default::default()
            }),
        });
        Ok(())
    }
    fn topic_of(&self, event: &str) -> Option<&'static str> {
        topic_of(event)
    }
}

/// The shared model's topic of an Ecwid event name.
pub fn topic_of(event: &str) -> Option<&'static str> {
    Some(match event {
        "application.uninstalled" => "app/uninstalled",
        "customer.personalDataRemovalRequest" => "customers/redact",
        "customer.personalDataExportRequest" => "customers/data_request",
        "customer.created" => "customers/create",
        "customer.updated" => "customers/update",
        "customer.deleted" => "customers/delete",
        "order.created" => "orders/create",
        "order.updated" => "orders/updated",
        "order.deleted" => "orders/delete",
        "unfinished_order.created" => "checkouts/create",
        "unfinished_order.updated" => "checkouts/update",
        _ => return None,
    })
}

impl ShopFlavour for EcwidShop {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn install_url(&self, state: &State, shop: &Shop) -> Option<String> {
        oauth::install_url(state, shop)
    }
    fn install_url_answer(&self, url: String) -> Value {
        // Ecwid's answer also carries the URL as `url`.
        json!({"install_url": url, "url": url})
    }
    fn summary(&self, v: &mut Value) {
        v["platform"] = json!(NAME);
        v["store_id"] = json!(self.store_id);
        v["plan"] = json!(self.plan());
        v["customer_groups"] = json!(self.plan().has_customer_groups());
    }
    fn set_plan(&self, plan: &str) -> Result<(), String> {
        *self.plan.lock() = plan.parse()?;
        Ok(())
    }
    fn customer_rows(&self, data: &ShopData, rows: &mut [Value]) {
        let st = self.state.lock();
        for (c, row) in data.customers.values().zip(rows.iter_mut()) {
            let (g, name) = st.group_of(c.id);
            row["customer_group_id"] = json!(g);
            row["customer_group_name"] = json!(name);
        }
    }
    fn order_row(&self, o: &Order, data: &ShopData, info: &ShopInfo, row: &mut Value) {
        // The ids and fields as Ecwid's API shows them.
        let e = payloads::order(o, data, info);
        row["id"] = e["id"].clone();
        row["order_number"] = e["orderNumber"].clone();
        row["payment_status"] = e["paymentStatus"].clone();
        row["subtotal_minor"] = json!(o.line_items_minor());
        row["discounts_minor"] = json!(o.total_discounts_minor);
        row["ecwid"] = e;
    }
    fn checkout_row(&self, id: u64, row: &mut Value) {
        row["ecwid_cart_id"] = json!(id.to_string());
    }
    fn created_order(&self, id: u64, row: &mut Value) {
        row["ecwid_id"] = json!(id.to_string());
    }
    /// An order with a coupon the store knows gets that coupon's discount (a code the store
    /// does not know: an error).
    fn coupon_discount(
        &self,
        data: &ShopData,
        code: &str,
        amount_minor: i64,
    ) -> Option<Result<i64, String>> {
        use crate::store::model::DiscountValue;
        let Some(d) = data.discount_by_code(code) else {
            return Some(Err(format!("the store has no coupon '{code}'")));
        };
        *self.state.lock().coupon_uses.entry(d.id).or_default() += 1;
        Some(Ok(match &d.value {
            DiscountValue::Percentage(p) => (amount_minor as f64 * p).round() as i64,
            DiscountValue::Amount {
                amount_minor: a, ..
            } => (*a).min(amount_minor),
        }))
    }
    fn live_order(&self, data: &ShopData, order: &mut Order, now: DateTime<Utc>) {
        use_store_coupon(self, data, order, now);
    }
    fn emit(&self, state: &State, shop: &Arc<Shop>, changes: Vec<Change>) {
        webhooks::emit(state, shop, changes);
    }
}

/// Ecwid's routes: OAuth as my.ecwid.com serves it, the REST API as app.ecwid.com does.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/oauth/authorize", web::get().to(oauth::authorize))
        .route("/api/oauth/token", web::get().to(oauth::token))
        .route("/api/oauth/token", web::post().to(oauth::token))
        .route("/api/v3/{store}/{tail:.*}", web::route().to(rest::handle));
}
