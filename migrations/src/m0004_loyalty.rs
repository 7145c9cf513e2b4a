//! Segments and write-back: per-customer scores and segments, the shop's last analysis (the
//! fitted model that near-real-time re-scoring reuses), the tags last confirmed pushed, the
//! personal discount codes issued, each run, and the audit of every write (or planned write
//! in dry-run mode).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn unique(name: &'static str, table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    index(name, table, cols).unique().take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("customer_scores")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(string("customer_platform_id"))
                .col(small_integer("rfm_r"))
                .col(small_integer("rfm_f"))
                .col(small_integer("rfm_m"))
                .col(string("rfm_group"))
                .col(double_null("p_alive"))
                .col(big_integer_null("clv_minor"))
                .col(string("currency"))
                .col(string_null("churn_risk"))
                .col(text("segments").default("[]"))
                .col(timestamp_with_time_zone("scored_at"))
                .take(),
        )
        .await?;
        m.create_index(unique(
            "customer_scores_shop_customer",
            "customer_scores",
            &["shop_id", "customer_platform_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("shop_analyses")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(text("model"))
                .col(text("metrics"))
                .col(text_null("maturity"))
                .col(text("monthly").default("[]"))
                .col(text("context"))
                .col(string("currency"))
                .col(timestamp_with_time_zone("analysed_at"))
                .take(),
        )
        .await?;
        m.create_index(unique("shop_analyses_shop", "shop_analyses", &["shop_id"]))
            .await?;

        // The per-shop key of the deterministic codes, encrypted like the access tokens.
        m.create_table(
            Table::create()
                .table("loyalty_secrets")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(text("code_secret"))
                .col(timestamp_with_time_zone("created_at"))
                .take(),
        )
        .await?;
        m.create_index(unique(
            "loyalty_secrets_shop",
            "loyalty_secrets",
            &["shop_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("pushed_tags")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(string("customer_platform_id"))
                .col(text("tags").default("[]"))
                .col(text("removed").default("[]"))
                .col(timestamp_with_time_zone("pushed_at"))
                .take(),
        )
        .await?;
        m.create_index(unique(
            "pushed_tags_shop_customer",
            "pushed_tags",
            &["shop_id", "customer_platform_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("discount_codes")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(string("customer_platform_id"))
                .col(string("offer"))
                .col(integer("period"))
                .col(string("code"))
                .col(text("title"))
                .col(text("value"))
                .col(string("reason"))
                .col(string("state"))
                .col(string_null("platform_id"))
                .col(text("metafields").default("[]"))
                .col(timestamp_with_time_zone("starts_at"))
                .col(timestamp_with_time_zone("ends_at"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .take(),
        )
        .await?;
        m.create_index(unique(
            "discount_codes_shop_code",
            "discount_codes",
            &["shop_id", "code"],
        ))
        .await?;
        m.create_index(unique(
            "discount_codes_shop_customer_offer_period",
            "discount_codes",
            &["shop_id", "customer_platform_id", "offer", "period"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("segment_runs")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(string("trigger"))
                .col(boolean("dry_run"))
                .col(string("status"))
                .col(text("summary").default("{}"))
                .col(text_null("error"))
                .col(timestamp_with_time_zone("started_at"))
                .col(timestamp_with_time_zone_null("finished_at"))
                .take(),
        )
        .await?;
        m.create_index(index(
            "segment_runs_shop",
            "segment_runs",
            &["shop_id", "started_at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("writeback_audit")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("shop_id"))
                .col(big_integer_null("run_id"))
                .col(string("customer_platform_id"))
                .col(string("action"))
                .col(text("detail"))
                .col(text("reason"))
                .col(boolean("dry_run"))
                .col(string("outcome"))
                .col(timestamp_with_time_zone("at"))
                .take(),
        )
        .await?;
        m.create_index(index(
            "writeback_audit_shop",
            "writeback_audit",
            &["shop_id", "at"],
        ))
        .await
    }
}
