//! The worker pool: each worker does the registry's first step (the app applies stored
//! webhooks there, so they take effect promptly), then claims a job, keeps its lease alive with a heartbeat while the handler runs, and
//! records the outcome.
//! Failures are retried with exponential backoff and jitter, then parked as `dead`.

use std::panic::AssertUnwindSafe;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use futures_util::FutureExt;
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::{Host, JobError};
use crate::store::entities::job;
use crate::store::jobs::{self as q, Queue};

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub workers: usize,
    pub lease: Duration,
    pub poll: StdDuration,
    /// First retry delay; doubles with each attempt, capped at `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            workers: 4,
            lease: Duration::seconds(60),
            poll: StdDuration::from_millis(250),
            retry_base: Duration::seconds(5),
            retry_cap: Duration::hours(1),
        }
    }
}

/// Delay before retry number `attempt` (1-based): base · 2^(attempt−1), capped, ±25 % jitter so
/// a burst of failures does not retry in lockstep.
pub fn backoff(attempt: i32, base: Duration, cap: Duration) -> Duration {
    let exp = base
        .num_milliseconds()
        .saturating_mul(1i64 << (attempt - 1).clamp(0, 30));
    let ms = exp.min(cap.num_milliseconds()).max(1);
    let jitter = rand::rng().random_range(0.75..1.25);
    Duration::milliseconds((ms as f64 * jitter) as i64)
}

/// Starts the pool; workers stop taking work when `stop` turns true and finish what they hold.
pub fn spawn<S: Host>(
    state: S,
    opts: WorkerOptions,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    (0..opts.workers)
        .map(|n| {
            let name = format!("{}-{n}", state.instance_id());
            tokio::spawn(run_worker(state.clone(), opts.clone(), name, stop.clone()))
        })
        .collect()
}

async fn run_worker<S: Host>(
    state: S,
    opts: WorkerOptions,
    name: String,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        // A panic anywhere in a step ends that step, not the worker: it logs and carries on
        // (the step's claims are settled by `work_once` or roll back with its transaction).
        let step = AssertUnwindSafe(work_once(&state, &opts, &name)).catch_unwind();
        let worked = match step.await {
            Ok(Ok(worked)) => worked,
            Ok(Err(e)) => {
                tracing::warn!(worker = %name, error = %e, "worker could not reach the database");
                false
            }
            Err(panic) => {
                tracing::error!(worker = %name, panic = panic_message(&panic), "worker step panicked; the worker carries on");
                false
            }
        };
        if !worked {
            tokio::select! {
                _ = tokio::time::sleep(opts.poll) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// Does the registry's first step or, when it had nothing to do, claims and runs one job.
/// Returns whether there was anything to do.
pub async fn work_once<S: Host>(
    state: &S,
    opts: &WorkerOptions,
    name: &str,
) -> Result<bool, sea_orm::DbErr> {
    if let Some(first) = state.registry().first().cloned()
        && first(state.clone(), opts.clone(), name.to_string()).await? > 0
    {
        return Ok(true);
    }
    let now = Utc::now();
    if let Some(job) =
        q::claim::<job::Model>(state.db(), Queue::Jobs, name, opts.lease, now).await?
    {
        let (id, attempts, max) = (job.id, job.attempts, job.max_attempts);
        let kind = job.kind.clone();
        let outcome = match state.registry().get(&kind).cloned() {
            // Every claim counts an attempt; one past the limit is a job whose worker stopped
            // (process killed, lease lost) in each of its attempts: parked, not run again.
            _ if attempts > max => Err(JobError::Permanent(format!(
                "its worker stopped before finishing in each of its {max} attempts"
            ))),
            Some(handler) => {
                let span = tracing::info_span!("job", id, kind = %kind, shop_id = job.shop_id);
                let work = AssertUnwindSafe(handler(state.clone(), job).instrument(span))
                    .catch_unwind()
                    .map(|r| {
                        r.unwrap_or_else(|panic| {
                            Err(JobError::Retry(format!(
                                "the handler panicked: {}",
                                panic_message(&panic)
                            )))
                        })
                    });
                with_heartbeat(state, opts, Queue::Jobs, id, name, work).await
            }
            None => Err(JobError::Permanent(format!(
                "no handler for job kind `{kind}`"
            ))),
        };
        settle(state, opts, id, name, attempts, max, outcome).await?;
        return Ok(true);
    }
    Ok(false)
}

/// Runs `work` while a separate task renews the lease every third of its length. The renewal
/// must not share a task with the work: on SQLite it waits for the write lock that the work's
/// own transaction may hold, and the work has to keep running to release it. When the lease is
/// found lost (the row expired and may already run elsewhere), the work is dropped: its open
/// transaction rolls back and the row's new holder does the job.
async fn with_heartbeat<S: Host, F>(
    state: &S,
    opts: &WorkerOptions,
    queue: Queue,
    id: i64,
    name: &str,
    work: F,
) -> Result<(), JobError>
where
    F: std::future::Future<Output = Result<(), JobError>>,
{
    let every = (opts.lease / 3)
        .to_std()
        .unwrap_or(StdDuration::from_secs(10));
    let (db, lease, name) = (state.db().clone(), opts.lease, name.to_string());
    let (lost_tx, lost) = tokio::sync::oneshot::channel::<()>();
    let beat = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            match q::heartbeat(&db, queue, id, &name, Utc::now() + lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        id,
                        queue = queue.table(),
                        "lease lost; stopping this attempt, the row's new holder carries on"
                    );
                    let _ = lost_tx.send(());
                    return;
                }
                Err(e) => tracing::warn!(id, error = %e, "heartbeat failed"),
            }
        }
    });
    // Aborted however this future ends, including when the worker itself is dropped.
    let _beat = AbortOnDrop(beat);
    tokio::select! {
        outcome = work => outcome,
        Ok(()) = lost => Err(JobError::Retry("lease lost".into())),
    }
}

/// The text a panic carried, for the log and the job's last error.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Records a job's outcome: done, retried with backoff while attempts remain, or dead.
async fn settle<S: Host>(
    state: &S,
    opts: &WorkerOptions,
    id: i64,
    name: &str,
    attempts: i32,
    max_attempts: i32,
    outcome: Result<(), JobError>,
) -> Result<(), sea_orm::DbErr> {
    let (db, queue) = (state.db(), Queue::Jobs);
    match outcome {
        Ok(()) => {
            q::finish(db, queue, id, name, q::DONE, None).await?;
        }
        Err(JobError::Retry(msg)) if attempts < max_attempts => {
            let at = Utc::now() + backoff(attempts, opts.retry_base, opts.retry_cap);
            tracing::warn!(id, attempts, error = %msg, "job will retry");
            q::requeue(db, queue, id, name, at, Some(&msg), false).await?;
        }
        Err(e) => {
            tracing::error!(id, attempts, error = %e, "job failed; giving up");
            q::finish(db, queue, id, name, q::DEAD, Some(&e.to_string())).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::queue::Registry;
    use crate::store::Db;
    use crate::store::testdb::TestDb;

    #[derive(Clone)]
    struct TestHost {
        db: Db,
        registry: Arc<Registry<TestHost>>,
    }

    impl Host for TestHost {
        fn db(&self) -> &Db {
            &self.db
        }
        fn registry(&self) -> &Registry<Self> {
            &self.registry
        }
        fn instance_id(&self) -> &str {
            "test"
        }
    }

    async fn state_of(db: &Db, id: i64) -> (String, i32, Option<String>) {
        let j = q::get(db, id).await.unwrap().unwrap();
        (j.state, j.attempts, j.last_error)
    }

    /// A handler that panics costs an attempt and is retried, then parked with the panic's
    /// message; a first step that panics does not end the worker; a job re-claimed past its
    /// limit (its worker died in every attempt) is parked without running.
    #[tokio::test(flavor = "multi_thread")]
    async fn panics_and_dead_workers_cost_attempts_and_end_parked() {
        for t in TestDb::all().await {
            let db = t.db.clone();
            let runs = Arc::new(AtomicUsize::new(0));
            let firsts = Arc::new(AtomicUsize::new(0));
            let mut registry = Registry::default();
            fn explode() -> crate::queue::JobResult {
                panic!("bad input")
            }
            registry.register("boom", |_s: TestHost, _j| async move { explode() });
            let counted = runs.clone();
            registry.register("ok", move |_s: TestHost, _j| {
                counted.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            });
            let f = firsts.clone();
            registry.first_step(move |_s: TestHost, _o, _n| {
                // The first call panics; later ones find nothing to do.
                let n = f.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        panic!("first step broke");
                    }
                    Ok(0)
                }
            });
            let host = TestHost {
                db: db.clone(),
                registry: Arc::new(registry),
            };
            let opts = WorkerOptions {
                workers: 1,
                poll: StdDuration::from_millis(20),
                retry_base: Duration::milliseconds(10),
                retry_cap: Duration::milliseconds(20),
                ..Default::default()
            };
            let boom = q::enqueue(&db, q::NewJob::new("boom").max_attempts(2))
                .await
                .unwrap()
                .unwrap();
            let (stop_tx, stop) = watch::channel(false);
            let workers = spawn(host.clone(), opts.clone(), stop);
            let mut parked = None;
            for _ in 0..200 {
                let s = state_of(&db, boom).await;
                if s.0 == q::DEAD {
                    parked = Some(s);
                    break;
                }
                tokio::time::sleep(StdDuration::from_millis(50)).await;
            }
            let (_, attempts, error) = parked.expect("the panicking job is parked");
            assert_eq!(attempts, 2);
            assert!(error.unwrap().contains("panicked: bad input"));
            assert!(
                firsts.load(Ordering::SeqCst) > 1,
                "the worker went on after its panic"
            );
            // The same worker still runs jobs.
            let ok = q::enqueue(&db, q::NewJob::new("ok"))
                .await
                .unwrap()
                .unwrap();
            let mut done = false;
            for _ in 0..200 {
                if state_of(&db, ok).await.0 == q::DONE {
                    done = true;
                    break;
                }
                tokio::time::sleep(StdDuration::from_millis(50)).await;
            }
            assert!(done, "the worker still runs jobs");
            stop_tx.send(true).unwrap();
            for w in workers {
                w.await.unwrap();
            }
            // A job whose worker died in its last attempt (lease expired, row still running).
            let dying = q::enqueue(&db, q::NewJob::new("ok").max_attempts(1))
                .await
                .unwrap()
                .unwrap();
            let t0 = Utc::now();
            let claimed = q::claim::<job::Model>(&db, Queue::Jobs, "gone", opts.lease, t0)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(claimed.id, dying);
            let before = runs.load(Ordering::SeqCst);
            // Simulate the lease's expiry.
            sea_orm::ConnectionTrait::execute_unprepared(
                &db,
                &format!("UPDATE jobs SET lease_until = run_at WHERE id = {dying}"),
            )
            .await
            .unwrap();
            assert!(work_once(&host, &opts, "w").await.unwrap());
            let (state, attempts, error) = state_of(&db, dying).await;
            assert_eq!((state.as_str(), attempts), (q::DEAD, 2));
            assert!(error.unwrap().contains("stopped before finishing"));
            assert_eq!(runs.load(Ordering::SeqCst), before, "not run again");
            t.remove().await;
        }
    }
}
