//! tokio-cron-scheduler drives the clock, but it only enqueues. Every instance fires every
//! entry, so each enqueue carries a dedupe key of (kind, shop, tick): duplicates from other
//! instances, overlapping runs and a late tick all collapse into one row in the database. The
//! tick is the schedule's own latest occurrence at the firing (croner, the parser the scheduler
//! uses), so a firing delayed by load still names the tick it belongs to.
//!
//! A merchant may give their shop its own schedule (a five-field cron in UTC, minute
//! resolution). Such shops are left out of the entry's own firings and served instead by a
//! dispatcher that fires at the top of every minute and enqueues the shops whose cron had an
//! occurrence in the minute just begun, with the same (kind, shop, tick) dedupe key.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use tokio_cron_scheduler::{Job, JobScheduler};

use super::Schedule;
use crate::store::jobs::{NewJob, enqueue};
use crate::store::{Db, shops};

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

/// The shortest gap a shop's own schedule may leave between two runs. A run re-analyses the
/// whole shop (a minute or more at a million customers) while webhooks already re-score the
/// customers they touch, so more often than hourly only queues runs behind each other.
pub const MIN_SHOP_INTERVAL: TimeDelta = TimeDelta::hours(1);

/// Parses a shop's own schedule: five fields (minute hour day-of-month month day-of-week), UTC,
/// no two occurrences closer than `MIN_SHOP_INTERVAL`.
pub fn parse_shop_cron(expr: &str) -> Result<Cron, String> {
    if expr.split_whitespace().count() != 5 {
        return Err(format!(
            "schedule `{expr}` needs five fields: minute hour day-of-month month day-of-week"
        ));
    }
    let cron = parse_cron(&format!("0 {expr}"))
        .map_err(|_| format!("schedule `{expr}` is not a valid cron"))?;
    if let Some(gap) = shortest_gap(&cron) {
        return Err(format!(
            "schedule `{expr}` runs {} minutes apart; at most one run an hour",
            gap.num_minutes()
        ));
    }
    Ok(cron)
}

/// A gap shorter than `MIN_SHOP_INTERVAL` between consecutive occurrences over a leap year
/// and a bit (every day-of-month and weekday combination), if there is one.
fn shortest_gap(cron: &Cron) -> Option<TimeDelta> {
    use chrono::TimeZone;
    let start = Utc.with_ymd_and_hms(2027, 12, 31, 0, 0, 0).single()?;
    let end = start + TimeDelta::days(400);
    let mut last: Option<DateTime<Utc>> = None;
    for at in cron.iter_after(start).take_while(|t| *t < end).take(20_000) {
        if let Some(prev) = last
            && at - prev < MIN_SHOP_INTERVAL
        {
            return Some(at - prev);
        }
        last = Some(at);
    }
    None
}

/// A shop's own cron for an entry, if its settings hold a valid one under the entry's key.
/// An invalid stored value (saving validates, so only a hand-edited row) falls back to the
/// entry's cron, loudly.
fn shop_cron(entry: &Schedule, shop_id: i64, settings: &str) -> Option<Cron> {
    let key = entry.shop_setting?;
    let value: serde_json::Value = serde_json::from_str(settings).ok()?;
    let expr = value.get(key)?.as_str()?.trim();
    if expr.is_empty() {
        return None;
    }
    match parse_shop_cron(expr) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(shop_id, kind = %entry.kind, error = %e, "ignoring the shop's schedule");
            None
        }
    }
}

/// How often the dispatcher of shops' own schedules fires.
const SHOP_DISPATCH_CRON: &str = "0 * * * * *";

pub fn dedupe_key(kind: &str, shop_id: Option<i64>, tick: DateTime<Utc>) -> String {
    match shop_id {
        Some(id) => format!("sched:{kind}:{id}:{}", tick.timestamp()),
        None => format!("sched:{kind}:-:{}", tick.timestamp()),
    }
}

/// Enqueues one tick of an entry: for every installed shop, or once.
pub async fn enqueue_tick(
    db: &Db,
    spread_secs: u32,
    entry: &Schedule,
    cron: &Cron,
    fired_at: DateTime<Utc>,
) -> Result<usize, sea_orm::DbErr> {
    let tick = tick_of(cron, fired_at);
    let mut created = 0;
    if entry.per_shop {
        for (id, settings) in shops::installed_settings(db).await? {
            if shop_cron(entry, id, &settings).is_some() {
                continue;
            }
            let at = tick + spread_offset(id, spread_secs);
            created += enqueue_for_shop(db, entry, id, tick, at).await?;
        }
    } else {
        let job = NewJob::new(&entry.kind).dedupe(dedupe_key(&entry.kind, None, tick));
        created += enqueue(db, job).await?.is_some() as usize;
    }
    Ok(created)
}

/// One firing of the dispatcher: enqueues the entry for every shop whose own schedule had an
/// occurrence in the minute that `fired_at` belongs to.
pub async fn enqueue_shop_schedules(
    db: &Db,
    entry: &Schedule,
    fired_at: DateTime<Utc>,
) -> Result<usize, sea_orm::DbErr> {
    let mut created = 0;
    for (id, settings) in shops::installed_settings(db).await? {
        let Some(cron) = shop_cron(entry, id, &settings) else {
            continue;
        };
        let tick = tick_of(&cron, fired_at);
        if fired_at - tick < TimeDelta::minutes(1) {
            // The merchant chose this minute: no spread.
            created += enqueue_for_shop(db, entry, id, tick, tick).await?;
        }
    }
    Ok(created)
}

/// A shop's fixed place in the spread of one tick's runs: the same every night, and uniform
/// over `0..spread_secs` across shops (a multiplicative hash of the id, so consecutive ids land
/// far apart).
pub fn spread_offset(shop_id: i64, spread_secs: u32) -> TimeDelta {
    if spread_secs == 0 {
        return TimeDelta::zero();
    }
    let h = (shop_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    TimeDelta::seconds(((h >> 32) % u64::from(spread_secs)) as i64)
}

/// Enqueues one tick's job for a shop, due at `at`; the dedupe key names the tick.
async fn enqueue_for_shop(
    db: &Db,
    entry: &Schedule,
    shop_id: i64,
    tick: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<usize, sea_orm::DbErr> {
    let job = NewJob::new(&entry.kind)
        .shop(shop_id)
        .dedupe(dedupe_key(&entry.kind, Some(shop_id), tick))
        .run_at(at);
    Ok(enqueue(db, job).await?.is_some() as usize)
}

/// Firings in flight, and whether the scheduler has stopped. tokio-cron-scheduler's shutdown
/// does not wait for a firing already spawned, so without this a tick could be enqueued after
/// the instance stopped (seen under load, seconds later).
#[derive(Default)]
struct Gate {
    stopped: AtomicBool,
    in_flight: AtomicUsize,
}

/// The running scheduler of an instance.
pub struct Scheduler {
    inner: JobScheduler,
    gate: Arc<Gate>,
}

impl Scheduler {
    /// Stops firing, and waits (up to 10 s) for firings under way to finish their enqueue.
    pub async fn shutdown(mut self) {
        self.gate.stopped.store(true, Ordering::SeqCst);
        let _ = self.inner.shutdown().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.gate.in_flight.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Starts the cron scheduler with the given entries; per-shop runs of one tick are spread over
/// `spread_secs`.
pub async fn start(db: Db, spread_secs: u32, entries: Vec<Schedule>) -> anyhow::Result<Scheduler> {
    let sched = JobScheduler::new().await?;
    let gate = Arc::new(Gate::default());
    for entry in entries {
        let parsed = parse_cron(&entry.cron).map_err(|e| anyhow::anyhow!(e))?;
        let cron = entry.cron.clone();
        sched
            .add(firing(
                &cron,
                gate.clone(),
                db.clone(),
                entry.clone(),
                move |db, entry| {
                    let parsed = parsed.clone();
                    async move { enqueue_tick(&db, spread_secs, &entry, &parsed, Utc::now()).await }
                },
            )?)
            .await?;
        if entry.per_shop && entry.shop_setting.is_some() {
            sched
                .add(firing(
                    SHOP_DISPATCH_CRON,
                    gate.clone(),
                    db.clone(),
                    entry,
                    |db, entry| async move { enqueue_shop_schedules(&db, &entry, Utc::now()).await },
                )?)
                .await?;
        }
    }
    sched.start().await?;
    Ok(Scheduler { inner: sched, gate })
}

/// A scheduler job that runs `enqueue` at every firing of `expr`; a failure is logged (the
/// next firing tries again).
fn firing<F, Fut>(
    expr: &str,
    gate: Arc<Gate>,
    db: Db,
    entry: Schedule,
    enqueue: F,
) -> anyhow::Result<Job>
where
    F: Fn(Db, Schedule) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<usize, sea_orm::DbErr>> + Send + 'static,
{
    Job::new_async(expr, move |_id, _lock| {
        // Counted before the check, so a shutdown either sees this firing or stops it.
        gate.in_flight.fetch_add(1, Ordering::SeqCst);
        let gate = gate.clone();
        let work =
            (!gate.stopped.load(Ordering::SeqCst)).then(|| enqueue(db.clone(), entry.clone()));
        let kind = entry.kind.clone();
        Box::pin(async move {
            if let Some(work) = work
                && let Err(e) = work.await
            {
                tracing::warn!(kind = %kind, error = %e, "scheduled enqueue failed");
            }
            gate.in_flight.fetch_sub(1, Ordering::SeqCst);
        })
    })
    .map_err(|e| anyhow::anyhow!("bad cron `{expr}`: {e}"))
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
        let own = parse_shop_cron("30 4 * * 1").unwrap();
        let monday = Utc.with_ymd_and_hms(2026, 11, 23, 4, 30, 0).unwrap();
        assert_eq!(tick_of(&own, monday + TimeDelta::seconds(2)), monday);
        assert!(
            parse_shop_cron("0 30 4 * * 1").is_err(),
            "six fields are refused"
        );
        assert!(parse_shop_cron("61 4 * * *").is_err());
        // At most one run an hour, however the fields combine.
        assert!(parse_shop_cron("0 * * * *").is_ok(), "hourly");
        assert!(parse_shop_cron("0 4,16 * * *").is_ok());
        for too_often in [
            "* * * * *",
            "*/15 * * * *",
            "0,30 4 * * *",
            "0,45 4 * * 1",
            "*/20 4 15 * *", // only on the 15th of a month
        ] {
            let e = parse_shop_cron(too_often).unwrap_err();
            assert!(e.contains("at most one run an hour"), "{too_often}: {e}");
        }
    }

    #[test]
    fn a_thousand_shops_spread_evenly_over_the_window() {
        let spread = 3600;
        let mut per_ten_minutes = [0usize; 6];
        for id in 1..=1000 {
            let off = spread_offset(id, spread);
            assert_eq!(off, spread_offset(id, spread), "stable per shop");
            assert!(off >= TimeDelta::zero() && off < TimeDelta::seconds(3600));
            per_ten_minutes[(off.num_seconds() / 600) as usize] += 1;
        }
        // Uniform would be 166.7 each; all at one tick would be 1,000 in the first.
        assert!(
            per_ten_minutes.iter().all(|n| (120..=215).contains(n)),
            "{per_ten_minutes:?}"
        );
        assert_eq!(spread_offset(7, 0), TimeDelta::zero());
    }
}
