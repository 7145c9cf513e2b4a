//! Control groups of offers: the customers a run held out of an offer for one period (no code,
//! the window a code would have had), kept so the offer's results can compare them with the
//! customers who got a code (`discount_codes`).

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
                .table("offer_controls")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(string("customer_platform_id"))
                .col(string("offer"))
                .col(integer("period"))
                .col(small_integer("control_percent"))
                .col(string("reason"))
                .col(big_integer_null("run_id"))
                .col(timestamp_with_time_zone("starts_at"))
                .col(timestamp_with_time_zone("ends_at"))
                .col(timestamp_with_time_zone("created_at"))
                .take(),
        )
        .await?;
        // One assignment per (customer, offer, period), as for codes: a retried run re-plans
        // the same draw and meets the row instead of adding a second.
        let mut unique = index(
            "offer_controls_shop_customer_offer_period",
            "offer_controls",
            &["shop_id", "customer_platform_id", "offer", "period"],
        );
        unique.unique();
        m.create_index(unique).await?;
        m.create_index(index(
            "offer_controls_shop_offer_starts",
            "offer_controls",
            &["shop_id", "offer", "starts_at"],
        ))
        .await
    }
}
