//! Retention: settled inbox rows, finished jobs and audit rows older than the configured age
//! are deleted, and expired data exports emptied, in bounded batches (one short statement each,
//! so neither engine holds a long lock nor builds a huge transaction). Rows still waiting or
//! running are never touched: only work that is over is pruned.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Value};

use super::jobs::{CANCELLED, DEAD, DONE, FAILED};
use super::privacy::NO_EXPORT;
use super::stmt;

/// Rows deleted (or emptied) per statement.
pub const BATCH: u64 = 1_000;

/// What one pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub inbox: u64,
    pub jobs: u64,
    pub audit: u64,
    pub exports: u64,
}

/// Runs `sql` (which touches at most `BATCH` rows) until a run touches fewer.
async fn in_batches(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let mut total = 0;
    loop {
        let n = db
            .execute_raw(stmt(backend, sql, values.clone()))
            .await?
            .rows_affected();
        total += n;
        if n < BATCH {
            return Ok(total);
        }
    }
}

/// One pass: prunes what is older than `before`, and exports expired at `now`.
pub async fn prune(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Pruned, DbErr> {
    let inbox = in_batches(
        db,
        &format!(
            "DELETE FROM webhook_inbox WHERE id IN (SELECT id FROM webhook_inbox \
             WHERE state IN ('{DONE}', '{FAILED}') AND created_at < ? ORDER BY created_at LIMIT {BATCH})"
        ),
        vec![before.into()],
    )
    .await?;
    let jobs = in_batches(
        db,
        &format!(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
             WHERE state IN ('{DONE}', '{DEAD}', '{CANCELLED}', '{FAILED}') AND created_at < ? ORDER BY created_at LIMIT {BATCH})"
        ),
        vec![before.into()],
    )
    .await?;
    let audit = in_batches(
        db,
        &format!(
            "DELETE FROM writeback_audit WHERE id IN (SELECT id FROM writeback_audit \
             WHERE at < ? ORDER BY at LIMIT {BATCH})"
        ),
        vec![before.into()],
    )
    .await?;
    let exports = in_batches(
        db,
        &format!(
            "UPDATE privacy_requests SET export = ?, expires_at = NULL WHERE id IN (SELECT id FROM privacy_requests \
             WHERE expires_at <= ? LIMIT {BATCH})"
        ),
        vec![NO_EXPORT.into(), now.into()],
    )
    .await?;
    Ok(Pruned {
        inbox,
        jobs,
        audit,
        exports,
    })
}
