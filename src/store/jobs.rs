//! The durable queue. `jobs` and `webhook_inbox` share one claiming mechanism: a row is
//! claimable when it is `queued` and due, or `running` with an expired lease (its worker died).
//! PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so workers of many instances never take the
//! same row; SQLite serialises writers, and the claim is a single atomic `UPDATE ... RETURNING`.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, FromQueryResult, Value};

use super::entities::job;
use super::{Db, stmt};

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const DEAD: &str = "dead";
pub const CANCELLED: &str = "cancelled";
/// Inbox rows whose payload could not be applied and will not be retried.
pub const FAILED: &str = "failed";

/// The two tables that are queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    Jobs,
    Inbox,
}

impl Queue {
    pub fn table(self) -> &'static str {
        match self {
            Queue::Jobs => "jobs",
            Queue::Inbox => "webhook_inbox",
        }
    }
}

/// Claims the next due row of `queue` for `worker`, leasing it until `now + lease`.
pub async fn claim<M: FromQueryResult + Send + Sync>(
    db: &impl ConnectionTrait,
    queue: Queue,
    worker: &str,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<Option<M>, DbErr> {
    Ok(claim_many(db, queue, worker, lease, now, 1)
        .await?
        .into_iter()
        .next())
}

/// Claims up to `limit` rows of `queue` for `worker`, leasing them until `now + lease`: rows
/// whose lease has expired (their worker died) first, so they are resumed before anything
/// new; otherwise the earliest due. Rows come back in no particular order.
pub async fn claim_many<M: FromQueryResult + Send + Sync>(
    db: &impl ConnectionTrait,
    queue: Queue,
    worker: &str,
    lease: Duration,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<M>, DbErr> {
    let backend = db.get_database_backend();
    for which in [Claimable::Expired, Claimable::Due] {
        let (sql, values) = claim_sql(backend, queue, which, limit, worker, now + lease, now);
        let rows = M::find_by_statement(stmt(backend, &sql, values))
            .all(db)
            .await?;
        if !rows.is_empty() {
            return Ok(rows);
        }
    }
    Ok(Vec::new())
}

/// The two kinds of claimable row, each a range on the (state, run_at) index. One `a OR b`
/// statement would make both engines scan the whole table (done rows included) and sort it,
/// so a claim cost grew with the queue's history (3 ms at 20,000 rows).
#[derive(Debug, Clone, Copy)]
enum Claimable {
    /// `running`, with an expired lease.
    Expired,
    /// `queued`, and due.
    Due,
}

/// The claim statement and its values, in the order its placeholders appear.
fn claim_sql(
    backend: DatabaseBackend,
    queue: Queue,
    which: Claimable,
    limit: u32,
    worker: &str,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (String, Vec<Value>) {
    let set_values: [Value; 3] = [worker.into(), lease_until.into(), now.into()];
    let table = queue.table();
    let claimable = match which {
        Claimable::Expired => format!("state = '{RUNNING}' AND lease_until < ?"),
        Claimable::Due => format!("state = '{QUEUED}' AND run_at <= ?"),
    };
    let set = format!(
        "UPDATE {table} SET state = '{RUNNING}', locked_by = ?, lease_until = ?, \
         attempts = attempts + 1, updated_at = ?"
    );
    let pick =
        format!("SELECT id FROM {table} WHERE {claimable} ORDER BY run_at, id LIMIT {limit}");
    if backend == DatabaseBackend::Postgres {
        // The pick is materialised, so it runs once. As `id IN (subquery)` the planner may
        // rescan the subquery once per row it joins, and under SKIP LOCKED each rescan locks
        // the next row: one claim of LIMIT 1 took 71 jobs at once (seen at 1,000,000
        // customers, once planner statistics existed), which then sat `running` unworked.
        let sql = format!(
            "WITH picked AS MATERIALIZED ({pick} FOR UPDATE SKIP LOCKED) \
             {set} WHERE id IN (SELECT id FROM picked) RETURNING *"
        );
        let mut values = vec![now.into()];
        values.extend(set_values);
        (sql, values)
    } else {
        let mut values = set_values.to_vec();
        values.push(now.into());
        (format!("{set} WHERE id IN ({pick}) RETURNING *"), values)
    }
}

/// Extends the lease of a row this worker still holds. False when the lease was lost.
pub async fn heartbeat(
    db: &Db,
    queue: Queue,
    id: i64,
    worker: &str,
    lease_until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let sql = format!(
        "UPDATE {} SET lease_until = ?, updated_at = ? WHERE id = ? AND locked_by = ? AND state = '{RUNNING}'",
        queue.table()
    );
    let backend = db.get_database_backend();
    let r = db
        .execute_raw(stmt(
            backend,
            &sql,
            vec![
                lease_until.into(),
                Utc::now().into(),
                id.into(),
                worker.into(),
            ],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Moves a held row to a final state. Only the holder of the lease can; a worker that lost its
/// lease (and whose row another worker took over) changes nothing.
pub async fn finish(
    db: &impl ConnectionTrait,
    queue: Queue,
    id: i64,
    worker: &str,
    state: &str,
    error: Option<&str>,
) -> Result<bool, DbErr> {
    Ok(finish_many(db, queue, &[id], worker, state, error).await? == 1)
}

/// `finish` for several held rows at once; returns how many it moved.
pub async fn finish_many(
    db: &impl ConnectionTrait,
    queue: Queue,
    ids: &[i64],
    worker: &str,
    state: &str,
    error: Option<&str>,
) -> Result<u64, DbErr> {
    if ids.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    let sql = format!(
        "UPDATE {} SET state = ?, last_error = COALESCE(?, last_error), finished_at = ?, \
         locked_by = NULL, lease_until = NULL, updated_at = ? \
         WHERE id IN ({}) AND locked_by = ? AND state = '{RUNNING}'",
        queue.table(),
        vec!["?"; ids.len()].join(", ")
    );
    let mut values: Vec<Value> = vec![
        state.into(),
        error.map(str::to_string).into(),
        now.into(),
        now.into(),
    ];
    values.extend(ids.iter().map(|&id| Value::from(id)));
    values.push(worker.into());
    let backend = db.get_database_backend();
    let r = db.execute_raw(stmt(backend, &sql, values)).await?;
    Ok(r.rows_affected())
}

/// Records a failed attempt on a row whose claim was rolled back with the work (so it is not
/// held): counts the attempt and moves the row to `state`, due again at `run_at` when that is
/// `queued`.
pub async fn record_failed_attempt(
    db: &impl ConnectionTrait,
    queue: Queue,
    id: i64,
    state: &str,
    run_at: DateTime<Utc>,
    error: &str,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    let finished = (state != QUEUED).then_some(now);
    let sql = format!(
        "UPDATE {} SET state = ?, attempts = attempts + 1, run_at = ?, last_error = ?, \
         finished_at = ?, locked_by = NULL, lease_until = NULL, updated_at = ? \
         WHERE id = ? AND state IN ('{QUEUED}', '{RUNNING}')",
        queue.table()
    );
    let backend = db.get_database_backend();
    let r = db
        .execute_raw(stmt(
            backend,
            &sql,
            vec![
                state.into(),
                run_at.into(),
                error.into(),
                finished.into(),
                now.into(),
                id.into(),
            ],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Puts a held row back in the queue to run at `run_at` (a retry, or a release on shutdown).
pub async fn requeue(
    db: &Db,
    queue: Queue,
    id: i64,
    worker: &str,
    run_at: DateTime<Utc>,
    error: Option<&str>,
    refund_attempt: bool,
) -> Result<bool, DbErr> {
    let refund = if refund_attempt {
        ", attempts = attempts - 1"
    } else {
        ""
    };
    // A job of a shop that uninstalled meanwhile is cancelled rather than retried.
    let next_state = match queue {
        Queue::Jobs => format!(
            "CASE WHEN shop_id IS NULL OR EXISTS (SELECT 1 FROM shops WHERE shops.id = jobs.shop_id \
             AND shops.status = 'installed') THEN '{QUEUED}' ELSE '{CANCELLED}' END"
        ),
        Queue::Inbox => format!("'{QUEUED}'"),
    };
    let sql = format!(
        "UPDATE {} SET state = {next_state}, run_at = ?, last_error = COALESCE(?, last_error), \
         locked_by = NULL, lease_until = NULL, updated_at = ?{refund} \
         WHERE id = ? AND locked_by = ? AND state = '{RUNNING}'",
        queue.table()
    );
    let backend = db.get_database_backend();
    let r = db
        .execute_raw(stmt(
            backend,
            &sql,
            vec![
                run_at.into(),
                error.map(str::to_string).into(),
                Utc::now().into(),
                id.into(),
                worker.into(),
            ],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Puts every row of `queue` still held by a worker whose name starts with `holder_prefix`
/// (one instance's workers) back in the queue, due now, lease cleared and the attempt refunded:
/// the instance is stopping, so another takes them at once instead of after their lease. The
/// instance's workers must have stopped first. Returns how many rows were released.
pub async fn release_held(db: &Db, queue: Queue, holder_prefix: &str) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let held = db
        .query_all_raw(stmt(
            backend,
            &format!(
                "SELECT id, locked_by FROM {} WHERE state = '{RUNNING}' \
                 AND substr(locked_by, 1, ?) = ?",
                queue.table()
            ),
            vec![
                (holder_prefix.chars().count() as i32).into(),
                holder_prefix.into(),
            ],
        ))
        .await?;
    let now = Utc::now();
    let mut released = 0;
    for row in held {
        let id: i64 = row.try_get("", "id")?;
        let holder: String = row.try_get("", "locked_by")?;
        if requeue(db, queue, id, &holder, now, None, true).await? {
            released += 1;
        }
    }
    Ok(released)
}

/// A job to put in the queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub shop_id: Option<i64>,
    pub payload: serde_json::Value,
    /// Jobs with the same dedupe key collapse into one row (scheduler ticks, backfills).
    pub dedupe_key: Option<String>,
    pub run_at: DateTime<Utc>,
    pub max_attempts: i32,
}

impl NewJob {
    pub fn new(kind: impl Into<String>) -> NewJob {
        NewJob {
            kind: kind.into(),
            shop_id: None,
            payload: serde_json::Value::Object(Default::default()),
            dedupe_key: None,
            run_at: Utc::now(),
            max_attempts: 8,
        }
    }
    pub fn shop(mut self, shop_id: i64) -> Self {
        self.shop_id = Some(shop_id);
        self
    }
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }
    pub fn dedupe(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }
    pub fn max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = at;
        self
    }
}

/// Inserts a job; returns its id, or None when a job with the same dedupe key already exists.
pub async fn enqueue(db: &impl ConnectionTrait, job: NewJob) -> Result<Option<i64>, DbErr> {
    let now = Utc::now();
    let backend = db.get_database_backend();
    // A shop's job is only queued while the shop is installed: after an uninstall nothing new
    // starts for it, whoever asks (a sync that just finished, a webhook, the scheduler).
    let sql = "INSERT INTO jobs (created_at, updated_at, kind, shop_id, payload, dedupe_key, state, \
               attempts, max_attempts, run_at, progress_done) \
               SELECT ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, 0 \
               WHERE ? IS NULL OR EXISTS (SELECT 1 FROM shops WHERE shops.id = ? AND shops.status = 'installed') \
               ON CONFLICT (dedupe_key) DO NOTHING RETURNING id";
    let row = db
        .query_one_raw(stmt(
            backend,
            sql,
            vec![
                now.into(),
                now.into(),
                job.kind.into(),
                job.shop_id.into(),
                job.payload.to_string().into(),
                job.dedupe_key.into(),
                job.max_attempts.into(),
                job.run_at.into(),
                job.shop_id.into(),
                job.shop_id.into(),
            ],
        ))
        .await?;
    row.map(|r| r.try_get::<i64>("", "id")).transpose()
}

/// Records progress of a running job (done of total), e.g. a backfill's pages.
pub async fn progress(db: &Db, id: i64, done: i64, total: Option<i64>) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE jobs SET progress_done = ?, progress_total = COALESCE(?, progress_total), updated_at = ? WHERE id = ?",
        vec![done.into(), total.into(), Utc::now().into(), id.into()],
    ))
    .await?;
    Ok(())
}

/// Cancels every queued job of a shop (on uninstall). Running jobs see the shop's state and stop.
pub async fn cancel_for_shop(db: &impl ConnectionTrait, shop_id: i64) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let r = db
        .execute_raw(stmt(
            backend,
            "UPDATE jobs SET state = 'cancelled', finished_at = ?, updated_at = ? WHERE shop_id = ? AND state = 'queued'",
            vec![Utc::now().into(), Utc::now().into(), shop_id.into()],
        ))
        .await?;
    Ok(r.rows_affected())
}

/// Moves a dead job back to the queue (the admin's "retry" button).
pub async fn retry_dead(db: &Db, shop_id: i64, id: i64) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let r = db
        .execute_raw(stmt(
            backend,
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = ?, updated_at = ? WHERE id = ? AND shop_id = ? AND state = 'dead'",
            vec![Utc::now().into(), Utc::now().into(), id.into(), shop_id.into()],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<job::Model>, DbErr> {
    job::Entity::find_by_id(id).one(db).await
}

/// The shop's job with this dedupe key.
pub async fn find_by_dedupe(db: &Db, shop_id: i64, key: &str) -> Result<Option<job::Model>, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter};
    job::Entity::find()
        .filter(job::Column::ShopId.eq(shop_id))
        .filter(job::Column::DedupeKey.eq(key))
        .one(db)
        .await
}

/// Counts of rows by state, for `/metrics` and the admin.
pub async fn counts_by_state(db: &Db, queue: Queue) -> Result<Vec<(String, i64)>, DbErr> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(stmt(
            backend,
            &format!(
                "SELECT state, COUNT(*) AS n FROM {} GROUP BY state",
                queue.table()
            ),
            vec![],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.try_get::<String>("", "state")?,
                r.try_get::<i64>("", "n")?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdb::TestDb;

    async fn claim_job(db: &Db, at: DateTime<Utc>) -> Option<i64> {
        claim::<job::Model>(db, Queue::Jobs, "w", Duration::seconds(60), at)
            .await
            .unwrap()
            .map(|j| j.id)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn claims_due_rows_in_order_and_resumes_expired_leases_first() {
        for t in TestDb::all().await {
            let db = &t.db;
            let t0 = Utc::now();
            let job = |secs: i64| NewJob::new("k").run_at(t0 + Duration::seconds(secs));
            let a = enqueue(db, job(-10)).await.unwrap().unwrap();
            let b = enqueue(db, job(-20)).await.unwrap().unwrap();
            let later = enqueue(db, job(3_600)).await.unwrap().unwrap();
            let done = enqueue(db, job(-30)).await.unwrap().unwrap();
            assert_eq!(claim_job(db, t0).await, Some(done));
            assert!(
                finish(db, Queue::Jobs, done, "w", DONE, None)
                    .await
                    .unwrap()
            );

            assert_eq!(claim_job(db, t0).await, Some(b), "earliest run_at first");
            assert_eq!(claim_job(db, t0).await, Some(a));
            assert_eq!(claim_job(db, t0).await, None, "held and future rows wait");
            // Two minutes on both leases have expired: they are resumed before anything new.
            let t1 = t0 + Duration::seconds(120);
            let due = enqueue(db, job(60)).await.unwrap().unwrap();
            assert_eq!(claim_job(db, t1).await, Some(b));
            assert_eq!(claim_job(db, t1).await, Some(a));
            assert_eq!(claim_job(db, t1).await, Some(due));
            assert_eq!(claim_job(db, t1).await, None, "{later} is not due yet");
            let attempts = get(db, b).await.unwrap().unwrap().attempts;
            assert_eq!(attempts, 2, "a resumed row counts a new attempt");
            t.remove().await;
        }
    }

    #[tokio::test]
    async fn a_claim_on_sqlite_never_scans_the_table() {
        let t = TestDb::sqlite().await;
        let kinds = [Queue::Jobs, Queue::Inbox]
            .into_iter()
            .flat_map(|q| [(q, Claimable::Expired), (q, Claimable::Due)]);
        for (queue, which) in kinds {
            let now = Utc::now();
            let (sql, values) = claim_sql(DatabaseBackend::Sqlite, queue, which, 32, "w", now, now);
            let sql = format!("EXPLAIN QUERY PLAN {sql}");
            let plan: Vec<String> =
                t.db.query_all_raw(stmt(DatabaseBackend::Sqlite, &sql, values))
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.try_get::<String>("", "detail").unwrap())
                    .collect();
            assert!(
                plan.iter().all(|d| !d.starts_with("SCAN")),
                "{queue:?} {which:?}: {plan:?}"
            );
            assert!(
                plan.iter()
                    .any(|d| d.contains("inbox_claim") || d.contains("jobs_claim")),
                "{queue:?} {which:?}: {plan:?}"
            );
        }
        t.remove().await;
    }

    /// A claim takes at most its limit, whatever plan PostgreSQL picks. The planner settings
    /// below make it join the pick as the inner side of a nested loop, rescanned per row,
    /// which is what claimed 71 rows for a limit of 1 before the pick was materialised.
    #[tokio::test]
    async fn a_claim_on_postgres_takes_at_most_its_limit() {
        let Some(t) = TestDb::postgres().await else {
            return;
        };
        let db = &t.db;
        db.execute_unprepared(
            "INSERT INTO jobs (created_at, updated_at, kind, state, max_attempts, run_at) \
             SELECT now(), now(), 'test', 'queued', 5, now() - interval '1 minute' \
             FROM generate_series(1, 200)",
        )
        .await
        .unwrap();
        db.execute_unprepared("ANALYZE jobs").await.unwrap();
        for limit in [1, 7] {
            let tx = sea_orm::TransactionTrait::begin(db).await.unwrap();
            tx.execute_unprepared(
                "SET LOCAL enable_hashagg = off; SET LOCAL enable_sort = off; \
                 SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; \
                 SET LOCAL enable_material = off",
            )
            .await
            .unwrap();
            let claimed = claim_many::<job::Model>(
                &tx,
                Queue::Jobs,
                "w",
                Duration::seconds(60),
                Utc::now(),
                limit,
            )
            .await
            .unwrap();
            let running: i64 = tx
                .query_one_raw(stmt(
                    DatabaseBackend::Postgres,
                    "SELECT COUNT(*) FROM jobs WHERE state = 'running'",
                    vec![],
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get_by_index(0)
                .unwrap();
            assert_eq!(claimed.len(), limit as usize);
            assert_eq!(running, i64::from(limit), "rows left running by one claim");
            tx.rollback().await.unwrap();
        }
        t.remove().await;
    }
}
