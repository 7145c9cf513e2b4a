//! Shops: install state and their (encrypted) access tokens.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Set,
};

use super::Db;
use super::entities::shop;

pub const INSTALLED: &str = "installed";
pub const UNINSTALLED: &str = "uninstalled";
/// The platform refused our token (401); the merchant has to open the app again.
pub const NEEDS_REAUTH: &str = "needs_reauth";

/// Whether the app is installed in the shop as far as the platform is concerned: a shop whose
/// token we must renew is still installed, and its webhooks (an uninstall among them) apply.
pub fn is_installed(status: &str) -> bool {
    INSTALLED_STATES.contains(&status)
}

/// The statuses `is_installed` accepts, for queries that check it in SQL.
pub const INSTALLED_STATES: [&str; 2] = [INSTALLED, NEEDS_REAUTH];

pub async fn find(
    db: &impl ConnectionTrait,
    platform: &str,
    domain: &str,
) -> Result<Option<shop::Model>, DbErr> {
    shop::Entity::find()
        .filter(shop::Column::Platform.eq(platform))
        .filter(shop::Column::Domain.eq(domain))
        .one(db)
        .await
}

pub async fn get(db: &impl ConnectionTrait, id: i64) -> Result<Option<shop::Model>, DbErr> {
    shop::Entity::find_by_id(id).one(db).await
}

pub async fn installed_ids(db: &Db) -> Result<Vec<i64>, DbErr> {
    shop::Entity::find()
        .select_only()
        .column(shop::Column::Id)
        .filter(shop::Column::Status.eq(INSTALLED))
        .into_tuple()
        .all(db)
        .await
}

/// Installed shops with their settings JSON, for schedules that a shop may override.
pub async fn installed_settings(db: &Db) -> Result<Vec<(i64, String)>, DbErr> {
    shop::Entity::find()
        .select_only()
        .column(shop::Column::Id)
        .column(shop::Column::Settings)
        .filter(shop::Column::Status.eq(INSTALLED))
        .into_tuple()
        .all(db)
        .await
}

/// What the platform granted: its credentials already sealed by the caller, their expiry and
/// the scopes.
pub struct TokenGrant {
    pub credentials: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: String,
}

/// Records an install (or re-install): the new token replaces any old one.
pub async fn upsert_installed(
    db: &impl ConnectionTrait,
    platform: &str,
    domain: &str,
    grant: TokenGrant,
) -> Result<shop::Model, DbErr> {
    let now = Utc::now();
    match find(db, platform, domain).await? {
        Some(existing) => {
            let mut m: shop::ActiveModel = existing.into();
            m.credentials = Set(Some(grant.credentials));
            m.token_expires_at = Set(grant.expires_at);
            m.scopes = Set(grant.scopes);
            m.status = Set(INSTALLED.to_string());
            m.installed_at = Set(Some(now));
            m.uninstalled_at = Set(None);
            m.updated_at = Set(now);
            m.update(db).await
        }
        None => {
            shop::ActiveModel {
                created_at: Set(now),
                updated_at: Set(now),
                platform: Set(platform.to_string()),
                domain: Set(domain.to_string()),
                credentials: Set(Some(grant.credentials)),
                token_expires_at: Set(grant.expires_at),
                scopes: Set(grant.scopes),
                status: Set(INSTALLED.to_string()),
                installed_at: Set(Some(now)),
                uninstalled_at: Set(None),
                settings: Set("{}".to_string()),
                ..Default::default()
            }
            .insert(db)
            .await
        }
    }
}

/// Replaces the stored token after a refresh.
pub async fn update_token(
    db: &impl ConnectionTrait,
    shop_id: i64,
    grant: TokenGrant,
    replaces: Option<&str>,
) -> Result<bool, DbErr> {
    // A refresh that succeeded proves the grant good, so it also lifts a `needs_reauth` that a
    // 401 on the old token set while the refresh was in flight (the platform revokes the old
    // token when it issues the new one, before we have stored it). One statement, so a 401
    // handled after it sees the new token and condemns nothing. An uninstall that came first
    // wins: its erased token stays erased. With `replaces`, only those (sealed) credentials are
    // replaced: a re-install that stored a newer grant meanwhile is kept.
    let mut values = vec![
        grant.credentials.into(),
        grant.expires_at.into(),
        grant.scopes.into(),
        Utc::now().into(),
        shop_id.into(),
    ];
    let mut condition = String::new();
    if let Some(old) = replaces {
        condition.push_str(" AND credentials = ?");
        values.push(old.into());
    }
    let r = db
        .execute_raw(super::stmt(
            db.get_database_backend(),
            &format!(
                "UPDATE shops SET credentials = ?, token_expires_at = ?, \
                 scopes = ?, updated_at = ?, \
                 status = CASE WHEN status = '{NEEDS_REAUTH}' THEN '{INSTALLED}' ELSE status END \
                 WHERE id = ? AND status <> '{UNINSTALLED}'{condition}"
            ),
            values,
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks the shop uninstalled and erases its tokens.
pub async fn mark_uninstalled(db: &impl ConnectionTrait, shop_id: i64) -> Result<(), DbErr> {
    let Some(existing) = get(db, shop_id).await? else {
        return Ok(());
    };
    let now = Utc::now();
    let mut m: shop::ActiveModel = existing.into();
    m.status = Set(UNINSTALLED.to_string());
    m.credentials = Set(None);
    m.token_expires_at = Set(None);
    m.uninstalled_at = Set(Some(now));
    m.updated_at = Set(now);
    m.update(db).await?;
    Ok(())
}

/// The app is gone from the shop: its credentials are erased and its queued work cancelled, at
/// once. Returns how many jobs were cancelled.
pub async fn uninstall(db: &impl ConnectionTrait, shop_id: i64) -> Result<u64, DbErr> {
    mark_uninstalled(db, shop_id).await?;
    super::jobs::cancel_for_shop(db, shop_id).await
}

pub async fn save_settings(
    db: &impl ConnectionTrait,
    shop_id: i64,
    settings: &serde_json::Value,
) -> Result<(), DbErr> {
    let Some(existing) = get(db, shop_id).await? else {
        return Ok(());
    };
    let mut m: shop::ActiveModel = existing.into();
    m.settings = Set(settings.to_string());
    m.updated_at = Set(Utc::now());
    m.update(db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdb::TestDb;

    fn grant(token: &str) -> TokenGrant {
        TokenGrant {
            credentials: token.into(),
            expires_at: Some(Utc::now()),
            scopes: "read_customers".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_refreshed_token_lifts_needs_reauth_but_not_an_uninstall() {
        for t in TestDb::all().await {
            let db = &t.db;
            let a = upsert_installed(db, "test", "a.example", grant("old"))
                .await
                .unwrap()
                .id;
            let b = upsert_installed(db, "test", "b.example", grant("old"))
                .await
                .unwrap()
                .id;
            db.execute_raw(super::super::stmt(
                db.get_database_backend(),
                "UPDATE shops SET status = ? WHERE id = ?",
                vec![NEEDS_REAUTH.into(), a.into()],
            ))
            .await
            .unwrap();
            mark_uninstalled(db, b).await.unwrap();

            update_token(db, a, grant("new"), None).await.unwrap();
            update_token(db, b, grant("new"), None).await.unwrap();
            let a = get(db, a).await.unwrap().unwrap();
            assert_eq!(a.status, INSTALLED);
            assert_eq!(a.credentials.as_deref(), Some("new"));
            let b = get(db, b).await.unwrap().unwrap();
            assert_eq!(b.status, UNINSTALLED);
            assert_eq!(b.credentials, None, "an uninstalled shop keeps no token");

            // A refresh stores its grant only over the credentials it refreshed.
            let replaced = update_token(db, a.id, grant("newer"), Some("old"))
                .await
                .unwrap();
            assert!(!replaced, "the stored grant is not the one refreshed");
            let still = get(db, a.id).await.unwrap().unwrap();
            assert_eq!(still.credentials.as_deref(), Some("new"));
            assert!(
                update_token(db, a.id, grant("newer"), Some("new"))
                    .await
                    .unwrap()
            );
            let a = get(db, a.id).await.unwrap().unwrap();
            assert_eq!(a.credentials.as_deref(), Some("newer"));
            t.remove().await;
        }
    }
}
