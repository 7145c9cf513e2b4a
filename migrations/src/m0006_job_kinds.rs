//! Job kinds named after what they do, not after one platform: the sync kinds were
//! `shopify.*` when Shopify was the only platform. Every row is renamed, so queued ones keep
//! their handler and dead ones can still be retried from the admin.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const RENAMES: [(&str, &str); 3] = [
    ("shopify.backfill", "sync.backfill"),
    ("shopify.incremental", "sync.incremental"),
    ("shopify.reconcile", "sync.reconcile"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for (old, new) in RENAMES {
            db.execute_unprepared(&format!(
                "UPDATE jobs SET kind = '{new}' WHERE kind = '{old}'"
            ))
            .await?;
        }
        Ok(())
    }
}
