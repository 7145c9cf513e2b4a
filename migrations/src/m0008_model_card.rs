//! The model report card: one card per segment run (the backtest of that run's data, kept so a
//! merchant can see how the model's record changes over time), and each customer's P10-P90
//! range of predicted CLV beside the point value.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("model_cards")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(big_integer("run_id"))
                .col(string("verdict"))
                .col(text("card"))
                .col(string("currency"))
                .col(timestamp_with_time_zone("created_at"))
                .take(),
        )
        .await?;
        m.create_index(index(
            "model_cards_shop",
            "model_cards",
            &["shop_id", "created_at"],
        ))
        .await?;
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for col in ["clv_p10_minor", "clv_p90_minor"] {
            m.alter_table(
                Table::alter()
                    .table("customer_scores")
                    .add_column(big_integer_null(col))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
