//! The shared model's change payloads, REST-shaped (reference §2.x); the Shopify flavour sends
//! them as they are, other flavours derive their events from them: numeric ids with `admin_graphql_api_id`,
//! money as strings, `*_set` objects with `shop_money` / `presentment_money`.

use crate::store::info::ShopInfo;
use crate::store::model::*;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(ts(t))).unwrap_or(Value::Null)
}

pub fn gid(kind: &str, id: u64) -> String {
    format!("gid://shopify/{kind}/{id}")
}

/// `{shop_money, presentment_money}` for an amount in shop minor units.
fn money_set(info: &ShopInfo, o: &Order, shop_minor: i64) -> Value {
    json!({
        "shop_money": {"amount": format_minor(shop_minor, &info.currency), "currency_code": info.currency},
        "presentment_money": {
            "amount": format_minor(o.presentment(shop_minor, &info.currency), &o.presentment_currency),
            "currency_code": o.presentment_currency
        }
    })
}

fn address(a: &Address, c: &Customer, id: u64) -> Value {
    json!({
        "id": id,
        "customer_id": c.id,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "company": null,
        "address1": a.address1,
        "address2": null,
        "city": a.city,
        "province": a.province,
        "country": a.country_code,
        "zip": a.zip,
        "phone": c.phone,
        "name": c.display_name(),
        "province_code": a.province,
        "country_code": a.country_code,
        "country_name": a.country_code,
        "default": true
    })
}

pub fn customer(info: &ShopInfo, c: &Customer) -> Value {
    // Address ids are derived so repeated payloads agree.
    let addr = c
        .address
        .as_ref()
        .map(|a| address(a, c, c.id + 1_000_000_000));
    json!({
        "id": c.id,
        "created_at": ts(c.created_at),
        "updated_at": ts(c.updated_at),
        "first_name": c.first_name,
        "last_name": c.last_name,
        "state": c.state.rest(),
        "note": c.note,
        "verified_email": c.verified_email,
        "multipass_identifier": null,
        "tax_exempt": false,
        "email": c.email,
        "phone": c.phone,
        "currency": info.currency,
        "addresses": addr.iter().cloned().collect::<Vec<_>>(),
        "tax_exemptions": [],
        "admin_graphql_api_id": gid("Customer", c.id),
        "default_address": addr,
    })
}

pub fn customer_deleted(id: u64) -> Value {
    json!({"id": id, "tax_exemptions": [], "admin_graphql_api_id": gid("Customer", id)})
}

fn line_item(info: &ShopInfo, o: &Order, l: &LineItem) -> Value {
    json!({
        "id": l.id,
        "admin_graphql_api_id": gid("LineItem", l.id),
        "current_quantity": if o.cancelled_at.is_some() { 0 } else { l.quantity },
        "fulfillable_quantity": l.quantity,
        "name": l.title,
        "title": l.title,
        "price": format_minor(l.price_minor, &info.currency),
        "price_set": money_set(info, o, l.price_minor),
        "product_id": l.product_id,
        "variant_id": l.variant_id,
        "quantity": l.quantity,
        "sku": l.sku,
        "total_discount": "0.00",
        "total_discount_set": money_set(info, o, 0),
        "discount_allocations": [],
        "taxable": true,
        "requires_shipping": true
    })
}

fn embedded_customer(info: &ShopInfo, c: &Customer) -> Value {
    let addr = c
        .address
        .as_ref()
        .map(|a| address(a, c, c.id + 1_000_000_000));
    json!({
        "id": c.id,
        "email": c.email,
        "created_at": ts(c.created_at),
        "updated_at": ts(c.updated_at),
        "first_name": c.first_name,
        "last_name": c.last_name,
        "state": c.state.rest(),
        "note": c.note,
        "verified_email": c.verified_email,
        "multipass_identifier": null,
        "tax_exempt": false,
        "phone": c.phone,
        "currency": info.currency,
        "tax_exemptions": [],
        "admin_graphql_api_id": gid("Customer", c.id),
        "default_address": addr,
    })
}

pub fn order(info: &ShopInfo, o: &Order, cust: Option<&Customer>) -> Value {
    let m = |v: i64| format_minor(v, &info.currency);
    let total = o.total_minor();
    let current = o.current_total_minor();
    json!({
        "id": o.id,
        "admin_graphql_api_id": gid("Order", o.id),
        "app_id": null,
        "browser_ip": null,
        "buyer_accepts_marketing": false,
        "cancel_reason": o.cancel_reason,
        "cancelled_at": opt_ts(o.cancelled_at),
        "cart_token": null,
        "checkout_token": o.checkout_token,
        "client_details": null,
        "closed_at": opt_ts(o.closed_at),
        "confirmation_number": format!("SBX{}", o.number),
        "confirmed": true,
        "contact_email": o.email,
        "created_at": ts(o.created_at),
        "currency": info.currency,
        "current_subtotal_price": m(current),
        "current_subtotal_price_set": money_set(info, o, current),
        "current_total_discounts": m(o.total_discounts_minor),
        "current_total_discounts_set": money_set(info, o, o.total_discounts_minor),
        "current_total_price": m(current),
        "current_total_price_set": money_set(info, o, current),
        "current_total_tax": m(o.total_tax_minor),
        "current_total_tax_set": money_set(info, o, o.total_tax_minor),
        "current_shipping_price_set": money_set(info, o, 0),
        "customer_locale": cust.and_then(|c| c.locale.clone()),
        // The per-code split is not recorded; the first code carries the whole discount.
        "discount_codes": o.discount_codes.iter().enumerate().map(|(i, code)| json!({
            "code": code,
            "amount": m(if i == 0 { o.total_discounts_minor } else { 0 }),
            "type": "fixed_amount"
        })).collect::<Vec<_>>(),
        "email": o.email,
        "financial_status": o.financial_status(),
        "fulfillment_status": null,
        "landing_site": null,
        "name": o.name(),
        "note": null,
        "note_attributes": [],
        "number": o.number - 1000,
        "order_number": o.number,
        "order_status_url": format!("https://{}/orders/{}/authenticate?key={}", info.domain, o.token, o.token),
        "payment_gateway_names": ["bogus"],
        "phone": null,
        "presentment_currency": o.presentment_currency,
        "processed_at": ts(o.processed_at),
        "source_name": "web",
        "subtotal_price": m(o.subtotal_minor()),
        "subtotal_price_set": money_set(info, o, o.subtotal_minor()),
        "tags": "",
        "test": o.test,
        "token": o.token,
        "total_discounts": m(o.total_discounts_minor),
        "total_discounts_set": money_set(info, o, o.total_discounts_minor),
        "total_line_items_price": m(o.line_items_minor()),
        "total_line_items_price_set": money_set(info, o, o.line_items_minor()),
        "total_outstanding": m(0),
        "total_price": m(total),
        "total_price_set": money_set(info, o, total),
        "total_shipping_price_set": money_set(info, o, 0),
        "total_tax": m(o.total_tax_minor),
        "total_tax_set": money_set(info, o, o.total_tax_minor),
        "total_tip_received": m(0),
        "total_weight": 0,
        "updated_at": ts(o.updated_at),
        "user_id": null,
        "billing_address": null,
        "shipping_address": null,
        "customer": cust.map(|c| embedded_customer(info, c)),
        "discount_applications": [],
        "fulfillments": [],
        "line_items": o.line_items.iter().map(|l| line_item(info, o, l)).collect::<Vec<_>>(),
        "payment_terms": null,
        "refunds": o.refunds.iter().map(|r| refund(info, o, r)).collect::<Vec<_>>(),
        "shipping_lines": [],
        "returns": [],
        "line_item_groups": [],
    })
}

pub fn refund(info: &ShopInfo, o: &Order, r: &Refund) -> Value {
    json!({
        "id": r.id,
        "order_id": o.id,
        "created_at": ts(r.created_at),
        "note": r.note,
        "user_id": null,
        "processed_at": ts(r.created_at),
        "duties": [],
        "total_duties_set": money_set(info, o, 0),
        "return": null,
        "refund_shipping_lines": [],
        "restock": false,
        "admin_graphql_api_id": gid("Refund", r.id),
        "order_adjustments": [],
        "refund_line_items": [],
        "transactions": [{
            "id": r.transaction_id,
            "order_id": o.id,
            "kind": "refund",
            "gateway": "bogus",
            "status": "success",
            "message": null,
            "created_at": ts(r.created_at),
            "test": o.test,
            "parent_id": null,
            "processed_at": ts(r.created_at),
            "amount": format_minor(r.amount_minor, &info.currency),
            "currency": info.currency,
            "admin_graphql_api_id": gid("OrderTransaction", r.transaction_id),
        }],
    })
}

pub fn checkout(info: &ShopInfo, k: &Checkout, cust: Option<&Customer>) -> Value {
    let m = |v: i64| format_minor(v, &k.currency);
    let total = k.total_minor();
    json!({
        "id": k.id,
        "token": k.token,
        "cart_token": k.token,
        "email": k.email,
        "gateway": null,
        "buyer_accepts_marketing": false,
        "created_at": ts(k.created_at),
        "updated_at": ts(k.updated_at),
        "landing_site": null,
        "note": null,
        "note_attributes": [],
        "referring_site": null,
        "shipping_lines": [],
        "taxes_included": false,
        "total_weight": 0,
        "currency": k.currency,
        "completed_at": opt_ts(k.completed_at),
        "closed_at": null,
        "user_id": null,
        "location_id": null,
        "source_identifier": null,
        "source_url": null,
        "device_id": null,
        "phone": null,
        "customer_locale": cust.and_then(|c| c.locale.clone()),
        "line_items": k.line_items.iter().map(|l| json!({
            "key": l.id.to_string(),
            "product_id": l.product_id,
            "variant_id": l.variant_id,
            "quantity": l.quantity,
            "sku": l.sku,
            "title": l.title,
            "variant_title": null,
            "price": m(l.price_minor),
            "line_price": m(l.price_minor * i64::from(l.quantity)),
        })).collect::<Vec<_>>(),
        "name": format!("#{}", k.id),
        "source": null,
        "abandoned_checkout_url": abandoned_checkout_url(info, k),
        "discount_codes": [],
        "tax_lines": [],
        "source_name": "web",
        "presentment_currency": k.currency,
        "buyer_accepts_sms_marketing": false,
        "sms_marketing_phone": null,
        "total_discounts": m(0),
        "total_line_items_price": m(total),
        "total_price": m(total),
        "total_tax": m(0),
        "subtotal_price": m(total),
        "total_duties": null,
        "reservation_token": null,
        "billing_address": null,
        "shipping_address": null,
        "customer": cust.map(|c| embedded_customer(info, c)),
    })
}

pub fn abandoned_checkout_url(info: &ShopInfo, k: &Checkout) -> String {
    format!(
        "https://{}/{}/checkouts/{}/recover?key=sandbox-{}",
        info.domain, info.id, k.token, k.id
    )
}

pub fn shop(info: &ShopInfo) -> Value {
    json!({
        "id": info.id,
        "name": info.name,
        "email": info.email,
        "domain": info.domain,
        "myshopify_domain": info.domain,
        "plan_name": info.plan.rest_name(),
        "plan_display_name": info.plan.display_name(),
        "currency": info.currency,
        "created_at": ts(info.created_at),
        "updated_at": ts(info.created_at),
        "country_code": "US",
        "iana_timezone": "Etc/UTC",
        "timezone": "(GMT+00:00) Etc/UTC",
    })
}

pub fn customers_data_request(
    info: &ShopInfo,
    c: &Customer,
    orders: &[u64],
    request_id: u64,
) -> Value {
    json!({
        "shop_id": info.id,
        "shop_domain": info.domain,
        "orders_requested": orders,
        "customer": {"id": c.id, "email": c.email, "phone": c.phone},
        "data_request": {"id": request_id},
    })
}

pub fn customers_redact(info: &ShopInfo, c: &Customer, orders: &[u64]) -> Value {
    json!({
        "shop_id": info.id,
        "shop_domain": info.domain,
        "customer": {"id": c.id, "email": c.email, "phone": c.phone},
        "orders_to_redact": orders,
    })
}

pub fn shop_redact(info: &ShopInfo) -> Value {
    json!({"shop_id": info.id, "shop_domain": info.domain})
}
