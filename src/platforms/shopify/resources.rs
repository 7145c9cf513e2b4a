//! What the sync reads from the Admin API: one query per resource, and the conversion of a
//! GraphQL node (from a page or a bulk operation's JSONL) into a canonical event.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::{Checkout, Currency, Customer, DataEvent, Money, Order};
pub use crate::platforms::Resource;

/// How each resource is read through the Admin GraphQL API.
pub trait Gql: Copy {
    fn connection(self) -> &'static str;
    fn count_field(self) -> &'static str;
    fn fields(self) -> &'static str;
    fn node_cost(self) -> u32;
    fn page_size(self) -> u32;
    fn page_cost(self) -> f64;
    fn page_query(self) -> String;
    fn count_query(self) -> String;
    fn bulk_query(self) -> String;
    fn page_of(self, data: &Value) -> Option<&Value>;
    fn count_of(self, data: &Value) -> Option<i64>;
    fn to_event(self, node: &Value) -> Result<DataEvent, String>;
}

impl Gql for Resource {
    fn connection(self) -> &'static str {
        match self {
            Resource::Customers => "customers",
            Resource::Orders => "orders",
            Resource::Checkouts => "abandonedCheckouts",
        }
    }

    fn count_field(self) -> &'static str {
        match self {
            Resource::Customers => "customersCount",
            Resource::Orders => "ordersCount",
            Resource::Checkouts => "abandonedCheckoutsCount",
        }
    }

    /// The node's fields. Money comes as the shop-currency amount.
    fn fields(self) -> &'static str {
        match self {
            Resource::Customers => "id email firstName lastName tags state createdAt updatedAt",
            Resource::Orders => {
                "id name email createdAt updatedAt cancelledAt displayFinancialStatus currencyCode discountCodes \
                 customer { id } \
                 totalPriceSet { shopMoney { amount currencyCode } } \
                 subtotalPriceSet { shopMoney { amount } } \
                 totalDiscountsSet { shopMoney { amount } } \
                 totalRefundedSet { shopMoney { amount } }"
            }
            Resource::Checkouts => {
                "id createdAt updatedAt completedAt customer { id } totalPriceSet { shopMoney { amount currencyCode } }"
            }
        }
    }

    /// Cost of one node: 1 for the node and 1 for each object inside it (Shopify's rule).
    fn node_cost(self) -> u32 {
        match self {
            Resource::Customers => 1,
            Resource::Orders => 1 + 1 + 4 * 2,
            Resource::Checkouts => 1 + 1 + 2,
        }
    }

    /// The largest page that keeps a query under Shopify's 1000-point single-query limit,
    /// at most 250 (the platform's page maximum).
    fn page_size(self) -> u32 {
        ((998 / self.node_cost()) - 1).min(250)
    }

    /// Requested cost of one page query.
    fn page_cost(self) -> f64 {
        (2 + self.page_size() * self.node_cost()) as f64
    }

    /// Paged query; `$query` filters by `updated_at` for incremental syncs. Abandoned checkouts
    /// cannot be sorted by update time (Shopify has no such sort key), so they page by id.
    fn page_query(self) -> String {
        let sort = match self {
            Resource::Checkouts => "",
            _ => ", sortKey: UPDATED_AT",
        };
        format!(
            "query($after: String, $query: String) {{ {conn}(first: {n}, after: $after, query: $query{sort}) {{ nodes {{ {fields} }} pageInfo {{ hasNextPage endCursor }} }} }}",
            conn = self.connection(),
            n = self.page_size(),
            fields = self.fields(),
        )
    }

    fn count_query(self) -> String {
        format!(
            "{{ {}(limit: null) {{ count precision }} }}",
            self.count_field()
        )
    }

    fn bulk_query(self) -> String {
        format!(
            "{{ {conn} {{ edges {{ node {{ {fields} }} }} }} }}",
            conn = self.connection(),
            fields = self.fields()
        )
    }

    /// The connection's object in a page response.
    fn page_of(self, data: &Value) -> Option<&Value> {
        data.get(self.connection())
    }

    fn count_of(self, data: &Value) -> Option<i64> {
        data.get(self.count_field())
            .and_then(|c| c.get("count"))
            .and_then(Value::as_i64)
    }

    fn to_event(self, node: &Value) -> Result<DataEvent, String> {
        match self {
            Resource::Customers => customer(node).map(DataEvent::CustomerUpserted),
            Resource::Orders => order(node).map(DataEvent::OrderUpserted),
            Resource::Checkouts => checkout(node).map(DataEvent::CheckoutUpserted),
        }
    }
}

/// The `updated_at` search filter for incremental syncs.
pub fn updated_since(since: DateTime<Utc>) -> String {
    format!(
        "updated_at:>='{}'",
        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
}

fn id(v: &Value) -> Result<String, String> {
    s(v, "id")
        .filter(|i| i.starts_with("gid://shopify/"))
        .ok_or_else(|| format!("node without a GID id: {v}"))
}

fn time(v: &Value, k: &str) -> Result<Option<DateTime<Utc>>, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) => DateTime::parse_from_rfc3339(t)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| format!("{k}: {e}")),
        Some(other) => Err(format!("{k}: {other} is not a timestamp")),
    }
}

fn money(v: &Value, field: &str, currency: Currency) -> Result<Money, String> {
    match v.get(field).and_then(|m| m.pointer("/shopMoney/amount")) {
        None | Some(Value::Null) => Ok(Money::zero(currency)),
        Some(Value::String(a)) => {
            Money::parse(a, currency).ok_or_else(|| format!("{field}: `{a}` is not an amount"))
        }
        Some(Value::Number(n)) => {
            Money::parse(&n.to_string(), currency).ok_or_else(|| format!("{field}: {n}"))
        }
        Some(other) => Err(format!("{field}: {other}")),
    }
}

fn customer(v: &Value) -> Result<Customer, String> {
    let created = time(v, "createdAt")?;
    Ok(Customer {
        platform_id: id(v)?,
        email: s(v, "email"),
        first_name: s(v, "firstName"),
        last_name: s(v, "lastName"),
        tags: v.get("tags").and_then(Value::as_array).map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        }),
        state: s(v, "state").map(|x| x.to_ascii_lowercase()),
        created_at: created,
        updated_at: time(v, "updatedAt")?
            .or(created)
            .ok_or("customer without updatedAt")?,
    })
}

fn order(v: &Value) -> Result<Order, String> {
    let currency = v
        .pointer("/totalPriceSet/shopMoney/currencyCode")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| s(v, "currencyCode"))
        .ok_or("order without currency")?;
    let currency =
        Currency::parse(&currency).ok_or_else(|| format!("`{currency}` is not a currency"))?;
    let created = time(v, "createdAt")?.ok_or("order without createdAt")?;
    Ok(Order {
        platform_id: id(v)?,
        customer_platform_id: v
            .get("customer")
            .filter(|c| c.is_object())
            .map(id)
            .transpose()?,
        name: s(v, "name"),
        email: s(v, "email"),
        subtotal: money(v, "subtotalPriceSet", currency)?,
        total: money(v, "totalPriceSet", currency)?,
        discounts: money(v, "totalDiscountsSet", currency)?,
        refunded: money(v, "totalRefundedSet", currency)?,
        discount_codes: v
            .get("discountCodes")
            .and_then(Value::as_array)
            .map(|c| {
                c.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        financial_status: s(v, "displayFinancialStatus").map(|x| x.to_ascii_lowercase()),
        cancelled_at: time(v, "cancelledAt")?,
        updated_at: time(v, "updatedAt")?.unwrap_or(created),
        created_at: created,
    })
}

fn checkout(v: &Value) -> Result<Checkout, String> {
    let currency = v
        .pointer("/totalPriceSet/shopMoney/currencyCode")
        .and_then(Value::as_str)
        .unwrap_or("USD");
    let currency =
        Currency::parse(currency).ok_or_else(|| format!("`{currency}` is not a currency"))?;
    let created = time(v, "createdAt")?.ok_or("checkout without createdAt")?;
    Ok(Checkout {
        platform_id: id(v)?,
        customer_platform_id: v
            .get("customer")
            .filter(|c| c.is_object())
            .map(id)
            .transpose()?,
        email: None,
        total: money(v, "totalPriceSet", currency)?,
        completed_at: time(v, "completedAt")?,
        updated_at: time(v, "updatedAt")?.unwrap_or(created),
        created_at: created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_fit_the_single_query_limit() {
        for r in Resource::ALL {
            assert!(r.page_cost() <= 1000.0, "{r:?} {}", r.page_cost());
            assert!(r.page_size() >= 50);
        }
        assert_eq!(Resource::Customers.page_size(), 250);
    }

    #[test]
    fn order_node() {
        let v: Value = serde_json::from_str(
            r#"{"id":"gid://shopify/Order/1","createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-02T00:00:00Z",
            "cancelledAt":null,"displayFinancialStatus":"PAID","currencyCode":"EUR","discountCodes":["X"],
            "customer":{"id":"gid://shopify/Customer/2"},"totalPriceSet":{"shopMoney":{"amount":"12.50","currencyCode":"USD"}},
            "subtotalPriceSet":{"shopMoney":{"amount":"10.00"}},"totalDiscountsSet":{"shopMoney":{"amount":"1.00"}},
            "totalRefundedSet":{"shopMoney":{"amount":"0.0"}}}"#,
        )
        .unwrap();
        let DataEvent::OrderUpserted(o) = Resource::Orders.to_event(&v).unwrap() else {
            panic!()
        };
        assert_eq!(
            (
                o.total.minor,
                o.total.currency.as_str(),
                o.discount_codes.len()
            ),
            (1250, "USD", 1)
        );
        assert!(
            Resource::Orders
                .to_event(&serde_json::json!({"id": 5}))
                .is_err()
        );
    }
}
