//! Reads a shop's mirrored customers, orders, refunds and abandoned checkouts into the core's
//! [`ShopInput`]. Deleted and redacted customers and deleted orders are left out; cancelled and
//! refunded orders go in as such, and the core nets them out. Orders are in the shop's currency
//! (the mirror stores shop money), converted from minor units here.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::money;
use crate::core::analytics::{CheckoutFact, OrderFact, ShopInput};
use crate::store::stmt;

/// A customer as the segment job needs it.
#[derive(Debug, Clone)]
pub struct CustomerRow {
    pub platform_id: String,
    pub email: Option<String>,
    /// Tags as the platform last reported them (merchant's and ours).
    pub tags: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
}

/// Per-customer figures the core's features do not carry.
#[derive(Debug, Clone, Default)]
pub struct CustomerExtras {
    pub refunds_or_cancellations: u32,
    pub last_refund_or_cancellation: Option<DateTime<Utc>>,
    pub last_abandoned_checkout: Option<DateTime<Utc>>,
}

/// A shop's data, with customers in a dense index (sorted by platform id).
#[derive(Debug, Default)]
pub struct ShopData {
    pub currency: String,
    pub customers: Vec<CustomerRow>,
    pub extras: Vec<CustomerExtras>,
    pub input: ShopInput,
    /// Discount codes used by any order (upper-case): a code in here is redeemed.
    pub used_codes: HashSet<String>,
}

impl ShopData {
    pub fn index_of(&self, platform_id: &str) -> Option<usize> {
        self.customers
            .binary_search_by(|c| c.platform_id.as_str().cmp(platform_id))
            .ok()
    }
}

/// The whole shop.
pub async fn load_shop(db: &impl ConnectionTrait, shop_id: i64) -> Result<ShopData, DbErr> {
    load(db, shop_id, None).await
}

/// One customer (for near-real-time re-scoring); `None` when the customer is unknown,
/// deleted or redacted.
pub async fn load_customer(
    db: &impl ConnectionTrait,
    shop_id: i64,
    platform_id: &str,
) -> Result<Option<ShopData>, DbErr> {
    let data = load(db, shop_id, Some(platform_id)).await?;
    Ok((!data.customers.is_empty()).then_some(data))
}

async fn rows(
    db: &impl ConnectionTrait,
    sql: &str,
    shop_id: i64,
    customer: Option<&str>,
) -> Result<Vec<QueryResult>, DbErr> {
    let mut values: Vec<Value> = vec![shop_id.into()];
    let sql = match customer {
        Some(c) => {
            values.push(c.into());
            // The customers table names the id `platform_id`; the others name the owner.
            let column = if sql.contains("FROM customers") {
                "platform_id"
            } else {
                "customer_platform_id"
            };
            sql.replace("/*customer*/", &format!("AND {column} = ?"))
        }
        None => sql.replace("/*customer*/", ""),
    };
    db.query_all_raw(stmt(db.get_database_backend(), &sql, values))
        .await
}

async fn load(
    db: &impl ConnectionTrait,
    shop_id: i64,
    customer: Option<&str>,
) -> Result<ShopData, DbErr> {
    let customer_rows = rows(
        db,
        "SELECT platform_id AS customer_platform_id, email, tags, platform_created_at FROM customers \
         WHERE shop_id = ? /*customer*/ AND deleted_at IS NULL AND redacted_at IS NULL \
         ORDER BY platform_id",
        shop_id,
        customer,
    )
    .await?;
    let mut customers = Vec::with_capacity(customer_rows.len());
    for r in customer_rows {
        let tags: Option<String> = r.try_get("", "tags")?;
        customers.push(CustomerRow {
            platform_id: r.try_get("", "customer_platform_id")?,
            email: r.try_get("", "email")?,
            tags: tags
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
            created_at: r.try_get("", "platform_created_at")?,
        });
    }
    // Sorted by the database's collation; the dense index relies on byte order.
    customers.sort_by(|a, b| a.platform_id.cmp(&b.platform_id));
    let index: HashMap<&str, u32> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.platform_id.as_str(), i as u32))
        .collect();
    let mut extras = vec![CustomerExtras::default(); customers.len()];

    // For one customer, only the refunds of their orders.
    let refund_sql = match customer {
        Some(_) => {
            "SELECT order_platform_id, MAX(platform_created_at) AS at FROM refunds WHERE shop_id = ? \
             AND order_platform_id IN (SELECT platform_id FROM orders WHERE shop_id = ? AND customer_platform_id = ?) \
             GROUP BY order_platform_id"
        }
        None => {
            "SELECT order_platform_id, MAX(platform_created_at) AS at FROM refunds WHERE shop_id = ? \
             GROUP BY order_platform_id"
        }
    };
    let mut refund_values: Vec<Value> = vec![shop_id.into()];
    if let Some(c) = customer {
        refund_values.push(shop_id.into());
        refund_values.push(c.into());
    }
    let refund_rows = db
        .query_all_raw(stmt(db.get_database_backend(), refund_sql, refund_values))
        .await?;
    let mut refunded_at: HashMap<String, DateTime<Utc>> = HashMap::new();
    for r in refund_rows {
        if let Some(at) = r.try_get::<Option<DateTime<Utc>>>("", "at")? {
            refunded_at.insert(r.try_get("", "order_platform_id")?, at);
        }
    }

    let order_rows = rows(
        db,
        "SELECT platform_id, customer_platform_id, currency, total_minor, refunded_minor, \
         discount_codes, cancelled_at, platform_created_at, platform_updated_at FROM orders \
         WHERE shop_id = ? /*customer*/ AND deleted_at IS NULL AND customer_platform_id IS NOT NULL",
        shop_id,
        customer,
    )
    .await?;
    let mut currencies: HashMap<String, usize> = HashMap::new();
    let mut raw = Vec::with_capacity(order_rows.len());
    let mut used_codes = HashSet::new();
    for r in order_rows {
        let cust: String = r.try_get("", "customer_platform_id")?;
        let codes: String = r.try_get("", "discount_codes")?;
        let codes: Vec<String> = serde_json::from_str(&codes).unwrap_or_default();
        used_codes.extend(codes.iter().map(|c| c.trim().to_ascii_uppercase()));
        let Some(&ci) = index.get(cust.as_str()) else {
            continue; // an order of a customer we do not have (yet), or a deleted one
        };
        let currency: String = r.try_get("", "currency")?;
        *currencies.entry(currency).or_default() += 1;
        let platform_id: String = r.try_get("", "platform_id")?;
        let cancelled_at: Option<DateTime<Utc>> = r.try_get("", "cancelled_at")?;
        let total: i64 = r.try_get("", "total_minor")?;
        let refunded: i64 = r.try_get("", "refunded_minor")?;
        let at: DateTime<Utc> = r.try_get("", "platform_created_at")?;
        let updated: DateTime<Utc> = r.try_get("", "platform_updated_at")?;
        if cancelled_at.is_some() || refunded > 0 {
            let e = &mut extras[ci as usize];
            e.refunds_or_cancellations += 1;
            // A refund without a refund record (older payloads) dates from the order's update.
            let when = cancelled_at
                .into_iter()
                .chain(
                    (refunded > 0)
                        .then(|| refunded_at.get(&platform_id).copied().unwrap_or(updated)),
                )
                .max();
            e.last_refund_or_cancellation = e.last_refund_or_cancellation.max(when);
        }
        raw.push((
            ci,
            at,
            total,
            refunded,
            cancelled_at.is_some(),
            !codes.is_empty(),
        ));
    }
    // The shop's currency is what its orders are in; the mirror keeps shop money.
    let currency = currencies
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        .map(|(c, _)| c)
        .unwrap_or_else(|| "USD".to_string());
    let exp = money::exponent(&currency);
    let mut orders: Vec<OrderFact> = raw
        .into_iter()
        .map(
            |(customer, at, total, refunded, cancelled, discounted)| OrderFact {
                customer,
                at,
                amount: money::to_major(total.max(0), exp),
                refunded: money::to_major(refunded.max(0), exp),
                cancelled,
                discounted,
            },
        )
        .collect();
    orders.sort_by_key(|o| (o.customer, o.at));

    let checkout_rows = rows(
        db,
        "SELECT customer_platform_id, platform_created_at FROM checkouts \
         WHERE shop_id = ? /*customer*/ AND completed_at IS NULL AND customer_platform_id IS NOT NULL",
        shop_id,
        customer,
    )
    .await?;
    let mut checkouts = Vec::with_capacity(checkout_rows.len());
    for r in checkout_rows {
        let cust: String = r.try_get("", "customer_platform_id")?;
        let Some(&ci) = index.get(cust.as_str()) else {
            continue;
        };
        let at: DateTime<Utc> = r.try_get("", "platform_created_at")?;
        let e = &mut extras[ci as usize];
        e.last_abandoned_checkout = e.last_abandoned_checkout.max(Some(at));
        checkouts.push(CheckoutFact { customer: ci, at });
    }
    checkouts.sort_by_key(|c| (c.customer, c.at));
    drop(index);

    Ok(ShopData {
        currency,
        input: ShopInput {
            customers: customers.len() as u32,
            orders,
            abandoned_checkouts: checkouts,
        },
        customers,
        extras,
        used_codes,
    })
}
