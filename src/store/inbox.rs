//! The webhook inbox: verified raw bodies, written before the webhook is acknowledged.
//! Deliveries are written in batches (see `ingest::intake`): one multi-row insert per batch,
//! which also resolves each delivery's shop, instead of a lookup and an insert per webhook.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Value,
};

use super::entities::shop;
use super::{Db, shops, stmt};

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
const PARAMS_PER_ROW: usize = 9;

/// Bound parameters allowed in one statement: SQLite before 3.32 allowed 999 (later builds
/// allow 32766, but the lower figure is safe everywhere); PostgreSQL's protocol allows 65535.
fn max_params(backend: DatabaseBackend) -> usize {
    match backend {
        DatabaseBackend::Postgres => 65_535,
        _ => 999,
    }
}

/// Bound body bytes per PostgreSQL statement. Larger statements stall about 40 ms each
/// (measured: a 64-row batch took ~50 ms per statement, ~1 ms with 8 KiB statements; 14 KiB and
/// 48 KiB budgets put the bench's p90 at ~48 ms). Nagle's algorithm was the suspect, but
/// TCP_NODELAY on every socket of the process did not remove the stall, so its cause is still
/// open. The extra round trips cost far less. A single larger body still goes in one statement.
const PG_MAX_STATEMENT_BYTES: usize = 8 * 1024;

/// Splits rows into runs that fit one statement: at most `max_rows` rows, and at most
/// `max_bytes` of bodies unless a single row is larger on its own.
fn statement_chunks<'r, 'd>(
    rows: &'r [(&'d Delivery, bool)],
    max_rows: usize,
    max_bytes: usize,
) -> Vec<&'r [(&'d Delivery, bool)]> {
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

/// Stores deliveries with multi-row inserts. Each row's shop is resolved by the statement
/// itself (a join on `shops`), so a delivery is written only if its shop is known and installed,
/// or if it applies when uninstalled (the bool beside it); a webhook id already in the inbox
/// is a no-op. Returns the (platform, webhook id) pairs that were inserted. A batch that fits
/// one statement is one implicit transaction; a larger one gets an explicit transaction, so the
/// batch commits, or fails, as a whole.
pub async fn insert_many(
    db: &Db,
    rows: &[(&Delivery, bool)],
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
    chunk: &[(&Delivery, bool)],
    now: DateTime<Utc>,
    inserted: &mut HashSet<(String, String)>,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    // VALUES columns are named column1..column9 on both engines (SQLite cannot alias them).
    // `WHERE true` tells SQLite's parser that the ON CONFLICT belongs to the INSERT, not a join.
    let sql = format!(
        "INSERT INTO webhook_inbox (created_at, updated_at, platform, shop_id, shop_domain, \
         topic, webhook_id, event_id, api_version, triggered_at, body, state, attempts, run_at) \
         SELECT ?, ?, v.column1, s.id, v.column2, v.column3, v.column4, v.column5, v.column6, \
         v.column7, v.column8, 'queued', 0, ? \
         FROM shops s JOIN (VALUES {}) AS v ON s.platform = v.column1 AND s.domain = v.column2 \
         WHERE s.status IN ('{}') OR v.column9 \
         ON CONFLICT (platform, webhook_id) DO NOTHING RETURNING platform, webhook_id",
        vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", "),
        shops::INSTALLED_STATES.join("', '"),
    );
    let mut values: Vec<Value> = Vec::with_capacity(3 + chunk.len() * PARAMS_PER_ROW);
    values.extend([now.into(), now.into(), now.into()]);
    for (d, applies_when_uninstalled) in chunk {
        values.extend([
            d.platform.into(),
            d.shop_domain.as_str().into(),
            d.topic.as_str().into(),
            d.webhook_id.as_str().into(),
            d.event_id.clone().into(),
            d.api_version.clone().into(),
            d.triggered_at.into(),
            d.body.clone().into(),
            (*applies_when_uninstalled).into(),
        ]);
    }
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

    fn sizes(chunks: &[&[(&Delivery, bool)]]) -> Vec<usize> {
        chunks.iter().map(|c| c.len()).collect()
    }

    #[test]
    fn statements_respect_the_row_limit() {
        let d = delivery(10);
        let rows: Vec<_> = (0..7).map(|_| (&d, false)).collect();
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
            (&small, false),
            (&small, false),
            (&big, false),
            (&small, false),
            (&small, false),
        ];
        // 40 + 40 fit in 100; the 500-byte body goes alone; then 40 + 40 again.
        assert_eq!(sizes(&statement_chunks(&rows, 10, 100)), vec![2, 1, 2]);
    }
}
