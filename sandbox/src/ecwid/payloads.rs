//! Ecwid's JSON shapes of the shared records: dates as `"2024-05-01 05:26:28 +0000"` and UNIX
//! seconds, amounts as JSON numbers in the store currency (integers for zero-decimal ones).

use super::model::EcwidState;
use crate::store::model::*;
use crate::store::{ShopData, ShopInfo};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub fn date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S +0000").to_string()
}

/// Parses Ecwid's date (`"2014-06-06 08:00:00 +0400"`), a bare `"2014-06-06"` or UNIX seconds.
pub fn parse_date(v: &Value) -> Result<DateTime<Utc>, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .ok_or_else(|| format!("{n} is not a timestamp")),
        Value::String(s) => {
            let s = s.trim();
            DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %z")
                .map(|t| t.with_timezone(&Utc))
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
                })
                .map_err(|_| format!("'{s}' is not a date like 2024-05-01 05:26:28 +0000"))
        }
        other => Err(format!("{other} is not a date")),
    }
}

/// Minor units as Ecwid's JSON number: 4150 EUR -> 41.5, 1200 JPY -> 1200.
pub fn amount(minor: i64, currency: &str) -> Value {
    let exp = currency_exponent(currency);
    if exp == 0 {
        return json!(minor);
    }
    json!(minor as f64 / 10f64.powi(exp as i32))
}

/// Ecwid's `paymentStatus` of an order of the shared model.
pub fn payment_status(o: &Order) -> &'static str {
    let refunded = o.refunded_minor();
    if o.cancelled_at.is_some() {
        "CANCELLED"
    } else if refunded == 0 {
        "PAID"
    } else if refunded >= o.total_minor() {
        "REFUNDED"
    } else {
        "PARTIALLY_REFUNDED"
    }
}

pub fn fulfillment_status(o: &Order) -> &'static str {
    if o.cancelled_at.is_some() {
        "WILL_NOT_DELIVER"
    } else {
        "AWAITING_PROCESSING"
    }
}

/// The order id Ecwid shows: the shared model's id as text (used in REST, webhooks, dumps).
pub fn order_id(o: &Order) -> String {
    o.id.to_string()
}

pub fn customer(c: &Customer, eco: &EcwidState, currency: &str) -> Value {
    let (group_id, group_name) = eco.group_of(c.id);
    let name = [c.first_name.as_deref(), c.last_name.as_deref()]
        .iter()
        .flatten()
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    json!({
        "id": c.id,
        "email": c.email.clone().unwrap_or_default(),
        "registered": date(c.created_at),
        "updated": date(c.updated_at),
        "totalOrderCount": c.orders_count,
        "customerGroupId": group_id,
        "customerGroupName": group_name,
        "billingPerson": {
            "firstName": c.first_name,
            "lastName": c.last_name,
            "name": name,
            "phone": c.phone,
            "city": c.address.as_ref().map(|a| a.city.clone()),
            "countryCode": c.address.as_ref().map(|a| a.country_code.clone()),
        },
        // The shared model has no marketing consent: an enabled account stands in for it.
        "acceptMarketing": c.state == CustomerState::Enabled,
        "stats": {
            "numberOfOrders": c.orders_count,
            "salesValue": amount(c.spent_minor, currency),
        },
    })
}

pub fn order(o: &Order, data: &ShopData, info: &ShopInfo) -> Value {
    let cur = &info.currency;
    let with_code = !o.discount_codes.is_empty();
    let (coupon_discount, discount) = if with_code {
        (o.total_discounts_minor, 0)
    } else {
        (0, o.total_discounts_minor)
    };
    let mut v = json!({
        "id": order_id(o),
        "internalId": o.id,
        "orderNumber": o.number,
        "email": o.email,
        "total": amount(o.total_minor(), cur),
        "subtotal": amount(o.line_items_minor(), cur),
        "tax": amount(o.total_tax_minor, cur),
        "couponDiscount": amount(coupon_discount, cur),
        "discount": amount(discount, cur),
        "paymentStatus": payment_status(o),
        "fulfillmentStatus": fulfillment_status(o),
        "refundedAmount": amount(o.refunded_minor(), cur),
        "refunds": o.refunds.iter().map(|r| json!({
            "date": date(r.created_at),
            "source": "CP",
            "reason": r.note,
            "amount": amount(r.amount_minor, cur),
        })).collect::<Vec<_>>(),
        "items": o.line_items.iter().map(|l| json!({
            "id": l.id,
            "productId": l.product_id,
            "sku": l.sku,
            "name": l.title,
            "quantity": l.quantity,
            "price": amount(l.price_minor, cur),
        })).collect::<Vec<_>>(),
        "createDate": date(o.created_at),
        "createTimestamp": o.created_at.timestamp(),
        "updateDate": date(o.updated_at),
        "updateTimestamp": o.updated_at.timestamp(),
    });
    if let Some(c) = o.customer_id {
        v["customerId"] = json!(c);
    }
    if let Some(code) = o.discount_codes.first() {
        let known = data.discount_by_code(code);
        v["discountCoupon"] = json!({
            "id": known.map_or(0, |d| d.id),
            "name": known.map_or(code.clone(), |d| d.title.clone()),
            "code": code,
        });
    }
    v
}

pub fn cart(k: &Checkout, currency: &str) -> Value {
    let mut v = json!({
        "cartId": k.id.to_string(),
        "email": k.email,
        "total": amount(k.total_minor(), currency),
        "subtotal": amount(k.total_minor(), currency),
        "paymentStatus": "INCOMPLETE",
        "items": k.line_items.iter().map(|l| json!({
            "id": l.id,
            "productId": l.product_id,
            "sku": l.sku,
            "name": l.title,
            "quantity": l.quantity,
            "price": amount(l.price_minor, currency),
        })).collect::<Vec<_>>(),
        "createDate": date(k.created_at),
        "createTimestamp": k.created_at.timestamp(),
        "updateDate": date(k.updated_at),
        "updateTimestamp": k.updated_at.timestamp(),
    });
    if let Some(c) = k.customer_id {
        v["customerId"] = json!(c);
    }
    v
}

pub fn coupon(d: &DiscountCode, eco: &EcwidState, currency: &str) -> Value {
    let (kind, discount) = match &d.value {
        DiscountValue::Percentage(p) => ("PERCENT", json!((p * 10_000.0).round() / 100.0)),
        DiscountValue::Amount { amount_minor, .. } => ("ABS", amount(*amount_minor, currency)),
    };
    let uses = if d.usage_limit == Some(1) {
        "SINGLE"
    } else if d.applies_once_per_customer {
        "ONCEPERCUSTOMER"
    } else {
        "UNLIMITED"
    };
    json!({
        "id": d.id,
        "name": d.title,
        "code": d.code,
        "discountType": kind,
        "discount": discount,
        "status": eco.coupon_status.get(&d.id).map_or("ACTIVE", String::as_str),
        "usesLimit": uses,
        "launchDate": date(d.starts_at),
        "expirationDate": d.ends_at.map(date),
        "creationDate": date(d.created_at),
        "applicationLimit": "UNLIMITED",
    })
}

pub fn profile(info: &ShopInfo, store_id: u64, plan: super::model::EcwidPlan, base: &str) -> Value {
    json!({
        "generalInfo": {
            "storeId": store_id,
            "storeUrl": format!("{base}/store/{store_id}"),
        },
        "account": {
            "accountName": info.name,
            "accountEmail": info.email,
            "availableFeatures": if plan.has_customer_groups() { vec!["CUSTOMER_GROUPS"] } else { vec![] },
        },
        "settings": { "storeName": info.name },
        "formatsAndUnits": {
            "currency": info.currency,
            "currencyPrecision": currency_exponent(&info.currency),
            "timezone": "UTC",
        },
    })
}
