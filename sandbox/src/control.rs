//! The control API under `/_sandbox/` (JSON): shops, app settings, live traffic, triggers,
//! faults, logs, ground-truth dumps and direct changes for tests.

use crate::faults::Faults;
use crate::live;
use crate::seed::{self, ShopSpec};
use crate::state::{Shop, State};
use crate::store::model::{Checkout, LineItem, format_minor, parse_decimal};
use crate::store::payloads;
use crate::store::{Change, CustomerPatch, NewOrder, StoreError};
use actix_web::{HttpResponse, ResponseError, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("shop '{0}' does not exist")]
    NoShop(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        use actix_web::http::StatusCode as S;
        match self {
            ApiError::NoShop(_) | ApiError::NotFound(_) => S::NOT_FOUND,
            ApiError::BadRequest(_) => S::BAD_REQUEST,
            ApiError::Conflict(_) => S::CONFLICT,
        }
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(json!({"error": self.to_string()}))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoCustomer(_) | StoreError::NoOrder(_) | StoreError::NoCheckout(_) => {
                ApiError::NotFound(e.to_string())
            }
            StoreError::Invalid(m) => ApiError::BadRequest(m),
        }
    }
}

type Res = Result<HttpResponse, ApiError>;
type St = web::Data<Arc<State>>;

pub fn shop_of(state: &State, domain: &str) -> Result<Arc<Shop>, ApiError> {
    state
        .shop(domain)
        .ok_or_else(|| ApiError::NoShop(domain.to_string()))
}

/// Parses a JSON body with a clear error instead of actix's default.
pub fn body<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, ApiError> {
    let b: &[u8] = if b.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        b
    };
    serde_json::from_slice(b).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

fn shop_summary(state: &State, shop: &Shop) -> Value {
    let mut v = shop_summary_common(state, shop);
    shop.flavour.summary(&mut v);
    v
}

fn shop_summary_common(state: &State, shop: &Shop) -> Value {
    let data = shop.data.read();
    json!({
        "domain": shop.info.domain,
        "name": shop.info.name,
        "install_url": shop.flavour.install_url(state, shop),
        "customers": data.customers.len(),
        "orders": data.orders.len(),
        "checkouts": data.checkouts.len(),
        "installed": shop.auth.lock().installed,
        "currency": shop.info.currency,
        "plan": shop.info.plan,
        "live": shop.live.lock().is_some(),
        "true_params": shop.true_params,
    })
}

pub async fn list_shops(state: St) -> HttpResponse {
    let shops: Vec<_> = state.shops.read().values().cloned().collect();
    HttpResponse::Ok().json(
        shops
            .iter()
            .map(|s| shop_summary(&state, s))
            .collect::<Vec<_>>(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateShop {
    name: String,
    #[serde(default)]
    customers: Option<usize>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    history_days: Option<u32>,
    /// "shopify" (default) or "ecwid".
    #[serde(default)]
    platform: Option<String>,
}

pub async fn create_shop(state: St, b: web::Bytes) -> Res {
    let req: CreateShop = body(&b)?;
    let name = req.platform.as_deref().map_or_else(
        || state.default_flavour.to_string(),
        str::to_ascii_lowercase,
    );
    let flavour = state
        .flavours
        .get(name.as_str())
        .cloned()
        .ok_or_else(|| ApiError::BadRequest(unknown_platform(&state, &name)))?;
    let plan = flavour
        .api_plan(req.plan.as_deref(), state.default_plan)
        .map_err(ApiError::BadRequest)?;
    if let Some(domain) = flavour.domain_for(&req.name)
        && state.shop(&domain).is_some()
    {
        return Err(ApiError::Conflict(format!("shop {domain} already exists")));
    }
    let spec = ShopSpec {
        name: req.name,
        customers: req.customers.unwrap_or(100),
        seed: req.seed.unwrap_or(state.seed),
        plan,
        history_days: req.history_days.unwrap_or(730),
        end: crate::default_history_end(),
        index: state.shops.read().len() as u64,
    };
    let mut built = web::block(move || seed::build_shop(&spec))
        .await
        .map_err(|e| ApiError::BadRequest(e.to_string()))?
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    flavour
        .adopt(&state, &mut built.0, req.plan.as_deref())
        .map_err(ApiError::BadRequest)?;
    let shop = state.add_shop(built);
    Ok(HttpResponse::Created().json(shop_summary(&state, &shop)))
}

/// The error for a platform no flavour of this run serves.
fn unknown_platform(state: &State, name: &str) -> String {
    let names: Vec<&str> = state.flavours.keys().copied().collect();
    format!("unknown platform '{name}' ({})", names.join(", "))
}

pub async fn shop_install_url(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    match shop.flavour.install_url(&state, &shop) {
        Some(u) => Ok(HttpResponse::Ok().json(shop.flavour.install_url_answer(u))),
        None => Err(ApiError::Conflict(
            "the app has no app_url yet; POST /_sandbox/app first".into(),
        )),
    }
}

pub async fn get_app(state: St) -> HttpResponse {
    HttpResponse::Ok().json(state.app.read().to_json())
}

/// Sets the app's URL, `auto_approve`, and any flavour's `{prefix}client_id`,
/// `{prefix}client_secret` and `{prefix}scopes` (empty ids and secrets are ignored).
pub async fn set_app(state: St, b: web::Bytes) -> Res {
    let req: serde_json::Map<String, Value> = body(&b)?;
    let text = |k: &str, v: &Value| -> Result<String, ApiError> {
        v.as_str().map(str::to_string).ok_or_else(|| {
            ApiError::BadRequest(format!("invalid JSON body: `{k}` must be a string"))
        })
    };
    let mut app = state.app.write();
    let mut next = app.clone();
    for (k, v) in &req {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "app_url" => {
                let u = text(k, v)?;
                url::Url::parse(&u).map_err(|e| {
                    ApiError::BadRequest(format!("app_url '{u}' is not a URL: {e}"))
                })?;
                next.app_url = Some(u.trim_end_matches('/').to_string());
            }
            "auto_approve" => {
                next.auto_approve = v.as_bool().ok_or_else(|| {
                    ApiError::BadRequest("invalid JSON body: `auto_approve` must be a bool".into())
                })?;
            }
            _ => {
                let flavour = app.prefixes.iter().find_map(|(name, p)| {
                    let field = k.strip_prefix(p)?;
                    ["client_id", "client_secret", "scopes", "withheld_scopes"]
                        .contains(&field)
                        .then(|| (name.clone(), field))
                });
                let Some((name, field)) = flavour else {
                    return Err(ApiError::BadRequest(format!(
                        "invalid JSON body: unknown field `{k}`"
                    )));
                };
                let v = text(k, v)?;
                let creds = next.app_mut(&name);
                match field {
                    "client_id" if !v.is_empty() => creds.client_id = v,
                    "client_secret" if !v.is_empty() => creds.client_secret = v,
                    "scopes" => creds.scopes = v,
                    "withheld_scopes" => creds.withheld_scopes = v,
                    _ => {}
                }
            }
        }
    }
    *app = next;
    Ok(HttpResponse::Ok().json(app.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveReq {
    rate: f64,
    /// Treatment effect of a personal code (0.3 = holders buy at 1.3 times their rate);
    /// unchanged when absent.
    #[serde(default)]
    uplift: Option<f64>,
    /// Stop by itself after this many events.
    #[serde(default)]
    events: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanReq {
    plan: String,
}

/// Changes a store's plan, as its merchant would (e.g. to one with customer groups), where
/// the flavour lets a merchant do that.
pub async fn set_plan(state: St, path: web::Path<String>, b: web::Bytes) -> Res {
    let shop = shop_of(&state, &path)?;
    let req: PlanReq = body(&b)?;
    shop.flavour
        .set_plan(&req.plan)
        .map_err(ApiError::BadRequest)?;
    Ok(HttpResponse::Ok().json(shop_summary(&state, &shop)))
}

/// Largest uplift accepted: +1000 %.
const MAX_UPLIFT: f64 = 10.0;

pub async fn start_live(state: St, path: web::Path<String>, b: web::Bytes) -> Res {
    let shop = shop_of(&state, &path)?;
    let req: LiveReq = body(&b)?;
    if !(req.rate.is_finite() && req.rate > 0.0 && req.rate <= 10_000.0) {
        return Err(ApiError::BadRequest(
            "rate must be in (0, 10000] events per second".into(),
        ));
    }
    if let Some(u) = req.uplift
        && !(u.is_finite() && (0.0..=MAX_UPLIFT).contains(&u))
    {
        return Err(ApiError::BadRequest(format!(
            "uplift must be in [0, {MAX_UPLIFT}] (0.3 = +30 %)"
        )));
    }
    if req.events == Some(0) {
        return Err(ApiError::BadRequest("events must be at least 1".into()));
    }
    {
        let mut mirror = shop.live_mirror.lock();
        let Some(m) = mirror.as_mut() else {
            return Err(ApiError::Conflict(
                "this shop has no generator state for live traffic".into(),
            ));
        };
        if let Some(u) = req.uplift {
            m.set_uplift(u);
        }
    }
    live::start(state.get_ref().clone(), shop, req.rate, req.events);
    Ok(HttpResponse::Ok().json(json!({"live": true, "rate": req.rate, "events": req.events})))
}

/// Whether live traffic runs, its uplift, the natural events so far and the extra orders the
/// uplift added (by id).
pub async fn live_status(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    let running = live::running(&shop);
    let mirror = shop.live_mirror.lock();
    let m = mirror.as_ref().ok_or_else(|| {
        ApiError::Conflict("this shop has no generator state for live traffic".into())
    })?;
    Ok(HttpResponse::Ok().json(json!({
        "running": running,
        "uplift": m.uplift(),
        "events": m.events(),
        "uplift_orders": m.uplift_orders(),
    })))
}

pub async fn stop_live(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    let was = live::stop(&shop);
    Ok(HttpResponse::Ok().json(json!({"live": false, "was_running": was})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerReq {
    topic: String,
    #[serde(default)]
    customer_id: Option<u64>,
    #[serde(default)]
    order_id: Option<u64>,
}

fn pick_customer(shop: &Shop, given: Option<u64>) -> Result<u64, ApiError> {
    let data = shop.data.read();
    match given {
        Some(id) => data
            .customers
            .get(id)
            .map(|c| c.id)
            .ok_or_else(|| ApiError::NotFound(format!("customer {id} does not exist"))),
        None => {
            let n = data.customers.len();
            if n == 0 {
                return Err(ApiError::Conflict("the shop has no customers".into()));
            }
            let k = rand::random_range(0..n);
            Ok(data.customers.values().nth(k).expect("index in range").id)
        }
    }
}

fn latest_order(shop: &Shop, customer: u64, uncancelled: bool) -> Result<u64, ApiError> {
    let data = shop.data.read();
    data.customer_orders(customer)
        .filter(|o| !uncancelled || o.cancelled_at.is_none())
        .max_by_key(|o| (o.created_at, o.id))
        .map(|o| o.id)
        .ok_or_else(|| ApiError::Conflict(format!("customer {customer} has no suitable order")))
}

fn simple_order(shop: &Shop, customer: Option<u64>, amount_minor: i64) -> NewOrder {
    NewOrder {
        customer_id: customer,
        email: None,
        presentment_currency: shop.info.currency.clone(),
        presentment_rate: 1.0,
        line_items: vec![LineItem {
            id: 0,
            title: "Sandbox item".into(),
            sku: "SBX-1".into(),
            product_id: 1,
            variant_id: 11,
            quantity: 1,
            price_minor: amount_minor,
        }],
        discount_codes: vec![],
        total_discounts_minor: 0,
        total_tax_minor: 0,
        processed_at: Utc::now(),
        test: false,
    }
}

pub async fn trigger(state: St, path: web::Path<String>, b: web::Bytes) -> Res {
    let shop = shop_of(&state, &path)?;
    let req: TriggerReq = body(&b)?;
    let now = Utc::now();
    let info = &shop.info;
    // A flavour's own event names stand for the shared model's topics.
    let topic = state
        .flavours
        .values()
        .find_map(|f| f.topic_of(&req.topic))
        .unwrap_or(req.topic.as_str());
    let changes: Vec<Change> = match topic {
        "app/uninstalled" => {
            state.uninstall(&shop);
            return Ok(HttpResponse::Ok().json(json!({"topic": req.topic, "installed": false})));
        }
        "shop/redact" => vec![Change {
            topic: "shop/redact",
            payload: payloads::shop_redact(info),
        }],
        "customers/data_request" | "customers/redact" => {
            let id = pick_customer(&shop, req.customer_id)?;
            let data = shop.data.read();
            let c = data.customers.get(id).expect("picked");
            let orders: Vec<u64> = data.customer_orders(id).map(|o| o.id).collect();
            let payload = if topic == "customers/redact" {
                payloads::customers_redact(info, c, &orders)
            } else {
                payloads::customers_data_request(info, c, &orders, rand::random_range(1..1_000_000))
            };
            let topic = if topic == "customers/redact" {
                "customers/redact"
            } else {
                "customers/data_request"
            };
            vec![Change { topic, payload }]
        }
        "customers/create" => {
            let n = rand::random_range(1000..1_000_000);
            let patch = CustomerPatch {
                email: Some(format!("new.customer{n}@example.com")),
                first_name: Some("Zoë".into()),
                last_name: Some(format!("Nowak{n}")),
                state: Some("enabled".into()),
                ..Default::default()
            };
            shop.data.write().create_customer(info, patch, now)?.1
        }
        "customers/update" => {
            let id = pick_customer(&shop, req.customer_id)?;
            let patch = CustomerPatch {
                note: Some(format!("Updated at {}", now.to_rfc3339())),
                ..Default::default()
            };
            shop.data.write().update_customer(info, id, patch, now)?
        }
        "customers/delete" => {
            let id = req
                .customer_id
                .ok_or_else(|| ApiError::BadRequest("customers/delete needs customer_id".into()))?;
            shop.data.write().delete_customer(id)?
        }
        "orders/create" | "orders/paid" => {
            let id = pick_customer(&shop, req.customer_id)?;
            let amount = rand::random_range(1000..20_000);
            shop.data
                .write()
                .create_order(info, simple_order(&shop, Some(id), amount), now)?
                .1
        }
        "refunds/create" | "orders/updated" => {
            let order = match req.order_id {
                Some(o) => o,
                None => latest_order(&shop, pick_customer(&shop, req.customer_id)?, true)?,
            };
            let mut data = shop.data.write();
            let left = data
                .orders
                .get(order)
                .map(|o| o.total_minor() - o.refunded_minor())
                .unwrap_or(0);
            data.refund_order(
                info,
                order,
                Some((left / 2).max(1).min(left.max(1))),
                Some("Sandbox refund".into()),
                None,
                now,
            )?
        }
        "orders/cancelled" => {
            let order = match req.order_id {
                Some(o) => o,
                None => latest_order(&shop, pick_customer(&shop, req.customer_id)?, true)?,
            };
            shop.data
                .write()
                .cancel_order(info, order, Some("customer".into()), None, now)?
        }
        "checkouts/create" | "checkouts/update" => {
            let id = pick_customer(&shop, req.customer_id)?;
            checkout_for(&shop, id, rand::random_range(1000..20_000))?
        }
        "orders/delete" => {
            let order = req
                .order_id
                .ok_or_else(|| ApiError::BadRequest("orders/delete needs order_id".into()))?;
            shop.data.write().delete_order(order)?
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "topic '{other}' cannot be triggered"
            )));
        }
    };
    let sent = changes.len();
    state.emit(&shop, changes);
    Ok(HttpResponse::Ok().json(json!({"topic": req.topic, "events": sent})))
}

fn checkout_for(shop: &Shop, customer: u64, amount_minor: i64) -> Result<Vec<Change>, ApiError> {
    let now = Utc::now();
    let mut data = shop.data.write();
    let email = data.customers.get(customer).and_then(|c| c.email.clone());
    let k = Checkout {
        id: 0,
        token: uuid::Uuid::new_v4().simple().to_string(),
        customer_id: Some(customer),
        email,
        created_at: now,
        updated_at: now,
        completed_at: None,
        currency: shop.info.currency.clone(),
        line_items: vec![LineItem {
            id: data.next_id(),
            title: "Sandbox item".into(),
            sku: "SBX-1".into(),
            product_id: 1,
            variant_id: 11,
            quantity: 1,
            price_minor: amount_minor,
        }],
    };
    Ok(data.upsert_checkout(&shop.info, k))
}

/// The customer completes an abandoned checkout: it becomes an order.
pub async fn complete_checkout(state: St, path: web::Path<(String, u64)>) -> Res {
    let (domain, id) = path.into_inner();
    let shop = shop_of(&state, &domain)?;
    let (order, changes) = shop
        .data
        .write()
        .complete_checkout(&shop.info, id, Utc::now())?;
    state.emit(&shop, changes);
    Ok(HttpResponse::Ok().json(json!({"order_id": order})))
}

pub async fn get_faults(state: St) -> HttpResponse {
    HttpResponse::Ok().json(state.faults.read().clone())
}

pub async fn put_faults(state: St, b: web::Bytes) -> Res {
    let f: Faults = body(&b)?;
    f.validate().map_err(ApiError::BadRequest)?;
    if let Some(secs) = f.throttle_storm.filter(|s| *s > 0.0) {
        let now = Instant::now();
        for shop in state.shops.read().values() {
            shop.bucket.lock().storm(Duration::from_secs_f64(secs), now);
        }
    }
    *state.faults.write() = f.clone();
    Ok(HttpResponse::Ok().json(f))
}

pub async fn deliveries(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    Ok(HttpResponse::Ok().json(shop.deliveries.snapshot()))
}

pub async fn delivery_summary(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    Ok(HttpResponse::Ok().json(shop.deliveries.summary()))
}

pub async fn requests(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    let log = shop.requests.lock().clone();
    Ok(HttpResponse::Ok().json(log))
}

pub async fn dump_customers(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    let data = shop.data.read();
    let cur = &shop.info.currency;
    let mut rows: Vec<Value> = data
        .customers
        .values()
        .map(|c| {
            json!({
                "id": c.id,
                "admin_graphql_api_id": payloads::gid("Customer", c.id),
                "email": c.email,
                "first_name": c.first_name,
                "last_name": c.last_name,
                "tags": c.tags,
                "state": c.state,
                "orders_count": c.orders_count,
                "net_spent": format_minor(c.spent_minor, cur),
                "net_spent_minor": c.spent_minor,
                "currency": cur,
                "created_at": payloads::ts(c.created_at),
                "updated_at": payloads::ts(c.updated_at),
            })
        })
        .collect();
    shop.flavour.customer_rows(&data, &mut rows);
    Ok(HttpResponse::Ok().json(rows))
}

pub async fn dump_orders(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    let data = shop.data.read();
    let cur = &shop.info.currency;
    let rows: Vec<Value> = data
        .orders
        .values()
        .map(|o| {
            let mut row = json!({
                "id": o.id,
                "admin_graphql_api_id": payloads::gid("Order", o.id),
                "name": o.name(),
                "customer_id": o.customer_id,
                "email": o.email,
                "total_price_minor": o.total_minor(),
                "refunded_minor": o.refunded_minor(),
                "net_minor": o.net_spent_minor(),
                "currency": cur,
                "presentment_currency": o.presentment_currency,
                "financial_status": o.financial_status(),
                "cancelled_at": o.cancelled_at.map(payloads::ts),
                "discount_codes": o.discount_codes,
                "created_at": payloads::ts(o.created_at),
                "updated_at": payloads::ts(o.updated_at),
            });
            shop.flavour.order_row(o, &data, &shop.info, &mut row);
            row
        })
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

/// The shop's checkouts (abandoned or completed), with the id each platform's API gives them.
pub async fn dump_checkouts(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    let data = shop.data.read();
    let rows: Vec<Value> = data
        .checkouts
        .values()
        .map(|k| {
            let mut row = json!({
                "id": k.id,
                "admin_graphql_api_id": payloads::gid("AbandonedCheckout", k.id),
                "customer_id": k.customer_id,
                "email": k.email,
                "total_price_minor": k.total_minor(),
                "currency": k.currency,
                "completed_at": k.completed_at.map(payloads::ts),
                "created_at": payloads::ts(k.created_at),
                "updated_at": payloads::ts(k.updated_at),
            });
            shop.flavour.checkout_row(k.id, &mut row);
            row
        })
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

/// Counts and order-independent digests of the shop's customers and orders (see `digest`).
pub async fn digest(state: St, path: web::Path<String>) -> Res {
    use crate::digest::{Accumulator, Digest, customer_line, order_line};
    let shop = shop_of(&state, &path)?;
    let data = shop.data.read();
    let mut customers = Accumulator::default();
    for c in data.customers.values() {
        customers.add(&customer_line(&payloads::gid("Customer", c.id)));
    }
    let mut orders = Accumulator::default();
    for o in data.orders.values() {
        let customer = o.customer_id.map(|c| payloads::gid("Customer", c));
        orders.add(&order_line(
            &payloads::gid("Order", o.id),
            customer.as_deref(),
            o.total_minor(),
            o.refunded_minor(),
            o.cancelled_at.is_some(),
        ));
    }
    Ok(HttpResponse::Ok().json(Digest::from(customers, orders)))
}

pub async fn dump_discounts(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    let data = shop.data.read();
    Ok(HttpResponse::Ok().json(data.discounts.values().collect::<Vec<_>>()))
}

pub async fn dump_metafields(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    let data = shop.data.read();
    Ok(HttpResponse::Ok().json(data.metafields.values().collect::<Vec<_>>()))
}

pub async fn dump_webhooks(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    let data = shop.data.read();
    Ok(HttpResponse::Ok().json(data.webhooks.values().collect::<Vec<_>>()))
}

pub async fn create_customer(state: St, path: web::Path<String>, b: web::Bytes) -> Res {
    let shop = shop_of(&state, &path)?;
    let patch: CustomerPatch = body(&b)?;
    let (id, changes) = shop
        .data
        .write()
        .create_customer(&shop.info, patch, Utc::now())?;
    state.emit(&shop, changes);
    Ok(HttpResponse::Created()
        .json(json!({"id": id, "admin_graphql_api_id": payloads::gid("Customer", id)})))
}

pub async fn patch_customer(state: St, path: web::Path<(String, u64)>, b: web::Bytes) -> Res {
    let (domain, id) = path.into_inner();
    let shop = shop_of(&state, &domain)?;
    let patch: CustomerPatch = body(&b)?;
    let changes = shop
        .data
        .write()
        .update_customer(&shop.info, id, patch, Utc::now())?;
    state.emit(&shop, changes);
    Ok(HttpResponse::Ok().json(json!({"id": id})))
}

pub async fn delete_customer(state: St, path: web::Path<(String, u64)>) -> Res {
    let (domain, id) = path.into_inner();
    let shop = shop_of(&state, &domain)?;
    let changes = shop.data.write().delete_customer(id)?;
    state.emit(&shop, changes);
    Ok(HttpResponse::Ok().json(json!({"deleted": id})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OrderReq {
    /// Decimal string in the shop currency, e.g. "25.00".
    #[serde(default)]
    amount: Option<String>,
    #[serde(default)]
    discount_code: Option<String>,
    #[serde(default)]
    discount_amount: Option<String>,
}

pub async fn create_order(state: St, path: web::Path<(String, u64)>, b: web::Bytes) -> Res {
    let (domain, customer) = path.into_inner();
    let shop = shop_of(&state, &domain)?;
    let req: OrderReq = body(&b)?;
    let cur = shop.info.currency.clone();
    let amount = match &req.amount {
        Some(a) => parse_decimal(a, &cur).map_err(ApiError::BadRequest)?,
        None => 2500,
    };
    if amount <= 0 {
        return Err(ApiError::BadRequest("amount must be positive".into()));
    }
    let mut new = simple_order(&shop, Some(customer), amount);
    if let Some(code) = req.discount_code {
        let d = match &req.discount_amount {
            Some(a) => parse_decimal(a, &cur).map_err(ApiError::BadRequest)?,
            // Where the flavour knows the store's coupons, a known coupon's discount.
            None => shop
                .flavour
                .coupon_discount(&shop.data.read(), &code, amount)
                .transpose()
                .map_err(ApiError::BadRequest)?
                .unwrap_or(0),
        };
        new.discount_codes = vec![code];
        new.total_discounts_minor = d;
    }
    let (id, changes) = shop
        .data
        .write()
        .create_order(&shop.info, new, Utc::now())?;
    state.emit(&shop, changes);
    let mut made = json!({
        "id": id,
        "admin_graphql_api_id": payloads::gid("Order", id),
    });
    shop.flavour.created_order(id, &mut made);
    Ok(HttpResponse::Created().json(made))
}

pub async fn delete_order(state: St, path: web::Path<(String, u64)>) -> Res {
    let (domain, id) = path.into_inner();
    let shop = shop_of(&state, &domain)?;
    let changes = shop.data.write().delete_order(id)?;
    state.emit(&shop, changes);
    Ok(HttpResponse::Ok().json(json!({"deleted": id})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RefundReq {
    #[serde(default)]
    amount: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

pub async fn refund_order(state: St, path: web::Path<(String, u64)>, b: web::Bytes) -> Res {
    let (domain, order) = path.into_inner();
    let shop = shop_of(&state, &domain)?;
    let req: RefundReq = body(&b)?;
    let amount = req
        .amount
        .map(|a| parse_decimal(&a, &shop.info.currency))
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let changes =
        shop.data
            .write()
            .refund_order(&shop.info, order, amount, req.note, None, Utc::now())?;
    state.emit(&shop, changes);
    Ok(HttpResponse::Ok().json(json!({"order_id": order})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CancelReq {
    #[serde(default)]
    reason: Option<String>,
}

pub async fn cancel_order(state: St, path: web::Path<(String, u64)>, b: web::Bytes) -> Res {
    let (domain, order) = path.into_inner();
    let shop = shop_of(&state, &domain)?;
    let req: CancelReq = body(&b)?;
    let changes =
        shop.data
            .write()
            .cancel_order(&shop.info, order, req.reason, None, Utc::now())?;
    state.emit(&shop, changes);
    Ok(HttpResponse::Ok().json(json!({"order_id": order})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutReq {
    customer_id: u64,
    #[serde(default)]
    amount: Option<String>,
}

pub async fn create_checkout(state: St, path: web::Path<String>, b: web::Bytes) -> Res {
    let shop = shop_of(&state, &path)?;
    let req: CheckoutReq = body(&b)?;
    let amount = match req.amount {
        Some(a) => parse_decimal(&a, &shop.info.currency).map_err(ApiError::BadRequest)?,
        None => 4200,
    };
    if shop.data.read().customers.get(req.customer_id).is_none() {
        return Err(ApiError::NotFound(format!(
            "customer {} does not exist",
            req.customer_id
        )));
    }
    let changes = checkout_for(&shop, req.customer_id, amount)?;
    state.emit(&shop, changes);
    Ok(HttpResponse::Created().json(json!({"created": true})))
}
