//! The segment run: analyse → segments → plan → push, for one shop. Run by the nightly
//! schedule, after a sync that changed data, and in the foreground by `lifecycle segment`.
//! In dry-run mode (the shop's `dry_run` setting, or asked for) the plan is recorded in the
//! audit table and the run's summary, and nothing is sent.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::codes::{self, CodeStats};
use super::store::{self, Audit};
use super::tags::{self, TagStats, TagWork};
use super::{Stop, WritebackError};
use crate::analysis::results::{self, ScoreRow};
use crate::analysis::{self, Analysed};
use crate::core::loyalty::{CodeSeed, OfferPlan, OfferPlanner};
use crate::core::segments::SegmentCatalog;
use crate::queue::{JobError, JobResult};
use crate::settings::LoyaltySettings;
use crate::state::AppState;
use crate::store::entities::job;
use crate::store::leases::{self, Held};
use crate::store::{self as db_store, shops};

/// What a run did, for the CLI and the run's record.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub shop: String,
    pub run_id: Option<i64>,
    pub dry_run: bool,
    pub customers: usize,
    pub buyers: u64,
    /// `model` (BG/NBD + Gamma-Gamma) or `heuristic` for small shops.
    pub method: String,
    /// The model report card's verdict (`good_enough_to_target`, `not_better_than_baseline`,
    /// `too_little_data`).
    pub model_card: String,
    /// Members per segment key.
    pub segments: BTreeMap<String, usize>,
    /// Customers whose tags differ from what was last pushed.
    pub tag_changes: usize,
    pub tags: TagStats,
    pub codes_planned: usize,
    /// Customers held out of an offer this run (its control group): no code.
    pub held_out: usize,
    pub codes: CodeStats,
    /// Set when the run did not push everything.
    pub stopped: Option<Stop>,
    /// Where the run's time went, in milliseconds.
    pub timings: Timings,
}

/// Wall time of each phase of a run, in milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Timings {
    pub load_ms: u64,
    pub analyse_ms: u64,
    /// Parts of `analyse_ms`: the backtest and the customers' CLV ranges.
    pub backtest_ms: u64,
    pub clv_ranges_ms: u64,
    pub store_ms: u64,
    pub plan_ms: u64,
    pub push_ms: u64,
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.dry_run {
            " (dry run: nothing sent)"
        } else {
            ""
        };
        writeln!(f, "shop {}{mode}", self.shop)?;
        writeln!(
            f,
            "  customers: {} ({} with orders), predictions by {}; model card: {}",
            self.customers, self.buyers, self.method, self.model_card
        )?;
        let top: Vec<String> = self
            .segments
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        writeln!(f, "  segments: {}", top.join(", "))?;
        writeln!(
            f,
            "  tags: {} customer(s) to change; {} confirmed, {} refused, {} write(s) in {} request(s)",
            self.tag_changes,
            self.tags.customers,
            self.tags.rejected,
            self.tags.writes,
            self.tags.requests
        )?;
        if let Some(why) = &self.tags.plan_limit {
            writeln!(f, "  labels: not available on the shop's plan ({why})")?;
        }
        write!(
            f,
            "  codes: {} planned, {} held out as control; {} created, {} already existed, {} confirmed with metafields, {} refused",
            self.codes_planned,
            self.held_out,
            self.codes.created,
            self.codes.taken,
            self.codes.confirmed,
            self.codes.rejected
        )?;
        let t = &self.timings;
        write!(
            f,
            "\n  time: load {} ms, analyse {} ms (backtest {} ms, CLV ranges {} ms), store {} ms, plan {} ms, push {} ms",
            t.load_ms,
            t.analyse_ms,
            t.backtest_ms,
            t.clv_ranges_ms,
            t.store_ms,
            t.plan_ms,
            t.push_ms
        )?;
        if let Some(stop) = self.stopped {
            write!(f, "\n  stopped early: {stop}")?;
        }
        Ok(())
    }
}

/// `lifecycle segment --shop KEY [--platform NAME] [--dry-run]`.
pub async fn run_segment(
    state: &AppState,
    platform: &str,
    shop_domain: &str,
    dry_run: bool,
) -> Result<Summary, WritebackError> {
    let shop = shops::find(&state.db, platform, shop_domain)
        .await?
        .ok_or_else(|| WritebackError::UnknownShop(shop_domain.to_string()))?;
    run_for_shop(state, shop.id, "manual", dry_run).await
}

/// The job handler (kind `segment`); payload `{"dry_run": true}` forces a dry run.
pub async fn job(
    state: AppState,
    job: job::Model,
    payload: crate::triggers::SegmentPayload,
) -> JobResult {
    let Some(shop_id) = job.shop_id else {
        return Err(JobError::permanent("segment job without a shop"));
    };
    match run_for_shop(&state, shop_id, "job", payload.dry_run).await {
        Ok(summary) => {
            tracing::info!(shop_id, summary = %summary.to_string().replace('\n', ";"), "segment run");
            Ok(())
        }
        // The run under way may have read the shop before this job's trigger: run again after
        // it, without spending this job's attempts on the wait.
        Err(WritebackError::Busy) => {
            crate::triggers::segment_later(&state.db, shop_id, Utc::now()).await?;
            Ok(())
        }
        Err(e) => Err(e.into_job_error(&state).await),
    }
}

/// One run for one shop. `force_dry_run` adds to the shop's own setting.
pub async fn run_for_shop(
    state: &AppState,
    shop_id: i64,
    trigger: &str,
    force_dry_run: bool,
) -> Result<Summary, WritebackError> {
    let shop = shops::get(&state.db, shop_id)
        .await?
        .ok_or_else(|| WritebackError::UnknownShop(shop_id.to_string()))?;
    let mut summary = Summary {
        shop: shop.domain.clone(),
        ..Default::default()
    };
    if shop.status != shops::INSTALLED {
        summary.stopped = Some(Stop::Uninstalled);
        return Ok(summary);
    }
    let settings = LoyaltySettings::from_shop_json(&shop.settings)?;
    let catalog = settings.validate()?;
    let dry_run = force_dry_run || settings.dry_run;
    summary.dry_run = dry_run;
    if dry_run {
        return recorded_run(state, &shop, trigger, &settings, &catalog, true, summary).await;
    }
    // A run that sends writes holds the shop's lease: runs of one shop exclude each other
    // across workers and instances, and re-scoring waits for a live one only.
    let holder = format!("{}:{}", state.instance_id, uuid::Uuid::new_v4().simple());
    let held = leases::with_lease(
        &state.db,
        shop_id,
        RUN_LEASE,
        &holder,
        RUN_LEASE_TTL,
        async {
            // Holding the lease, no other run of the shop is alive: a `running` row is one whose
            // process died or whose job lost its lease.
            store::interrupt_runs(&state.db, shop_id).await?;
            recorded_run(state, &shop, trigger, &settings, &catalog, false, summary).await
        },
    )
    .await?;
    match held {
        Held::Done(outcome) => outcome,
        Held::Busy => Err(WritebackError::Busy),
        Held::Lost => Err(WritebackError::LeaseLost),
    }
}

/// The shop lease that a run sending writes holds.
pub const RUN_LEASE: &str = "segment";
/// How long a run's lease outlives its last renewal (renewed every third of it).
const RUN_LEASE_TTL: chrono::Duration = chrono::Duration::seconds(60);

/// A run recorded in `segment_runs` from its start to its outcome.
async fn recorded_run(
    state: &AppState,
    shop: &crate::store::entities::shop::Model,
    trigger: &str,
    settings: &LoyaltySettings,
    catalog: &SegmentCatalog,
    dry_run: bool,
    mut summary: Summary,
) -> Result<Summary, WritebackError> {
    let shop_id = shop.id;
    let now = Utc::now();
    let run_id = store::start_run(&state.db, shop_id, trigger, dry_run, now).await?;
    summary.run_id = Some(run_id);
    let outcome = run_inner(
        state,
        &shop.domain,
        &shop.platform,
        shop_id,
        run_id,
        settings,
        catalog,
        dry_run,
        now,
        &mut summary,
    )
    .await;
    let (status, error) = match &outcome {
        Ok(()) if summary.stopped.is_some() => ("stopped", None),
        Ok(()) => ("done", None),
        Err(e) => ("failed", Some(e.to_string())),
    };
    let record = serde_json::to_value(&summary).unwrap_or(json!({}));
    store::finish_run(
        &state.db,
        shop_id,
        run_id,
        status,
        &record,
        error.as_deref(),
    )
    .await?;
    outcome.map(|()| summary)
}

#[allow(clippy::too_many_arguments)]
async fn run_inner(
    state: &AppState,
    domain: &str,
    platform: &str,
    shop_id: i64,
    run_id: i64,
    settings: &LoyaltySettings,
    catalog: &SegmentCatalog,
    dry_run: bool,
    now: DateTime<Utc>,
    summary: &mut Summary,
) -> Result<(), WritebackError> {
    // Codes an earlier attempt left half-done come first, so the history below includes them.
    if !dry_run
        && let Some(stop) =
            codes::finish_unfinished(state, shop_id, Some(run_id), &mut summary.codes).await?
    {
        summary.stopped = Some(stop);
        return Ok(());
    }

    let a = analysis::analyse(&state.db, shop_id, catalog, now).await?;
    summary.timings.load_ms = ms(a.load_time);
    summary.timings.analyse_ms = ms(a.compute_time);
    summary.timings.backtest_ms = ms(a.assessment.backtest_time);
    summary.timings.clv_ranges_ms = ms(a.assessment.ranges_time);
    summary.model_card = analysis::model_card::verdict_key(&a.assessment.backtest);
    summary.customers = a.facts.len();
    summary.buyers = a.analysis.metrics.customers_with_orders;
    summary.method = if a.analysis.model.fallbacks.is_empty() {
        "model"
    } else {
        "heuristic"
    }
    .into();
    for id in catalog.ids() {
        summary.segments.insert(catalog.key(id).to_string(), 0);
    }
    for m in &a.memberships {
        for id in m.ids() {
            *summary
                .segments
                .entry(catalog.key(id).to_string())
                .or_default() += 1;
        }
    }
    let phase = std::time::Instant::now();
    store_results(state, shop_id, run_id, catalog, &a, now).await?;
    summary.timings.store_ms = ms(phase.elapsed());
    let phase = std::time::Instant::now();

    let planner = super::tag_planner(state, platform, catalog, settings);
    let pushed = store::load_pushed(&state.db, shop_id, None).await?;
    let works: Vec<TagWork> = a
        .facts
        .iter()
        .zip(&a.memberships)
        .zip(&a.data.customers)
        .filter_map(|((f, m), row)| {
            tags::plan_customer(
                &planner,
                &f.customer_id,
                &row.tags,
                pushed.get(&f.customer_id),
                m,
            )
        })
        .collect();
    summary.tag_changes = works.len();

    let OfferPlan {
        codes: planned,
        control,
    } = plan_codes(state, domain, shop_id, settings, catalog, &a, now).await?;
    summary.codes_planned = planned.len();
    summary.held_out = control.len();
    summary.timings.plan_ms = ms(phase.elapsed());
    // The push can take minutes at the platform's rate limit; the shop's analysis (and its
    // slot, see `analysis::SLOTS`) is not needed for it.
    drop(pushed);
    drop(a);
    let phase = std::time::Instant::now();

    if dry_run {
        let mut audit: Vec<Audit> = works
            .iter()
            .flat_map(|w| tags::audit_rows(w, "planned"))
            .collect();
        audit.extend(planned.iter().map(codes::planned_audit));
        audit.extend(control.iter().map(|c| codes::control_audit(c, "planned")));
        store::audit(&state.db, shop_id, Some(run_id), true, &audit, now).await?;
        // Recording the plan is what a dry run does instead of pushing.
        summary.timings.push_ms = ms(phase.elapsed());
        return Ok(());
    }
    // Kept before any code is sent, so the groups are recorded even if the push stops early.
    codes::hold_out(state, shop_id, Some(run_id), &control, now).await?;
    let (tag_stats, stop) = super::labels::push(state, shop_id, Some(run_id), &works, now).await?;
    summary.tags = tag_stats;
    if stop.is_some() {
        summary.stopped = stop;
        summary.timings.push_ms = ms(phase.elapsed());
        return Ok(());
    }
    summary.stopped = codes::push(
        state,
        shop_id,
        Some(run_id),
        &planned,
        &mut summary.codes,
        now,
    )
    .await?;
    summary.timings.push_ms = ms(phase.elapsed());
    Ok(())
}

async fn store_results(
    state: &AppState,
    shop_id: i64,
    run_id: i64,
    catalog: &SegmentCatalog,
    a: &Analysed,
    now: DateTime<Utc>,
) -> Result<(), WritebackError> {
    let rows: Vec<ScoreRow<'_>> = a
        .facts
        .iter()
        .zip(&a.memberships)
        .zip(&a.analysis.customers)
        .map(|((facts, membership), c)| ScoreRow {
            facts,
            rfm: (c.score.rfm.r, c.score.rfm.f, c.score.rfm.m),
            has_prediction: c.score.prediction.is_some(),
            membership,
            clv_range: a.assessment.range_of(c.features.customer as usize),
        })
        .collect();
    // Bounded transactions: one over a large shop's every score would hold SQLite's write lock
    // (and every webhook waiting to be stored) for the whole write. Until the last one commits,
    // a reader may see some scores of this run and some of the last; the shop's model and
    // context, which re-scoring reads, change only with the last.
    for chunk in rows.chunks(SCORES_PER_TX) {
        let tx = db_store::write_tx(&state.db).await?;
        results::save_scores(&tx, shop_id, catalog, &a.data.currency, chunk, now).await?;
        tx.commit().await?;
    }
    let tx = db_store::write_tx(&state.db).await?;
    results::prune_scores(&tx, shop_id, now).await?;
    results::save_analysis(&tx, shop_id, &a.analysis, &a.context, &a.data.currency).await?;
    analysis::model_card::save_card(
        &tx,
        shop_id,
        run_id,
        &a.assessment.backtest,
        &a.data.currency,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Customers' scores written per transaction.
const SCORES_PER_TX: usize = 5_000;

async fn plan_codes(
    state: &AppState,
    domain: &str,
    shop_id: i64,
    settings: &LoyaltySettings,
    catalog: &SegmentCatalog,
    a: &Analysed,
    now: DateTime<Utc>,
) -> Result<OfferPlan, WritebackError> {
    let offers = OfferPlanner::new(&settings.offers, catalog)
        .map_err(|e| crate::settings::SettingsError(e.to_string()))?;
    let history = store::issued_codes(&state.db, shop_id, &a.data.used_codes).await?;
    let held_out = store::control_assignments(&state.db, shop_id).await?;
    let secret = store::code_secret(&state.db, &state.cipher, shop_id, domain).await?;
    let seed = CodeSeed {
        shop: domain,
        secret: secret.as_bytes(),
    };
    // One live offer per customer: the `lifecycle.offer_code` metafield holds a single code,
    // so a second offer would hide the first (and a run with no change must send nothing).
    // A control customer is held out of other offers for as long, or the groups would differ
    // by more than the one offer.
    let holding: HashSet<&str> = history
        .iter()
        .filter(|c| !c.redeemed && c.ends_at > now)
        .map(|c| c.customer_id.as_str())
        .chain(
            held_out
                .iter()
                .filter(|c| c.ends_at > now)
                .map(|c| c.customer_id.as_str()),
        )
        .collect();
    let candidates = a
        .facts
        .iter()
        .zip(&a.memberships)
        .filter(|(f, _)| !holding.contains(f.customer_id.as_str()));
    Ok(offers.plan_with_control(candidates, &history, &held_out, catalog, seed, now))
}
