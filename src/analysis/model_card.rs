//! The model report card and the customers' CLV ranges, computed beside every analysis: the
//! backtest of the same orders (`core::analytics::backtest`) and each customer's P10-P90 range
//! of predicted CLV (`core::analytics::uncertainty`). One card is stored per segment run
//! (`model_cards`); the ranges go with the customers' scores (`results::save_scores`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use crate::core::analytics::backtest::{
    Backtest, BacktestOptions, CARD_SAMPLE_CUSTOMERS, backtest_after,
};
use crate::core::analytics::uncertainty::{ClvRange, UncertaintySettings, analysis_clv_ranges};
use crate::core::analytics::{AnalysisError, AnalysisOptions, ShopAnalysis, ShopInput};
use crate::store::stmt;

/// Parameter draws per CLV range. Each draw prices every customer once more, so the ranges
/// cost about this many scorings. Measured at 100,000 customers (`benches/segment.rs`,
/// SQLite, 2 cores): 20 draws take 0.7-0.9 s, about 13 % of the segment job's 7 s (the core's
/// default 200 draws would take 7-10 s, the whole job again); the backtest itself takes
/// 0.1-0.15 s. The percentiles of 20 draws (between the 2nd/3rd and 18th/19th values) show
/// the width of the range, not its ends to the cent.
pub const CLV_RANGE_DRAWS: usize = 20;

/// What the backtest and the ranges found for one analysis.
pub struct Assessment {
    pub backtest: Backtest,
    /// Per customer index, as `ShopAnalysis::customers`; empty when the ranges could not be
    /// computed (`ranges_unavailable` says why).
    pub ranges: Vec<Option<ClvRange>>,
    pub ranges_unavailable: Option<String>,
    pub backtest_time: Duration,
    pub ranges_time: Duration,
}

impl Assessment {
    pub fn range_of(&self, customer: usize) -> Option<ClvRange> {
        self.ranges.get(customer).copied().flatten()
    }
}

/// The card (default holdout rule, at the analysis' `now`) and the ranges of an analysis of
/// `input`. Runs on the caller's thread (the analysis' rayon task); both parts are parallel.
pub fn assess(
    input: &ShopInput,
    analysis: &ShopAnalysis,
    opts: &AnalysisOptions,
) -> Result<Assessment, AnalysisError> {
    let started = Instant::now();
    let bt = BacktestOptions {
        // A sample of the largest shops: at 1,000,000 customers the whole backtest added
        // 27-43 % to the analysis (`cargo bench -p lifecycle-core`).
        max_customers: Some(CARD_SAMPLE_CUSTOMERS),
        ..BacktestOptions::default()
    };
    let mut backtest = backtest_after(input, analysis, None, opts, &bt)?;
    // The app keeps the card only: the per-customer rows (about 100 bytes a customer, for the
    // CLI's holdout file) would otherwise stay in memory with the analysis until the push.
    backtest.rows = Vec::new();
    let backtest_time = started.elapsed();
    let started = Instant::now();
    let settings = UncertaintySettings {
        draws: CLV_RANGE_DRAWS,
        ..UncertaintySettings::default()
    };
    // A shop on the heuristics has no fitted parameters to be uncertain about.
    let (ranges, ranges_unavailable) = match analysis_clv_ranges(analysis, &settings) {
        Ok(r) => (r, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    Ok(Assessment {
        backtest,
        ranges,
        ranges_unavailable,
        backtest_time,
        ranges_time: started.elapsed(),
    })
}

/// The verdict's key (`good_enough_to_target`, `not_better_than_baseline`, `too_little_data`).
pub fn verdict_key(b: &Backtest) -> String {
    serde_json::to_value(&b.verdict)
        .ok()
        .and_then(|v| {
            v.get("verdict")
                .and_then(|k| k.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Stores a run's card.
pub async fn save_card(
    db: &impl ConnectionTrait,
    shop_id: i64,
    run_id: i64,
    backtest: &Backtest,
    currency: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let card = serde_json::to_string(backtest)
        .map_err(|e| DbErr::Custom(format!("the model card does not serialise: {e}")))?;
    db.execute_raw(stmt(
        db.get_database_backend(),
        "INSERT INTO model_cards (shop_id, run_id, verdict, card, currency, created_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
        vec![
            shop_id.into(),
            run_id.into(),
            verdict_key(backtest).into(),
            card.into(),
            currency.into(),
            now.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// A stored card.
#[derive(Debug, Clone)]
pub struct StoredCard {
    pub run_id: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub backtest: Backtest,
}

/// The shop's latest card; `None` before the first run.
pub async fn latest_card(
    db: &impl ConnectionTrait,
    shop_id: i64,
) -> Result<Option<StoredCard>, DbErr> {
    let Some(r) = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "SELECT run_id, card, currency, created_at FROM model_cards WHERE shop_id = ? \
             ORDER BY created_at DESC, id DESC LIMIT 1",
            vec![shop_id.into()],
        ))
        .await?
    else {
        return Ok(None);
    };
    let card: String = r.try_get("", "card")?;
    Ok(Some(StoredCard {
        run_id: r.try_get("", "run_id")?,
        currency: r.try_get("", "currency")?,
        created_at: r.try_get("", "created_at")?,
        backtest: serde_json::from_str(&card)
            .map_err(|e| DbErr::Custom(format!("model_cards.card is not readable: {e}")))?,
    }))
}
