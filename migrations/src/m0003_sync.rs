//! Sync checkpoints (per shop and resource: the cursor of the last committed page and the
//! high-water mark for incremental syncs) and a report per sync run.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("sync_state")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(string("resource"))
                .col(text_null("cursor"))
                .col(boolean("backfilled").default(false))
                .col(big_integer("fetched").default(0))
                .col(timestamp_with_time_zone_null("synced_until"))
                .col(timestamp_with_time_zone("updated_at"))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("sync_state_shop_resource")
                .table("sync_state")
                .col("shop_id")
                .col("resource")
                .unique()
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("sync_runs")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(string("kind"))
                .col(string("path"))
                .col(string("status"))
                .col(big_integer("fetched").default(0))
                .col(big_integer("changed").default(0))
                .col(text_null("error"))
                .col(timestamp_with_time_zone("started_at"))
                .col(timestamp_with_time_zone_null("finished_at"))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("sync_runs_shop")
                .table("sync_runs")
                .col("shop_id")
                .col("started_at")
                .take(),
        )
        .await
    }
}
