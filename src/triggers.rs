//! The only place one stage enqueues the next: install → backfill, a sync that changed data →
//! a segment run, applied webhooks → re-scoring the customers they touch. Features call these
//! functions and never name each other's jobs; the composition root (`app`) registers the
//! handlers under the same kind names.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use serde::{Deserialize, Serialize};

use crate::model::DataEvent;
use crate::store::entities::shop;
use crate::store::jobs::{NewJob, enqueue};
use crate::store::stmt;

/// Job kind names (migration m0006 renamed the sync kinds of existing databases).
pub mod kinds {
    pub const BACKFILL: &str = "sync.backfill";
    pub const INCREMENTAL: &str = "sync.incremental";
    pub const RECONCILE: &str = "sync.reconcile";
    pub const SEGMENT: &str = "segment";
    /// One customer re-scored and re-tagged after a webhook.
    pub const RESCORE: &str = "rescore";
    /// One record read through the platform's API, for a webhook that named it only.
    pub const FETCH: &str = "sync.fetch";
    /// Prunes settled inbox rows, finished jobs and audit rows past their age; empties expired
    /// data exports.
    pub const RETENTION: &str = "retention";
}

/// The payload of a job kind that takes none: `{}`; anything else is refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoPayload {}

/// The payload of a segment run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentPayload {
    /// Plan and audit without writing to the shop.
    #[serde(default)]
    pub dry_run: bool,
    /// What the run records as its trigger (default `job`); a merchant's dry run names its
    /// request, so the page can find the run it asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// The payload of a fetch job: which record to read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchPayload {
    pub resource: crate::model::Resource,
    pub platform_id: String,
}

/// The payload of a re-scoring job: the customer's platform id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescorePayload {
    pub customer: String,
}

/// Events within this window collapse into one job (per customer for re-scoring, per shop for
/// the segment run after syncs).
pub const DEBOUNCE_SECS: i64 = 10;

/// The window's end: when its job runs, and the key that collapses its events.
pub fn window_end(now: DateTime<Utc>) -> DateTime<Utc> {
    let secs = now.timestamp().div_euclid(DEBOUNCE_SECS) * DEBOUNCE_SECS + DEBOUNCE_SECS;
    DateTime::from_timestamp(secs, 0).unwrap_or(now)
}

/// A shop was installed (or re-installed): its backfill. Called in the transaction that
/// stores the shop, so the shop exists exactly when its backfill does. The key names this
/// install (its time to the microsecond): an uninstall and reinstall within one second must
/// still get their own backfill.
pub async fn installed(db: &impl ConnectionTrait, shop: &shop::Model) -> Result<(), DbErr> {
    let at = shop
        .installed_at
        .unwrap_or_else(Utc::now)
        .timestamp_micros();
    let job = NewJob::new(kinds::BACKFILL)
        .shop(shop.id)
        .dedupe(format!("backfill:{}:{at}", shop.id));
    enqueue(db, job).await?;
    Ok(())
}

/// A merchant asked for a dry run. It runs as a job, off the threads that answer webhooks;
/// while one is waiting or running for the shop, asking again answers with that one. Returns
/// the request's token: the run records `dry_run_trigger(token)` as its trigger.
pub async fn dry_run_requested(db: &impl ConnectionTrait, shop_id: i64) -> Result<String, DbErr> {
    let prefix = format!("dry-run:{shop_id}:");
    let waiting = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "SELECT dedupe_key FROM jobs WHERE shop_id = ? AND kind = ? \
             AND state IN ('queued', 'running') AND dedupe_key LIKE ? ORDER BY id DESC LIMIT 1",
            vec![
                shop_id.into(),
                kinds::SEGMENT.into(),
                format!("{prefix}%").into(),
            ],
        ))
        .await?;
    if let Some(row) = waiting {
        let key: String = row.try_get("", "dedupe_key")?;
        return Ok(key.trim_start_matches(&prefix).to_string());
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    let payload = SegmentPayload {
        dry_run: true,
        trigger: Some(dry_run_trigger(&token)),
    };
    let job = NewJob::new(kinds::SEGMENT)
        .shop(shop_id)
        .payload(serde_json::to_value(payload).unwrap_or_default())
        .dedupe(dry_run_key(shop_id, &token));
    enqueue(db, job).await?;
    Ok(token)
}

/// The dedupe key of a merchant's dry-run request.
pub fn dry_run_key(shop_id: i64, token: &str) -> String {
    format!("dry-run:{shop_id}:{token}")
}

/// The trigger a merchant's dry run records.
pub fn dry_run_trigger(token: &str) -> String {
    format!("admin:{token}")
}

/// A sync changed the shop's data: a segment run, debounced. Every sync in the same window
/// shares one job (the dedupe key), which runs when the window closes, so a burst of syncs
/// costs one run and none of their changes is left out.
pub async fn after_sync(db: &impl ConnectionTrait, shop_id: i64) -> Result<(), DbErr> {
    let end = window_end(Utc::now());
    let job = NewJob::new(kinds::SEGMENT)
        .shop(shop_id)
        .dedupe(format!("segment:after-sync:{shop_id}:{}", end.timestamp()))
        .run_at(end);
    enqueue(db, job).await?;
    Ok(())
}

/// A webhook named a record without carrying it: read it through the platform's API. Every
/// notice of one record in the same window shares one job, which reads the record as it is
/// when the window closes. Called in the transaction that applies the webhook.
pub async fn fetch(
    db: &impl ConnectionTrait,
    shop_id: i64,
    resource: crate::model::Resource,
    platform_id: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let end = window_end(now);
    let payload = FetchPayload {
        resource,
        platform_id: platform_id.to_string(),
    };
    let job = NewJob::new(kinds::FETCH)
        .shop(shop_id)
        .payload(serde_json::to_value(payload).unwrap_or_default())
        .dedupe(format!(
            "fetch:{shop_id}:{}:{platform_id}:{}",
            resource.name(),
            end.timestamp()
        ))
        .run_at(end);
    enqueue(db, job).await?;
    Ok(())
}

/// The re-scoring job of `customer` for the window ending at `end`; one per window.
fn rescore_job(shop_id: i64, customer: &str, end: DateTime<Utc>) -> NewJob {
    let payload = RescorePayload {
        customer: customer.to_string(),
    };
    NewJob::new(kinds::RESCORE)
        .shop(shop_id)
        .payload(serde_json::to_value(payload).unwrap_or_default())
        .dedupe(format!("rescore:{shop_id}:{customer}:{}", end.timestamp()))
        .run_at(end)
        .max_attempts(5)
}

/// A segment run a window after `now`: another run of the shop held its lease. Every refused
/// trigger in the window shares the one job.
pub async fn segment_later(
    db: &impl ConnectionTrait,
    shop_id: i64,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let end = window_end(now + chrono::Duration::seconds(DEBOUNCE_SECS));
    let job = NewJob::new(kinds::SEGMENT)
        .shop(shop_id)
        .dedupe(format!("segment:busy:{shop_id}:{}", end.timestamp()))
        .run_at(end);
    enqueue(db, job).await?;
    Ok(())
}

/// Re-scores `customer` a window after `now` (a full run is under way; see `rescore`).
pub async fn rescore_later(
    db: &impl ConnectionTrait,
    shop_id: i64,
    customer: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let end = window_end(now + chrono::Duration::seconds(DEBOUNCE_SECS));
    enqueue(db, rescore_job(shop_id, customer, end)).await?;
    Ok(())
}

/// Enqueues a debounced re-scoring job for every customer the events touch. Called in the
/// transaction that applies them, so the job exists exactly when the data does.
/// `unchanged` names customers whose update changes nothing re-scoring reads (the platform's
/// echo of our own writes, see `ingest::echo`): their update alone enqueues nothing.
pub async fn after_events(
    db: &impl ConnectionTrait,
    shop_id: i64,
    events: &[DataEvent],
    unchanged: &std::collections::HashSet<String>,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let mut customers: Vec<String> = Vec::new();
    for e in events {
        match e {
            DataEvent::CustomerUpserted(c) if unchanged.contains(&c.platform_id) => {}
            DataEvent::CustomerUpserted(c) => customers.push(c.platform_id.clone()),
            DataEvent::OrderUpserted(o) => customers.extend(o.customer_platform_id.clone()),
            DataEvent::CheckoutUpserted(c) => customers.extend(c.customer_platform_id.clone()),
            // The customer's checkout is gone: the order it became (if it did) re-scores them,
            // and the nightly run reads the checkouts afresh.
            DataEvent::CheckoutRemoved { .. } => {}
            DataEvent::RefundCreated(r) => {
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

    #[test]
    fn payloads_refuse_what_they_do_not_know() {
        let ok: SegmentPayload = serde_json::from_str(r#"{"dry_run": true}"#).unwrap();
        assert!(ok.dry_run);
        assert!(
            !serde_json::from_str::<SegmentPayload>("{}")
                .unwrap()
                .dry_run
        );
        // A mistyped value or key is an error, never a real push.
        assert!(serde_json::from_str::<SegmentPayload>(r#"{"dry_run": "true"}"#).is_err());
        assert!(serde_json::from_str::<SegmentPayload>(r#"{"dryrun": true}"#).is_err());
        assert!(serde_json::from_str::<RescorePayload>("{}").is_err());
        assert!(serde_json::from_str::<NoPayload>(r#"{"x": 1}"#).is_err());
    }
}
