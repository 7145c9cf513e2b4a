//! Near-real-time re-scoring: after a webhook changes a customer or their orders, that
//! customer is scored again with the shop's last fitted model and segment context, and the
//! tag difference is pushed. Jobs are debounced per customer: every event in the same
//! ten-second window shares one job that runs when the window closes.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use serde_json::json;

use super::store;
use super::tags::{self, TagStats};
use super::{Stop, WritebackError};
use crate::analysis::facts::customer_facts;
use crate::analysis::load::load_customer;
use crate::analysis::results::{self, ScoreRow};
use crate::analysis::settings::LoyaltySettings;
use crate::core::analytics::{customer_features, score_customer};
use crate::core::loyalty::{TagPlanner, TagPrefix};
use crate::jobs::{JobError, JobResult, kinds};
use crate::model::{Customer, Event};
use crate::state::AppState;
use crate::store::entities::job;
use crate::store::jobs::{NewJob, enqueue};
use crate::store::{shops, stmt};

/// Events within this window collapse into one re-scoring job per customer.
pub const DEBOUNCE_SECS: i64 = 10;

/// The window's end: when its job runs, and the key that collapses its events.
fn window_end(now: DateTime<Utc>) -> DateTime<Utc> {
    let secs = now.timestamp().div_euclid(DEBOUNCE_SECS) * DEBOUNCE_SECS + DEBOUNCE_SECS;
    DateTime::from_timestamp(secs, 0).unwrap_or(now)
}

/// The re-scoring job of `customer` for the window ending at `end`; one per window.
fn rescore_job(shop_id: i64, customer: &str, end: DateTime<Utc>) -> NewJob {
    NewJob::new(kinds::RESCORE)
        .shop(shop_id)
        .payload(json!({ "customer": customer }))
        .dedupe(format!("rescore:{shop_id}:{customer}:{}", end.timestamp()))
        .run_at(end)
        .max_attempts(5)
}

/// Enqueues a debounced re-scoring job for every customer the events touch. Called in the
/// transaction that applies them, so the job exists exactly when the data does.
/// `unchanged` names customers whose update changes nothing re-scoring reads (see
/// [`unchanged_customers`]): their update alone enqueues nothing.
pub async fn enqueue_for_events(
    db: &impl ConnectionTrait,
    shop_id: i64,
    events: &[Event],
    unchanged: &HashSet<String>,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let mut customers: Vec<String> = Vec::new();
    for e in events {
        match e {
            Event::CustomerUpserted(c) if unchanged.contains(&c.platform_id) => {}
            Event::CustomerUpserted(c) => customers.push(c.platform_id.clone()),
            Event::OrderUpserted(o) => customers.extend(o.customer_platform_id.clone()),
            Event::CheckoutUpserted(c) => customers.extend(c.customer_platform_id.clone()),
            Event::RefundCreated(r) => {
                let row = db
                    .query_one_raw(stmt(
                        db.get_database_backend(),
                        "SELECT customer_platform_id FROM orders WHERE shop_id = ? AND platform_id = ?",
                        vec![shop_id.into(), r.order_platform_id.clone().into()],
                    ))
                    .await?;
                if let Some(row) = row {
                    customers.extend(row.try_get::<Option<String>>("", "customer_platform_id")?);
                }
            }
            _ => {}
        }
    }
    customers.sort();
    customers.dedup();
    let end = window_end(now);
    let mut created = 0;
    for c in customers {
        created += enqueue(db, rescore_job(shop_id, &c, end)).await?.is_some() as usize;
    }
    Ok(created)
}

/// Customer updates in `events` that change nothing re-scoring reads of a customer (e-mail,
/// sign-up date, and tags other than Lifecycle's own, which the planner works out from what it
/// pushed). Above all this is the platform's echo of our own tag writes: a push to N customers
/// comes back as N `customers/update` webhooks, and re-scoring each would cost N jobs that
/// change nothing. Read before the events are applied, in the same transaction.
pub async fn unchanged_customers(
    db: &impl ConnectionTrait,
    shop_id: i64,
    prefix: &TagPrefix,
    events: &[Event],
) -> Result<HashSet<String>, DbErr> {
    let incoming: HashMap<&str, &Customer> = events
        .iter()
        .filter_map(|e| match e {
            Event::CustomerUpserted(c) => Some((c.platform_id.as_str(), c)),
            _ => None,
        })
        .collect();
    let mut unchanged = HashSet::new();
    let ids: Vec<&str> = incoming.keys().copied().collect();
    for chunk in ids.chunks(500) {
        let list = vec!["?"; chunk.len()].join(", ");
        let mut values: Vec<sea_orm::Value> = vec![shop_id.into()];
        values.extend(chunk.iter().map(|id| sea_orm::Value::from(*id)));
        let rows = db
            .query_all_raw(stmt(
                db.get_database_backend(),
                &format!(
                    "SELECT platform_id, email, tags, platform_created_at FROM customers \
                     WHERE shop_id = ? AND platform_id IN ({list}) \
                     AND deleted_at IS NULL AND redacted_at IS NULL"
                ),
                values,
            ))
            .await?;
        for r in rows {
            let id: String = r.try_get("", "platform_id")?;
            let Some(c) = incoming.get(id.as_str()) else {
                continue;
            };
            let email: Option<String> = r.try_get("", "email")?;
            let created: Option<DateTime<Utc>> = r.try_get("", "platform_created_at")?;
            let tags: Option<String> = r.try_get("", "tags")?;
            let stored_tags: Vec<String> = tags
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let same_tags = match &c.tags {
                // A payload without tags keeps the stored ones.
                None => true,
                Some(new) => merchant_tags(prefix, new) == merchant_tags(prefix, &stored_tags),
            };
            if same_tags && email == c.email && created == c.created_at {
                unchanged.insert(id);
            }
        }
    }
    Ok(unchanged)
}

/// The tags that are not Lifecycle's, normalised as the shop compares them.
fn merchant_tags(prefix: &TagPrefix, tags: &[String]) -> BTreeSet<String> {
    tags.iter()
        .filter(|t| !prefix.owns(t))
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// What re-scoring one customer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rescored {
    /// False when there was nothing to score against (no analysis yet, unknown customer,
    /// uninstalled shop).
    pub scored: bool,
    pub segments: Vec<String>,
    pub tags: TagStats,
    pub changed: bool,
    pub stopped: Option<Stop>,
}

/// A segment run that started longer ago than this is taken as dead (its process crashed), so
/// it defers nothing.
const RUN_STALE_HOURS: i64 = 2;

/// Whether a full segment run that sends writes is under way for the shop. Its push confirms
/// each customer only after the shop answered (for a bulk push, after a whole operation), so
/// planning one of its customers meanwhile would send again what it is about to confirm.
async fn full_run_in_progress(
    db: &impl ConnectionTrait,
    shop_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM segment_runs WHERE shop_id = ? AND status = 'running' \
             AND dry_run = ? AND started_at > ?",
            vec![
                shop_id.into(),
                false.into(),
                (now - chrono::Duration::hours(RUN_STALE_HOURS)).into(),
            ],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0)
        > 0)
}

/// The job handler (kind `rescore`, payload `{"customer": platform id}`). During a full run the
/// job comes back a window later instead: the run pushes the customer's planned change, and the
/// later re-score sends whatever newer data changed after it.
pub async fn job(state: AppState, job: job::Model) -> JobResult {
    let Some(shop_id) = job.shop_id else {
        return Err(JobError::permanent("rescore job without a shop"));
    };
    let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap_or_default();
    let Some(customer) = payload.get("customer").and_then(|v| v.as_str()) else {
        return Err(JobError::permanent("rescore job without a customer"));
    };
    let now = Utc::now();
    if full_run_in_progress(&state.db, shop_id, now).await? {
        let end = window_end(now + chrono::Duration::seconds(DEBOUNCE_SECS));
        enqueue(&state.db, rescore_job(shop_id, customer, end)).await?;
        return Ok(());
    }
    match rescore(&state, shop_id, customer, Utc::now()).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.into_job_error(&state).await),
    }
}

/// Re-scores one customer at `now` and pushes their tag change.
pub async fn rescore(
    state: &AppState,
    shop_id: i64,
    customer: &str,
    now: DateTime<Utc>,
) -> Result<Rescored, WritebackError> {
    let mut out = Rescored::default();
    let Some(shop) = shops::get(&state.db, shop_id).await? else {
        return Ok(out);
    };
    if shop.status != shops::INSTALLED {
        out.stopped = Some(Stop::Uninstalled);
        return Ok(out);
    }
    let settings = LoyaltySettings::from_shop_json(&shop.settings)?;
    let catalog = settings.validate()?;
    // Before the first full run there is no model: the full run will tag everyone.
    let Some(stored) = results::load_analysis(&state.db, shop_id).await? else {
        return Ok(out);
    };
    let Some(data) = load_customer(&state.db, shop_id, customer).await? else {
        return Ok(out);
    };
    let features = customer_features(
        0,
        &data.input.orders,
        &data.input.abandoned_checkouts,
        now,
        stored.model.time_unit,
    );
    let score = score_customer(&features, &stored.model, now);
    let facts = customer_facts(&data.customers[0], &data.extras[0], &features, &score);
    let membership = catalog.evaluator(&stored.context, now).membership(&facts);
    out.scored = true;
    out.segments = results::segment_keys(&catalog, &membership);
    results::save_scores(
        &state.db,
        shop_id,
        &catalog,
        &stored.currency,
        &[ScoreRow {
            facts: &facts,
            rfm: (score.rfm.r, score.rfm.f, score.rfm.m),
            has_prediction: score.prediction.is_some(),
            membership: &membership,
        }],
        now,
    )
    .await?;

    let planner = TagPlanner::new(&catalog, settings.tag_prefix.clone());
    let pushed = store::load_pushed(&state.db, shop_id, Some(customer)).await?;
    let Some(work) = tags::plan_customer(
        &planner,
        customer,
        &data.customers[0].tags,
        pushed.get(customer),
        &membership,
    ) else {
        return Ok(out);
    };
    out.changed = true;
    if settings.dry_run {
        let audit = tags::audit_rows(&work, "planned");
        store::audit(&state.db, shop_id, None, true, &audit, now).await?;
        return Ok(out);
    }
    let (stats, stop) = tags::push(state, shop_id, None, std::slice::from_ref(&work), now).await?;
    out.tags = stats;
    out.stopped = stop;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn events_in_one_window_share_its_end() {
        let a = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 1).unwrap();
        let b = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 9).unwrap();
        let c = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 10).unwrap();
        assert_eq!(window_end(a), window_end(b));
        assert_eq!(window_end(a), c);
        assert!(window_end(c) > c);
    }
}
