//! Shops, the shop data Lifecycle mirrors (customers, orders, abandoned checkouts), the webhook
//! inbox and the durable job queue.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every table gets these bookkeeping columns.
fn table(name: &'static str) -> TableCreateStatement {
    Table::create()
        .table(name)
        .if_not_exists()
        .col(big_pk_auto("id"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone("updated_at"))
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            table("shops")
                .col(string("platform"))
                .col(string("domain"))
                .col(text_null("access_token"))
                .col(text_null("refresh_token"))
                .col(timestamp_with_time_zone_null("token_expires_at"))
                .col(string("scopes").default(""))
                .col(string("status"))
                .col(timestamp_with_time_zone_null("installed_at"))
                .col(timestamp_with_time_zone_null("uninstalled_at"))
                .col(text("settings").default("{}"))
                .take(),
        )
        .await?;
        m.create_index(
            index("shops_platform_domain", "shops", &["platform", "domain"])
                .unique()
                .take(),
        )
        .await?;

        m.create_table(
            table("customers")
                .col(big_integer("shop_id"))
                .col(string("platform_id"))
                .col(text_null("email"))
                .col(text_null("first_name"))
                .col(text_null("last_name"))
                .col(text_null("tags"))
                .col(string_null("state"))
                .col(timestamp_with_time_zone_null("platform_created_at"))
                .col(timestamp_with_time_zone("platform_updated_at"))
                .col(timestamp_with_time_zone_null("deleted_at"))
                .col(timestamp_with_time_zone_null("redacted_at"))
                .take(),
        )
        .await?;
        m.create_index(
            index(
                "customers_shop_platform",
                "customers",
                &["shop_id", "platform_id"],
            )
            .unique()
            .take(),
        )
        .await?;

        m.create_table(
            table("orders")
                .col(big_integer("shop_id"))
                .col(string("platform_id"))
                .col(string_null("customer_platform_id"))
                .col(text_null("name"))
                .col(text_null("email"))
                .col(string("currency"))
                .col(big_integer("subtotal_minor").default(0))
                .col(big_integer("total_minor").default(0))
                .col(big_integer("discounts_minor").default(0))
                .col(big_integer("refunded_minor").default(0))
                .col(text("discount_codes").default("[]"))
                .col(string_null("financial_status"))
                .col(timestamp_with_time_zone_null("cancelled_at"))
                .col(timestamp_with_time_zone("platform_created_at"))
                .col(timestamp_with_time_zone("platform_updated_at"))
                .col(timestamp_with_time_zone_null("deleted_at"))
                .take(),
        )
        .await?;
        m.create_index(
            index(
                "orders_shop_platform",
                "orders",
                &["shop_id", "platform_id"],
            )
            .unique()
            .take(),
        )
        .await?;
        m.create_index(index(
            "orders_shop_customer",
            "orders",
            &["shop_id", "customer_platform_id"],
        ))
        .await?;

        m.create_table(
            table("checkouts")
                .col(big_integer("shop_id"))
                .col(string("platform_id"))
                .col(string_null("customer_platform_id"))
                .col(text_null("email"))
                .col(string("currency"))
                .col(big_integer("total_minor").default(0))
                .col(timestamp_with_time_zone_null("completed_at"))
                .col(timestamp_with_time_zone("platform_created_at"))
                .col(timestamp_with_time_zone("platform_updated_at"))
                .take(),
        )
        .await?;
        m.create_index(
            index(
                "checkouts_shop_platform",
                "checkouts",
                &["shop_id", "platform_id"],
            )
            .unique()
            .take(),
        )
        .await?;

        // The inbox keeps the raw, verified webhook body; `state` and the lease columns let any
        // worker of any instance claim a row exactly as it claims a job.
        m.create_table(
            table("webhook_inbox")
                .col(string("platform"))
                .col(big_integer_null("shop_id"))
                .col(string("shop_domain"))
                .col(string("topic"))
                .col(string("webhook_id"))
                .col(string_null("event_id"))
                .col(string_null("api_version"))
                .col(timestamp_with_time_zone_null("triggered_at"))
                .col(blob("body"))
                .col(string("state"))
                .col(integer("attempts").default(0))
                .col(timestamp_with_time_zone("run_at"))
                .col(string_null("locked_by"))
                .col(timestamp_with_time_zone_null("lease_until"))
                .col(text_null("last_error"))
                .col(timestamp_with_time_zone_null("finished_at"))
                .take(),
        )
        .await?;
        m.create_index(
            index("inbox_dedupe", "webhook_inbox", &["platform", "webhook_id"])
                .unique()
                .take(),
        )
        .await?;
        m.create_index(index("inbox_claim", "webhook_inbox", &["state", "run_at"]))
            .await?;

        m.create_table(
            table("jobs")
                .col(string("kind"))
                .col(big_integer_null("shop_id"))
                .col(text("payload").default("{}"))
                .col(string_null("dedupe_key"))
                .col(string("state"))
                .col(integer("attempts").default(0))
                .col(integer("max_attempts"))
                .col(timestamp_with_time_zone("run_at"))
                .col(string_null("locked_by"))
                .col(timestamp_with_time_zone_null("lease_until"))
                .col(text_null("last_error"))
                .col(big_integer("progress_done").default(0))
                .col(big_integer_null("progress_total"))
                .col(timestamp_with_time_zone_null("finished_at"))
                .take(),
        )
        .await?;
        m.create_index(
            index("jobs_dedupe", "jobs", &["dedupe_key"])
                .unique()
                .take(),
        )
        .await?;
        m.create_index(index("jobs_claim", "jobs", &["state", "run_at"]))
            .await?;
        m.create_index(index("jobs_shop", "jobs", &["shop_id", "kind"]))
            .await?;

        m.create_table(
            Table::create()
                .table("oauth_nonces")
                .if_not_exists()
                .col(string("nonce").primary_key())
                .col(string("shop_domain"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("used_at"))
                .take(),
        )
        .await?;
        Ok(())
    }
}
