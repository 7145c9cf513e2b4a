//! A whole SQLite shop read on a blocking thread through its own read-only connection, in one
//! read transaction (so the four reads see one snapshot while webhooks keep being written, which
//! WAL allows). Rows are decoded in place, borrowed from SQLite's own buffers; the rows go to
//! the same [`Builder`] as those read through the pool.

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};
use sea_orm::DbErr;

use super::builder::{Builder, OrderRec, ShopData, sql};
use crate::store::Db;

pub async fn load_shop(db: &Db, shop_id: i64) -> Result<ShopData, DbErr> {
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    tokio::task::spawn_blocking(move || read(&file, shop_id).map_err(to_db_err))
        .await
        .map_err(|e| DbErr::Custom(format!("shop reader stopped: {e}")))?
}

fn to_db_err(e: rusqlite::Error) -> DbErr {
    DbErr::Custom(format!("reading the shop: {e}"))
}

fn read(file: &std::path::Path, shop_id: i64) -> rusqlite::Result<ShopData> {
    let mut conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let tx = conn.transaction()?;
    let mut b = Builder::default();

    each(&tx, &sql::scoped(sql::CUSTOMERS, "", false), shop_id, |r| {
        b.customer(r.get(0)?, r.get(1)?, text_opt(r, 2)?, time_opt(r, 3)?);
        Ok(())
    })?;
    b.customers_done();
    each(&tx, sql::REFUNDS, shop_id, |r| {
        b.refund(text(r, 0)?, time_opt(r, 1)?);
        Ok(())
    })?;
    each(&tx, &sql::scoped(sql::ORDERS, "", false), shop_id, |r| {
        b.order(OrderRec {
            customer: text_opt(r, 0)?,
            currency: text(r, 1)?,
            total: r.get(2)?,
            refunded: r.get(3)?,
            discount_codes: text(r, 4)?,
            cancelled_at: time_opt(r, 5)?,
            created_at: time(r, 6)?,
            updated_at: time(r, 7)?,
            refunded_id: text_opt(r, 8)?,
        });
        Ok(())
    })?;
    each(&tx, &sql::scoped(sql::CHECKOUTS, "", false), shop_id, |r| {
        b.checkout(text(r, 0)?, time(r, 1)?);
        Ok(())
    })?;
    Ok(b.finish())
}

fn each(
    conn: &Connection,
    sql: &str,
    shop_id: i64,
    mut f: impl FnMut(&Row<'_>) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([shop_id])?;
    while let Some(row) = rows.next()? {
        f(row)?;
    }
    Ok(())
}

fn text_opt<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    match r.get_ref(i)? {
        ValueRef::Null => Ok(None),
        v => v
            .as_str()
            .map(Some)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), e.into())),
    }
}

fn text<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    text_opt(r, i)?.ok_or(rusqlite::Error::InvalidColumnType(
        i,
        "NULL".into(),
        rusqlite::types::Type::Null,
    ))
}

/// Timestamps as sqlx writes them to SQLite: RFC 3339 text.
fn time_opt(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    text_opt(r, i)?
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })
        })
        .transpose()
}

fn time(r: &Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    time_opt(r, i)?.ok_or(rusqlite::Error::InvalidColumnType(
        i,
        "NULL".into(),
        rusqlite::types::Type::Null,
    ))
}
