//! What every request handler and job shares: configuration, the database, the token cipher,
//! the HTTP client for platform APIs, and the job registry.

use std::ops::Deref;
use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::queue::{Host, Registry};
use crate::secrets::Cipher;
use crate::store::Db;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub cipher: Cipher,
    pub shopify: ShopifyApp,
    pub http: reqwest::Client,
    pub registry: Registry<AppState>,
    pub metrics: Metrics,
    /// Names this instance's workers in lease columns.
    pub instance_id: String,
    /// Each Shopify shop's rate-limit bucket as this process models it.
    pub buckets: crate::platforms::shopify::client::Buckets,
    /// One token refresh in flight per shop.
    pub refresh_locks:
        std::sync::Mutex<std::collections::HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// The Shopify app manifest (topics, scopes).
    pub manifest: crate::platforms::shopify::manifest::Manifest,
    /// Hands verified webhooks to the inbox writer, which commits them in batches.
    pub intake: crate::ingest::intake::Intake,
}

/// The app's Shopify credentials, resolved at start-up.
pub struct ShopifyApp {
    pub client_id: String,
    /// Current secret first, then the previous one during a rotation.
    pub secrets: Vec<String>,
}

impl ShopifyApp {
    pub fn secret(&self) -> &str {
        &self.secrets[0]
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

impl Host for AppState {
    fn db(&self) -> &crate::store::Db {
        &self.db
    }
    fn registry(&self) -> &Registry<AppState> {
        &self.registry
    }
    fn instance_id(&self) -> &str {
        &self.instance_id
    }
}
