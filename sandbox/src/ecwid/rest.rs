//! Ecwid's REST API at `/api/v3/{storeId}/…` (`Authorization: Bearer {token}`): the store
//! profile, customers, orders, abandoned carts, customer groups and discount coupons, with
//! `offset`/`limit` paging, the per-token rate limit, the shared fault knobs and the shop's
//! request log.

use super::model::EcwidShop;
use super::payloads;
use crate::faults::chance;
use crate::state::{RequestLog, Shop, State};
use crate::store::model::{DiscountCode, DiscountValue, parse_decimal};
use crate::store::table::{Row, SortKey, Table, micros};
use crate::store::{CustomerPatch, ShopData};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAX_LIMIT: usize = 100;
const WINDOW: Duration = Duration::from_secs(60);

/// An answer: status and JSON body; errors carry `{"errorMessage": …}`.
struct Reply {
    status: StatusCode,
    body: Value,
    detail: Option<String>,
}

fn ok(body: Value) -> Result<Reply, Reply> {
    Ok(Reply {
        status: StatusCode::OK,
        body,
        detail: None,
    })
}

fn err(status: u16, msg: impl Into<String>) -> Reply {
    let status = StatusCode::from_u16(status).expect("valid status");
    Reply {
        status,
        body: json!({"errorMessage": msg.into(), "errorCode": status.canonical_reason().unwrap_or("").to_ascii_uppercase().replace(' ', "_")}),
        detail: None,
    }
}

type Res = Result<Reply, Reply>;

struct Query(HashMap<String, String>);

impl Query {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
    fn num(&self, k: &str) -> Result<Option<u64>, Reply> {
        self.get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| err(400, format!("'{k}' must be a non-negative integer")))
            })
            .transpose()
    }
    /// `offset` (default 0) and `limit` (default `default`, at most 100).
    fn paging(&self, default: usize) -> Result<(usize, usize), Reply> {
        let offset = self.num("offset")?.unwrap_or(0) as usize;
        let limit = self
            .num("limit")?
            .map_or(default, |l| (l as usize).min(MAX_LIMIT));
        Ok((offset, limit))
    }
    /// `updatedFrom`: UNIX seconds (or an Ecwid date).
    fn updated_from(&self) -> Result<Option<DateTime<Utc>>, Reply> {
        self.get("updatedFrom")
            .map(|v| match v.parse::<i64>() {
                Ok(s) => DateTime::from_timestamp(s, 0)
                    .ok_or_else(|| err(400, "'updatedFrom' is out of range")),
                Err(_) => payloads::parse_date(&Value::String(v.to_string()))
                    .map_err(|e| err(400, format!("'updatedFrom': {e}"))),
            })
            .transpose()
    }
}

/// `{total, count, offset, limit, items}` of the matching rows, in the given order.
fn paged<'a, T: 'a>(
    rows: impl Iterator<Item = &'a T>,
    offset: usize,
    limit: usize,
    item: impl Fn(&T) -> Value,
) -> Value {
    let mut total = 0usize;
    let mut items = Vec::new();
    for r in rows {
        if total >= offset && items.len() < limit {
            items.push(item(r));
        }
        total += 1;
    }
    json!({"total": total, "count": items.len(), "offset": offset, "limit": limit, "items": items})
}

/// Rows updated at or after `from`, by updated time then id (`by_updated`) or by id.
fn rows<'a, T: Row>(
    table: &'a Table<T>,
    by_updated: bool,
    from: Option<DateTime<Utc>>,
) -> Box<dyn Iterator<Item = &'a T> + 'a> {
    if by_updated {
        Box::new(table.scan_from(SortKey::UpdatedAt, from.map(|t| (micros(t), 0))))
    } else {
        Box::new(
            table
                .scan_from(SortKey::Id, None)
                .filter(move |r| from.is_none_or(|t| r.updated_at() >= t)),
        )
    }
}

/// The scope each route needs.
fn needed_scope(method: &str, resource: &str) -> &'static str {
    match (method, resource) {
        ("GET", "profile") => "read_store_profile",
        ("GET", "customers" | "customer_groups") => "read_customers",
        ("PUT", "customers") => "update_customers",
        ("POST", "customer_groups") => "create_customers",
        ("GET", "orders" | "carts") => "read_orders",
        ("GET", "discount_coupons") => "read_discount_coupons",
        ("POST", "discount_coupons") => "create_discount_coupons",
        _ => "read_store_profile",
    }
}

fn bearer(req: &HttpRequest, q: &Query) -> String {
    req.headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|v| v.trim().to_string())
        .or_else(|| q.get("token").map(str::to_string))
        .unwrap_or_default()
}

/// Sliding one-minute window per token; `Err(seconds)` says when a slot frees up.
fn take_slot(eco: &EcwidShop, token: &str, limit: u32, now: Instant) -> Result<(), u64> {
    let mut st = eco.state.lock();
    let w = st.windows.entry(token.to_string()).or_default();
    while w.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
        w.pop_front();
    }
    if w.len() >= limit as usize {
        let oldest = *w.front().expect("a full window is not empty");
        let wait = WINDOW.saturating_sub(now.duration_since(oldest));
        return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
    }
    w.push_back(now);
    Ok(())
}

/// Every `/api/v3/{storeId}/…` request.
pub async fn handle(
    state: web::Data<Arc<State>>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (store, tail) = path.into_inner();
    let method = req.method().as_str().to_string();
    let q = Query(
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect(),
    );
    let Some(shop) = state
        .shop(&store)
        .filter(|s| super::model::EcwidShop::of(s).is_some())
    else {
        return HttpResponse::NotFound().json(
            json!({"errorMessage": format!("Store {store} not found"), "errorCode": "NOT_FOUND"}),
        );
    };
    let eco = super::model::EcwidShop::of(&shop).expect("filtered");
    let full_path = match req.query_string() {
        "" => req.path().to_string(),
        qs => format!("{}?{qs}", req.path()),
    };
    let segments: Vec<&str> = tail.split('/').filter(|s| !s.is_empty()).collect();
    let resource = segments.first().copied().unwrap_or("");
    let faults = state.faults.read().clone();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let token = bearer(&req, &q);
    let now = Utc::now();
    let scope = {
        let auth = shop.auth.lock();
        auth.check(&token, now)
            .then(|| auth.tokens.get(&token).map(|t| t.scope.clone()))
            .flatten()
    };
    let mut throttled = false;
    let reply: Reply = match scope {
        None => err(403, "Invalid token: missing, unknown or disabled"),
        Some(scope) => {
            let need = needed_scope(&method, resource);
            if !scope.split_whitespace().any(|s| s == need) {
                err(403, format!("Token doesn't have required scope: {need}"))
            } else if shop
                .bucket
                .lock()
                .status(Instant::now())
                .currently_available
                < 1.0
            {
                // A throttle-storm fault holds every shop's API empty, Ecwid's too.
                throttled = true;
                let mut r = err(429, "Too many requests");
                r.detail = Some("retry_after=1".into());
                r
            } else if let Err(wait) = take_slot(
                eco,
                &token,
                super::model::Ecwid::of(&state).settings.requests_per_minute,
                Instant::now(),
            ) {
                throttled = true;
                let mut r = err(429, "Too many requests");
                r.detail = Some(format!("retry_after={wait}"));
                r
            } else if chance(faults.error_rate) {
                err(503, "Service temporarily unavailable")
            } else {
                route(&state, &shop, eco, &method, &segments, &q, &body).unwrap_or_else(|e| e)
            }
        }
    };
    shop.log_request(RequestLog {
        time: now,
        kind: "rest".into(),
        root_fields: vec![resource.to_string()],
        throttled,
        status: reply.status.as_u16(),
        method: Some(method),
        path: Some(full_path),
        detail: reply.detail.clone(),
        ..Default::default()
    });
    let mut resp = HttpResponse::build(reply.status);
    if throttled
        && let Some(wait) = reply
            .detail
            .as_deref()
            .and_then(|d| d.strip_prefix("retry_after="))
    {
        resp.insert_header(("Retry-After", wait.to_string()));
    }
    if reply.status == StatusCode::SERVICE_UNAVAILABLE {
        resp.insert_header(("Retry-After", "1"));
    }
    resp.json(reply.body)
}

fn json_body(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(err(400, "the request body must be a JSON object")),
        Err(e) => Err(err(400, format!("the request body is not JSON: {e}"))),
    }
}

fn id_of(s: &str, what: &str) -> Result<u64, Reply> {
    s.parse::<u64>()
        .map_err(|_| err(404, format!("{what} {s} not found")))
}

fn route(
    state: &Arc<State>,
    shop: &Arc<Shop>,
    eco: &EcwidShop,
    method: &str,
    seg: &[&str],
    q: &Query,
    body: &[u8],
) -> Res {
    let info = &shop.info;
    let cur = info.currency.as_str();
    match (method, seg) {
        ("GET", ["profile"]) => ok(payloads::profile(
            info,
            eco.store_id,
            eco.plan(),
            &state.base_url(),
        )),
        ("GET", ["customers"]) => {
            let (offset, limit) = q.paging(10)?;
            let from = q.updated_from()?;
            let by_updated = match q.get("sortBy") {
                None | Some("ID_ASC") => false,
                Some("UPDATED_DATE_ASC") => true,
                Some(other) => {
                    return Err(err(
                        400,
                        format!("sortBy '{other}' is not supported (ID_ASC, UPDATED_DATE_ASC)"),
                    ));
                }
            };
            let email = q.get("email").map(str::to_ascii_lowercase);
            let data = shop.data.read();
            let st = eco.state.lock();
            let it = rows(&data.customers, by_updated, from).filter(|c| {
                email.as_ref().is_none_or(|e| {
                    c.email.as_deref().map(str::to_ascii_lowercase).as_ref() == Some(e)
                })
            });
            ok(paged(it, offset, limit, |c| {
                payloads::customer(c, &st, cur)
            }))
        }
        ("GET", ["customers", id]) => {
            let id = id_of(id, "Customer")?;
            let data = shop.data.read();
            let c = data
                .customers
                .get(id)
                .ok_or_else(|| err(404, format!("Customer {id} not found")))?;
            ok(payloads::customer(c, &eco.state.lock(), cur))
        }
        ("PUT", ["customers", id]) => update_customer(state, shop, eco, id, body),
        ("GET", ["orders"]) => {
            let (offset, limit) = q.paging(100)?;
            let from = q.updated_from()?;
            let data = shop.data.read();
            ok(paged(rows(&data.orders, false, from), offset, limit, |o| {
                payloads::order(o, &data, info)
            }))
        }
        ("GET", ["orders", id]) => {
            let n = id_of(id, "Order")?;
            let data = shop.data.read();
            let o = data
                .orders
                .get(n)
                .ok_or_else(|| err(404, format!("Order {id} not found")))?;
            ok(payloads::order(o, &data, info))
        }
        ("GET", ["carts"]) => {
            let (offset, limit) = q.paging(100)?;
            let from = q.updated_from()?;
            let data = shop.data.read();
            let it = rows(&data.checkouts, false, from).filter(|k| k.completed_at.is_none());
            ok(paged(it, offset, limit, |k| payloads::cart(k, cur)))
        }
        ("GET", ["carts", id]) => {
            let n = id_of(id, "Cart")?;
            let data = shop.data.read();
            let k = data
                .checkouts
                .get(n)
                .filter(|k| k.completed_at.is_none())
                .ok_or_else(|| err(404, format!("Cart {id} not found")))?;
            ok(payloads::cart(k, cur))
        }
        ("GET" | "POST", ["customer_groups", ..]) if !eco.plan().has_customer_groups() => Err(err(
            402,
            "Customer groups are available on the Business plan and higher",
        )),
        ("GET", ["customer_groups"]) => {
            let (offset, limit) = q.paging(100)?;
            let st = eco.state.lock();
            let groups: Vec<(u64, String)> =
                st.groups.iter().map(|(i, n)| (*i, n.clone())).collect();
            ok(paged(
                groups.iter(),
                offset,
                limit,
                |(id, name)| json!({"id": id, "name": name}),
            ))
        }
        ("GET", ["customer_groups", id]) => {
            let n = id_of(id, "Customer group")?;
            if n == 0 {
                return ok(json!({"id": 0, "name": "General"}));
            }
            let st = eco.state.lock();
            let name = st
                .groups
                .get(&n)
                .ok_or_else(|| err(404, format!("Customer group {id} not found")))?;
            ok(json!({"id": n, "name": name}))
        }
        ("POST", ["customer_groups"]) => {
            let b = json_body(body)?;
            let name = b
                .get("name")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| err(400, "'name' is required"))?;
            let mut st = eco.state.lock();
            let id = st.next_group_id;
            st.next_group_id += 1;
            st.groups.insert(id, name.to_string());
            Ok(Reply {
                status: StatusCode::OK,
                body: json!({"id": id}),
                detail: Some(format!("group {id} {name}")),
            })
        }
        ("POST", ["discount_coupons"]) => create_coupon(shop, eco, body),
        ("GET", ["discount_coupons"]) => {
            let (offset, limit) = q.paging(100)?;
            let code = q.get("code").map(str::to_lowercase);
            let data = shop.data.read();
            let st = eco.state.lock();
            let it = data
                .discounts
                .values()
                .filter(|d| code.as_ref().is_none_or(|c| d.code.to_lowercase() == *c));
            ok(paged(it, offset, limit, |d| payloads::coupon(d, &st, cur)))
        }
        ("GET", ["discount_coupons", id]) => {
            let n = id_of(id, "Discount coupon")?;
            let data = shop.data.read();
            let d = data
                .discounts
                .get(&n)
                .ok_or_else(|| err(404, format!("Discount coupon {id} not found")))?;
            ok(payloads::coupon(d, &eco.state.lock(), cur))
        }
        _ => Err(err(
            404,
            format!("{method} /{} is not an endpoint of this API", seg.join("/")),
        )),
    }
}

fn update_customer(
    state: &Arc<State>,
    shop: &Arc<Shop>,
    eco: &EcwidShop,
    id: &str,
    body: &[u8],
) -> Res {
    let id = id_of(id, "Customer")?;
    let b = json_body(body)?;
    let group = match b.get("customerGroupId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| err(400, "'customerGroupId' must be a number"))?,
        ),
    };
    let changes = {
        let mut data = shop.data.write();
        if data.customers.get(id).is_none() {
            return Err(err(404, format!("Customer {id} not found")));
        }
        let changed = match group {
            None => false,
            Some(g) => {
                let mut st = eco.state.lock();
                if g != 0 && !eco.plan().has_customer_groups() {
                    return Err(err(
                        402,
                        "Customer groups are available on the Business plan and higher",
                    ));
                }
                if g != 0 && !st.groups.contains_key(&g) {
                    return Err(err(400, format!("Customer group {g} does not exist")));
                }
                let before = st.group_of(id).0;
                if g == 0 {
                    st.membership.remove(&id);
                } else {
                    st.membership.insert(id, g);
                }
                before != g
            }
        };
        if changed {
            data.update_customer(&shop.info, id, CustomerPatch::default(), Utc::now())
                .map_err(|e| err(400, e.to_string()))?
        } else {
            vec![]
        }
    };
    // The platform's echo of the write, as Shopify's customers/update after a tag write.
    state.emit(shop, changes);
    Ok(Reply {
        status: StatusCode::OK,
        body: json!({"updateCount": 1}),
        detail: group.map(|g| format!("customer {id} group {g}")),
    })
}

fn create_coupon(shop: &Arc<Shop>, eco: &EcwidShop, body: &[u8]) -> Res {
    let b = json_body(body)?;
    let text = |k: &str| b.get(k).and_then(Value::as_str).map(str::trim);
    let code = text("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| err(400, "'code' is required"))?;
    if code.chars().count() > 128 {
        return Err(err(400, "'code' must be at most 128 characters"));
    }
    let kind = text("discountType").unwrap_or("ABS");
    let status = text("status").unwrap_or("ACTIVE");
    if !matches!(status, "ACTIVE" | "PAUSED") {
        return Err(err(
            400,
            format!("status '{status}' is not ACTIVE or PAUSED"),
        ));
    }
    let discount = b
        .get("discount")
        .and_then(|v| v.as_f64().map(|f| (f, v.to_string())))
        .ok_or_else(|| err(400, "'discount' must be a number"))?;
    let cur = shop.info.currency.clone();
    let value = match kind {
        "PERCENT" if (0.0..=100.0).contains(&discount.0) => {
            DiscountValue::Percentage(discount.0 / 100.0)
        }
        "PERCENT" => return Err(err(400, "a PERCENT discount must be 0–100")),
        "ABS" => {
            let minor = parse_decimal(&discount.1, &cur)
                .map_err(|e| err(400, format!("'discount': {e}")))?;
            if minor < 0 {
                return Err(err(400, "'discount' must not be negative"));
            }
            DiscountValue::Amount {
                amount_minor: minor,
                applies_on_each_item: false,
            }
        }
        other => {
            return Err(err(
                400,
                format!("discountType '{other}' is not supported (PERCENT, ABS)"),
            ));
        }
    };
    let (usage_limit, once_per_customer) = match text("usesLimit").unwrap_or("UNLIMITED") {
        "UNLIMITED" => (None, false),
        "SINGLE" => (Some(1), false),
        "ONCEPERCUSTOMER" => (None, true),
        other => {
            return Err(err(
                400,
                format!("usesLimit '{other}' is not UNLIMITED, SINGLE or ONCEPERCUSTOMER"),
            ));
        }
    };
    let date = |k: &str| {
        b.get(k)
            .filter(|v| !v.is_null())
            .map(|v| payloads::parse_date(v).map_err(|e| err(400, format!("'{k}': {e}"))))
            .transpose()
    };
    let now = Utc::now();
    let starts = date("launchDate")?.unwrap_or(now);
    let ends = date("expirationDate")?;
    if ends.is_some_and(|e| e < starts) {
        return Err(err(400, "'expirationDate' is before 'launchDate'"));
    }
    let d = DiscountCode {
        id: 0,
        title: text("name")
            .filter(|n| !n.is_empty())
            .unwrap_or(code)
            .to_string(),
        code: code.to_string(),
        starts_at: starts,
        ends_at: ends,
        customer_ids: vec![],
        value,
        usage_limit,
        applies_once_per_customer: once_per_customer,
        created_at: now,
    };
    let id = add_coupon(&mut shop.data.write(), d).map_err(|_| {
        err(
            409,
            format!("Discount coupon with code '{code}' already exists"),
        )
    })?;
    if status != "ACTIVE" {
        eco.state
            .lock()
            .coupon_status
            .insert(id, status.to_string());
    }
    Ok(Reply {
        status: StatusCode::OK,
        body: json!({"id": id, "code": code}),
        detail: Some(format!("coupon {code}")),
    })
}

fn add_coupon(data: &mut ShopData, d: DiscountCode) -> Result<u64, crate::store::StoreError> {
    data.add_discount(d)
}
