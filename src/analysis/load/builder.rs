//! What a shop's rows become: the [`Builder`] every reader feeds, table by table, and the
//! [`ShopData`] it finishes into; and the reads themselves ([`sql`]), shared by every reader.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::analysis::money;
use crate::core::analytics::{CheckoutFact, OrderFact, ShopInput};

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

/// The four reads, with `/*customer*/` where the one-customer filter goes. Their columns are
/// read by position, in the order of the `Builder` method each row goes to.
pub mod sql {
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
