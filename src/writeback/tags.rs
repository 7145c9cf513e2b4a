//! Tag write-back: plan each customer's difference against what was last confirmed pushed,
//! send only that difference, and record the new confirmed state after each successful batch.
//! [`super::labels`] sends a small difference as batched calls ([`push_aliased`]), a large one
//! as bulk mutations ([`super::bulk`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::store::{self, Audit, Pushed};
use super::{Stop, WritebackError, client_or_stop};
use crate::core::loyalty::{CustomerTags, TagAction, TagChange, TagPlanner};
use crate::core::segments::Membership;
use crate::platforms::LabelOp;
use crate::state::AppState;

/// One customer's planned change and the state to record once it is confirmed.
#[derive(Debug, Clone)]
pub struct TagWork {
    pub change: TagChange,
    pub desired: Vec<String>,
    pub previous: Pushed,
}

/// Plans one customer. The mirror's tags count as "on the customer now" except our own tags we
/// already confirmed removed: customer webhooks carry no tags, so the mirror still lists them
/// until the next sync, and removing them again would be a write with no change.
pub fn plan_customer(
    planner: &TagPlanner<'_>,
    customer_id: &str,
    mirror_tags: &[String],
    pushed: Option<&Pushed>,
    m: &Membership,
) -> Option<TagWork> {
    let empty = Pushed::default();
    let previous = pushed.unwrap_or(&empty);
    let current: Vec<String> = mirror_tags
        .iter()
        .filter(|t| {
            !previous
                .removed
                .iter()
                .any(|r| r.trim().eq_ignore_ascii_case(t.trim()))
        })
        .cloned()
        .collect();
    let change = planner.plan_customer(
        CustomerTags {
            customer_id,
            current: &current,
            last_pushed: &previous.tags,
        },
        m,
    )?;
    Some(TagWork {
        change,
        desired: planner.desired_tags(m),
        previous: previous.clone(),
    })
}

/// The state to record after the change was applied.
fn confirmed(work: &TagWork) -> Pushed {
    let mut removed: Vec<String> = work
        .previous
        .removed
        .iter()
        .chain(&work.change.remove)
        .filter(|t| !work.desired.iter().any(|d| d.eq_ignore_ascii_case(t)))
        .cloned()
        .collect();
    removed.sort();
    removed.dedup();
    Pushed {
        tags: work.desired.clone(),
        removed,
    }
}

pub(super) fn ops_of(work: &TagWork) -> Vec<LabelOp> {
    let mut ops = Vec::with_capacity(2);
    if !work.change.add.is_empty() {
        ops.push(LabelOp {
            customer: work.change.customer_id.clone(),
            add: true,
            labels: work.change.add.clone(),
        });
    }
    if !work.change.remove.is_empty() {
        ops.push(LabelOp {
            customer: work.change.customer_id.clone(),
            add: false,
            labels: work.change.remove.clone(),
        });
    }
    ops
}

/// Audit rows for a change: one per tag, with the segment behind it.
pub fn audit_rows(work: &TagWork, outcome: &str) -> Vec<Audit> {
    work.change
        .reasons
        .iter()
        .map(|r| Audit {
            customer: work.change.customer_id.clone(),
            action: match r.action {
                TagAction::Add => store::TAG_ADD,
                TagAction::Remove => store::TAG_REMOVE,
            },
            detail: r.tag.clone(),
            reason: match (&r.segment_key, r.action) {
                (Some(k), TagAction::Add) => format!("entered segment {k}"),
                (Some(k), TagAction::Remove) => format!("left segment {k}"),
                (None, _) => "no published segment has this tag".to_string(),
            },
            outcome: outcome.to_string(),
        })
        .collect()
}

/// What a tag push did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagStats {
    /// Customers whose change was confirmed.
    pub customers: usize,
    /// Mutation fields sent (one tagsAdd or tagsRemove each).
    pub writes: usize,
    /// Requests sent.
    pub requests: usize,
    /// Customers whose change the shop refused.
    pub rejected: usize,
    /// Bulk mutations completed (the large-difference path).
    pub bulk_operations: usize,
    /// Why the shop's plan refused labels altogether (Ecwid answers 402 to customer groups
    /// on plans without them): the push stopped there and everything else went on. Each run
    /// tries again, so an upgrade takes effect at the next one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_limit: Option<String>,
}

/// The shop's tag prefix: what marks a label as Lifecycle's.
async fn shop_prefix(
    state: &AppState,
    shop_id: i64,
) -> Result<crate::core::loyalty::TagPrefix, WritebackError> {
    let shop = crate::store::shops::get(&state.db, shop_id)
        .await?
        .ok_or_else(|| WritebackError::UnknownShop(shop_id.to_string()))?;
    Ok(crate::settings::LoyaltySettings::from_shop_json(&shop.settings)?.tag_prefix)
}

/// Customers recorded per transaction: a bulk push confirms up to every customer of the shop at
/// once, and one transaction over all of them would hold SQLite's write lock (and the webhook
/// intake behind it) for seconds.
const RECORD_BATCH: usize = 2_000;

/// Records what the shop said about each customer's change: `None` confirms it (the new
/// pushed state and `sent` audit rows), `Some(message)` records it as rejected. Each batch of
/// customers commits on its own; a batch is whole customers, so a crash between batches leaves
/// every customer either confirmed or still to send.
pub(super) async fn record(
    state: &AppState,
    shop_id: i64,
    run_id: Option<i64>,
    outcomes: &[(&TagWork, Option<&str>)],
    stats: &mut TagStats,
    now: DateTime<Utc>,
) -> Result<(), WritebackError> {
    for batch in outcomes.chunks(RECORD_BATCH) {
        let mut audit = Vec::new();
        let mut confirmed_rows = Vec::new();
        let mut batch_stats = TagStats::default();
        for &(work, refusal) in batch {
            match refusal {
                None => {
                    confirmed_rows.push((work.change.customer_id.as_str(), confirmed(work)));
                    audit.extend(audit_rows(work, "sent"));
                    batch_stats.customers += 1;
                }
                Some(msg) => {
                    audit.extend(audit_rows(work, &format!("rejected: {msg}")));
                    batch_stats.rejected += 1;
                }
            }
        }
        let tx = crate::store::write_tx(&state.db).await?;
        store::save_pushed(&tx, shop_id, &confirmed_rows, now).await?;
        store::audit(&tx, shop_id, run_id, false, &audit, now).await?;
        tx.commit().await?;
        stats.customers += batch_stats.customers;
        stats.rejected += batch_stats.rejected;
    }
    Ok(())
}

/// Sends the changes in batches of ordinary calls. Before each batch the shop must still be
/// installed; an uninstall stops the push at once (`Err(Stop)` is not an error, the caller
/// reports it).
pub async fn push_aliased(
    state: &AppState,
    shop_id: i64,
    run_id: Option<i64>,
    works: &[TagWork],
    now: DateTime<Utc>,
) -> Result<(TagStats, Option<Stop>), WritebackError> {
    let mut stats = TagStats::default();
    let prefix = shop_prefix(state, shop_id).await?;
    let mut i = 0;
    while i < works.len() {
        let client = match client_or_stop(state, shop_id).await? {
            Ok(c) => c,
            Err(stop) => return Ok((stats, Some(stop))),
        };
        // Whole customers per batch, up to the platform's writes per call.
        let per_call = client.labels_per_call().max(1);
        let mut end = i;
        let mut fields = 0;
        while end < works.len() {
            let n = ops_of(&works[end]).len();
            if fields + n > per_call && fields > 0 {
                break;
            }
            fields += n;
            end += 1;
        }
        let batch = &works[i..end];
        i = end;
        let mut ops = Vec::with_capacity(fields);
        let mut owner = Vec::with_capacity(fields);
        for (w, work) in batch.iter().enumerate() {
            for op in ops_of(work) {
                ops.push(op);
                owner.push(w);
            }
        }
        let results = match client.labels(&ops, prefix.as_str()).await {
            Ok(r) => r,
            // No customer can hold a label on this plan: the batch stays unconfirmed (the
            // next run plans it again) and the run goes on to the codes.
            Err(crate::platforms::CallError::PlanLimit(why)) => {
                tracing::warn!(shop_id, reason = %why, "the shop's plan refuses labels");
                stats.requests += 1;
                stats.plan_limit = Some(why);
                return Ok((stats, None));
            }
            Err(e) => return Err(WritebackError::from_client(e, shop_id, client.as_ref())),
        };
        stats.requests += 1;
        stats.writes += ops.len();
        let mut failures: HashMap<usize, String> = HashMap::new();
        for (k, r) in results.into_iter().enumerate() {
            if let Some(msg) = r {
                failures.entry(owner[k]).or_insert(msg);
            }
        }
        let outcomes = batch
            .iter()
            .enumerate()
            .map(|(w, work)| (work, failures.get(&w).map(String::as_str)))
            .collect::<Vec<_>>();
        record(state, shop_id, run_id, &outcomes, &mut stats, now).await?;
    }
    Ok((stats, None))
}
