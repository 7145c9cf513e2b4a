//! Refunds (an order's refunded amount is the sum of its refunds, so a replayed refund cannot
//! count twice) and the record of privacy requests handled for the merchant.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("refunds")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(string("platform_id"))
                .col(string("order_platform_id"))
                .col(big_integer("amount_minor"))
                .col(timestamp_with_time_zone("platform_created_at"))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("refunds_shop_platform")
                .table("refunds")
                .col("shop_id")
                .col("platform_id")
                .unique()
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("privacy_requests")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(string("kind"))
                .col(string_null("customer_platform_id"))
                .col(string_null("request_id"))
                .col(text("export").default("{}"))
                .col(text("summary").default(""))
                .col(timestamp_with_time_zone("received_at"))
                .col(timestamp_with_time_zone_null("completed_at"))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("privacy_requests_shop")
                .table("privacy_requests")
                .col("shop_id")
                .take(),
        )
        .await
    }
}
