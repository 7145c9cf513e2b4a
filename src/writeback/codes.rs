//! Personal discount codes, exactly once. A code's row is written `planned` before the API
//! call; success or `TAKEN` marks it `created` (the discount exists), and the customer's
//! fields then mark it `confirmed`. A crash anywhere leaves a row that the next attempt
//! finishes from the stored values: re-sending a created code meets `TAKEN`, never a second
//! discount, and the code is derived from (shop, customer, offer, period), so re-planning
//! yields the same code too.

use chrono::{DateTime, Utc};

use super::store::{self, Audit, CodeRow};
use super::{Stop, WritebackError, client_or_stop};
use crate::core::loyalty::{ControlAssignment, PlannedCode};
use crate::platforms::{CreateOutcome, NewCode};
use crate::state::AppState;

/// What a code push did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CodeStats {
    /// Discounts created by this push.
    pub created: usize,
    /// Codes that already existed (a retry after a crash) and were confirmed instead.
    pub taken: usize,
    /// Codes whose customer fields were written (fully confirmed).
    pub confirmed: usize,
    pub rejected: usize,
    /// Mutation calls sent.
    pub writes: usize,
}

fn audit_row(row: &CodeRow, outcome: String) -> Audit {
    Audit {
        customer: row.customer_id.clone(),
        action: store::CODE_CREATE,
        detail: format!("{} ({})", row.code, row.offer.key()),
        reason: format!("offer {} for segment {}", row.offer.key(), row.reason),
        outcome,
    }
}

/// The audit rows a dry run records for planned codes.
pub fn planned_audit(p: &PlannedCode) -> Audit {
    Audit {
        customer: p.customer_id.clone(),
        action: store::CODE_CREATE,
        detail: format!("{} ({})", p.code, p.offer.key()),
        reason: format!("offer {} for segment {}", p.offer.key(), p.reason_segment),
        outcome: "planned".into(),
    }
}

/// The audit row of a control assignment: `held_out`, or `planned` in a dry run.
pub fn control_audit(c: &ControlAssignment, outcome: &str) -> Audit {
    Audit {
        customer: c.customer_id.clone(),
        action: store::CONTROL_HOLD,
        detail: format!("control group ({}, period {})", c.offer.key(), c.period),
        reason: format!(
            "offer {} for segment {}: drawn into the {} % control group",
            c.offer.key(),
            c.reason_segment,
            c.control_percent
        ),
        outcome: outcome.into(),
    }
}

/// Keeps the run's control assignments with their audit rows, in one transaction. Nothing is
/// sent: a control customer gets no code.
pub async fn hold_out(
    state: &AppState,
    shop_id: i64,
    run_id: Option<i64>,
    controls: &[ControlAssignment],
    now: DateTime<Utc>,
) -> Result<(), WritebackError> {
    if controls.is_empty() {
        return Ok(());
    }
    let audit: Vec<Audit> = controls
        .iter()
        .map(|c| control_audit(c, "held_out"))
        .collect();
    let tx = crate::store::write_tx(&state.db).await?;
    store::save_controls(&tx, shop_id, run_id, controls, now).await?;
    store::audit(&tx, shop_id, run_id, false, &audit, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Finishes rows left `planned` or `created` by an earlier attempt.
pub async fn finish_unfinished(
    state: &AppState,
    shop_id: i64,
    run_id: Option<i64>,
    stats: &mut CodeStats,
) -> Result<Option<Stop>, WritebackError> {
    for row in store::unfinished_codes(&state.db, shop_id).await? {
        if let Some(stop) = advance(state, shop_id, run_id, row, stats).await? {
            return Ok(Some(stop));
        }
    }
    Ok(None)
}

/// Creates the planned codes, each recorded before it is sent.
pub async fn push(
    state: &AppState,
    shop_id: i64,
    run_id: Option<i64>,
    planned: &[PlannedCode],
    stats: &mut CodeStats,
    now: DateTime<Utc>,
) -> Result<Option<Stop>, WritebackError> {
    for p in planned {
        // Checked before the row is written, so an uninstalled shop gets no new rows either.
        if let Err(stop) = client_or_stop(state, shop_id).await? {
            return Ok(Some(stop));
        }
        let row = store::insert_planned(&state.db, shop_id, p, now).await?;
        if let Some(stop) = advance(state, shop_id, run_id, row, stats).await? {
            return Ok(Some(stop));
        }
    }
    Ok(None)
}

/// Moves one row forward: planned → created → confirmed.
async fn advance(
    state: &AppState,
    shop_id: i64,
    run_id: Option<i64>,
    mut row: CodeRow,
    stats: &mut CodeStats,
) -> Result<Option<Stop>, WritebackError> {
    let now = Utc::now();
    if row.state == store::PLANNED {
        let client = match client_or_stop(state, shop_id).await? {
            Ok(c) => c,
            Err(stop) => return Ok(Some(stop)),
        };
        let code = NewCode {
            title: &row.title,
            code: &row.code,
            customer: &row.customer_id,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            value: &row.value,
        };
        let outcome = client
            .create_code(&code)
            .await
            .map_err(|e| WritebackError::from_client(e, shop_id, client.as_ref()))?;
        stats.writes += 1;
        let (state_name, platform_id, note) = match outcome {
            CreateOutcome::Created { platform_id } => {
                stats.created += 1;
                (store::CREATED, Some(platform_id), "created".to_string())
            }
            CreateOutcome::Taken => {
                stats.taken += 1;
                (store::CREATED, None, "confirmed_taken".to_string())
            }
            CreateOutcome::Rejected(msg) => {
                stats.rejected += 1;
                (store::FAILED, None, format!("rejected: {msg}"))
            }
        };
        let tx = crate::store::write_tx(&state.db).await?;
        store::set_code_state(&tx, shop_id, row.id, state_name, platform_id.as_deref()).await?;
        store::audit(&tx, shop_id, run_id, false, &[audit_row(&row, note)], now).await?;
        tx.commit().await?;
        row.state = state_name.to_string();
    }
    if row.state == store::CREATED {
        let client = match client_or_stop(state, shop_id).await? {
            Ok(c) => c,
            Err(stop) => return Ok(Some(stop)),
        };
        let refused = client
            .set_customer_fields(&row.customer_id, &row.fields)
            .await
            .map_err(|e| WritebackError::from_client(e, shop_id, client.as_ref()))?;
        stats.writes += 1;
        match refused {
            None => {
                store::set_code_state(&state.db, shop_id, row.id, store::CONFIRMED, None).await?;
                stats.confirmed += 1;
            }
            // The discount exists; the fields are retried by the next run.
            Some(msg) => {
                tracing::warn!(shop_id, code = %row.code, error = %msg, "customer fields refused");
            }
        }
    }
    Ok(None)
}
