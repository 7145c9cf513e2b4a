//! Privacy requests: a customer's data export, a customer's erasure, a shop's erasure. Each is
//! recorded in `privacy_requests` so the merchant can see what was done and when.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbErr, Value};
use serde_json::json;

use super::stmt;
use crate::model::PrivacyRequest;

/// Tables holding shop data, erased on `shop/redact`. A table added later that holds shop data
/// belongs here too.
pub const SHOP_DATA_TABLES: &[&str] = &[
    "customers",
    "orders",
    "refunds",
    "checkouts",
    "webhook_inbox",
    "jobs",
    "sync_state",
    "sync_runs",
    // segments and write-back
    "customer_scores",
    "shop_analyses",
    "loyalty_secrets",
    "pushed_tags",
    "discount_codes",
    "segment_runs",
    "writeback_audit",
    "model_cards",
    "offer_controls",
    "shop_leases",
];

/// Per-customer tables of what Lifecycle computed and pushed, erased on `customers/redact`.
pub const CUSTOMER_DERIVED_TABLES: &[&str] = &[
    "customer_scores",
    "pushed_tags",
    "discount_codes",
    "offer_controls",
    "writeback_audit",
];

async fn exec(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    Ok(db
        .execute_raw(stmt(db.get_database_backend(), sql, values))
        .await?
        .rows_affected())
}

async fn record(
    db: &impl ConnectionTrait,
    shop_id: i64,
    kind: &str,
    req: Option<&PrivacyRequest>,
    export: serde_json::Value,
    summary: String,
) -> Result<(), DbErr> {
    let now = Utc::now();
    exec(
        db,
        "INSERT INTO privacy_requests (shop_id, kind, customer_platform_id, request_id, export, summary, received_at, completed_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            shop_id.into(),
            kind.into(),
            req.and_then(|r| r.customer_platform_id.clone()).into(),
            req.and_then(|r| r.request_id.clone()).into(),
            export.to_string().into(),
            summary.into(),
            now.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Builds the export of everything we hold about the customer and records it for the merchant.
pub async fn export_customer(
    db: &impl ConnectionTrait,
    shop_id: i64,
    req: &PrivacyRequest,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let customer = match &req.customer_platform_id {
        Some(id) => {
            db.query_one_raw(stmt(
                backend,
                "SELECT platform_id, email, first_name, last_name, tags, state FROM customers WHERE shop_id = ? AND platform_id = ?",
                vec![shop_id.into(), id.clone().into()],
            ))
            .await?
        }
        None => None,
    };
    let customer_json = match customer {
        Some(r) => json!({
            "id": r.try_get::<String>("", "platform_id")?,
            "email": r.try_get::<Option<String>>("", "email")?,
            "first_name": r.try_get::<Option<String>>("", "first_name")?,
            "last_name": r.try_get::<Option<String>>("", "last_name")?,
            "tags": r.try_get::<Option<String>>("", "tags")?,
            "state": r.try_get::<Option<String>>("", "state")?,
        }),
        None => serde_json::Value::Null,
    };
    let orders = db
        .query_all_raw(stmt(
            backend,
            "SELECT platform_id, name, email, currency, total_minor, refunded_minor, discount_codes, platform_created_at \
             FROM orders WHERE shop_id = ? AND customer_platform_id = ? ORDER BY platform_created_at",
            vec![shop_id.into(), req.customer_platform_id.clone().into()],
        ))
        .await?;
    let mut order_json = Vec::new();
    for r in orders {
        order_json.push(json!({
            "id": r.try_get::<String>("", "platform_id")?,
            "name": r.try_get::<Option<String>>("", "name")?,
            "currency": r.try_get::<String>("", "currency")?,
            "total_minor": r.try_get::<i64>("", "total_minor")?,
            "refunded_minor": r.try_get::<i64>("", "refunded_minor")?,
            "discount_codes": r.try_get::<String>("", "discount_codes")?,
        }));
    }
    let summary = format!(
        "exported {} customer record(s) and {} order(s)",
        customer_json.is_object() as u8,
        order_json.len()
    );
    record(
        db,
        shop_id,
        "customers/data_request",
        Some(req),
        json!({ "customer": customer_json, "orders": order_json }),
        summary,
    )
    .await
}

/// Erases the customer's personal data and that of the listed orders; keeps the anonymous
/// figures (amounts, dates) that shop-level statistics need.
pub async fn redact_customer(
    db: &impl ConnectionTrait,
    shop_id: i64,
    req: &PrivacyRequest,
) -> Result<(), DbErr> {
    let now = Utc::now();
    let mut customers = 0;
    let mut orders = 0;
    if let Some(id) = &req.customer_platform_id {
        customers = exec(
            db,
            "UPDATE customers SET email = NULL, first_name = NULL, last_name = NULL, tags = NULL, redacted_at = ?, updated_at = ? \
             WHERE shop_id = ? AND platform_id = ?",
            vec![now.into(), now.into(), shop_id.into(), id.clone().into()],
        )
        .await?;
        orders += exec(
            db,
            "UPDATE orders SET email = NULL, updated_at = ? WHERE shop_id = ? AND customer_platform_id = ?",
            vec![now.into(), shop_id.into(), id.clone().into()],
        )
        .await?;
        exec(
            db,
            "UPDATE checkouts SET email = NULL WHERE shop_id = ? AND customer_platform_id = ?",
            vec![shop_id.into(), id.clone().into()],
        )
        .await?;
        // What Lifecycle derived about the customer goes too.
        for table in CUSTOMER_DERIVED_TABLES {
            exec(
                db,
                &format!("DELETE FROM {table} WHERE shop_id = ? AND customer_platform_id = ?"),
                vec![shop_id.into(), id.clone().into()],
            )
            .await?;
        }
    }
    for order in &req.order_platform_ids {
        orders += exec(
            db,
            "UPDATE orders SET email = NULL, updated_at = ? WHERE shop_id = ? AND platform_id = ?",
            vec![now.into(), shop_id.into(), order.clone().into()],
        )
        .await?;
    }
    let summary = format!("erased personal data of {customers} customer(s) and {orders} order(s)");
    record(
        db,
        shop_id,
        "customers/redact",
        Some(req),
        serde_json::Value::Null,
        summary,
    )
    .await
}

/// Erases everything of the shop but the record that it was erased.
pub async fn redact_shop(db: &impl ConnectionTrait, shop_id: i64) -> Result<(), DbErr> {
    let mut removed = 0;
    for table in SHOP_DATA_TABLES {
        removed += exec(
            db,
            &format!("DELETE FROM {table} WHERE shop_id = ?"),
            vec![shop_id.into()],
        )
        .await?;
    }
    exec(
        db,
        "UPDATE shops SET credentials = NULL, access_token = NULL, refresh_token = NULL, settings = '{}', status = 'redacted', updated_at = ? WHERE id = ?",
        vec![Utc::now().into(), shop_id.into()],
    )
    .await?;
    record(
        db,
        shop_id,
        "shop/redact",
        None,
        serde_json::Value::Null,
        format!("erased {removed} row(s) of shop data"),
    )
    .await
}
