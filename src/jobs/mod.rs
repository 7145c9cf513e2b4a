//! Durable background work. Handlers are registered by job kind; the worker pool claims jobs and
//! inbox rows from the database, and the scheduler only enqueues.

pub mod scheduler;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::state::AppState;
use crate::store::entities::job;

/// Why a job did not complete. A retryable failure is tried again with backoff until the job's
/// attempts run out; a permanent one goes straight to `dead`.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Retry(String),
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    pub fn retry(e: impl std::fmt::Display) -> JobError {
        JobError::Retry(e.to_string())
    }
    pub fn permanent(e: impl std::fmt::Display) -> JobError {
        JobError::Permanent(e.to_string())
    }
}

impl From<sea_orm::DbErr> for JobError {
    fn from(e: sea_orm::DbErr) -> Self {
        JobError::Retry(format!("database: {e}"))
    }
}

pub type JobResult = Result<(), JobError>;
pub type Handler = Arc<dyn Fn(AppState, job::Model) -> BoxFuture<'static, JobResult> + Send + Sync>;

/// Job kinds the app knows, mapped to their handlers.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Handler>,
}

impl Registry {
    pub fn register<F, Fut>(&mut self, kind: &str, f: F)
    where
        F: Fn(AppState, job::Model) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = JobResult> + Send + 'static,
    {
        self.handlers
            .insert(kind.to_string(), Arc::new(move |s, j| Box::pin(f(s, j))));
    }

    pub fn get(&self, kind: &str) -> Option<&Handler> {
        self.handlers.get(kind)
    }
}

/// A scheduled entry: enqueue `kind` on this cron, once per installed shop or once globally.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub cron: String,
    pub kind: String,
    pub per_shop: bool,
    /// The key in a shop's settings JSON whose value, a five-field cron, replaces `cron` for
    /// that shop (the merchant's own schedule). Only for per-shop entries.
    pub shop_setting: Option<&'static str>,
}

/// The app's job kinds and their handlers.
pub fn default_registry() -> Registry {
    let mut r = Registry::default();
    crate::sync::register(&mut r);
    // Segments and write-back (issue 7).
    r.register(kinds::SEGMENT, crate::writeback::segment::job);
    r.register(kinds::RESCORE, crate::writeback::rescore::job);
    r
}

/// The app's schedules, from configuration.
pub fn default_schedules(config: &crate::config::Config) -> Vec<Schedule> {
    vec![
        Schedule {
            cron: config.reconcile_schedule.clone(),
            kind: kinds::RECONCILE.into(),
            per_shop: true,
            shop_setting: None,
        },
        // The nightly analyse → segments → plan → push, per installed shop (issue 7).
        Schedule {
            cron: config.segment_schedule.clone(),
            kind: kinds::SEGMENT.into(),
            per_shop: true,
            shop_setting: Some(crate::analysis::settings::SCHEDULE_KEY),
        },
    ]
}

/// What follows a sync that changed the shop's data: a segment run, debounced. Every sync in
/// the same ten-second window shares one job (the dedupe key), which runs when the window
/// closes, so a burst of syncs costs one run and none of their changes is left out.
pub async fn after_sync(state: &AppState, shop_id: i64) -> Result<(), JobError> {
    let now = chrono::Utc::now();
    let window = crate::writeback::rescore::DEBOUNCE_SECS;
    let end = now.timestamp().div_euclid(window) * window + window;
    let run_at = chrono::DateTime::from_timestamp(end, 0).unwrap_or(now);
    let job = crate::store::jobs::NewJob::new(kinds::SEGMENT)
        .shop(shop_id)
        .dedupe(format!("segment:after-sync:{shop_id}:{end}"))
        .run_at(run_at);
    crate::store::jobs::enqueue(&state.db, job).await?;
    Ok(())
}

/// Job kind names.
pub mod kinds {
    pub const BACKFILL: &str = "shopify.backfill";
    pub const INCREMENTAL: &str = "shopify.incremental";
    pub const RECONCILE: &str = "shopify.reconcile";
    pub const SEGMENT: &str = "segment";
    pub const PUSH: &str = "push";
    /// One customer re-scored and re-tagged after a webhook.
    pub const RESCORE: &str = "rescore";
}
