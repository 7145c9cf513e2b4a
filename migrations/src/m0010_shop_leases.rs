//! Per-shop leases: a run that sends writes to a shop holds the shop's lease while it works and
//! renews it, so runs of one shop exclude each other across workers and instances, and a run
//! whose process died frees the shop when its lease expires (a `running` row alone cannot tell
//! a live run from a dead one).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("shop_leases")
                .if_not_exists()
                .col(big_integer("shop_id"))
                .col(string("name"))
                .col(string("holder"))
                .col(timestamp_with_time_zone("lease_until"))
                .primary_key(Index::create().col("shop_id").col("name"))
                .take(),
        )
        .await
    }
}
