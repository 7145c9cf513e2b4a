//! Applies stored webhooks. A worker claims a batch of inbox rows, applies them and marks them
//! done in one write transaction, so a webhook costs a fraction of a transaction rather than
//! three (claim, apply, finish): on SQLite every write transaction queues on the one write lock
//! that webhook intake needs too. The claim commits with the work, so a worker that dies
//! mid-batch leaves its rows queued, as if never claimed.
//!
//! A payload that cannot be decoded, or whose shop is unknown, fails permanently: the row is
//! kept as `failed` with the reason and the batch goes on. If applying a row fails, the batch
//! rolls back and its rows are applied one per transaction, so only that row is retried.

use std::panic::AssertUnwindSafe;

use chrono::Utc;
use futures_util::FutureExt;
use sea_orm::{DatabaseTransaction, DbErr};

use crate::model::{Event, ShopEvent};
use crate::platforms::Platforms;
use crate::queue::worker::{WorkerOptions, backoff};
use crate::queue::{JobError, JobResult};
use crate::store::entities::{inbox, shop};
use crate::store::jobs::{self as q, Queue};
use crate::store::{self, Db, privacy, shops};

/// Inbox rows claimed and applied in one transaction. Large enough that claiming and
/// committing are a small share of the work; small enough that the transaction holds SQLite's
/// write lock only a few milliseconds.
pub const BATCH: u32 = 32;

/// Attempts an inbox row gets before it is kept as `failed`.
const MAX_ATTEMPTS: i32 = 8;

/// Applies up to `BATCH` due inbox rows; returns how many rows it settled (applied, failed or
/// put back for a retry), 0 when none was due.
pub async fn drain(
    db: &Db,
    platforms: &Platforms,
    opts: &WorkerOptions,
    worker: &str,
) -> Result<usize, DbErr> {
    let claimed = apply_batch(db, platforms, opts, worker, BATCH).await?;
    if !claimed.rolled_back {
        return Ok(claimed.rows);
    }
    // One row could not be applied. One row per transaction now, so that row alone is retried.
    let mut settled = 0;
    for _ in 0..claimed.rows {
        settled += apply_batch(db, platforms, opts, worker, 1).await?.rows;
    }
    Ok(settled)
}

struct Claimed {
    rows: usize,
    /// Applying a row of a batch of several failed; nothing of the batch was kept.
    rolled_back: bool,
}

async fn apply_batch(
    db: &Db,
    platforms: &Platforms,
    opts: &WorkerOptions,
    worker: &str,
    limit: u32,
) -> Result<Claimed, DbErr> {
    // SQLite: webhook intake takes the write lock before this batch does (`store::gate`).
    let _held = store::gate::normal(db).await;
    let tx = store::write_tx(db).await?;
    let mut rows: Vec<inbox::Model> =
        q::claim_many(&tx, Queue::Inbox, worker, opts.lease, Utc::now(), limit).await?;
    // Arrival order; apply copes with any order, but this keeps a shop's history readable.
    rows.sort_by_key(|r| (r.run_at, r.id));
    let n = rows.len();
    if n == 0 {
        return Ok(Claimed {
            rows: 0,
            rolled_back: false,
        });
    }
    // A row whose decoding or applying panics is kept as failed like an undecodable one,
    // rather than rolled back and claimed again forever.
    let applied = AssertUnwindSafe(apply_rows(&tx, platforms, worker, &rows))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            Err(JobError::Permanent(format!(
                "applying it panicked: {}",
                crate::queue::worker::panic_message(&panic)
            )))
        });
    match applied {
        Ok(()) => {
            tx.commit().await?;
            Ok(Claimed {
                rows: n,
                rolled_back: false,
            })
        }
        Err(e) => {
            tx.rollback().await?;
            if let [row] = rows.as_slice() {
                settle_failure(db, opts, row, e).await?;
                return Ok(Claimed {
                    rows: 1,
                    rolled_back: false,
                });
            }
            tracing::warn!(error = %e, rows = n, "inbox batch rolled back; applying its rows one by one");
            Ok(Claimed {
                rows: n,
                rolled_back: true,
            })
        }
    }
}

/// Applies claimed rows and marks them done, in `tx`. A row that cannot be decoded, or whose
/// shop is unknown, is marked failed before anything of it is written; any other error is
/// returned and the caller rolls the transaction back.
async fn apply_rows(
    tx: &DatabaseTransaction,
    platforms: &Platforms,
    worker: &str,
    rows: &[inbox::Model],
) -> JobResult {
    let mut done = Vec::with_capacity(rows.len());
    for row in rows {
        match prepare(tx, platforms, row).await {
            Ok((shop, events)) => {
                apply_events(tx, &shop, events, row.triggered_at).await?;
                done.push(row.id);
            }
            Err(JobError::Permanent(reason)) => {
                tracing::error!(id = row.id, topic = %row.topic, error = %reason, "inbox row cannot be applied; kept as failed");
                q::finish(tx, Queue::Inbox, row.id, worker, q::FAILED, Some(&reason)).await?;
            }
            Err(retry) => return Err(retry),
        }
    }
    q::finish_many(tx, Queue::Inbox, &done, worker, q::DONE, None).await?;
    // Applied: the raw body (names, e-mails, addresses, IPs) has served its purpose.
    store::inbox::scrub(tx, &done, Utc::now()).await?;
    Ok(())
}

/// Records the failure of a single row after its transaction rolled back: retried with
/// backoff while attempts remain, then kept as `failed`.
async fn settle_failure(
    db: &Db,
    opts: &WorkerOptions,
    row: &inbox::Model,
    error: JobError,
) -> Result<(), DbErr> {
    // `row.attempts` already counts this attempt (the claim's increment was rolled back).
    let (next, run_at) = match &error {
        JobError::Retry(_) if row.attempts < MAX_ATTEMPTS => (
            q::QUEUED,
            Utc::now() + backoff(row.attempts, opts.retry_base, opts.retry_cap),
        ),
        _ => (q::FAILED, row.run_at),
    };
    if next == q::QUEUED {
        tracing::warn!(id = row.id, attempts = row.attempts, error = %error, "inbox row will be retried");
    } else {
        tracing::error!(id = row.id, attempts = row.attempts, error = %error, "inbox row failed; giving up");
    }
    q::record_failed_attempt(db, Queue::Inbox, row.id, next, run_at, &error.to_string()).await?;
    Ok(())
}

/// Decodes a row and finds its shop; writes nothing.
async fn prepare(
    tx: &DatabaseTransaction,
    platforms: &Platforms,
    row: &inbox::Model,
) -> Result<(shop::Model, Vec<Event>), JobError> {
    let platform = platforms.get(&row.platform).ok_or_else(|| {
        JobError::Permanent(format!("no platform `{}` is registered", row.platform))
    })?;
    let events = platform
        .decode(&row.topic, &row.body)
        .map_err(JobError::permanent)?;
    let shop = match row.shop_id {
        Some(id) => shops::get(tx, id).await?,
        None => None,
    };
    let Some(shop) = shop else {
        return Err(JobError::Permanent(format!(
            "shop `{}` is unknown",
            row.shop_domain
        )));
    };
    Ok((shop, events))
}

/// Whether an event the platform triggered at `at` happened before the shop's current install:
/// a late retry of an uninstall (or a shop erasure) meant for an install that is gone.
fn before_this_install(shop: &shop::Model, at: Option<chrono::DateTime<Utc>>) -> bool {
    matches!((shop.installed_at, at), (Some(installed), Some(at)) if at < installed)
}

/// Applies decoded events for a shop in `tx`: data through `ingest::apply`, shop lifecycle and
/// privacy requests through their own store functions. `triggered_at` is when the platform
/// says the events happened, when it says.
pub async fn apply_events(
    tx: &DatabaseTransaction,
    shop: &shop::Model,
    events: Vec<Event>,
    triggered_at: Option<chrono::DateTime<Utc>>,
) -> JobResult {
    let installed = shops::is_installed(&shop.status);
    let mut data = Vec::new();
    for event in events {
        let shop_event = match event {
            Event::Data(d) if installed => {
                data.push(d);
                continue;
            }
            Event::Data(_) => {
                tracing::info!(shop = %shop.domain, "shop is not installed: data event ignored");
                continue;
            }
            Event::Shop(e) => e,
        };
        match shop_event {
            ShopEvent::AppUninstalled | ShopEvent::ShopRedactRequested
                if before_this_install(shop, triggered_at) =>
            {
                tracing::info!(shop = %shop.domain, "an uninstall or erasure from before the current install: ignored");
            }
            ShopEvent::AppUninstalled => {
                let cancelled = shops::uninstall(tx, shop.id).await?;
                tracing::info!(shop = %shop.domain, cancelled, "app uninstalled: token erased, jobs cancelled");
            }
            ShopEvent::CustomerDataRequested(req) => {
                privacy::export_customer(tx, shop.id, &req).await?
            }
            ShopEvent::CustomerRedactRequested(req) => {
                privacy::redact_customer(tx, shop.id, &req).await?
            }
            ShopEvent::ShopRedactRequested => {
                let removed = privacy::redact_shop(tx, shop.id).await?;
                tracing::info!(
                    shop_id = shop.id,
                    removed,
                    "shop erased: no row of it is left"
                );
            }
            ShopEvent::BulkOperationFinished {
                operation_id,
                status,
            } => {
                tracing::info!(shop = %shop.domain, %operation_id, %status, "bulk operation finished");
            }
            ShopEvent::FetchRequested {
                resource,
                platform_id,
            } if installed => {
                crate::triggers::fetch(tx, shop.id, resource, &platform_id, Utc::now()).await?;
            }
            ShopEvent::FetchRequested { .. } => {
                tracing::info!(shop = %shop.domain, "shop is not installed: fetch ignored");
            }
        }
    }
    if !data.is_empty() {
        // The shop's own tags are told apart by its prefix; unreadable settings fail the
        // segment run loudly, here the default prefix only makes fewer updates count as echoes.
        let prefix = crate::settings::LoyaltySettings::from_shop_json(&shop.settings)
            .map(|s| s.tag_prefix)
            .unwrap_or_default();
        let unchanged = super::echo::unchanged_customers(tx, shop.id, &prefix, &data).await?;
        super::apply::apply(tx, shop.id, &data).await?;
        // Near-real-time re-scoring of the customers these events touch (issue 7); echoes of
        // our own writes change nothing it reads and enqueue nothing.
        crate::triggers::after_events(tx, shop.id, &data, &unchanged, Utc::now()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::inbox::{Delivery, insert_many};
    use crate::store::testdb::{TestDb, install_shop};
    use sea_orm::{ConnectionTrait, DatabaseBackend, EntityTrait};

    /// Makes inserting the customer with this email fail inside the database, the way a
    /// constraint or a full disk would: a real error from the real engine.
    async fn refuse_email(db: &Db, email: &str) {
        let sql = match db.get_database_backend() {
            DatabaseBackend::Postgres => format!(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN \
                 IF NEW.email = '{email}' THEN RAISE EXCEPTION 'refused'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER refuse BEFORE INSERT ON customers \
                 FOR EACH ROW EXECUTE FUNCTION refuse();"
            ),
            _ => format!(
                "CREATE TRIGGER refuse BEFORE INSERT ON customers \
                 WHEN NEW.email = '{email}' BEGIN SELECT RAISE(ABORT, 'refused'); END;"
            ),
        };
        db.execute_unprepared(&sql).await.unwrap();
    }

    fn customer(id: u64, email: &str) -> Vec<u8> {
        serde_json::json!({
            "id": id,
            "email": email,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-02T00:00:00Z",
        })
        .to_string()
        .into_bytes()
    }

    /// The app's platforms over this database, as the composition root registers them.
    fn test_platforms(db: &Db) -> Platforms {
        let env = crate::platforms::Env {
            db: db.clone(),
            cipher: crate::secrets::Cipher::from_config(&crate::secrets::Cipher::generate_key())
                .unwrap(),
            http: reqwest::Client::new(),
            app_url: "http://127.0.0.1:1".into(),
            session_keys: vec![crate::secrets::random_secret(32)].into(),
        };
        let config = crate::config::Config::local(std::env::temp_dir());
        crate::app::platforms(&env, &config)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_batch_applies_its_rows_fails_the_undecodable_and_retries_only_the_refused() {
        for t in TestDb::all().await {
            let db = &t.db;
            // The default platform's payloads: a customer as its `customers/update` carries it.
            let platform = crate::platforms::PlatformsConfig::NAMES[0];
            install_shop(db, platform, "a.example").await;
            refuse_email(db, "refused@example.com").await;
            let bodies = [
                customer(1, "one@example.com"),
                b"not json".to_vec(),
                customer(2, "refused@example.com"),
                customer(3, "three@example.com"),
            ];
            let deliveries: Vec<Delivery> = bodies
                .iter()
                .enumerate()
                .map(|(i, body)| Delivery {
                    platform,
                    shop_domain: "a.example".into(),
                    topic: "customers/update".into(),
                    webhook_id: format!("w-{i}"),
                    event_id: None,
                    api_version: None,
                    triggered_at: None,
                    body: body.clone(),
                })
                .collect();
            let rows: Vec<_> = deliveries.iter().map(|d| (d, false)).collect();
            insert_many(db, &rows, Utc::now()).await.unwrap();

            let opts = WorkerOptions::default();
            let platforms = test_platforms(db);
            assert_eq!(
                drain(db, &platforms, &opts, "w").await.unwrap(),
                4,
                "every row settled"
            );

            let mut states: Vec<(String, String, i32, Option<String>)> =
                crate::store::entities::inbox::Entity::find()
                    .all(db)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| (r.webhook_id, r.state, r.attempts, r.last_error))
                    .collect();
            states.sort();
            let state = |i: usize| states[i].1.as_str();
            assert_eq!(state(0), q::DONE, "{states:?}");
            assert_eq!(state(1), q::FAILED, "{states:?}");
            assert!(
                states[1].3.as_deref().unwrap_or("").contains("JSON"),
                "{states:?}"
            );
            // The refused row alone is back in the queue, with its attempt counted, for later.
            assert_eq!(state(2), q::QUEUED, "{states:?}");
            assert_eq!(states[2].2, 1, "{states:?}");
            assert!(
                states[2].3.as_deref().unwrap_or("").contains("refused"),
                "{states:?}"
            );
            assert_eq!(state(3), q::DONE, "{states:?}");

            let emails: Vec<Option<String>> = db
                .query_all_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    "SELECT email FROM customers ORDER BY email",
                ))
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<Option<String>>("", "email").unwrap())
                .collect();
            assert_eq!(
                emails,
                vec![
                    Some("one@example.com".to_string()),
                    Some("three@example.com".to_string())
                ],
                "the good rows were applied despite the rolled-back batch"
            );
            // Not due yet (backoff): nothing more to do now.
            assert_eq!(drain(db, &platforms, &opts, "w").await.unwrap(), 0);
            t.remove().await;
        }
    }
}
