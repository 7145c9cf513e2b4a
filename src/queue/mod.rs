//! Durable background work, knowing no feature: handlers are registered by job kind (by the
//! composition root, `app`), the worker pool claims jobs from the database, and the scheduler
//! only enqueues. Generic over the state the handlers receive.

pub mod scheduler;
pub mod worker;

pub use worker::WorkerOptions;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::store::Db;
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
pub type Handler<S> = Arc<dyn Fn(S, job::Model) -> BoxFuture<'static, JobResult> + Send + Sync>;
/// Work a worker does before it claims a job (the app drains its webhook inbox there), given
/// the worker's options and name; returns how many items it settled.
pub type FirstStep<S> = Arc<
    dyn Fn(S, WorkerOptions, String) -> BoxFuture<'static, Result<usize, sea_orm::DbErr>>
        + Send
        + Sync,
>;

/// What the worker pool needs of the state it hands to handlers.
pub trait Host: Clone + Send + Sync + 'static {
    fn db(&self) -> &Db;
    fn registry(&self) -> &Registry<Self>;
    /// Names this instance's workers in lease columns.
    fn instance_id(&self) -> &str;
}

/// Job kinds mapped to their handlers, plus an optional first step of every worker loop.
pub struct Registry<S> {
    handlers: HashMap<String, Handler<S>>,
    first: Option<FirstStep<S>>,
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Registry {
            handlers: HashMap::new(),
            first: None,
        }
    }
}

impl<S> Clone for Registry<S> {
    fn clone(&self) -> Self {
        Registry {
            handlers: self.handlers.clone(),
            first: self.first.clone(),
        }
    }
}

impl<S: Send + 'static> Registry<S> {
    /// A handler that reads the job row itself (kinds without a payload).
    pub fn register<F, Fut>(&mut self, kind: &str, f: F)
    where
        F: Fn(S, job::Model) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = JobResult> + Send + 'static,
    {
        self.handlers
            .insert(kind.to_string(), Arc::new(move |s, j| Box::pin(f(s, j))));
    }

    /// A handler of a typed payload. A payload that does not parse as `P` fails the job
    /// permanently with the reason; it is never read as a default.
    pub fn register_typed<P, F, Fut>(&mut self, kind: &str, f: F)
    where
        P: serde::de::DeserializeOwned + Send + 'static,
        F: Fn(S, job::Model, P) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = JobResult> + Send + 'static,
    {
        let f = Arc::new(f);
        self.handlers.insert(
            kind.to_string(),
            Arc::new(move |s, j| {
                let f = f.clone();
                Box::pin(async move {
                    let payload = payload::<P>(&j)?;
                    f(s, j, payload).await
                })
            }),
        );
    }

    /// Sets the work every worker does before claiming a job.
    pub fn first_step<F, Fut>(&mut self, f: F)
    where
        F: Fn(S, WorkerOptions, String) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<usize, sea_orm::DbErr>> + Send + 'static,
    {
        self.first = Some(Arc::new(move |s, o, n| Box::pin(f(s, o, n))));
    }

    pub fn get(&self, kind: &str) -> Option<&Handler<S>> {
        self.handlers.get(kind)
    }

    pub fn first(&self) -> Option<&FirstStep<S>> {
        self.first.as_ref()
    }
}

/// A job's payload as `P`, or a permanent error naming the job's kind and what is wrong.
pub fn payload<P: serde::de::DeserializeOwned>(job: &job::Model) -> Result<P, JobError> {
    serde_json::from_str(&job.payload).map_err(|e| {
        JobError::Permanent(format!(
            "the payload of this `{}` job is not valid: {e}",
            job.kind
        ))
    })
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
