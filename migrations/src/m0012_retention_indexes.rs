//! Retention: finished inbox rows, jobs and audit rows are pruned by age in bounded batches, and
//! a customer's data export is kept until it expires. The indexes let a prune batch find its
//! oldest rows without a scan, and keep the activity page's per-shop webhook counts and
//! failures fast however long the inbox grows.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, cols) in [
            // The activity page: counts by topic and state, and the latest failures, of one shop.
            (
                "inbox_shop_topic_state",
                "webhook_inbox",
                &["shop_id", "topic", "state"][..],
            ),
            ("inbox_shop_id", "webhook_inbox", &["shop_id", "id"][..]),
            // Pruning: the oldest finished rows first.
            (
                "inbox_state_created",
                "webhook_inbox",
                &["state", "created_at"][..],
            ),
            ("jobs_state_created", "jobs", &["state", "created_at"][..]),
            ("writeback_audit_at", "writeback_audit", &["at"][..]),
        ] {
            m.create_index(index(name, table, cols)).await?;
        }
        if !m.has_column("privacy_requests", "expires_at").await? {
            m.alter_table(
                Table::alter()
                    .table("privacy_requests")
                    .add_column(timestamp_with_time_zone_null("expires_at"))
                    .take(),
            )
            .await?;
        }
        m.create_index(index(
            "privacy_requests_expires",
            "privacy_requests",
            &["expires_at"],
        ))
        .await
    }
}
