//! Reads a shop's mirrored customers, orders, refunds and abandoned checkouts into the core's
//! [`ShopInput`]. Deleted and redacted customers and deleted orders are left out; cancelled and
//! refunded orders go in as such, and the core nets them out. Orders are in the shop's currency
//! (the mirror stores shop money), converted from minor units here.
//!
//! Rows are streamed into a [`Builder`], never held as database rows: a shop's orders are
//! millions of rows, and holding them before converting costs several times the memory of what
//! is kept. Three readers feed the one builder: rows through the pool (one customer), a whole
//! SQLite shop through its own read-only connection ([`super::load_sqlite`]), because sqlx
//! hands every SQLite row from its worker thread to the async task one at a time, which cost
//! more than everything else in a run (measured: 8 s of a 10 s dry run at 100,000 customers),
//! and a whole PostgreSQL shop through `COPY ... TO STDOUT` ([`super::load_postgres`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, QueryResult, StreamTrait, Value};

use super::money;
use crate::core::analytics::{CheckoutFact, OrderFact, ShopInput};
use crate::store::{Db, stmt};

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
pub async fn load_shop(db: &Db, shop_id: i64) -> Result<ShopData, DbErr> {
    match db.get_database_backend() {
        DatabaseBackend::Sqlite => super::load_sqlite::load_shop(db, shop_id).await,
        DatabaseBackend::Postgres => super::load_postgres::load_shop(db, shop_id).await,
        _ => load(db, shop_id, None).await,
    }
}

/// The whole shop through the pool's rows, to hold the other readers against.
#[cfg(test)]
pub(super) async fn load_through_pool(db: &Db, shop_id: i64) -> Result<ShopData, DbErr> {
    load(db, shop_id, None).await
}

/// One customer (for near-real-time re-scoring); `None` when the customer is unknown,
/// deleted or redacted.
pub async fn load_customer<D>(
    db: &D,
    shop_id: i64,
    platform_id: &str,
) -> Result<Option<ShopData>, DbErr>
where
    D: ConnectionTrait + StreamTrait,
{
    let data = load(db, shop_id, Some(platform_id)).await?;
    Ok((!data.customers.is_empty()).then_some(data))
}

/// The four reads, with `/*customer*/` where the one-customer filter goes. Their columns are
/// read by position, in the order of the `Builder` method each row goes to.
pub(super) mod sql {
    pub const CUSTOMERS: &str = "SELECT platform_id, email, tags, platform_created_at FROM customers \
         WHERE shop_id = ? /*customer*/ AND deleted_at IS NULL AND redacted_at IS NULL";
    pub const REFUNDS: &str = "SELECT order_platform_id, MAX(platform_created_at) FROM refunds \
         WHERE shop_id = ? GROUP BY order_platform_id";
    /// For one customer, only the refunds of their orders.
    pub const CUSTOMER_REFUNDS: &str = "SELECT order_platform_id, MAX(platform_created_at) FROM refunds \
         WHERE shop_id = ? AND order_platform_id IN \
         (SELECT platform_id FROM orders WHERE shop_id = ? AND customer_platform_id = ?) \
         GROUP BY order_platform_id";
    /// The order id is read only for refunded orders.
    pub const ORDERS: &str = "SELECT customer_platform_id, currency, total_minor, refunded_minor, \
         discount_codes, cancelled_at, platform_created_at, platform_updated_at, \
         CASE WHEN refunded_minor > 0 THEN platform_id END FROM orders \
         WHERE shop_id = ? /*customer*/ AND deleted_at IS NULL /*order*/";
    pub const CHECKOUTS: &str = "SELECT customer_platform_id, platform_created_at FROM checkouts \
         WHERE shop_id = ? /*customer*/ AND completed_at IS NULL \
         AND customer_platform_id IS NOT NULL";

    /// The statement text for the whole shop or one customer's rows. A whole shop's orders are
    /// read in the order of the (shop, platform id) index: on SQLite that reads the table about
    /// in storage order, where the (shop, customer) index would seek once per row (measured: 4x
    /// slower at 1,000,000 orders). One customer's go through the (shop, customer) index.
    pub fn scoped(sql: &str, column: &str, customer: bool) -> String {
        if customer {
            sql.replace("/*customer*/", &format!("AND {column} = ?"))
                .replace("/*order*/", "")
        } else {
            sql.replace("/*customer*/", "")
                .replace("/*order*/", "ORDER BY platform_id")
        }
    }
}

/// One order row, borrowed from whichever reader produced it.
pub(super) struct OrderRec<'a> {
    pub customer: Option<&'a str>,
    pub currency: &'a str,
    pub total: i64,
    pub refunded: i64,
    pub discount_codes: &'a str,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The order's id, given only when it has refunds.
    pub refunded_id: Option<&'a str>,
}

/// Accumulates the rows of one shop into [`ShopData`]. Rows must come table by table in the
/// order of its methods: customers, refunds, orders, checkouts.
#[derive(Default)]
pub(super) struct Builder {
    customers: Vec<CustomerRow>,
    index: HashMap<Box<str>, u32>,
    extras: Vec<CustomerExtras>,
    refunded_at: HashMap<String, DateTime<Utc>>,
    currencies: Vec<(String, usize)>,
    /// Amounts are still minor units (exact in an f64 below 2^53) until `finish` knows the
    /// shop's currency and converts them in place: no second vector of ten million orders.
    orders: Vec<OrderFact>,
    used_codes: HashSet<String>,
    checkouts: Vec<CheckoutFact>,
}

impl Builder {
    pub fn customer(
        &mut self,
        platform_id: String,
        email: Option<String>,
        tags: Option<&str>,
        created_at: Option<DateTime<Utc>>,
    ) {
        self.customers.push(CustomerRow {
            platform_id,
            email,
            tags: tags
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default(),
            created_at,
        });
    }

    /// Called once, after the last customer.
    pub fn customers_done(&mut self) {
        // The dense index is in byte order of the platform id, whatever the database's collation.
        self.customers
            .sort_unstable_by(|a, b| a.platform_id.cmp(&b.platform_id));
        self.index = self
            .customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.platform_id.as_str().into(), i as u32))
            .collect();
        self.extras = vec![CustomerExtras::default(); self.customers.len()];
    }

    pub fn refund(&mut self, order_id: &str, at: Option<DateTime<Utc>>) {
        if let Some(at) = at {
            self.refunded_at.insert(order_id.to_string(), at);
        }
    }

    pub fn order(&mut self, o: OrderRec<'_>) {
        // Most orders have no code; the empty list is always stored as `[]`.
        let discounted = o.discount_codes != "[]" && {
            let codes: Vec<String> = serde_json::from_str(o.discount_codes).unwrap_or_default();
            self.used_codes
                .extend(codes.iter().map(|c| c.trim().to_ascii_uppercase()));
            !codes.is_empty()
        };
        // A guest order, or one of a customer we do not have (yet) or deleted.
        let Some(&ci) = o.customer.and_then(|c| self.index.get(c)) else {
            return;
        };
        match self.currencies.iter_mut().find(|(c, _)| c == o.currency) {
            Some((_, n)) => *n += 1,
            None => self.currencies.push((o.currency.to_string(), 1)),
        }
        if o.cancelled_at.is_some() || o.refunded > 0 {
            let e = &mut self.extras[ci as usize];
            e.refunds_or_cancellations += 1;
            // A refund without a refund record (older payloads) dates from the order's update.
            let refunded_at = (o.refunded > 0).then(|| {
                o.refunded_id
                    .and_then(|id| self.refunded_at.get(id).copied())
                    .unwrap_or(o.updated_at)
            });
            let when = o.cancelled_at.into_iter().chain(refunded_at).max();
            e.last_refund_or_cancellation = e.last_refund_or_cancellation.max(when);
        }
        self.orders.push(OrderFact {
            customer: ci,
            at: o.created_at,
            amount: o.total.max(0) as f64,
            refunded: o.refunded.max(0) as f64,
            cancelled: o.cancelled_at.is_some(),
            discounted,
        });
    }

    pub fn checkout(&mut self, customer: &str, at: DateTime<Utc>) {
        let Some(&ci) = self.index.get(customer) else {
            return;
        };
        let e = &mut self.extras[ci as usize];
        e.last_abandoned_checkout = e.last_abandoned_checkout.max(Some(at));
        self.checkouts.push(CheckoutFact { customer: ci, at });
    }

    pub fn finish(self) -> ShopData {
        // The shop's currency is what its orders are in; the mirror keeps shop money.
        let currency = self
            .currencies
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            .map(|(c, _)| c)
            .unwrap_or_else(|| "USD".to_string());
        let exp = money::exponent(&currency);
        let mut orders = self.orders;
        for o in &mut orders {
            o.amount = money::to_major(o.amount as i64, exp);
            o.refunded = money::to_major(o.refunded as i64, exp);
        }
        orders.sort_by_key(|o| (o.customer, o.at));
        let mut checkouts = self.checkouts;
        checkouts.sort_by_key(|c| (c.customer, c.at));
        ShopData {
            currency,
            input: ShopInput {
                customers: self.customers.len() as u32,
                orders,
                abandoned_checkouts: checkouts,
            },
            customers: self.customers,
            extras: self.extras,
            used_codes: self.used_codes,
        }
    }
}

/// Streams every row of `statement` into `each`, reading columns by position.
async fn each_row<D>(
    db: &D,
    statement: sea_orm::Statement,
    mut each: impl FnMut(QueryResult) -> Result<(), DbErr>,
) -> Result<(), DbErr>
where
    D: ConnectionTrait + StreamTrait,
{
    let rows = db.stream_raw(statement).await?;
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = rows.next().await {
        each(row?)?;
    }
    Ok(())
}

/// The shop (or one customer) through the connection's own rows.
async fn load<D>(db: &D, shop_id: i64, customer: Option<&str>) -> Result<ShopData, DbErr>
where
    D: ConnectionTrait + StreamTrait,
{
    let backend = ConnectionTrait::get_database_backend(db);
    let scoped = |sql: &str, column: &str| {
        let mut values: Vec<Value> = vec![shop_id.into()];
        values.extend(customer.map(Value::from));
        stmt(
            backend,
            &sql::scoped(sql, column, customer.is_some()),
            values,
        )
    };
    let mut b = Builder::default();
    each_row(db, scoped(sql::CUSTOMERS, "platform_id"), |r| {
        let tags: Option<String> = r.try_get_by_index(2)?;
        b.customer(
            r.try_get_by_index(0)?,
            r.try_get_by_index(1)?,
            tags.as_deref(),
            r.try_get_by_index(3)?,
        );
        Ok(())
    })
    .await?;
    b.customers_done();

    let refunds = match customer {
        Some(c) => stmt(
            backend,
            sql::CUSTOMER_REFUNDS,
            vec![shop_id.into(), shop_id.into(), c.into()],
        ),
        None => stmt(backend, sql::REFUNDS, vec![shop_id.into()]),
    };
    each_row(db, refunds, |r| {
        let id: String = r.try_get_by_index(0)?;
        b.refund(&id, r.try_get_by_index(1)?);
        Ok(())
    })
    .await?;

    each_row(db, scoped(sql::ORDERS, "customer_platform_id"), |r| {
        let customer: Option<String> = r.try_get_by_index(0)?;
        let currency: String = r.try_get_by_index(1)?;
        let codes: String = r.try_get_by_index(4)?;
        let refunded_id: Option<String> = r.try_get_by_index(8)?;
        b.order(OrderRec {
            customer: customer.as_deref(),
            currency: &currency,
            total: r.try_get_by_index(2)?,
            refunded: r.try_get_by_index(3)?,
            discount_codes: &codes,
            cancelled_at: r.try_get_by_index(5)?,
            created_at: r.try_get_by_index(6)?,
            updated_at: r.try_get_by_index(7)?,
            refunded_id: refunded_id.as_deref(),
        });
        Ok(())
    })
    .await?;

    each_row(db, scoped(sql::CHECKOUTS, "customer_platform_id"), |r| {
        let customer: String = r.try_get_by_index(0)?;
        b.checkout(&customer, r.try_get_by_index(1)?);
        Ok(())
    })
    .await?;
    Ok(b.finish())
}
