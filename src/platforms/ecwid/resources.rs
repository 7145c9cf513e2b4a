//! Ecwid's records as canonical events. Amounts are decimal numbers in the store's currency
//! (orders carry none: it comes from the store profile); dates are `2024-05-01 05:26:28 +0000`,
//! with UNIX timestamps beside them on orders.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::{Checkout, Currency, Customer, DataEvent, Money, Order, Resource};

/// The REST path of a resource's collection.
pub fn path(resource: Resource) -> &'static str {
    match resource {
        Resource::Customers => "/customers",
        Resource::Orders => "/orders",
        Resource::Checkouts => "/carts",
    }
}

/// A record of `resource` as its event.
pub fn to_event(resource: Resource, v: &Value, currency: Currency) -> Result<DataEvent, String> {
    match resource {
        Resource::Customers => customer(v).map(DataEvent::CustomerUpserted),
        Resource::Orders => order(v, currency).map(DataEvent::OrderUpserted),
        Resource::Checkouts => cart(v, currency).map(DataEvent::CheckoutUpserted),
    }
}

/// An id given as a number or a string, as text; 0 and empty mean none (guests).
fn id(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::Number(n) if n.as_i64() != Some(0) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() && s != "0" => Some(s.clone()),
        _ => None,
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A date as Ecwid writes it, or a UNIX timestamp.
fn time(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    match v.get(key)? {
        Value::Number(n) => DateTime::from_timestamp(n.as_i64()?, 0),
        Value::String(s) => DateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S %z")
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| s.parse::<DateTime<Utc>>().ok()),
        _ => None,
    }
}

fn money(v: &Value, key: &str, currency: Currency) -> Result<Money, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Money::zero(currency)),
        Some(Value::Number(n)) => Money::parse(&n.to_string(), currency)
            .ok_or_else(|| format!("`{key}` {n} is not an amount")),
        Some(Value::String(s)) => {
            Money::parse(s, currency).ok_or_else(|| format!("`{key}` `{s}` is not an amount"))
        }
        Some(other) => Err(format!("`{key}` {other} is not an amount")),
    }
}

fn customer(v: &Value) -> Result<Customer, String> {
    let platform_id = id(v, "id").ok_or("a customer without `id`")?;
    let person = v.get("billingPerson").cloned().unwrap_or(Value::Null);
    let updated_at = time(v, "updated")
        .or_else(|| time(v, "registered"))
        .ok_or("a customer without `updated`")?;
    Ok(Customer {
        platform_id,
        email: text(v, "email"),
        first_name: text(&person, "firstName"),
        last_name: text(&person, "lastName"),
        // Ecwid has no customer tags: keep what we have.
        tags: None,
        state: None,
        created_at: time(v, "registered"),
        updated_at,
    })
}

fn order(v: &Value, currency: Currency) -> Result<Order, String> {
    let platform_id = id(v, "id").ok_or("an order without `id`")?;
    let created_at = time(v, "createTimestamp")
        .or_else(|| time(v, "createDate"))
        .ok_or("an order without `createDate`")?;
    let updated_at = time(v, "updateTimestamp")
        .or_else(|| time(v, "updateDate"))
        .unwrap_or(created_at);
    let status = text(v, "paymentStatus");
    let discounts = Money::new(
        money(v, "couponDiscount", currency)?.minor + money(v, "discount", currency)?.minor,
        currency,
    );
    let discount_codes = v
        .pointer("/discountCoupon/code")
        .and_then(Value::as_str)
        .map(|c| vec![c.to_string()])
        .unwrap_or_default();
    Ok(Order {
        platform_id,
        customer_platform_id: id(v, "customerId"),
        name: id(v, "orderNumber").map(|n| format!("#{n}")),
        email: text(v, "email"),
        subtotal: money(v, "subtotal", currency)?,
        total: money(v, "total", currency)?,
        discounts,
        refunded: money(v, "refundedAmount", currency)?,
        discount_codes,
        cancelled_at: (status.as_deref() == Some("CANCELLED")).then_some(updated_at),
        financial_status: status.map(|s| s.to_ascii_lowercase()),
        created_at,
        updated_at,
    })
}

fn cart(v: &Value, currency: Currency) -> Result<Checkout, String> {
    let platform_id = id(v, "cartId").ok_or("a cart without `cartId`")?;
    let created_at = time(v, "createTimestamp")
        .or_else(|| time(v, "createDate"))
        .ok_or("a cart without `createDate`")?;
    Ok(Checkout {
        platform_id,
        customer_platform_id: id(v, "customerId"),
        email: text(v, "email"),
        total: money(v, "total", currency)?,
        completed_at: None,
        created_at,
        updated_at: time(v, "updateTimestamp")
            .or_else(|| time(v, "updateDate"))
            .unwrap_or(created_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_order_becomes_its_event_in_the_store_currency() {
        let v = json!({
            "id": "EBJFT", "orderNumber": 1042, "customerId": 77, "email": "a@example.com",
            "total": 41.5, "subtotal": 50, "couponDiscount": 8.5, "discount": 0,
            "refundedAmount": 0, "paymentStatus": "PAID",
            "discountCoupon": {"code": "LC-ABC"},
            "createDate": "2024-05-01 05:26:28 +0000", "updateTimestamp": 1714541200
        });
        let eur = Currency::parse("EUR").unwrap();
        let DataEvent::OrderUpserted(o) = to_event(Resource::Orders, &v, eur).unwrap() else {
            panic!("an order");
        };
        assert_eq!(o.platform_id, "EBJFT");
        assert_eq!(o.customer_platform_id.as_deref(), Some("77"));
        assert_eq!(
            (o.total.minor, o.subtotal.minor, o.discounts.minor),
            (4150, 5000, 850)
        );
        assert_eq!(o.discount_codes, ["LC-ABC"]);
        assert_eq!(o.created_at.to_rfc3339(), "2024-05-01T05:26:28+00:00");
        assert_eq!(o.updated_at.timestamp(), 1714541200);
        assert_eq!(o.financial_status.as_deref(), Some("paid"));
        let jpy = to_event(
            Resource::Orders,
            &json!({"id": "X", "total": 1200, "createTimestamp": 1}),
            Currency::parse("JPY").unwrap(),
        )
        .unwrap();
        let DataEvent::OrderUpserted(o) = jpy else {
            panic!()
        };
        assert_eq!(o.total.minor, 1200);
        assert!(to_event(Resource::Orders, &json!({"total": 1}), eur).is_err());
        assert!(
            to_event(
                Resource::Orders,
                &json!({"id": "X", "total": "ten", "createTimestamp": 1}),
                eur
            )
            .is_err()
        );
    }

    #[test]
    fn a_guest_is_no_customer() {
        let v = json!({"id": "G1", "customerId": 0, "total": 1, "createTimestamp": 1});
        let usd = Currency::parse("USD").unwrap();
        let DataEvent::OrderUpserted(o) = to_event(Resource::Orders, &v, usd).unwrap() else {
            panic!()
        };
        assert_eq!(o.customer_platform_id, None);
    }
}
