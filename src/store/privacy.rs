//! Privacy requests: a customer's data export, a customer's erasure, a shop's erasure. Each is
//! recorded in `privacy_requests` so the merchant can see what was done and when, until the
//! shop itself is erased. A customer's export is kept for `EXPORT_KEEP` and then pruned
//! (`store::retention`).

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Value};
use serde_json::json;

use super::catalog::{self, quote};
use super::stmt;
use crate::model::PrivacyRequest;

/// How long a customer's data export stays downloadable for the merchant.
pub const EXPORT_KEEP: TimeDelta = TimeDelta::days(30);

/// What an emptied export holds.
pub const NO_EXPORT: &str = "{}";

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
    let expires_at: Option<DateTime<Utc>> = (!export.is_null()).then(|| now + EXPORT_KEEP);
    exec(
        db,
        "INSERT INTO privacy_requests (shop_id, kind, customer_platform_id, request_id, export, summary, received_at, completed_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            shop_id.into(),
            kind.into(),
            req.and_then(|r| r.customer_platform_id.clone()).into(),
            req.and_then(|r| r.request_id.clone()).into(),
            if export.is_null() {
                NO_EXPORT.to_string()
            } else {
                export.to_string()
            }
            .into(),
            summary.into(),
            now.into(),
            now.into(),
            expires_at.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Rows of `sql` (bound to the shop and the customer) as JSON objects of the named columns.
async fn rows_json(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
    text: &[&str],
    numbers: &[&str],
) -> Result<Vec<serde_json::Value>, DbErr> {
    let mut out = Vec::new();
    for r in db
        .query_all_raw(stmt(db.get_database_backend(), sql, values))
        .await?
    {
        let mut o = serde_json::Map::new();
        for c in text {
            o.insert((*c).into(), r.try_get::<Option<String>>("", c)?.into());
        }
        for c in numbers {
            o.insert((*c).into(), r.try_get::<Option<i64>>("", c)?.into());
        }
        out.push(o.into());
    }
    Ok(out)
}

/// Builds the export of everything we hold about the customer (their record, orders, scores
/// and segments, the tags and discount codes pushed for them) and records it for the merchant
/// to download until it expires.
pub async fn export_customer(
    db: &impl ConnectionTrait,
    shop_id: i64,
    req: &PrivacyRequest,
) -> Result<(), DbErr> {
    let Some(id) = &req.customer_platform_id else {
        return record(
            db,
            shop_id,
            "customers/data_request",
            Some(req),
            json!({ "customer": null, "orders": [] }),
            "no customer named: nothing to export".into(),
        )
        .await;
    };
    let key = || -> Vec<Value> { vec![shop_id.into(), id.clone().into()] };
    let customer = rows_json(
        db,
        "SELECT platform_id, email, first_name, last_name, tags, state FROM customers WHERE shop_id = ? AND platform_id = ?",
        key(),
        &["platform_id", "email", "first_name", "last_name", "tags", "state"],
        &[],
    )
    .await?
    .pop()
    .unwrap_or(serde_json::Value::Null);
    let orders = rows_json(
        db,
        "SELECT platform_id, name, email, currency, discount_codes, financial_status, total_minor, refunded_minor \
         FROM orders WHERE shop_id = ? AND customer_platform_id = ? ORDER BY platform_created_at",
        key(),
        &["platform_id", "name", "email", "currency", "discount_codes", "financial_status"],
        &["total_minor", "refunded_minor"],
    )
    .await?;
    let scores = rows_json(
        db,
        // Small integers read as 64-bit on both engines.
        "SELECT rfm_group, churn_risk, segments, currency, CAST(rfm_r AS BIGINT) AS rfm_r, \
         CAST(rfm_f AS BIGINT) AS rfm_f, CAST(rfm_m AS BIGINT) AS rfm_m, clv_minor \
         FROM customer_scores WHERE shop_id = ? AND customer_platform_id = ?",
        key(),
        &["rfm_group", "churn_risk", "segments", "currency"],
        &["rfm_r", "rfm_f", "rfm_m", "clv_minor"],
    )
    .await?;
    let tags = rows_json(
        db,
        "SELECT tags, removed FROM pushed_tags WHERE shop_id = ? AND customer_platform_id = ?",
        key(),
        &["tags", "removed"],
        &[],
    )
    .await?;
    let codes = rows_json(
        db,
        "SELECT code, offer, title, value, reason, state, metafields FROM discount_codes \
         WHERE shop_id = ? AND customer_platform_id = ? ORDER BY id",
        key(),
        &[
            "code",
            "offer",
            "title",
            "value",
            "reason",
            "state",
            "metafields",
        ],
        &[],
    )
    .await?;
    let summary = format!(
        "exported {} customer record(s), {} order(s), {} score(s), {} tag set(s) and {} discount code(s)",
        customer.is_object() as u8,
        orders.len(),
        scores.len(),
        tags.len(),
        codes.len(),
    );
    record(
        db,
        shop_id,
        "customers/data_request",
        Some(req),
        json!({ "customer": customer, "orders": orders, "scores": scores, "tags": tags, "discount_codes": codes }),
        summary,
    )
    .await
}

/// A customer's export, while it has not expired: (customer platform id, export JSON).
pub async fn export_of(
    db: &impl ConnectionTrait,
    shop_id: i64,
    request: i64,
    now: DateTime<Utc>,
) -> Result<Option<(Option<String>, String)>, DbErr> {
    let row = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "SELECT customer_platform_id, export FROM privacy_requests \
             WHERE shop_id = ? AND id = ? AND kind = 'customers/data_request' AND expires_at > ? AND export <> ?",
            vec![shop_id.into(), request.into(), now.into(), NO_EXPORT.into()],
        ))
        .await?;
    row.map(|r| {
        Ok((
            r.try_get("", "customer_platform_id")?,
            r.try_get("", "export")?,
        ))
    })
    .transpose()
}

/// Inbox rows of the shop whose raw body mentions any of `needles`, by id.
async fn inbox_rows_mentioning(
    db: &impl ConnectionTrait,
    shop_id: i64,
    needles: &[String],
) -> Result<Vec<i64>, DbErr> {
    if needles.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    // The body is raw bytes: PostgreSQL searches them as bytes, SQLite as text (its LIKE
    // ignores ASCII case, as e-mail addresses mostly do).
    let test = match backend {
        DatabaseBackend::Postgres => "position(?::bytea IN body) > 0",
        _ => "CAST(body AS TEXT) LIKE ? ESCAPE '\\'",
    };
    let mut values: Vec<Value> = vec![shop_id.into()];
    for n in needles {
        values.push(match backend {
            DatabaseBackend::Postgres => n.as_bytes().to_vec().into(),
            _ => format!(
                "%{}%",
                n.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
            .into(),
        });
    }
    let sql = format!(
        "SELECT id FROM webhook_inbox WHERE shop_id = ? AND length(body) > 0 AND ({})",
        vec![test; needles.len()].join(" OR ")
    );
    db.query_all_raw(stmt(backend, &sql, values))
        .await?
        .iter()
        .map(|r| r.try_get::<i64>("", "id"))
        .collect()
}

/// What identifies the customer in raw payloads: their e-mail addresses (as requested and as
/// stored), their platform id and its numeric tail (payloads carry ids as numbers).
async fn identifiers(
    db: &impl ConnectionTrait,
    shop_id: i64,
    req: &PrivacyRequest,
) -> Result<Vec<String>, DbErr> {
    let mut out: Vec<String> = Vec::new();
    out.extend(req.email.clone());
    if let Some(id) = &req.customer_platform_id {
        if let Some(r) = db
            .query_one_raw(stmt(
                db.get_database_backend(),
                "SELECT email FROM customers WHERE shop_id = ? AND platform_id = ?",
                vec![shop_id.into(), id.clone().into()],
            ))
            .await?
        {
            out.extend(r.try_get::<Option<String>>("", "email")?);
        }
        out.push(id.clone());
        let tail = id.rsplit('/').next().unwrap_or(id);
        // A short number would match unrelated payloads; platform ids are long.
        if tail.len() >= 6 && tail.bytes().all(|b| b.is_ascii_digit()) && tail != id {
            out.push(tail.to_string());
        }
    }
    out.retain(|s| !s.trim().is_empty());
    out.sort();
    out.dedup();
    Ok(out)
}

/// Erases the customer's personal data and that of the listed orders; keeps the anonymous
/// figures (amounts, dates) that shop-level statistics need. Every copy goes: the raw webhooks
/// that mention the customer (applied or still waiting: those are settled unapplied, as they
/// would only bring the erased data back), what Lifecycle derived and pushed, and their data
/// exports.
pub async fn redact_customer(
    db: &impl ConnectionTrait,
    shop_id: i64,
    req: &PrivacyRequest,
) -> Result<(), DbErr> {
    let now = Utc::now();
    let mut customers = 0;
    let mut orders = 0;
    let needles = identifiers(db, shop_id, req).await?;
    let inbox = inbox_rows_mentioning(db, shop_id, &needles).await?;
    super::inbox::scrub(db, &inbox, now).await?;
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
        // Their data exports, downloaded or not.
        exec(
            db,
            "UPDATE privacy_requests SET export = ?, expires_at = NULL WHERE shop_id = ? AND customer_platform_id = ?",
            vec![NO_EXPORT.into(), shop_id.into(), id.clone().into()],
        )
        .await?;
    }
    for order in &req.order_platform_ids {
        orders += exec(
            db,
            "UPDATE orders SET email = NULL, updated_at = ? WHERE shop_id = ? AND platform_id = ?",
            vec![now.into(), shop_id.into(), order.clone().into()],
        )
        .await?;
    }
    let summary = format!(
        "erased personal data of {customers} customer(s), {orders} order(s) and {} stored webhook(s)",
        inbox.len()
    );
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

/// Erases everything of the shop, the shop's own row and the record of its privacy requests
/// included: every table the catalogue lists with a `shop_id` column loses the shop's rows, and
/// every table with a `shop_domain` column (rows written before the shop was known) its domain's.
/// Returns the rows removed.
pub async fn redact_shop(db: &impl ConnectionTrait, shop_id: i64) -> Result<u64, DbErr> {
    let Some(shop) = super::shops::get(db, shop_id).await? else {
        return Ok(0);
    };
    let mut removed = 0;
    for table in catalog::tables(db).await? {
        let t = quote(&table.name);
        if table.has("shop_id") {
            removed += exec(
                db,
                &format!("DELETE FROM {t} WHERE shop_id = ?"),
                vec![shop_id.into()],
            )
            .await?;
        }
        if table.has("shop_domain") {
            removed += exec(
                db,
                &format!("DELETE FROM {t} WHERE shop_domain = ?"),
                vec![shop.domain.clone().into()],
            )
            .await?;
        }
    }
    removed += exec(db, "DELETE FROM shops WHERE id = ?", vec![shop_id.into()]).await?;
    Ok(removed)
}
