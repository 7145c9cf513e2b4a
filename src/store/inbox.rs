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

/// Stores deliveries with multi-row inserts. Each row's shop is resolved by the statement
/// itself (a join on `shops`), so a delivery is written only if its shop is known and installed,
/// or if it applies when uninstalled (the bool beside it); a webhook id already in the inbox
/// is a no-op, and so is an event id the shop already has for the topic (one event delivered
/// through two subscriptions comes with two webhook ids). Returns the (platform, webhook id)
/// pairs that were inserted. A batch that fits one statement is one implicit transaction; a larger one gets an explicit transaction, so the
/// batch commits, or fails, as a whole.
pub async fn insert_many(
    db: &Db,
    rows: &[(&Delivery, bool)],
    now: DateTime<Utc>,
) -> Result<HashSet<(String, String)>, DbErr> {
    let max_rows = max_params(db.get_database_backend()) / PARAMS_PER_ROW;
    let mut inserted = HashSet::with_capacity(rows.len());
    if rows.len() <= max_rows {
        insert_statement(db, rows, now, &mut inserted).await?;
        return Ok(inserted);
    }
    let tx = super::write_tx(db).await?;
    for chunk in rows.chunks(max_rows) {
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
    // The conflict has no target: it covers both dedupe indexes, `inbox_dedupe` (webhook id)
    // and `inbox_event_dedupe` (shop, topic, event id).
    let sql = format!(
        "INSERT INTO webhook_inbox (created_at, updated_at, platform, shop_id, shop_domain, \
         topic, webhook_id, event_id, api_version, triggered_at, body, state, attempts, run_at) \
         SELECT ?, ?, v.column1, s.id, v.column2, v.column3, v.column4, v.column5, v.column6, \
         v.column7, v.column8, 'queued', 0, ? \
         FROM shops s JOIN (VALUES {}) AS v ON s.platform = v.column1 AND s.domain = v.column2 \
         WHERE s.status IN ('{}') OR v.column9 \
         ON CONFLICT DO NOTHING RETURNING platform, webhook_id",
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

/// Empties the raw bodies of the given inbox rows, keeping what dedupe and the audit need
/// (platform, shop, topic, webhook and event ids, times, state). A row still waiting is settled
/// as done unapplied: once erased it has nothing left to apply. Rows being applied right now
/// keep their state (their worker settles them).
pub async fn scrub(
    db: &impl ConnectionTrait,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut n = 0;
    // Bounded statements: one per 500 ids.
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE webhook_inbox SET body = ?, updated_at = ?, \
             state = CASE WHEN state = '{running}' THEN state ELSE '{done}' END, \
             finished_at = CASE WHEN state = '{running}' THEN finished_at ELSE COALESCE(finished_at, ?) END \
             WHERE id IN ({})",
            vec!["?"; chunk.len()].join(", "),
            running = super::jobs::RUNNING,
            done = super::jobs::DONE,
        );
        let mut values: Vec<Value> = vec![Vec::<u8>::new().into(), now.into(), now.into()];
        values.extend(chunk.iter().map(|&id| Value::from(id)));
        n += db
            .execute_raw(stmt(db.get_database_backend(), &sql, values))
            .await?
            .rows_affected();
    }
    Ok(n)
}
