//! Decodes Shopify webhook payloads (REST-shaped JSON) into canonical events. Lenient where
//! Shopify varies (money as strings or numbers, optional and unknown fields), strict where it
//! matters: an id or an amount that cannot be read makes the whole payload fail, with a reason.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::{
    Checkout, Currency, Customer, DataEvent, Event, Money, Order, PrivacyRequest, Refund, ShopEvent,
};

/// Every topic the app handles; the manifest must declare exactly these (tested).
pub const HANDLED_TOPICS: &[&str] = &[
    "customers/create",
    "customers/update",
    "customers/delete",
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/delete",
    "refunds/create",
    "checkouts/create",
    "checkouts/update",
    "app/uninstalled",
    "bulk_operations/finish",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
];

/// Topics that apply to a shop even after it uninstalled (privacy law outlives the install).
pub const COMPLIANCE_TOPICS: &[&str] =
    &["customers/data_request", "customers/redact", "shop/redact"];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("unknown topic `{0}`")]
    UnknownTopic(String),
    #[error("field `{0}` is missing")]
    Missing(&'static str),
    #[error("field `{field}` is not valid: {reason}")]
    Invalid { field: &'static str, reason: String },
}

pub fn decode(topic: &str, body: &[u8]) -> Result<Vec<Event>, DecodeError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    if !v.is_object() {
        return Err(DecodeError::NotJson("expected a JSON object".into()));
    }
    let event: Event = match topic {
        "customers/create" | "customers/update" => {
            DataEvent::CustomerUpserted(customer(&v)?).into()
        }
        "customers/delete" => DataEvent::CustomerDeleted {
            platform_id: gid(&v, "Customer")?,
        }
        .into(),
        "orders/create" | "orders/updated" | "orders/paid" | "orders/cancelled" => {
            DataEvent::OrderUpserted(order(&v)?).into()
        }
        "orders/delete" => DataEvent::OrderDeleted {
            platform_id: gid(&v, "Order")?,
        }
        .into(),
        "refunds/create" => DataEvent::RefundCreated(refund(&v)?).into(),
        "checkouts/create" | "checkouts/update" => {
            DataEvent::CheckoutUpserted(checkout(&v)?).into()
        }
        "app/uninstalled" => ShopEvent::AppUninstalled.into(),
        "bulk_operations/finish" => ShopEvent::BulkOperationFinished {
            operation_id: str_field(&v, "admin_graphql_api_id")
                .ok_or(DecodeError::Missing("admin_graphql_api_id"))?,
            status: str_field(&v, "status").unwrap_or_default(),
        }
        .into(),
        "customers/data_request" => {
            ShopEvent::CustomerDataRequested(privacy(&v, "orders_requested")?).into()
        }
        "customers/redact" => {
            ShopEvent::CustomerRedactRequested(privacy(&v, "orders_to_redact")?).into()
        }
        "shop/redact" => ShopEvent::ShopRedactRequested.into(),
        other => return Err(DecodeError::UnknownTopic(other.to_string())),
    };
    Ok(vec![event])
}

/// The resource's GID: `admin_graphql_api_id` when present, else built from the numeric `id`.
fn gid(v: &Value, kind: &'static str) -> Result<String, DecodeError> {
    if let Some(g) = v.get("admin_graphql_api_id").and_then(Value::as_str) {
        if g.starts_with("gid://shopify/") {
            return Ok(g.to_string());
        }
        return Err(DecodeError::Invalid {
            field: "admin_graphql_api_id",
            reason: format!("`{g}` is not a GID"),
        });
    }
    match v.get("id") {
        Some(Value::Number(n)) if n.is_u64() => Ok(format!("gid://shopify/{kind}/{n}")),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(format!("gid://shopify/{kind}/{s}"))
        }
        Some(other) => Err(DecodeError::Invalid {
            field: "id",
            reason: format!("{other} is not a numeric id"),
        }),
        None => Err(DecodeError::Missing("id")),
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn time_field(v: &Value, key: &'static str) -> Result<Option<DateTime<Utc>>, DecodeError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| DecodeError::Invalid {
                field: key,
                reason: format!("`{s}`: {e}"),
            }),
        Some(other) => Err(DecodeError::Invalid {
            field: key,
            reason: format!("{other} is not a timestamp"),
        }),
    }
}

fn required_time(v: &Value, key: &'static str) -> Result<DateTime<Utc>, DecodeError> {
    time_field(v, key)?.ok_or(DecodeError::Missing(key))
}

/// Money given as a string ("12.30") or a JSON number (12.3).
fn money_value(
    v: &Value,
    field: &'static str,
    currency: Currency,
) -> Result<Option<Money>, DecodeError> {
    let text = match v {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(DecodeError::Invalid {
                field,
                reason: format!("{other} is not an amount"),
            });
        }
    };
    Money::parse(&text, currency)
        .map(Some)
        .ok_or_else(|| DecodeError::Invalid {
            field,
            reason: format!("`{text}` is not an amount"),
        })
}

/// An amount in the shop's currency: `{field}_set.shop_money.amount` when present, else `{field}`.
fn shop_money(
    v: &Value,
    field: &'static str,
    set_field: &'static str,
    currency: Currency,
) -> Result<Option<Money>, DecodeError> {
    if let Some(amount) = v
        .get(set_field)
        .and_then(|s| s.get("shop_money"))
        .and_then(|m| m.get("amount"))
    {
        return money_value(amount, set_field, currency);
    }
    match v.get(field) {
        Some(x) => money_value(x, field, currency),
        None => Ok(None),
    }
}

fn customer(v: &Value) -> Result<Customer, DecodeError> {
    let tags = match v.get("tags") {
        Some(Value::String(s)) => Some(split_tags(s)),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        _ => None,
    };
    let created_at = time_field(v, "created_at")?;
    Ok(Customer {
        platform_id: gid(v, "Customer")?,
        email: str_field(v, "email"),
        first_name: str_field(v, "first_name"),
        last_name: str_field(v, "last_name"),
        tags,
        state: str_field(v, "state"),
        created_at,
        updated_at: time_field(v, "updated_at")?
            .or(created_at)
            .ok_or(DecodeError::Missing("updated_at"))?,
    })
}

/// Shopify's tag string: comma-separated, trimmed.
pub fn split_tags(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn order(v: &Value) -> Result<Order, DecodeError> {
    let currency = currency_field(v, "currency")?.ok_or(DecodeError::Missing("currency"))?;
    let zero = Money::zero(currency);
    let total = shop_money(v, "total_price", "total_price_set", currency)?
        .ok_or(DecodeError::Missing("total_price"))?;
    let current = shop_money(
        v,
        "current_total_price",
        "current_total_price_set",
        currency,
    )?;
    let refunded = current
        .map(|c| Money::new((total.minor - c.minor).max(0), currency))
        .unwrap_or(zero);
    let customer_id = match v.get("customer") {
        Some(c) if c.is_object() => Some(gid(c, "Customer")?),
        _ => None,
    };
    let discount_codes = v
        .get("discount_codes")
        .and_then(Value::as_array)
        .map(|codes| {
            codes
                .iter()
                .filter_map(|c| c.get("code").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let created_at = required_time(v, "created_at")?;
    Ok(Order {
        platform_id: gid(v, "Order")?,
        customer_platform_id: customer_id,
        name: str_field(v, "name"),
        email: str_field(v, "email"),
        subtotal: shop_money(v, "subtotal_price", "subtotal_price_set", currency)?.unwrap_or(zero),
        total,
        discounts: shop_money(v, "total_discounts", "total_discounts_set", currency)?
            .unwrap_or(zero),
        refunded,
        discount_codes,
        financial_status: str_field(v, "financial_status"),
        cancelled_at: time_field(v, "cancelled_at")?,
        created_at,
        updated_at: time_field(v, "updated_at")?.unwrap_or(created_at),
    })
}

/// A currency code field; `Ok(None)` when absent, an error when it is not a code.
fn currency_field(v: &Value, key: &'static str) -> Result<Option<Currency>, DecodeError> {
    match str_field(v, key) {
        None => Ok(None),
        Some(code) => Currency::parse(&code)
            .map(Some)
            .ok_or_else(|| DecodeError::Invalid {
                field: key,
                reason: format!("`{code}` is not a currency code"),
            }),
    }
}

/// Shopify's examples and most shops: the currency of a payload that names none.
const FALLBACK_CURRENCY: &str = "USD";

fn fallback_currency() -> Currency {
    Currency::parse(FALLBACK_CURRENCY).expect("a code")
}

fn refund(v: &Value) -> Result<Refund, DecodeError> {
    let order_id = match v.get("order_id") {
        Some(Value::Number(n)) if n.is_u64() => format!("gid://shopify/Order/{n}"),
        Some(Value::String(s)) if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => {
            format!("gid://shopify/Order/{s}")
        }
        Some(other) => {
            return Err(DecodeError::Invalid {
                field: "order_id",
                reason: format!("{other}"),
            });
        }
        None => return Err(DecodeError::Missing("order_id")),
    };
    // The money that went back: successful refund transactions; without any, the line items.
    // A refund names its currency only on its transactions.
    let mut currency = None;
    let mut amount = 0i64;
    let mut from_transactions = false;
    for t in v
        .get("transactions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = t.get("kind").and_then(Value::as_str).unwrap_or("refund");
        let status = t.get("status").and_then(Value::as_str).unwrap_or("success");
        if kind == "refund" && status == "success" {
            let c = currency_field(t, "currency")?.unwrap_or_else(fallback_currency);
            currency.get_or_insert(c);
            if let Some(m) = money_value(
                t.get("amount").unwrap_or(&Value::Null),
                "transactions.amount",
                c,
            )? {
                amount += m.minor;
                from_transactions = true;
            }
        }
    }
    if !from_transactions {
        for li in v
            .get("refund_line_items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for field in ["subtotal", "total_tax"] {
                if let Some(m) = money_value(
                    li.get(field).unwrap_or(&Value::Null),
                    "refund_line_items",
                    *currency.get_or_insert_with(fallback_currency),
                )? {
                    amount += m.minor;
                }
            }
        }
    }
    Ok(Refund {
        platform_id: gid(v, "Refund")?,
        order_platform_id: order_id,
        amount: Money::new(amount, currency.unwrap_or_else(fallback_currency)),
        created_at: time_field(v, "created_at")?
            .or(time_field(v, "processed_at")?)
            .ok_or(DecodeError::Missing("created_at"))?,
    })
}

fn checkout(v: &Value) -> Result<Checkout, DecodeError> {
    let platform_id = if v.get("id").is_some() || v.get("admin_graphql_api_id").is_some() {
        gid(v, "AbandonedCheckout")?
    } else {
        format!(
            "checkout-token:{}",
            str_field(v, "token").ok_or(DecodeError::Missing("id"))?
        )
    };
    let currency = match currency_field(v, "currency")? {
        Some(c) => c,
        None => currency_field(v, "presentment_currency")?.unwrap_or_else(fallback_currency),
    };
    let customer_id = match v.get("customer") {
        Some(c) if c.is_object() => Some(gid(c, "Customer")?),
        _ => None,
    };
    let created_at = required_time(v, "created_at")?;
    Ok(Checkout {
        platform_id,
        customer_platform_id: customer_id,
        // Shopify names the checkout's customer; the email is personal data Lifecycle does
        // not need there (and the API's checkouts are read without it).
        email: None,
        total: shop_money(v, "total_price", "total_price_set", currency)?
            .unwrap_or(Money::zero(currency)),
        completed_at: time_field(v, "completed_at")?,
        created_at,
        updated_at: time_field(v, "updated_at")?.unwrap_or(created_at),
    })
}

fn privacy(v: &Value, orders_key: &str) -> Result<PrivacyRequest, DecodeError> {
    let customer = v.get("customer").filter(|c| c.is_object());
    let orders = v
        .get(orders_key)
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .map(|id| match id {
                    Value::Number(n) if n.is_u64() => Ok(format!("gid://shopify/Order/{n}")),
                    Value::String(s) if s.starts_with("gid://") => Ok(s.clone()),
                    other => Err(DecodeError::Invalid {
                        field: "orders",
                        reason: format!("{other}"),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(PrivacyRequest {
        customer_platform_id: customer.map(|c| gid(c, "Customer")).transpose()?,
        email: customer.and_then(|c| str_field(c, "email")),
        order_platform_ids: orders,
        request_id: v
            .get("data_request")
            .and_then(|d| d.get("id"))
            .map(|id| id.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_payload_with_strings_numbers_and_unknown_fields() {
        let body = br#"{"id":820982911946154508,"admin_graphql_api_id":"gid://shopify/Order/820982911946154508",
          "created_at":"2026-01-10T10:00:00-05:00","updated_at":"2026-01-10T11:00:00-05:00","currency":"USD",
          "total_price":"199.00","current_total_price":189,"subtotal_price":"180.00","total_discounts":"10.00",
          "discount_codes":[{"code":"SAVE10","amount":"10.00","type":"fixed_amount"}],
          "financial_status":"partially_refunded","cancelled_at":null,"something_new":{"x":1},
          "customer":{"id":706405506930370084,"email":"bob@example.com"}}"#;
        let events = decode("orders/updated", body).unwrap();
        let Event::Data(DataEvent::OrderUpserted(o)) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!((o.total.minor, o.total.currency.as_str()), (19900, "USD"));
        assert_eq!(o.refunded.minor, 1000);
        assert_eq!(o.discount_codes, vec!["SAVE10"]);
        assert_eq!(
            o.customer_platform_id.as_deref(),
            Some("gid://shopify/Customer/706405506930370084")
        );
        assert_eq!(o.created_at.to_rfc3339(), "2026-01-10T15:00:00+00:00");
    }

    #[test]
    fn strict_where_it_matters() {
        assert!(matches!(
            decode("orders/create", b"not json"),
            Err(DecodeError::NotJson(_))
        ));
        assert!(matches!(
            decode("orders/create", b"[1,2]"),
            Err(DecodeError::NotJson(_))
        ));
        let bad_amount = br#"{"id":1,"currency":"USD","total_price":"12,00","created_at":"2026-01-01T00:00:00Z"}"#;
        assert!(matches!(
            decode("orders/create", bad_amount),
            Err(DecodeError::Invalid {
                field: "total_price",
                ..
            })
        ));
        let bad_id = br#"{"id":"abc","email":"x@example.com","updated_at":"2026-01-01T00:00:00Z"}"#;
        assert!(matches!(
            decode("customers/update", bad_id),
            Err(DecodeError::Invalid { field: "id", .. })
        ));
        assert!(matches!(
            decode("customers/update", br#"{"email":"x"}"#),
            Err(DecodeError::Missing("id"))
        ));
        assert!(matches!(
            decode("products/create", b"{}"),
            Err(DecodeError::UnknownTopic(_))
        ));
    }

    #[test]
    fn customer_without_tags_keeps_tags_unknown() {
        let body = br#"{"id":5,"email":"a@example.com","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-02T00:00:00Z"}"#;
        let Event::Data(DataEvent::CustomerUpserted(c)) =
            &decode("customers/create", body).unwrap()[0]
        else {
            panic!()
        };
        assert_eq!(c.tags, None);
        let body =
            br#"{"id":5,"tags":"vip, lifecycle:champions ,","updated_at":"2026-01-02T00:00:00Z"}"#;
        let Event::Data(DataEvent::CustomerUpserted(c)) =
            &decode("customers/update", body).unwrap()[0]
        else {
            panic!()
        };
        assert_eq!(
            c.tags.as_deref(),
            Some(&["vip".to_string(), "lifecycle:champions".to_string()][..])
        );
    }

    #[test]
    fn refunds_sum_successful_transactions() {
        let body = br#"{"id":890088186047892319,"order_id":820982911946154508,"created_at":"2026-01-10T12:00:00Z",
          "refund_line_items":[{"subtotal":89.99,"total_tax":0.0}],
          "transactions":[{"kind":"refund","status":"success","amount":"10.00","currency":"USD"},
                          {"kind":"refund","status":"failure","amount":"5.00","currency":"USD"}]}"#;
        let Event::Data(DataEvent::RefundCreated(r)) = &decode("refunds/create", body).unwrap()[0]
        else {
            panic!()
        };
        assert_eq!((r.amount.minor, r.amount.currency.as_str()), (1000, "USD"));
        assert_eq!(
            r.order_platform_id,
            "gid://shopify/Order/820982911946154508"
        );
    }
}
