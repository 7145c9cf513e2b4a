//! Sync checkpoints and run reports.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use super::stmt;

#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    pub cursor: Option<String>,
    pub backfilled: bool,
    pub fetched: i64,
    pub synced_until: Option<DateTime<Utc>>,
}

pub async fn load(
    db: &impl ConnectionTrait,
    shop_id: i64,
    resource: &str,
) -> Result<Checkpoint, DbErr> {
    let row = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "SELECT cursor, backfilled, fetched, synced_until FROM sync_state WHERE shop_id = ? AND resource = ?",
            vec![shop_id.into(), resource.into()],
        ))
        .await?;
    Ok(match row {
        Some(r) => Checkpoint {
            cursor: r.try_get("", "cursor")?,
            backfilled: r.try_get("", "backfilled")?,
            fetched: r.try_get("", "fetched")?,
            synced_until: r.try_get("", "synced_until")?,
        },
        None => Checkpoint::default(),
    })
}

/// Saves a checkpoint; called in the same transaction as the page it follows, so a crash
/// resumes exactly after the last committed page.
pub async fn save(
    db: &impl ConnectionTrait,
    shop_id: i64,
    resource: &str,
    c: &Checkpoint,
) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        db.get_database_backend(),
        "INSERT INTO sync_state (shop_id, resource, cursor, backfilled, fetched, synced_until, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (shop_id, resource) DO UPDATE SET cursor = excluded.cursor, backfilled = excluded.backfilled, \
         fetched = excluded.fetched, synced_until = excluded.synced_until, updated_at = excluded.updated_at",
        vec![
            shop_id.into(),
            resource.into(),
            c.cursor.clone().into(),
            c.backfilled.into(),
            c.fetched.into(),
            c.synced_until.into(),
            Utc::now().into(),
        ],
    ))
    .await?;
    Ok(())
}

pub async fn start_run(
    db: &impl ConnectionTrait,
    shop_id: i64,
    kind: &str,
    path: &str,
) -> Result<i64, DbErr> {
    let row = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "INSERT INTO sync_runs (shop_id, kind, path, status, started_at) VALUES (?, ?, ?, 'running', ?) RETURNING id",
            vec![shop_id.into(), kind.into(), path.into(), Utc::now().into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no id returned".into()))?;
    row.try_get("", "id")
}

pub async fn finish_run(
    db: &impl ConnectionTrait,
    run_id: i64,
    status: &str,
    fetched: u64,
    changed: u64,
    error: Option<&str>,
) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        db.get_database_backend(),
        "UPDATE sync_runs SET status = ?, fetched = ?, changed = ?, error = ?, finished_at = ? WHERE id = ?",
        vec![
            status.into(),
            (fetched as i64).into(),
            (changed as i64).into(),
            error.map(str::to_string).into(),
            Utc::now().into(),
            run_id.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// When the last successful run of `kind` started.
pub async fn last_success(
    db: &impl ConnectionTrait,
    shop_id: i64,
    kind: &str,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let row = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "SELECT MAX(started_at) AS t FROM sync_runs WHERE shop_id = ? AND kind = ? AND status = 'done'",
            vec![shop_id.into(), kind.into()],
        ))
        .await?;
    Ok(row.and_then(|r| r.try_get::<Option<DateTime<Utc>>>("", "t").ok().flatten()))
}
