//! The webhook inbox: verified raw bodies, written before the webhook is acknowledged.
//! Deliveries are written in batches (see `ingest::intake`): at most one shop lookup and one
//! multi-row insert per batch instead of a lookup and an insert per webhook.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Value,
};

use super::entities::shop;
use super::{Db, stmt};

/// A verified delivery, ready to store.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub platform: &'static str,
    pub shop_domain: String,
    pub topic: String,
    pub webhook_id: String,
    pub event_id: Option<String>,
    pub api_version: Option<String>,
    pub triggered_at: Option<DateTime<Utc>>,
    pub body: Vec<u8>,
}

/// What a batch lookup knows about a shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopState {
    pub id: i64,
    pub status: String,
}

/// The current state of the given shops, keyed by (platform, domain); unknown shops are absent.
pub async fn shops_for(
    db: &impl ConnectionTrait,
    shops: &[(&'static str, &str)],
) -> Result<HashMap<(&'static str, String), ShopState>, DbErr> {
    let mut by_platform: HashMap<&'static str, HashSet<&str>> = HashMap::new();
    for (platform, domain) in shops {
        by_platform.entry(platform).or_default().insert(domain);
    }
    let mut out = HashMap::new();
    for (platform, domains) in by_platform {
        let rows: Vec<(i64, String, String)> = shop::Entity::find()
            .select_only()
            .column(shop::Column::Id)
            .column(shop::Column::Domain)
            .column(shop::Column::Status)
            .filter(shop::Column::Platform.eq(platform))
            .filter(shop::Column::Domain.is_in(domains))
            .into_tuple()
            .all(db)
            .await?;
        for (id, domain, status) in rows {
            out.insert((platform, domain), ShopState { id, status });
        }
    }
    Ok(out)
}

/// Values bound per inserted row.
const PARAMS_PER_ROW: usize = 12;

/// Bound parameters allowed in one statement: SQLite before 3.32 allowed 999 (later builds
/// allow 32766, but the lower figure is safe everywhere); PostgreSQL's protocol allows 65535.
fn max_params(backend: DatabaseBackend) -> usize {
    match backend {
        DatabaseBackend::Postgres => 65_535,
        _ => 999,
    }
}

/// Bound body bytes per PostgreSQL statement. sqlx 0.9 does not set TCP_NODELAY, and a message
/// larger than the socket's send buffer (16 KiB by default on Linux) is written in parts; the
/// last part waits under Nagle's algorithm for the server's delayed ACK, about 40 ms (measured:
/// a 64-row batch took ~50 ms per statement, ~1 ms with 8 KiB statements). The extra round
/// trips cost far less. A single body larger than this still goes in one statement.
const PG_MAX_STATEMENT_BYTES: usize = 8 * 1024;

/// Splits rows into runs that fit one statement: at most `max_rows` rows, and at most
/// `max_bytes` of bodies unless a single row is larger on its own.
fn statement_chunks<'r, 'd>(
    rows: &'r [(&'d Delivery, i64)],
    max_rows: usize,
    max_bytes: usize,
) -> Vec<&'r [(&'d Delivery, i64)]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (d, _)) in rows.iter().enumerate() {
        let full = i - start == max_rows || (i > start && bytes + d.body.len() > max_bytes);
        if full {
            chunks.push(&rows[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += d.body.len();
    }
    if start < rows.len() {
        chunks.push(&rows[start..]);
    }
    chunks
}

/// Stores deliveries (each with its shop id) with multi-row inserts; a webhook id already in
/// the inbox is a no-op. Returns the (platform, webhook id) pairs that were inserted. A batch
/// that fits one statement is one implicit transaction; a larger one gets an explicit
/// transaction, so the batch commits, or fails, as a whole.
pub async fn insert_many(
    db: &Db,
    rows: &[(&Delivery, i64)],
    now: DateTime<Utc>,
) -> Result<HashSet<(String, String)>, DbErr> {
    let backend = db.get_database_backend();
    let max_bytes = match backend {
        DatabaseBackend::Postgres => PG_MAX_STATEMENT_BYTES,
        _ => usize::MAX,
    };
    let chunks = statement_chunks(rows, max_params(backend) / PARAMS_PER_ROW, max_bytes);
    let mut inserted = HashSet::with_capacity(rows.len());
    if let [only] = chunks.as_slice() {
        insert_statement(db, only, now, &mut inserted).await?;
        return Ok(inserted);
    }
    let tx = super::write_tx(db).await?;
    for chunk in chunks {
        insert_statement(&tx, chunk, now, &mut inserted).await?;
    }
    tx.commit().await?;
    Ok(inserted)
}

async fn insert_statement(
    db: &impl ConnectionTrait,
    chunk: &[(&Delivery, i64)],
    now: DateTime<Utc>,
    inserted: &mut HashSet<(String, String)>,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let mut sql = String::from(
        "INSERT INTO webhook_inbox (created_at, updated_at, platform, shop_id, shop_domain, \
         topic, webhook_id, event_id, api_version, triggered_at, body, state, attempts, run_at) \
         VALUES ",
    );
    let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * PARAMS_PER_ROW);
    for (i, (d, shop_id)) in chunk.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?)");
        values.extend([
            now.into(),
            now.into(),
            d.platform.into(),
            (*shop_id).into(),
            d.shop_domain.as_str().into(),
            d.topic.as_str().into(),
            d.webhook_id.as_str().into(),
            d.event_id.clone().into(),
            d.api_version.clone().into(),
            d.triggered_at.into(),
            d.body.clone().into(),
            now.into(),
        ]);
    }
    sql.push_str(" ON CONFLICT (platform, webhook_id) DO NOTHING RETURNING platform, webhook_id");
    for row in db.query_all_raw(stmt(backend, &sql, values)).await? {
        inserted.insert((
            row.try_get::<String>("", "platform")?,
            row.try_get::<String>("", "webhook_id")?,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(body: usize) -> Delivery {
        Delivery {
            platform: "shopify",
            shop_domain: "a.myshopify.com".into(),
            topic: "orders/create".into(),
            webhook_id: "w".into(),
            event_id: None,
            api_version: None,
            triggered_at: None,
            body: vec![b'x'; body],
        }
    }

    fn sizes(chunks: &[&[(&Delivery, i64)]]) -> Vec<usize> {
        chunks.iter().map(|c| c.len()).collect()
    }

    #[test]
    fn statements_respect_the_row_limit() {
        let d = delivery(10);
        let rows: Vec<_> = (0..7).map(|_| (&d, 1)).collect();
        assert_eq!(
            sizes(&statement_chunks(&rows, 3, usize::MAX)),
            vec![3, 3, 1]
        );
        assert_eq!(sizes(&statement_chunks(&rows, 7, usize::MAX)), vec![7]);
        assert!(statement_chunks(&[], 3, 100).is_empty());
    }

    #[test]
    fn statements_respect_the_byte_budget_but_always_take_one_row() {
        let (small, big) = (delivery(40), delivery(500));
        let rows = vec![
            (&small, 1),
            (&small, 1),
            (&big, 1),
            (&small, 1),
            (&small, 1),
        ];
        // 40 + 40 fit in 100; the 500-byte body goes alone; then 40 + 40 again.
        assert_eq!(sizes(&statement_chunks(&rows, 10, 100)), vec![2, 1, 2]);
    }
}
