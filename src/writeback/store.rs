//! The write-back tables: tags last confirmed pushed, discount codes issued, segment runs and
//! the audit of every write. Every query filters by `shop_id`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Value};
use serde::{Deserialize, Serialize};

use crate::core::loyalty::{
    ControlAssignment, CustomerField, IssuedCode, OfferKind, OfferValue, PlannedCode,
};
use crate::store::stmt;

async fn exec(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    Ok(db
        .execute_raw(stmt(db.get_database_backend(), sql, values))
        .await?
        .rows_affected())
}

fn json_list(v: &[String]) -> Value {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "[]".into())
        .into()
}

fn parse_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

// ---- pushed tags ----

/// What Lifecycle last confirmed for a customer's tags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pushed {
    /// Our tags the shop carries, as last confirmed.
    pub tags: Vec<String>,
    /// Our tags we confirmed removed: the mirror may still list them (customer webhooks carry
    /// no tags, so the mirror learns of our writes only at the next sync).
    pub removed: Vec<String>,
}

pub async fn load_pushed(
    db: &impl ConnectionTrait,
    shop_id: i64,
    customer: Option<&str>,
) -> Result<HashMap<String, Pushed>, DbErr> {
    let (sql, values): (&str, Vec<Value>) = match customer {
        Some(c) => (
            "SELECT customer_platform_id, tags, removed FROM pushed_tags WHERE shop_id = ? AND customer_platform_id = ?",
            vec![shop_id.into(), c.into()],
        ),
        None => (
            "SELECT customer_platform_id, tags, removed FROM pushed_tags WHERE shop_id = ?",
            vec![shop_id.into()],
        ),
    };
    let rows = db
        .query_all_raw(stmt(db.get_database_backend(), sql, values))
        .await?;
    rows.into_iter()
        .map(|r| {
            let tags: String = r.try_get("", "tags")?;
            let removed: String = r.try_get("", "removed")?;
            Ok((
                r.try_get("", "customer_platform_id")?,
                Pushed {
                    tags: parse_list(&tags),
                    removed: parse_list(&removed),
                },
            ))
        })
        .collect()
}

/// Records the confirmed state of many customers, a few hundred rows per statement.
pub async fn save_pushed(
    db: &impl ConnectionTrait,
    shop_id: i64,
    rows: &[(&str, Pushed)],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    for chunk in rows.chunks(500) {
        let placeholders = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 5);
        for (customer, pushed) in chunk {
            values.extend([
                shop_id.into(),
                (*customer).into(),
                json_list(&pushed.tags),
                json_list(&pushed.removed),
                now.into(),
            ]);
        }
        exec(
            db,
            &format!(
                "INSERT INTO pushed_tags (shop_id, customer_platform_id, tags, removed, pushed_at) VALUES {placeholders} \
                 ON CONFLICT (shop_id, customer_platform_id) DO UPDATE SET tags = excluded.tags, \
                 removed = excluded.removed, pushed_at = excluded.pushed_at"
            ),
            values,
        )
        .await?;
    }
    Ok(())
}

// ---- discount codes ----

pub const PLANNED: &str = "planned";
/// The discount exists in the shop (created, or `TAKEN` on a retry).
pub const CREATED: &str = "created";
/// The discount exists and the customer's fields name it.
pub const CONFIRMED: &str = "confirmed";
/// The shop refused the discount for good (e.g. the customer no longer exists).
pub const FAILED: &str = "failed";

/// A code row, with everything needed to (re-)send it exactly as first planned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRow {
    pub id: i64,
    pub customer_id: String,
    pub offer: OfferKind,
    pub period: u32,
    pub code: String,
    pub title: String,
    pub value: OfferValue,
    pub reason: String,
    pub state: String,
    pub platform_id: Option<String>,
    pub fields: Vec<CustomerField>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

fn offer_of(key: &str) -> Option<OfferKind> {
    OfferKind::ALL.into_iter().find(|k| k.key() == key)
}

async fn load_codes_where(
    db: &impl ConnectionTrait,
    shop_id: i64,
    filter: &str,
    extra: Vec<Value>,
) -> Result<Vec<CodeRow>, DbErr> {
    let sql = format!(
        "SELECT id, customer_platform_id, offer, period, code, title, value, reason, state, platform_id, \
         metafields, starts_at, ends_at, created_at FROM discount_codes WHERE shop_id = ? AND {filter} ORDER BY id"
    );
    let mut values: Vec<Value> = vec![shop_id.into()];
    values.extend(extra);
    let rows = db
        .query_all_raw(stmt(db.get_database_backend(), &sql, values))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let offer: String = r.try_get("", "offer")?;
        let value: String = r.try_get("", "value")?;
        let metafields: String = r.try_get("", "metafields")?;
        let bad = |what: &str| DbErr::Custom(format!("discount_codes: unreadable {what}"));
        out.push(CodeRow {
            id: r.try_get("", "id")?,
            customer_id: r.try_get("", "customer_platform_id")?,
            offer: offer_of(&offer).ok_or_else(|| bad("offer"))?,
            period: r.try_get::<i32>("", "period")?.max(0) as u32,
            code: r.try_get("", "code")?,
            title: r.try_get("", "title")?,
            value: serde_json::from_str(&value).map_err(|_| bad("value"))?,
            reason: r.try_get("", "reason")?,
            state: r.try_get("", "state")?,
            platform_id: r.try_get("", "platform_id")?,
            fields: serde_json::from_str(&metafields).map_err(|_| bad("metafields"))?,
            starts_at: r.try_get("", "starts_at")?,
            ends_at: r.try_get("", "ends_at")?,
            created_at: r.try_get("", "created_at")?,
        });
    }
    Ok(out)
}

/// Codes that were planned or created but not finished (a crash, or a retry pending).
pub async fn unfinished_codes(
    db: &impl ConnectionTrait,
    shop_id: i64,
) -> Result<Vec<CodeRow>, DbErr> {
    load_codes_where(db, shop_id, "state IN ('planned', 'created')", vec![]).await
}

/// Every code that exists in the shop, as the offer planner's history.
pub async fn issued_codes(
    db: &impl ConnectionTrait,
    shop_id: i64,
    used: &std::collections::HashSet<String>,
) -> Result<Vec<IssuedCode>, DbErr> {
    let rows = load_codes_where(db, shop_id, "state IN ('created', 'confirmed')", vec![]).await?;
    Ok(rows
        .into_iter()
        .map(|c| IssuedCode {
            redeemed: used.contains(&c.code.to_ascii_uppercase()),
            customer_id: c.customer_id,
            offer: c.offer,
            period: c.period,
            code: c.code,
            issued_at: c.created_at,
            ends_at: c.ends_at,
        })
        .collect())
}

/// Records a code before the API call. If the row exists (a retry) it is returned as stored,
/// so the retry sends exactly what the first attempt sent.
pub async fn insert_planned(
    db: &impl ConnectionTrait,
    shop_id: i64,
    p: &PlannedCode,
    now: DateTime<Utc>,
) -> Result<CodeRow, DbErr> {
    exec(
        db,
        "INSERT INTO discount_codes (shop_id, customer_platform_id, offer, period, code, title, value, reason, \
         state, platform_id, metafields, starts_at, ends_at, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?) ON CONFLICT (shop_id, code) DO NOTHING",
        vec![
            shop_id.into(),
            p.customer_id.clone().into(),
            p.offer.key().into(),
            (p.period as i32).into(),
            p.code.clone().into(),
            p.title.clone().into(),
            serde_json::to_string(&p.value).unwrap_or_default().into(),
            p.reason_segment.clone().into(),
            PLANNED.into(),
            serde_json::to_string(&p.fields)
                .unwrap_or_else(|_| "[]".into())
                .into(),
            p.starts_at.into(),
            p.ends_at.into(),
            now.into(),
            now.into(),
        ],
    )
    .await?;
    load_codes_where(db, shop_id, "code = ?", vec![p.code.clone().into()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| DbErr::Custom(format!("code {} vanished after insert", p.code)))
}

pub async fn set_code_state(
    db: &impl ConnectionTrait,
    shop_id: i64,
    id: i64,
    state: &str,
    platform_id: Option<&str>,
) -> Result<(), DbErr> {
    exec(
        db,
        "UPDATE discount_codes SET state = ?, platform_id = COALESCE(?, platform_id), updated_at = ? \
         WHERE shop_id = ? AND id = ?",
        vec![
            state.into(),
            platform_id.map(str::to_string).into(),
            Utc::now().into(),
            shop_id.into(),
            id.into(),
        ],
    )
    .await?;
    Ok(())
}

// ---- control groups ----

/// Every control assignment of the shop, as the offer planner's history.
pub async fn control_assignments(
    db: &impl ConnectionTrait,
    shop_id: i64,
) -> Result<Vec<ControlAssignment>, DbErr> {
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            "SELECT customer_platform_id, offer, period, control_percent, reason, starts_at, ends_at \
             FROM offer_controls WHERE shop_id = ? ORDER BY id",
            vec![shop_id.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            let offer: String = r.try_get("", "offer")?;
            Ok(ControlAssignment {
                customer_id: r.try_get("", "customer_platform_id")?,
                offer: offer_of(&offer)
                    .ok_or_else(|| DbErr::Custom("offer_controls: unreadable offer".into()))?,
                period: r.try_get::<i32>("", "period")?.max(0) as u32,
                control_percent: r.try_get::<i16>("", "control_percent")?.clamp(0, 100) as u8,
                starts_at: r.try_get("", "starts_at")?,
                ends_at: r.try_get("", "ends_at")?,
                reason_segment: r.try_get("", "reason")?,
            })
        })
        .collect()
}

/// Keeps control assignments; one already stored for (customer, offer, period) stays as it is.
pub async fn save_controls(
    db: &impl ConnectionTrait,
    shop_id: i64,
    run_id: Option<i64>,
    controls: &[ControlAssignment],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    // 10 values a row: 500 rows stay far under both engines' parameter limits.
    for chunk in controls.chunks(500) {
        let placeholders = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 10);
        for c in chunk {
            values.extend([
                shop_id.into(),
                c.customer_id.clone().into(),
                c.offer.key().into(),
                (c.period as i32).into(),
                i16::from(c.control_percent).into(),
                c.reason_segment.clone().into(),
                run_id.into(),
                c.starts_at.into(),
                c.ends_at.into(),
                now.into(),
            ]);
        }
        exec(
            db,
            &format!(
                "INSERT INTO offer_controls (shop_id, customer_platform_id, offer, period, control_percent, \
                 reason, run_id, starts_at, ends_at, created_at) VALUES {placeholders} \
                 ON CONFLICT (shop_id, customer_platform_id, offer, period) DO NOTHING"
            ),
            values,
        )
        .await?;
    }
    Ok(())
}

// ---- runs and audit ----

pub async fn start_run(
    db: &impl ConnectionTrait,
    shop_id: i64,
    trigger: &str,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    let r = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "INSERT INTO segment_runs (shop_id, trigger, dry_run, status, summary, started_at) \
             VALUES (?, ?, ?, 'running', '{}', ?) RETURNING id",
            vec![shop_id.into(), trigger.into(), dry_run.into(), now.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("segment_runs insert returned nothing".into()))?;
    r.try_get("", "id")
}

/// Closes the shop's runs that are still `running` but sent writes as `interrupted`. Only the
/// holder of the shop's run lease calls it, when no such run can be alive.
pub async fn interrupt_runs(db: &impl ConnectionTrait, shop_id: i64) -> Result<u64, DbErr> {
    exec(
        db,
        "UPDATE segment_runs SET status = 'interrupted', finished_at = ?, \
         error = 'the run stopped before its end (its process or its lease ended)' \
         WHERE shop_id = ? AND status = 'running' AND dry_run = ?",
        vec![Utc::now().into(), shop_id.into(), false.into()],
    )
    .await
}

pub async fn finish_run(
    db: &impl ConnectionTrait,
    shop_id: i64,
    run_id: i64,
    status: &str,
    summary: &serde_json::Value,
    error: Option<&str>,
) -> Result<(), DbErr> {
    exec(
        db,
        "UPDATE segment_runs SET status = ?, summary = ?, error = ?, finished_at = ? WHERE shop_id = ? AND id = ?",
        vec![
            status.into(),
            summary.to_string().into(),
            error.map(str::to_string).into(),
            Utc::now().into(),
            shop_id.into(),
            run_id.into(),
        ],
    )
    .await?;
    Ok(())
}

pub const TAG_ADD: &str = "tag_add";
pub const TAG_REMOVE: &str = "tag_remove";
pub const CODE_CREATE: &str = "code_create";
/// A customer held out of an offer (the control group): recorded like a code, nothing sent.
pub const CONTROL_HOLD: &str = "control_hold";

/// One audited write (or, in dry-run mode, one write that would have been sent).
#[derive(Debug, Clone)]
pub struct Audit {
    pub customer: String,
    pub action: &'static str,
    /// The tag, or the code and its offer.
    pub detail: String,
    /// Which segment or rule caused it.
    pub reason: String,
    /// `planned` (dry run), `sent`, `confirmed_taken` or `rejected: ...`.
    pub outcome: String,
}

pub async fn audit(
    db: &impl ConnectionTrait,
    shop_id: i64,
    run_id: Option<i64>,
    dry_run: bool,
    entries: &[Audit],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    // 9 values a row: 1,000 rows stay under both engines' parameter limits (32,766; 65,535).
    for chunk in entries.chunks(1_000) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 9);
        for a in chunk {
            values.extend([
                shop_id.into(),
                run_id.into(),
                a.customer.clone().into(),
                a.action.into(),
                a.detail.clone().into(),
                a.reason.clone().into(),
                dry_run.into(),
                a.outcome.clone().into(),
                now.into(),
            ]);
        }
        let placeholders = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        exec(
            db,
            &format!(
                "INSERT INTO writeback_audit (shop_id, run_id, customer_platform_id, action, detail, reason, \
                 dry_run, outcome, at) VALUES {placeholders}"
            ),
            values,
        )
        .await?;
    }
    Ok(())
}

// ---- the code secret ----

/// The shop's code secret (encrypted at rest), created on first use.
pub async fn code_secret(
    db: &impl ConnectionTrait,
    cipher: &crate::secrets::Cipher,
    shop_id: i64,
    shop_domain: &str,
) -> Result<String, DbErr> {
    let owner = format!("{shop_domain}#codes");
    let fresh = cipher.encrypt(&crate::secrets::random_secret(32), &owner);
    exec(
        db,
        "INSERT INTO loyalty_secrets (shop_id, code_secret, created_at) VALUES (?, ?, ?) \
         ON CONFLICT (shop_id) DO NOTHING",
        vec![shop_id.into(), fresh.into(), Utc::now().into()],
    )
    .await?;
    let r = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "SELECT code_secret FROM loyalty_secrets WHERE shop_id = ?",
            vec![shop_id.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("loyalty secret missing".into()))?;
    let stored: String = r.try_get("", "code_secret")?;
    cipher
        .decrypt(&stored, &owner)
        .map_err(|e| DbErr::Custom(format!("loyalty secret: {e}")))
}
