//! A shop's stored credentials: sealed as one value, why none can be used, and condemning a
//! refused one.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbErr};
use serde::{Deserialize, Serialize};

use super::Env;
use crate::secrets::Cipher;
use crate::store::{Db, shops, stmt};

/// What a platform granted, kept encrypted as one JSON document bound to the shop's key (a
/// value copied to another shop's row does not decrypt).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Never prints a secret.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn token(access_token: impl Into<String>) -> Credentials {
        Credentials {
            access_token: access_token.into(),
            refresh_token: None,
        }
    }

    pub fn seal(&self, cipher: &Cipher, shop_key: &str) -> String {
        let json = serde_json::to_string(self).expect("credentials serialise");
        cipher.encrypt(&json, shop_key)
    }

    pub fn open(cipher: &Cipher, sealed: &str, shop_key: &str) -> Result<Credentials, TokenError> {
        let json = cipher.decrypt(sealed, shop_key)?;
        serde_json::from_str(&json).map_err(|_| TokenError::Unreadable(shop_key.to_string()))
    }
}

/// Shops installed before credentials were one value: their tokens, each encrypted on its own,
/// are sealed together and the old columns cleared. Idempotent; run at start-up.
pub async fn seal_legacy(db: &Db, cipher: &Cipher) -> Result<u64, TokenError> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(stmt(
            backend,
            "SELECT id, domain, access_token, refresh_token FROM shops \
             WHERE access_token IS NOT NULL AND credentials IS NULL",
            vec![],
        ))
        .await?;
    let mut sealed = 0;
    for r in rows {
        let id: i64 = r.try_get("", "id")?;
        let key: String = r.try_get("", "domain")?;
        let access: String = r.try_get("", "access_token")?;
        let refresh: Option<String> = r.try_get("", "refresh_token")?;
        let opened = cipher.decrypt(&access, &key).and_then(|access_token| {
            Ok(Credentials {
                access_token,
                refresh_token: refresh.map(|t| cipher.decrypt(&t, &key)).transpose()?,
            })
        });
        // Under another key the old token is unusable anyway: the shop will ask to be
        // re-authorised, and a later start with the right key can still seal it.
        let Ok(credentials) = opened else {
            tracing::warn!(
                shop_id = id,
                "a stored token does not decrypt with this key: left as it was"
            );
            continue;
        };
        let done = db
            .execute_raw(stmt(
                backend,
                "UPDATE shops SET credentials = ?, access_token = NULL, refresh_token = NULL \
                 WHERE id = ? AND credentials IS NULL",
                vec![credentials.seal(cipher, &key).into(), id.into()],
            ))
            .await?;
        sealed += done.rows_affected();
    }
    if sealed > 0 {
        tracing::info!(shops = sealed, "credentials sealed as one value");
    }
    Ok(sealed)
}

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
    #[error("the stored credentials of {0} are not readable")]
    Unreadable(String),
}

/// The decrypted credentials of an installed shop, or why there are none to use.
pub fn usable_credentials(
    env: &Env,
    shop: &crate::store::entities::shop::Model,
) -> Result<Credentials, TokenError> {
    match shop.status.as_str() {
        shops::INSTALLED => {}
        shops::NEEDS_REAUTH => return Err(TokenError::NeedsReauth(shop.domain.clone())),
        _ => return Err(TokenError::NotInstalled(shop.domain.clone())),
    }
    let stored = shop
        .credentials
        .as_deref()
        .ok_or_else(|| TokenError::NotInstalled(shop.domain.clone()))?;
    Credentials::open(&env.cipher, stored, &shop.domain)
}

/// The access token of an installed shop, or why there is none to use.
pub fn usable_token(
    env: &Env,
    shop: &crate::store::entities::shop::Model,
) -> Result<String, TokenError> {
    usable_credentials(env, shop).map(|c| c.access_token)
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
    let Some(stored) = shop.credentials.as_deref() else {
        return Ok(false);
    };
    if Credentials::open(&env.cipher, stored, &shop.domain)?.access_token != refused_token {
        return Ok(false);
    }
    Ok(mark_if_token_is(&env.db, shop_id, stored).await?)
}

/// Marks the shop for re-authorisation if it is installed and still holds these (sealed)
/// credentials; the condition keeps a concurrent refresh or re-install from being overwritten.
pub(crate) async fn mark_if_token_is(
    db: &impl ConnectionTrait,
    shop_id: i64,
    stored: &str,
) -> Result<bool, DbErr> {
    let r = db
        .execute_raw(stmt(
            db.get_database_backend(),
            "UPDATE shops SET status = ?, updated_at = ? WHERE id = ? AND status = ? AND credentials = ?",
            vec![
                shops::NEEDS_REAUTH.into(),
                Utc::now().into(),
                shop_id.into(),
                shops::INSTALLED.into(),
                stored.into(),
            ],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdb::{TestDb, install_shop};

    #[tokio::test(flavor = "multi_thread")]
    async fn tokens_kept_apart_are_sealed_as_one_value_once() {
        let cipher = Cipher::from_config(&Cipher::generate_key()).unwrap();
        let other_key = Cipher::from_config(&Cipher::generate_key()).unwrap();
        for t in TestDb::all().await {
            let db = &t.db;
            let backend = db.get_database_backend();
            let old = install_shop(db, "shopify", "old.myshopify.com").await;
            let foreign = install_shop(db, "shopify", "foreign.myshopify.com").await;
            for (id, key, c) in [
                (old, "old.myshopify.com", &cipher),
                (foreign, "foreign.myshopify.com", &other_key),
            ] {
                db.execute_raw(stmt(
                    backend,
                    "UPDATE shops SET credentials = NULL, access_token = ?, refresh_token = ? WHERE id = ?",
                    vec![
                        c.encrypt("shpat_old", key).into(),
                        c.encrypt("shprt_old", key).into(),
                        id.into(),
                    ],
                ))
                .await
                .unwrap();
            }
            assert_eq!(seal_legacy(db, &cipher).await.unwrap(), 1);
            let shop = shops::get(db, old).await.unwrap().unwrap();
            let opened =
                Credentials::open(&cipher, shop.credentials.as_deref().unwrap(), &shop.domain)
                    .unwrap();
            assert_eq!(opened.access_token, "shpat_old");
            assert_eq!(opened.refresh_token.as_deref(), Some("shprt_old"));
            assert!(
                Credentials::open(
                    &cipher,
                    shop.credentials.as_deref().unwrap(),
                    "x.myshopify.com"
                )
                .is_err(),
                "bound to its shop"
            );
            let legacy = db
                .query_one_raw(stmt(
                    backend,
                    "SELECT COUNT(*) AS n FROM shops WHERE access_token IS NOT NULL",
                    vec![],
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap();
            assert_eq!(
                legacy, 1,
                "only the token under another key is left as it was"
            );
            assert_eq!(seal_legacy(db, &cipher).await.unwrap(), 0, "idempotent");
            assert!(
                !format!("{opened:?}").contains("shp"),
                "Debug shows no secret"
            );
            t.remove().await;
        }
    }
}
