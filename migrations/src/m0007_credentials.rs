//! A shop's credentials as one encrypted value: a platform's grant is an access token, for some
//! a refresh token too, and for others a key pair; one sealed JSON document holds whichever it
//! is. Existing tokens are re-sealed by the app at start-up (a migration has no key), which
//! then clears the two old columns.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("shops")
                .add_column(ColumnDef::new("credentials").text().null())
                .to_owned(),
        )
        .await
    }
}
