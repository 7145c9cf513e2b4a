//! The worker pool: each worker does the registry's first step (the app applies stored
//! webhooks there, so they take effect promptly), then claims a job, keeps its lease alive with a heartbeat while the handler runs, and
//! records the outcome.
//! Failures are retried with exponential backoff and jitter, then parked as `dead`.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
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
        let worked = match work_once(&state, &opts, &name).await {
            Ok(worked) => worked,
            Err(e) => {
                tracing::warn!(worker = %name, error = %e, "worker could not reach the database");
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
            Some(handler) => {
                let span = tracing::info_span!("job", id, kind = %kind, shop_id = job.shop_id);
                let work = handler(state.clone(), job).instrument(span);
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
