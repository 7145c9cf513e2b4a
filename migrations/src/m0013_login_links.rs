//! Sign-in links: a short-lived signed link (`lifecycle demo` prints one) opens the admin of one
//! shop signed in, once. The signature proves the link; this table makes it single use.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("login_links")
                .if_not_exists()
                .col(string("nonce").primary_key())
                .col(big_integer("shop_id"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("used_at"))
                .take(),
        )
        .await?;
        m.create_index(crate::index(
            "login_links_shop",
            "login_links",
            &["shop_id"],
        ))
        .await
    }
}
