//! Installing Lifecycle into an Ecwid store: the authorization code (from the App Market's
//! redirect, or from the authorize page for a manual install) is exchanged once for the
//! store's token, which does not expire while the app is installed and is kept encrypted.

use chrono::Utc;
use serde::Deserialize;

use super::Ecwid;
use crate::store::{self, entities::shop, shops};

/// The scopes Lifecycle asks for: read the store, its customers and orders; change a
/// customer's group; create and read discount coupons.
pub const SCOPES: &str = "read_store_profile read_customers update_customers create_customers read_orders create_discount_coupons read_discount_coupons";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("Ecwid did not accept the request: {0}")]
    Upstream(String),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    scope: String,
    store_id: u64,
}

impl Ecwid {
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/ecwid/callback", self.env.app_url)
    }

    /// Where a manual install sends the merchant.
    pub fn authorize_url(&self) -> String {
        let mut url = url::Url::parse(&format!("{}/api/oauth/authorize", self.oauth_origin()))
            .expect("the OAuth origin is a URL");
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.redirect_uri())
            .append_pair("response_type", "code")
            .append_pair("scope", SCOPES);
        url.to_string()
    }

    /// Exchanges the code (single use) and records the store as installed, with its backfill.
    pub async fn complete_install(&self, code: &str) -> Result<shop::Model, InstallError> {
        let response = self
            .env
            .http
            .get(format!("{}/api/oauth/token", self.oauth_origin()))
            .query(&[
                ("client_id", self.config.client_id.as_str()),
                ("client_secret", self.secret()),
                ("code", code),
                ("redirect_uri", &self.redirect_uri()),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await
            .map_err(|e| InstallError::Upstream(format!("token request failed: {e}")))?;
        let status = response.status();
        if status.is_client_error() {
            return Err(InstallError::BadRequest(format!(
                "Ecwid refused the authorization code ({status}); install again from the App Market"
            )));
        }
        if !status.is_success() {
            return Err(InstallError::Upstream(format!(
                "token request answered {status}"
            )));
        }
        let token: TokenResponse = response
            .json()
            .await
            .map_err(|e| InstallError::Upstream(format!("token response unreadable: {e}")))?;
        let granted: Vec<&str> = token.scope.split_whitespace().collect();
        let missing: Vec<&str> = SCOPES
            .split_whitespace()
            .filter(|s| !granted.contains(s))
            .collect();
        if !missing.is_empty() {
            return Err(InstallError::Forbidden(format!(
                "the store granted `{}` but Lifecycle also needs `{}`",
                token.scope,
                missing.join(" ")
            )));
        }
        let key = token.store_id.to_string();
        let grant = shops::TokenGrant {
            credentials: crate::platforms::Credentials::token(token.access_token)
                .seal(&self.env.cipher, &key),
            expires_at: None,
            scopes: token.scope,
        };
        let tx = store::write_tx(&self.env.db).await?;
        let model = shops::upsert_installed(&tx, super::PLATFORM, &key, grant).await?;
        crate::triggers::installed(&tx, &model).await?;
        tx.commit().await?;
        tracing::info!(store = %key, at = %Utc::now(), "installed");
        Ok(model)
    }
}
