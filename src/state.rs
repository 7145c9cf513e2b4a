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
