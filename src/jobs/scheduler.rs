//! tokio-cron-scheduler drives the clock, but it only enqueues. Every instance fires every
//! entry, so each enqueue carries a dedupe key of (kind, shop, tick): duplicates from other
//! instances, overlapping runs and a late tick all collapse into one row in the database. The
//! tick is the schedule's own latest occurrence at the firing (croner, the parser the scheduler
//! uses), so a firing delayed by load still names the tick it belongs to.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use tokio_cron_scheduler::{Job, JobScheduler};

use super::Schedule;
use crate::state::AppState;
use crate::store::jobs::{NewJob, enqueue};
use crate::store::shops;

/// Parses a six-field cron (seconds first) exactly as tokio-cron-scheduler does.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| format!("bad cron `{expr}`: {e}"))
}

/// The tick a firing belongs to: the schedule's latest occurrence at or before the firing,
/// to the whole second. Any instance firing late (by less than one period) names the same tick.
pub fn tick_of(cron: &Cron, fired_at: DateTime<Utc>) -> DateTime<Utc> {
    let second = fired_at
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap_or(fired_at);
    cron.find_previous_occurrence(&second, true)
        .unwrap_or(second)
}

pub fn dedupe_key(kind: &str, shop_id: Option<i64>, tick: DateTime<Utc>) -> String {
    match shop_id {
        Some(id) => format!("sched:{kind}:{id}:{}", tick.timestamp()),
        None => format!("sched:{kind}:-:{}", tick.timestamp()),
    }
}

/// Enqueues one tick of an entry: for every installed shop, or once.
pub async fn enqueue_tick(
    state: &AppState,
    entry: &Schedule,
    cron: &Cron,
    fired_at: DateTime<Utc>,
) -> Result<usize, sea_orm::DbErr> {
    let tick = tick_of(cron, fired_at);
    let shop_ids = if entry.per_shop {
        shops::installed_ids(&state.db).await?
    } else {
        vec![]
    };
    let mut created = 0;
    if entry.per_shop {
        for id in shop_ids {
            let job =
                NewJob::new(&entry.kind)
                    .shop(id)
                    .dedupe(dedupe_key(&entry.kind, Some(id), tick));
            created += enqueue(&state.db, job).await?.is_some() as usize;
        }
    } else {
        let job = NewJob::new(&entry.kind).dedupe(dedupe_key(&entry.kind, None, tick));
        created += enqueue(&state.db, job).await?.is_some() as usize;
    }
    Ok(created)
}

/// Starts the cron scheduler with the given entries.
pub async fn start(state: AppState, entries: Vec<Schedule>) -> anyhow::Result<JobScheduler> {
    let sched = JobScheduler::new().await?;
    for entry in entries {
        let state = state.clone();
        let cron = entry.cron.clone();
        let parsed = parse_cron(&cron).map_err(|e| anyhow::anyhow!(e))?;
        let job = Job::new_async(cron.as_str(), move |_id, _lock| {
            let state = state.clone();
            let entry = entry.clone();
            let parsed = parsed.clone();
            Box::pin(async move {
                if let Err(e) = enqueue_tick(&state, &entry, &parsed, Utc::now()).await {
                    tracing::warn!(kind = %entry.kind, error = %e, "scheduled enqueue failed");
                }
            })
        })
        .map_err(|e| anyhow::anyhow!("bad cron `{cron}`: {e}"))?;
        sched.add(job).await?;
    }
    sched.start().await?;
    Ok(sched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn late_firings_name_their_own_tick() {
        let every_second = parse_cron("* * * * * *").unwrap();
        let base = Utc.with_ymd_and_hms(2026, 1, 1, 3, 0, 0).unwrap();
        let late = base + TimeDelta::milliseconds(900);
        assert_eq!(tick_of(&every_second, late), base);
        assert_eq!(tick_of(&every_second, base), base);
        let nightly = parse_cron("0 0 3 * * *").unwrap();
        // Fired 40 s late under load: still the 03:00 tick.
        assert_eq!(tick_of(&nightly, base + TimeDelta::seconds(40)), base);
        assert_eq!(
            dedupe_key("segment", Some(7), base),
            dedupe_key(
                "segment",
                Some(7),
                tick_of(&nightly, base + TimeDelta::seconds(3))
            )
        );
        assert_ne!(
            dedupe_key("segment", Some(7), base),
            dedupe_key("segment", Some(8), base)
        );
        assert!(parse_cron("not a cron").is_err());
    }
}
