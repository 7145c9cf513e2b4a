//! Reads a shop's mirrored customers, orders, refunds and abandoned checkouts into the core's
//! [`ShopInput`]. Deleted and redacted customers and deleted orders are left out; cancelled and
//! refunded orders go in as such, and the core nets them out. Orders are in the shop's currency
//! (the mirror stores shop money), converted from minor units here.
//!
//! Rows are streamed into a [`Builder`], never held as database rows: a shop's orders are
//! millions of rows, and holding them before converting costs several times the memory of what
//! is kept. Three readers feed the one builder: rows through the pool (one customer), a whole
//! SQLite shop through its own read-only connection ([`sqlite`]), because sqlx
//! hands every SQLite row from its worker thread to the async task one at a time, which cost
//! more than everything else in a run (measured: 8 s of a 10 s dry run at 100,000 customers),
//! and a whole PostgreSQL shop through `COPY ... TO STDOUT` ([`postgres`]).

mod builder;
mod postgres;
mod sqlite;

use futures_util::StreamExt;
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, QueryResult, StreamTrait, Value};

use crate::store::{Db, stmt};
use builder::{Builder, OrderRec, sql};
pub use builder::{CustomerExtras, CustomerRow, ShopData};

/// The whole shop.
pub async fn load_shop(db: &Db, shop_id: i64) -> Result<ShopData, DbErr> {
    match db.get_database_backend() {
        DatabaseBackend::Sqlite => sqlite::load_shop(db, shop_id).await,
        DatabaseBackend::Postgres => postgres::load_shop(db, shop_id).await,
        _ => load(db, shop_id, None).await,
    }
}

/// The whole shop through the pool's rows: the generic reader, which `lifecycle segment`
/// does not use for a whole shop; the segment bench measures the whole-shop readers against it.
pub async fn load_shop_through_pool(db: &Db, shop_id: i64) -> Result<ShopData, DbErr> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdb::{TestDb, install_shop};

    /// The COPY reader and the pool's rows give the same shop, byte for byte, on values that
    /// need escaping (tabs, backslashes, quotes, newlines), NULLs, refunds, cancellations,
    /// guests and abandoned checkouts, and nothing of another shop.
    #[tokio::test(flavor = "multi_thread")]
    async fn copy_reads_the_same_shop_as_the_pool() {
        let Some(t) = TestDb::postgres().await else {
            return;
        };
        let db = &t.db;
        let shop = install_shop(db, "p", "a.example").await;
        let other = install_shop(db, "p", "b.example").await;
        let exec = |sql: String| async move {
            db.execute_unprepared(&sql).await.unwrap();
        };
        let at = |d: u32| format!("'2026-0{}-1{} 10:1{}:00.25+00'", 1 + d % 8, d % 10, d % 6);
        for (s, n) in [(shop, 40u32), (other, 3)] {
            for c in 0..n {
                let email = match c % 4 {
                    0 => "NULL".to_string(),
                    1 => format!("E'tab\\there{c}@example.com'"),
                    _ => format!("'c{c}@example.com'"),
                };
                let tags = match c % 3 {
                    0 => "NULL".to_string(),
                    1 => r#"E'["vip","back\\\\slash","quote\\"d","new\\nline"]'"#.to_string(),
                    _ => "'[]'".to_string(),
                };
                let created = if c % 5 == 0 {
                    "NULL".to_string()
                } else {
                    at(c)
                };
                exec(format!(
                    "INSERT INTO customers (shop_id, platform_id, email, tags, platform_created_at, platform_updated_at, created_at, updated_at) \
                     VALUES ({s}, 'c{c:03}', {email}, {tags}, {created}, {}, now(), now())",
                    at(c + 1)
                ))
                .await;
                for o in 0..(c % 4) {
                    let id = format!("o{c:03}-{o}");
                    let customer = if o == 2 {
                        "NULL".into()
                    } else {
                        format!("'c{c:03}'")
                    };
                    let refunded = if (c + o) % 3 == 0 { 250 } else { 0 };
                    let cancelled = if (c + o) % 7 == 0 {
                        at(o + 3)
                    } else {
                        "NULL".into()
                    };
                    let codes = if o == 1 {
                        r#"'["WELCOME","lc-ab\\c"]'"#
                    } else {
                        "'[]'"
                    };
                    let currency = if c == 7 { "EUR" } else { "USD" };
                    exec(format!(
                        "INSERT INTO orders (shop_id, platform_id, customer_platform_id, currency, total_minor, \
                         refunded_minor, discount_codes, cancelled_at, platform_created_at, platform_updated_at, created_at, updated_at) \
                         VALUES ({s}, '{id}', {customer}, '{currency}', {}, {refunded}, {codes}, {cancelled}, {}, {}, now(), now())",
                        1000 + c * 10 + o,
                        at(c + o),
                        at(c + o + 1)
                    ))
                    .await;
                    if refunded > 0 && o % 2 == 0 {
                        exec(format!(
                            "INSERT INTO refunds (shop_id, platform_id, order_platform_id, amount_minor, platform_created_at) \
                             VALUES ({s}, 'r-{id}', '{id}', 250, {})",
                            at(c + o + 2)
                        ))
                        .await;
                    }
                }
                if c % 6 == 0 {
                    let completed = if c % 12 == 0 { at(c) } else { "NULL".into() };
                    exec(format!(
                        "INSERT INTO checkouts (shop_id, platform_id, customer_platform_id, currency, completed_at, \
                         platform_created_at, platform_updated_at, created_at, updated_at) VALUES ({s}, 'k{c}', 'c{c:03}', 'USD', {completed}, {}, {}, now(), now())",
                        at(c + 2),
                        at(c + 3)
                    ))
                    .await;
                }
            }
        }
        let copied = postgres::load_shop(db, shop).await.unwrap();
        let pooled = load(db, shop, None).await.unwrap();
        assert_eq!(copied.customers.len(), 40);
        assert!(
            copied.input.orders.len() > 30,
            "{}",
            copied.input.orders.len()
        );
        assert!(
            copied
                .customers
                .iter()
                .any(|c| c.tags.iter().any(|t| t == "back\\slash")),
            "escaped tags decode: {:?}",
            copied.customers
        );
        let fingerprint = |d: &ShopData| {
            let mut codes: Vec<&String> = d.used_codes.iter().collect();
            codes.sort();
            format!(
                "{} {:?} {:?} {:?} {codes:?}",
                d.currency, d.customers, d.extras, d.input
            )
        };
        assert_eq!(fingerprint(&copied), fingerprint(&pooled));
        t.remove().await;
    }
}
