//! What every request handler and job shares: configuration, the platforms (and through them
//! the database, the token cipher and the HTTP client), metrics, the webhook intake and the
//! job registry.

use std::ops::Deref;
use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::platforms::{Env, Platforms};
use crate::queue::{Host, Registry};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    /// Database, cipher, HTTP client and public URL, shared with the platforms.
    pub env: Env,
    pub platforms: Platforms,
    pub registry: Registry<AppState>,
    pub metrics: Metrics,
    /// Names this instance's workers in lease columns.
    pub instance_id: String,
    /// Hands verified webhooks to the inbox writer, which commits them in batches.
    pub intake: crate::ingest::intake::Intake,
    /// The runtime the state was built on (the workers'): a whole-shop read a request asks
    /// for runs there, off the HTTP threads that answer webhooks.
    pub background: tokio::runtime::Handle,
    /// One whole-shop read asked for by requests at a time: each holds a shop in memory.
    pub whole_shop_reads: tokio::sync::Semaphore,
}

impl AppState {
    /// Runs `work` (a whole-shop read for a request) on the background runtime, one at a
    /// time, and waits for it without holding an HTTP thread.
    pub async fn off_the_request_threads<T, F>(&self, work: F) -> Result<T, tokio::task::JoinError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let state = self.clone();
        self.background
            .spawn(async move {
                let _one = state.whole_shop_reads.acquire().await;
                work.await
            })
            .await
    }
}

impl AppState {
    pub fn new(inner: Inner) -> AppState {
        AppState(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// `state.db`, `state.cipher` and `state.http` read through to the shared environment.
impl Deref for Inner {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

impl Host for AppState {
    fn db(&self) -> &crate::store::Db {
        &self.env.db
    }
    fn registry(&self) -> &Registry<AppState> {
        &self.registry
    }
    fn instance_id(&self) -> &str {
        &self.instance_id
    }
}
