//! The app's grant on one shop: whether it is installed, and the codes and tokens issued.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub scope: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// Issued as part of the one refreshable (expiring) offline grant.
    pub expiring: bool,
    /// Admin API calls the token still answers before it counts as expired (the fault
    /// `token_calls`: a token that expires mid-run without waiting an hour).
    pub calls_left: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub scope: String,
    pub online: bool,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub scope: String,
    pub expires_at: DateTime<Utc>,
    /// Set on first use; a retry within the window gets the same response.
    pub used: Option<(Instant, Value)>,
}

#[derive(Debug, Default)]
pub struct AuthState {
    pub installed: bool,
    pub scope: String,
    pub codes: HashMap<String, AuthCode>,
    pub tokens: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshToken>,
}

/// Sandbox tokens carry an `sbx_` prefix so nobody mistakes them for real Shopify tokens.
pub fn new_token(kind: &str) -> String {
    format!("sbx_{kind}_{}", uuid::Uuid::new_v4().simple())
}

impl AuthState {
    pub fn check(&self, token: &str, now: DateTime<Utc>) -> bool {
        self.installed
            && self.tokens.get(token).is_some_and(|t| {
                t.expires_at.is_none_or(|e| e > now) && t.calls_left.is_none_or(|n| n > 0)
            })
    }

    /// [`check`](Self::check), spending one of the token's calls if they are counted.
    pub fn spend(&mut self, token: &str, now: DateTime<Utc>) -> bool {
        if !self.check(token, now) {
            return false;
        }
        if let Some(n) = self
            .tokens
            .get_mut(token)
            .and_then(|t| t.calls_left.as_mut())
        {
            *n -= 1;
        }
        true
    }

    /// Uninstall revokes everything the app holds.
    pub fn revoke_all(&mut self) {
        self.installed = false;
        self.codes.clear();
        self.tokens.clear();
        self.refresh.clear();
    }

    /// Only one refreshable expiring offline token per app and shop: a new grant ends the old.
    pub fn drop_expiring(&mut self) {
        self.tokens.retain(|_, t| !t.expiring);
        self.refresh.clear();
    }
}
