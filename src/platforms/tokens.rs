//! A shop's stored credential: why none can be used, and condemning a refused one.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbErr};

use super::Env;
use crate::store::{shops, stmt};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("shop {0} is not installed")]
    NotInstalled(String),
    #[error("shop {0} needs to be re-authorised")]
    NeedsReauth(String),
    #[error("token refresh failed: {0}")]
    Refresh(String),
    #[error("no platform `{0}` is registered")]
    UnknownPlatform(String),
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("stored token: {0}")]
    Secrets(#[from] crate::secrets::SecretsError),
}

/// The decrypted access token of an installed shop, or why there is none to use.
pub fn usable_token(
    env: &Env,
    shop: &crate::store::entities::shop::Model,
) -> Result<String, TokenError> {
    match shop.status.as_str() {
        shops::INSTALLED => {}
        shops::NEEDS_REAUTH => return Err(TokenError::NeedsReauth(shop.domain.clone())),
        _ => return Err(TokenError::NotInstalled(shop.domain.clone())),
    }
    let stored = shop
        .access_token
        .as_deref()
        .ok_or_else(|| TokenError::NotInstalled(shop.domain.clone()))?;
    Ok(env.cipher.decrypt(stored, &shop.domain)?)
}

/// A 401 from the API: the token is no longer good; the merchant must open the app again.
/// Only the token that was refused is condemned: when the stored token has changed since the
/// call began (another caller refreshed it, a re-install replaced it, an uninstall erased it),
/// the shop stays as it is and the caller simply retries with what is stored now.
pub async fn mark_needs_reauth(
    env: &Env,
    shop_id: i64,
    refused_token: &str,
) -> Result<bool, TokenError> {
    let Some(shop) = shops::get(&env.db, shop_id).await? else {
        return Ok(false);
    };
    let Some(stored) = shop.access_token.as_deref() else {
        return Ok(false);
    };
    if env.cipher.decrypt(stored, &shop.domain)? != refused_token {
        return Ok(false);
    }
    Ok(mark_if_token_is(&env.db, shop_id, stored).await?)
}

/// Marks the shop for re-authorisation if it is installed and still holds this (encrypted)
/// token; the condition keeps a concurrent refresh or re-install from being overwritten.
pub(crate) async fn mark_if_token_is(
    db: &impl ConnectionTrait,
    shop_id: i64,
    stored_token: &str,
) -> Result<bool, DbErr> {
    let r = db
        .execute_raw(stmt(
            db.get_database_backend(),
            "UPDATE shops SET status = ?, updated_at = ? WHERE id = ? AND status = ? AND access_token = ?",
            vec![
                shops::NEEDS_REAUTH.into(),
                Utc::now().into(),
                shop_id.into(),
                shops::INSTALLED.into(),
                stored_token.into(),
            ],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}
