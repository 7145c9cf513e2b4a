//! `apply`: the only code that writes customers, orders, refunds and checkouts. A batch of
//! canonical events becomes multi-row upserts in which a row changes only when the incoming
//! `updated_at` is newer, so duplicates, replays and out-of-order deliveries change nothing.
//! An order may name a customer we have not seen yet: it is kept, and joins the customer by
//! platform id when the customer arrives.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbErr, Value};

use crate::model::{Checkout, Customer, DataEvent, Order, Refund};
use crate::store::stmt;

/// Rows per multi-row statement: well under SQLite's parameter limit.
const CHUNK: usize = 400;

/// What a batch changed, for sync reports and logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub customers: u64,
    pub orders: u64,
    pub refunds: u64,
    pub checkouts: u64,
    pub deleted: u64,
}

impl Applied {
    pub fn total(&self) -> u64 {
        self.customers + self.orders + self.refunds + self.checkouts + self.deleted
    }
}

/// Applies the data events of a batch for one shop. Lifecycle events (uninstall, privacy) are
/// handled by `ingest::lifecycle`; passing them here is a programming error reported as such.
pub async fn apply(
    db: &impl ConnectionTrait,
    shop_id: i64,
    events: &[DataEvent],
) -> Result<Applied, DbErr> {
    let mut customers = Vec::new();
    let mut orders = Vec::new();
    let mut refunds = Vec::new();
    let mut checkouts = Vec::new();
    let mut applied = Applied::default();
    for e in events {
        match e {
            DataEvent::CustomerUpserted(c) => customers.push(c),
            DataEvent::OrderUpserted(o) => orders.push(o),
            DataEvent::RefundCreated(r) => refunds.push(r),
            DataEvent::CheckoutUpserted(c) => checkouts.push(c),
            DataEvent::CustomerDeleted { platform_id } => {
                applied.deleted += mark_deleted(db, "customers", shop_id, platform_id).await?;
            }
            DataEvent::OrderDeleted { platform_id } => {
                applied.deleted += mark_deleted(db, "orders", shop_id, platform_id).await?;
            }
            DataEvent::CheckoutRemoved { platform_id } => {
                applied.deleted += remove_checkout(db, shop_id, platform_id).await?;
            }
        }
    }
    for chunk in customers.chunks(CHUNK) {
        applied.customers += upsert_customers(db, shop_id, chunk).await?;
    }
    for chunk in orders.chunks(CHUNK) {
        applied.orders += upsert_orders(db, shop_id, chunk).await?;
    }
    for chunk in refunds.chunks(CHUNK) {
        applied.refunds += insert_refunds(db, shop_id, chunk).await?;
    }
    for chunk in checkouts.chunks(CHUNK) {
        applied.checkouts += upsert_checkouts(db, shop_id, chunk).await?;
    }
    Ok(applied)
}

/// `INSERT ... VALUES (..),(..) ON CONFLICT (shop_id, platform_id) DO UPDATE SET ..
/// WHERE <guard>`; `merge` gives columns a SET expression other than `excluded.<column>`.
async fn upsert(
    db: &impl ConnectionTrait,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Value>>,
    guard: &str,
    merge: &[(&str, &str)],
) -> Result<u64, DbErr> {
    if rows.is_empty() {
        return Ok(0);
    }
    let placeholders = format!("({})", vec!["?"; columns.len()].join(", "));
    let values_sql = vec![placeholders.as_str(); rows.len()].join(", ");
    let updates = columns
        .iter()
        .filter(|c| !matches!(**c, "shop_id" | "platform_id" | "created_at"))
        .map(|c| match merge.iter().find(|(m, _)| m == c) {
            Some((_, expr)) => format!("{c} = {expr}"),
            None => format!("{c} = excluded.{c}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES {values_sql} ON CONFLICT (shop_id, platform_id) DO UPDATE SET {updates} WHERE {guard}",
        columns.join(", ")
    );
    let values = rows.into_iter().flatten().collect();
    let r = db
        .execute_raw(stmt(db.get_database_backend(), &sql, values))
        .await?;
    Ok(r.rows_affected())
}

fn json_list(items: &[String]) -> Value {
    serde_json::to_string(items)
        .unwrap_or_else(|_| "[]".into())
        .into()
}

async fn upsert_customers(
    db: &impl ConnectionTrait,
    shop_id: i64,
    cs: &[&Customer],
) -> Result<u64, DbErr> {
    let now = Utc::now();
    let cols = [
        "created_at",
        "updated_at",
        "shop_id",
        "platform_id",
        "email",
        "first_name",
        "last_name",
        "tags",
        "state",
        "platform_created_at",
        "platform_updated_at",
    ];
    let rows = cs
        .iter()
        .map(|c| {
            vec![
                now.into(),
                now.into(),
                shop_id.into(),
                c.platform_id.clone().into(),
                c.email.clone().into(),
                c.first_name.clone().into(),
                c.last_name.clone().into(),
                c.tags
                    .as_deref()
                    .map(json_list)
                    .unwrap_or(Value::String(None)),
                c.state.clone().into(),
                c.created_at.into(),
                c.updated_at.into(),
            ]
        })
        .collect();
    // A redacted or deleted customer stays so, whatever arrives later.
    let guard = "customers.platform_updated_at < excluded.platform_updated_at \
                 AND customers.redacted_at IS NULL AND customers.deleted_at IS NULL";
    // A payload without tags keeps the tags we know.
    let merge = [("tags", "COALESCE(excluded.tags, customers.tags)")];
    upsert(db, "customers", &cols, rows, guard, &merge).await
}

async fn upsert_orders(
    db: &impl ConnectionTrait,
    shop_id: i64,
    os: &[&Order],
) -> Result<u64, DbErr> {
    let now = Utc::now();
    let cols = [
        "created_at",
        "updated_at",
        "shop_id",
        "platform_id",
        "customer_platform_id",
        "name",
        "email",
        "currency",
        "subtotal_minor",
        "total_minor",
        "discounts_minor",
        "refunded_minor",
        "discount_codes",
        "financial_status",
        "cancelled_at",
        "platform_created_at",
        "platform_updated_at",
    ];
    let rows = os
        .iter()
        .map(|o| {
            vec![
                now.into(),
                now.into(),
                shop_id.into(),
                o.platform_id.clone().into(),
                o.customer_platform_id.clone().into(),
                o.name.clone().into(),
                o.email.clone().into(),
                o.total.currency.as_str().into(),
                o.subtotal.minor.into(),
                o.total.minor.into(),
                o.discounts.minor.into(),
                o.refunded.minor.into(),
                json_list(&o.discount_codes),
                o.financial_status.clone().into(),
                o.cancelled_at.into(),
                o.created_at.into(),
                o.updated_at.into(),
            ]
        })
        .collect();
    // Shopify's timestamps have whole seconds, so an order created, refunded and cancelled
    // within one second arrives as payloads with equal `updated_at`, in any order. On a tie the
    // monotonic facts merge: a cancellation is never undone and refunds only grow.
    let guard = "orders.deleted_at IS NULL AND (orders.platform_updated_at < excluded.platform_updated_at \
                 OR (orders.platform_updated_at = excluded.platform_updated_at \
                     AND ((orders.cancelled_at IS NULL AND excluded.cancelled_at IS NOT NULL) \
                          OR excluded.refunded_minor > orders.refunded_minor)))";
    let merge = [
        (
            "cancelled_at",
            "COALESCE(excluded.cancelled_at, orders.cancelled_at)",
        ),
        (
            "refunded_minor",
            "CASE WHEN excluded.refunded_minor > orders.refunded_minor THEN excluded.refunded_minor ELSE orders.refunded_minor END",
        ),
    ];
    let n = upsert(db, "orders", &cols, rows, guard, &merge).await?;
    // Refunds that arrived before a newer order payload still count.
    let ids: Vec<&str> = os.iter().map(|o| o.platform_id.as_str()).collect();
    sync_refunded(db, shop_id, &ids).await?;
    Ok(n)
}

async fn insert_refunds(
    db: &impl ConnectionTrait,
    shop_id: i64,
    rs: &[&Refund],
) -> Result<u64, DbErr> {
    if rs.is_empty() {
        return Ok(0);
    }
    let placeholders = vec!["(?, ?, ?, ?, ?)"; rs.len()].join(", ");
    let mut values: Vec<Value> = Vec::with_capacity(rs.len() * 5);
    for r in rs {
        values.extend([
            shop_id.into(),
            r.platform_id.clone().into(),
            r.order_platform_id.clone().into(),
            r.amount.minor.into(),
            r.created_at.into(),
        ]);
    }
    let n = db
        .execute_raw(stmt(
            db.get_database_backend(),
            &format!(
                "INSERT INTO refunds (shop_id, platform_id, order_platform_id, amount_minor, platform_created_at) \
                 VALUES {placeholders} ON CONFLICT (shop_id, platform_id) DO NOTHING"
            ),
            values,
        ))
        .await?
        .rows_affected();
    if n > 0 {
        let mut orders: Vec<&str> = rs.iter().map(|r| r.order_platform_id.as_str()).collect();
        orders.sort_unstable();
        orders.dedup();
        sync_refunded(db, shop_id, &orders).await?;
    }
    Ok(n)
}

/// An order's refunded amount is the larger of what its own payload says and the sum of the
/// refunds we have seen for it: both sources only ever grow. One statement for the given
/// orders; each order's refunds are summed by a lookup on the `(shop_id, order_platform_id)`
/// index (a join on the shop's refunds instead was planned, with statistics lagging a bulk
/// load, as a scan of all of them for every batch).
async fn sync_refunded(
    db: &impl ConnectionTrait,
    shop_id: i64,
    order_ids: &[&str],
) -> Result<(), DbErr> {
    if order_ids.is_empty() {
        return Ok(());
    }
    let list = vec!["?"; order_ids.len()].join(", ");
    let mut values: Vec<Value> = vec![shop_id.into()];
    values.extend(order_ids.iter().map(|id| Value::from(*id)));
    let sum = "(SELECT SUM(r.amount_minor) FROM refunds r \
               WHERE r.shop_id = orders.shop_id AND r.order_platform_id = orders.platform_id)";
    db.execute_raw(stmt(
        db.get_database_backend(),
        &format!(
            "UPDATE orders SET refunded_minor = {sum} \
             WHERE orders.shop_id = ? AND orders.platform_id IN ({list}) AND orders.refunded_minor < {sum}"
        ),
        values,
    ))
    .await?;
    Ok(())
}

async fn upsert_checkouts(
    db: &impl ConnectionTrait,
    shop_id: i64,
    cs: &[&Checkout],
) -> Result<u64, DbErr> {
    let now = Utc::now();
    let cols = [
        "created_at",
        "updated_at",
        "shop_id",
        "platform_id",
        "customer_platform_id",
        "email",
        "currency",
        "total_minor",
        "completed_at",
        "platform_created_at",
        "platform_updated_at",
    ];
    let rows = cs
        .iter()
        .map(|c| {
            vec![
                now.into(),
                now.into(),
                shop_id.into(),
                c.platform_id.clone().into(),
                c.customer_platform_id.clone().into(),
                c.email.clone().into(),
                c.total.currency.as_str().into(),
                c.total.minor.into(),
                c.completed_at.into(),
                c.created_at.into(),
                c.updated_at.into(),
            ]
        })
        .collect();
    upsert(
        db,
        "checkouts",
        &cols,
        rows,
        "checkouts.platform_updated_at < excluded.platform_updated_at",
        &[],
    )
    .await
}

/// A checkout keeps no history: once the platform drops it, so do we.
async fn remove_checkout(
    db: &impl ConnectionTrait,
    shop_id: i64,
    platform_id: &str,
) -> Result<u64, DbErr> {
    let r = db
        .execute_raw(stmt(
            db.get_database_backend(),
            "DELETE FROM checkouts WHERE shop_id = ? AND platform_id = ?",
            vec![shop_id.into(), platform_id.into()],
        ))
        .await?;
    Ok(r.rows_affected())
}

async fn mark_deleted(
    db: &impl ConnectionTrait,
    table: &str,
    shop_id: i64,
    platform_id: &str,
) -> Result<u64, DbErr> {
    let now = Utc::now();
    let r = db
        .execute_raw(stmt(
            db.get_database_backend(),
            &format!("UPDATE {table} SET deleted_at = ?, updated_at = ? WHERE shop_id = ? AND platform_id = ? AND deleted_at IS NULL"),
            vec![now.into(), now.into(), shop_id.into(), platform_id.into()],
        ))
        .await?;
    Ok(r.rows_affected())
}
