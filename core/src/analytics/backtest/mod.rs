//! The model report card: fit BG/NBD and Gamma-Gamma on the history up to a calibration end,
//! predict every customer's purchases and spend over the holdout that follows, and compare
//! with what happened.
//!
//! **Split** (`split`): lifetimes' `calibration_and_holdout_data` convention at day resolution.
//! **Holdout length**: `holdout_days` if given, else 26 weeks (182 days), shortened for young
//! shops to a quarter of the history (first counted order to `end`), so three quarters remain
//! to fit on.
//!
//! **Minimum data** (no card below it; the verdict names the shortfall):
//! - a holdout of at least 8 weeks (56 days): shorter windows hold too few repeat purchases
//!   in a typical shop to tell a good forecast from luck; with the quarter rule a shop needs
//!   32 weeks of history;
//! - at least 300 customers with orders up to the calibration end (the analysis' own minimum
//!   for the BG/NBD, and 30 per decile);
//! - at least 50 of them with a repeat purchase in the calibration period (the spend model
//!   and the purchase rates are learnt from them only);
//! - both fits converged to usable parameters (no fallback in `fit_model`).
//!
//! When the card is missing, the segments go on with whatever the analysis itself used (the
//! model when its own minimums hold, its heuristics otherwise) and RFM groups; the card only
//! says that the predictions are unproven for this shop.
//!
//! **Verdict** (`verdict`): `GoodEnoughToTarget` when the model's forecasts beat the naive
//! baseline (each customer keeps their calibration rate x / T over the holdout) on mean
//! absolute error, and its top 20 % by predicted value brought at least twice their share of
//! the holdout revenue (40 %, a lift of 2); otherwise `NotBetterThanBaseline`. Rank figures
//! (Spearman, the baseline's own top shares) are reported but not part of the rule: the mass
//! of one-time buyers ties in both rankings and dominates Spearman, and a simple rate ranks the
//! very top about as well as the model (CDNOW: Spearman 0.449 vs 0.490, top-20 % revenue share
//! 66.3 % vs 66.0 %), while what the model adds is a forecast of how much and of who
//! went quiet (CDNOW: MAE 0.785 vs 1.024, bias −0.10 vs +0.44 purchases per customer).
//!
//! **Sample** (`BacktestOptions::max_customers`, off by default): above that many customers
//! with orders by the calibration end, the card is fitted and scored on a fixed uniform sample
//! of about that many (a keyed hash of the customer's index, so the same customers on every
//! run), and records the share it covers. Its cost then stops growing with the shop.
//!
//! **Predicted CLV** for the lift figures is the predicted holdout revenue (expected purchases
//! over the holdout times expected spend): the model's value forecast over exactly the window
//! that can be checked.

pub mod card;
pub mod split;

use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bgnbd::BgNbdParams;
use super::compress::Compressed;
use super::features::day_number;
use super::gamma_gamma::{self, GammaGammaParams, SpendObservation};
use super::input::{ShopInput, TimeUnit};
use super::model::{Fallback, ModelFits, fit_purchase, fit_spend};
use super::parallel::{KeyMap, map_blocks};
use super::{AnalysisError, AnalysisOptions, ShopAnalysis};
pub use card::{Accuracy, DecileRow, ReliabilityBin};
pub use split::{
    CalHoldoutRow, CalibrationHoldout, calibration_and_holdout, calibration_and_holdout_after,
    calibration_and_holdout_sample,
};

/// A cap on the customers a card is computed on, for a caller that backtests every analysis
/// (`BacktestOptions::max_customers`; the app uses it): the card's figures are means, shares
/// and deciles, whose sampling error at 50,000 customers is about half a percent or less.
pub const CARD_SAMPLE_CUSTOMERS: usize = 50_000;

/// Settings of the backtest; `Default` gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BacktestOptions {
    /// Holdout length in days; None: `default_holdout_days`, or a quarter of a shorter history.
    pub holdout_days: Option<u32>,
    pub default_holdout_days: u32,
    pub min_holdout_days: u32,
    pub min_customers: usize,
    pub min_repeat_customers: usize,
    /// Above this many customers with orders by the calibration end, the card is fitted and
    /// scored on a uniform sample of about this many (`split::in_sample`), so its cost stops
    /// growing with the shop; None (the default, and `lifecycle analyze`): every customer.
    #[serde(default)]
    pub max_customers: Option<usize>,
}

impl Default for BacktestOptions {
    fn default() -> Self {
        BacktestOptions {
            holdout_days: None,
            default_holdout_days: 182,
            min_holdout_days: 56,
            min_customers: 300,
            min_repeat_customers: 50,
            max_customers: None,
        }
    }
}

/// What is missing for a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shortfall {
    NoOrders,
    ShortHoldout {
        history_days: i64,
        holdout_days: i64,
        need_holdout_days: u32,
    },
    TooFewCustomers {
        have: usize,
        need: usize,
    },
    TooFewRepeatCustomers {
        have: usize,
        need: usize,
    },
    /// A fit was rejected (see the analysis' fallback rules).
    ModelFallback {
        fallbacks: Vec<Fallback>,
    },
}

/// The plain verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    GoodEnoughToTarget,
    NotBetterThanBaseline,
    TooLittleData { reason: Shortfall },
}

/// The figures of a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportCard {
    pub customers: usize,
    pub repeat_customers_cal: usize,
    /// Per decile of predicted purchases.
    pub deciles: Vec<DecileRow>,
    /// Holdout purchases per customer: the model, and the baseline x / T · holdout.
    pub model: Accuracy,
    pub baseline: Accuracy,
    /// P(alive) at the calibration end against "bought again in the holdout".
    pub p_alive_reliability: Vec<ReliabilityBin>,
    pub brier: Option<f64>,
    pub predicted_revenue: f64,
    pub actual_revenue: f64,
    /// Share of the holdout revenue that the top 10 % / 20 % by predicted CLV brought.
    pub top_10_revenue_share: Option<f64>,
    pub top_20_revenue_share: Option<f64>,
    /// The same for the baseline's ranking (its purchases times the customer's own mean
    /// repeat-purchase value).
    pub baseline_top_10_revenue_share: Option<f64>,
    pub baseline_top_20_revenue_share: Option<f64>,
}

/// One customer's forecasts for the holdout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HoldoutPrediction {
    pub predicted_purchases: f64,
    pub baseline_purchases: f64,
    pub baseline_revenue: f64,
    pub p_alive: f64,
    pub expected_spend: f64,
    pub predicted_revenue: f64,
}

/// The customers a sampled card was computed on (`BacktestOptions::max_customers`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The share of the customers in the sample.
    pub share: f64,
    /// The customers with orders by the calibration end, sampled or not.
    pub of_customers: usize,
}

/// The share of `customers` that `bt` computes the card on.
fn sample_share(bt: &BacktestOptions, customers: usize) -> f64 {
    match bt.max_customers {
        Some(max) if customers > max => max as f64 / customers as f64,
        _ => 1.0,
    }
}

/// The result of a backtest; serialised as the summary's `"backtest"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    pub calibration_end: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub time_unit: TimeUnit,
    /// Holdout length in the time unit.
    pub duration_holdout: f64,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The calibration fits (when both were accepted).
    pub bgnbd: Option<BgNbdParams>,
    pub gamma_gamma: Option<GammaGammaParams>,
    #[serde(flatten)]
    pub card: Option<ReportCard>,
    /// Set when the card is of a sample of the customers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<Sample>,
    /// Per customer (the split's rows and their forecasts), for the holdout CSV; not in JSON.
    #[serde(skip)]
    pub rows: Vec<(CalHoldoutRow, HoldoutPrediction)>,
}

/// The calibration end the options give for a history ending at `end`, or the shortfall.
pub fn calibration_end_for(
    input: &ShopInput,
    end: DateTime<Utc>,
    bt: &BacktestOptions,
) -> Result<DateTime<Utc>, Shortfall> {
    let first = input
        .orders
        .iter()
        .filter(|o| o.at <= end && o.counts())
        .map(|o| o.at)
        .min();
    holdout_rule(first, end, bt)
}

/// The holdout rule from the first counted order up to `end`.
fn holdout_rule(
    first: Option<DateTime<Utc>>,
    end: DateTime<Utc>,
    bt: &BacktestOptions,
) -> Result<DateTime<Utc>, Shortfall> {
    let first = first.ok_or(Shortfall::NoOrders)?;
    let history_days = day_number(end) - day_number(first);
    let holdout_days = match bt.holdout_days {
        Some(d) => i64::from(d),
        None => i64::from(bt.default_holdout_days).min(history_days / 4),
    };
    if holdout_days < i64::from(bt.min_holdout_days) {
        return Err(Shortfall::ShortHoldout {
            history_days,
            holdout_days,
            need_holdout_days: bt.min_holdout_days,
        });
    }
    Ok(end - Duration::days(holdout_days))
}

/// Backtests a shop's orders up to `end`. `calibration_end` overrides the holdout rule.
pub fn backtest(
    input: &ShopInput,
    end: DateTime<Utc>,
    calibration_end: Option<DateTime<Utc>>,
    opts: &AnalysisOptions,
    bt: &BacktestOptions,
) -> Result<Backtest, AnalysisError> {
    opts.validate()?;
    input.validate()?;
    let calibration_end = match calibration_end {
        Some(c) if c >= end => {
            return Err(AnalysisError::InvalidOption {
                name: "calibration_end",
                reason: format!("{c} is not before the end {end}"),
            });
        }
        Some(c) => c,
        None => match calibration_end_for(input, end, bt) {
            Ok(c) => c,
            Err(reason) => return Ok(without_card(&empty_split(end, opts.time_unit), reason)),
        },
    };
    let mut split = calibration_and_holdout(input, calibration_end, end, opts.time_unit);
    let of_customers = split.rows.len();
    let share = sample_share(bt, of_customers);
    if share < 1.0 {
        split.rows.retain(|r| split::in_sample(r.customer, share));
    }
    let out = backtest_split(&split, opts, bt)?;
    Ok(sampled(out, share, of_customers))
}

fn sampled(mut out: Backtest, share: f64, of_customers: usize) -> Backtest {
    if share < 1.0 {
        out.sample = Some(Sample {
            share,
            of_customers,
        });
    }
    out
}

/// `backtest` at the end of an analysis of the same input (`analysis.now`), reusing what the
/// analysis found:
/// - the first counted order (the customers' features) for the holdout rule;
/// - the customers' features at the end for the split (`calibration_and_holdout_after`: only
///   the customers who bought both before and in the holdout have their orders walked), with
///   the same rows as `calibration_and_holdout`;
/// - the analysis' fitted parameters as the start of the calibration fits (the optimum on
///   three quarters of the history is near the one on all of it), which reach the same
///   optimum to the optimiser's tolerance in fewer steps.
///
/// The card is the same as `backtest(input, analysis.now, ...)` gives, up to that tolerance.
/// `input` must be the one `analyze_shop` made `analysis` from, which validated it: when the
/// split starts from the analysis' features, the input is not validated again.
pub fn backtest_after(
    input: &ShopInput,
    analysis: &ShopAnalysis,
    calibration_end: Option<DateTime<Utc>>,
    opts: &AnalysisOptions,
    bt: &BacktestOptions,
) -> Result<Backtest, AnalysisError> {
    let end = analysis.now;
    if calibration_end.is_some() {
        return backtest(input, end, calibration_end, opts, bt);
    }
    opts.validate()?;
    let same_unit = analysis.model.time_unit == opts.time_unit;
    let from_analysis = same_unit && analysis.customers.len() == input.customers as usize;
    // `analyze_shop` validated this very input (sorted, ids in range, amounts finite), which
    // is all the split from its features relies on; checking it again is a pass over every
    // order, about a tenth of the backtest's work.
    if !from_analysis {
        input.validate()?;
    }
    let first = analysis
        .customers
        .par_iter()
        .filter_map(|c| c.features.first_order_at)
        .min();
    match holdout_rule(first, end, bt) {
        Ok(c) => {
            let of_customers = analysis
                .customers
                .par_iter()
                .filter(|f| f.features.first_order_at.is_some_and(|at| at <= c))
                .count();
            let share = sample_share(bt, of_customers);
            let split = if from_analysis {
                let at_end = &analysis.customers;
                calibration_and_holdout_sample(input, at_end, share, c, end, opts.time_unit)
            } else {
                let mut split = calibration_and_holdout(input, c, end, opts.time_unit);
                split.rows.retain(|r| split::in_sample(r.customer, share));
                split
            };
            let bg = analysis.model.bgnbd.as_ref().filter(|f| f.converged);
            let gg = analysis.model.gamma_gamma.as_ref().filter(|f| f.converged);
            let warm = match (bg, gg) {
                (Some(bg), Some(gg)) if same_unit => Some((&bg.params, &gg.params)),
                _ => None,
            };
            let out = backtest_split_from(&split, opts, bt, warm)?;
            Ok(sampled(out, share, of_customers))
        }
        Err(reason) => Ok(without_card(&empty_split(end, opts.time_unit), reason)),
    }
}

fn empty_split(end: DateTime<Utc>, time_unit: TimeUnit) -> CalibrationHoldout {
    CalibrationHoldout {
        calibration_end: end,
        end,
        time_unit,
        duration_holdout: 0.0,
        rows: Vec::new(),
        features: Vec::new(),
    }
}

fn without_card(split: &CalibrationHoldout, reason: Shortfall) -> Backtest {
    Backtest {
        calibration_end: split.calibration_end,
        end: split.end,
        time_unit: split.time_unit,
        duration_holdout: split.duration_holdout,
        verdict: Verdict::TooLittleData { reason },
        bgnbd: None,
        gamma_gamma: None,
        card: None,
        sample: None,
        rows: Vec::new(),
    }
}

/// Fits on the calibration part of a split (with the analysis' own `fit_model`) and scores
/// the holdout.
pub fn backtest_split(
    split: &CalibrationHoldout,
    opts: &AnalysisOptions,
    bt: &BacktestOptions,
) -> Result<Backtest, AnalysisError> {
    backtest_split_from(split, opts, bt, None)
}

/// `backtest_split` with the fits started from `warm` (see `fit_models`). The fit reads the
/// split's rows (the customers with orders up to the calibration end, in customer order), which
/// hold exactly what `fit_model` reads of their features.
fn backtest_split_from(
    split: &CalibrationHoldout,
    opts: &AnalysisOptions,
    bt: &BacktestOptions,
    warm: Option<(&BgNbdParams, &GammaGammaParams)>,
) -> Result<Backtest, AnalysisError> {
    opts.validate()?;
    let customers = split.rows.len();
    let repeaters = split.rows.iter().filter(|r| r.frequency_cal > 0).count();
    let days = (day_number(split.end) - day_number(split.calibration_end)).max(0);
    let shortfall = if customers == 0 {
        Some(Shortfall::NoOrders)
    } else if days < i64::from(bt.min_holdout_days) {
        Some(Shortfall::ShortHoldout {
            history_days: days,
            holdout_days: days,
            need_holdout_days: bt.min_holdout_days,
        })
    } else if customers < bt.min_customers {
        Some(Shortfall::TooFewCustomers {
            have: customers,
            need: bt.min_customers,
        })
    } else if repeaters < bt.min_repeat_customers {
        Some(Shortfall::TooFewRepeatCustomers {
            have: repeaters,
            need: bt.min_repeat_customers,
        })
    } else {
        None
    };
    if let Some(reason) = shortfall {
        return Ok(without_card(split, reason));
    }
    // The two fits are independent: each runs beside the other (both also use the pool
    // for their passes over the data), so their serial parts overlap.
    let ((compressed, purchase), spend) = rayon::join(
        || {
            let compressed = Compressed::from_triples(
                split
                    .rows
                    .iter()
                    .map(|r| (r.frequency_cal, r.recency_cal, r.t_cal)),
            );
            let fit = fit_purchase(&compressed, repeaters, opts, warm.map(|w| w.0));
            (compressed, fit)
        },
        || {
            let observations: Vec<SpendObservation> = split
                .rows
                .iter()
                .map(|r| SpendObservation {
                    x: f64::from(r.frequency_cal),
                    m_x: r.monetary_value_cal,
                })
                .filter(gamma_gamma::usable)
                .collect();
            fit_spend(&observations, opts, warm.map(|w| w.1))
        },
    );
    let fits = ModelFits::from_parts(purchase, spend);
    let (Some(bg), Some(gg)) = (fits.purchase, fits.spend) else {
        let reason = Shortfall::ModelFallback {
            fallbacks: fits.fallbacks,
        };
        return Ok(without_card(split, reason));
    };
    Ok(card_with(split, &compressed, &bg, &gg))
}

/// The card of a split at given parameters (for instance another tool's fit), with its verdict.
pub fn report_card(
    split: &CalibrationHoldout,
    bg: &BgNbdParams,
    gg: &GammaGammaParams,
) -> Backtest {
    let compressed = Compressed::from_triples(
        split
            .rows
            .iter()
            .map(|r| (r.frequency_cal, r.recency_cal, r.t_cal)),
    );
    card_with(split, &compressed, bg, gg)
}

/// Per-customer forecasts: the BG/NBD's conditional expectation over the holdout and P(alive)
/// once per distinct (x, t_x, T) row of `compressed` (whose inputs are `split.rows`, in order).
/// The expectation is P(alive) times `expected_purchases_if_alive`, which depends on (x, T)
/// only and costs a hypergeometric series: it is computed once per distinct (x, T), far fewer
/// than the rows (the products are the same numbers `conditional_expected_purchases` gives).
pub fn predict(
    split: &CalibrationHoldout,
    compressed: &Compressed,
    bg: &BgNbdParams,
    gg: &GammaGammaParams,
) -> Vec<HoldoutPrediction> {
    let t = split.duration_holdout;
    let mut curve_ids: KeyMap<(u64, u64), u32> = KeyMap::default();
    let mut curves: Vec<(f64, f64)> = Vec::new();
    let curve_of_row: Vec<u32> = compressed
        .rows
        .iter()
        .map(|r| {
            *curve_ids
                .entry((r.x.to_bits(), r.t.to_bits()))
                .or_insert_with(|| {
                    curves.push((r.x, r.t));
                    (curves.len() - 1) as u32
                })
        })
        .collect();
    drop(curve_ids);
    let if_alive: Vec<f64> = map_blocks(curves.len(), |range| {
        curves[range]
            .iter()
            .map(|&(x, big_t)| bg.expected_purchases_if_alive(t, x, big_t))
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    let per_row: Vec<(f64, f64)> = map_blocks(compressed.rows.len(), |range| {
        range
            .map(|i| {
                let r = &compressed.rows[i];
                let p_alive = bg.p_alive(r.x, r.t_x, r.t);
                let curve = if_alive[curve_of_row[i] as usize];
                ((curve * p_alive).max(0.0), p_alive)
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    // Per customer: element-wise, so in parallel (an indexed collect keeps the order).
    split
        .rows
        .par_iter()
        .zip(&compressed.row_of)
        .map(|(r, &row)| {
            let (predicted_purchases, p_alive) = per_row[row as usize];
            let x = f64::from(r.frequency_cal);
            let expected_spend = gg.conditional_expected_value(x, r.monetary_value_cal);
            let baseline_purchases = if r.t_cal > 0.0 { x / r.t_cal * t } else { 0.0 };
            HoldoutPrediction {
                predicted_purchases,
                baseline_purchases,
                baseline_revenue: baseline_purchases * r.monetary_value_cal,
                p_alive,
                expected_spend,
                predicted_revenue: predicted_purchases * expected_spend,
            }
        })
        .collect()
}

fn card_with(
    split: &CalibrationHoldout,
    compressed: &Compressed,
    bg: &BgNbdParams,
    gg: &GammaGammaParams,
) -> Backtest {
    let predictions = predict(split, compressed, bg, gg);
    // Columns of the figures, each filled in parallel.
    let col =
        |f: fn(&HoldoutPrediction) -> f64| predictions.par_iter().map(f).collect::<Vec<f64>>();
    let rows = |f: fn(&CalHoldoutRow) -> f64| split.rows.par_iter().map(f).collect::<Vec<f64>>();
    let predicted = col(|p| p.predicted_purchases);
    let predicted_revenue = col(|p| p.predicted_revenue);
    let baseline_revenue = col(|p| p.baseline_revenue);
    let actual = rows(|r| f64::from(r.frequency_holdout));
    let actual_revenue = rows(|r| r.revenue_holdout);
    let bought: Vec<bool> = split
        .rows
        .par_iter()
        .map(|r| r.frequency_holdout > 0)
        .collect();
    // Each ranking is a sort of every customer, so as few as possible: one of the predicted
    // purchases (deciles and Spearman ranks), one of the baseline's, counting for the actual
    // purchases (whole numbers), and only the top fifth of each revenue ranking. The figures
    // are independent of each other, so they are computed side by side.
    let counts: Vec<u32> = split.rows.iter().map(|r| r.frequency_holdout).collect();
    let actual_ranks = card::average_ranks_of_counts(&counts);
    drop(counts);
    let top = card::top_count(split.rows.len(), 20);
    let (((deciles, model), baseline), ((by_model, by_baseline), ((reliability, brier), rows))) =
        rayon::join(
            || {
                rayon::join(
                    || {
                        let by_predicted = card::rank_descending(&predicted);
                        let ranks = card::average_ranks_from_descending(&predicted, &by_predicted);
                        let deciles = card::decile_table_ranked(
                            &by_predicted,
                            &predicted,
                            &actual,
                            &predicted_revenue,
                            &actual_revenue,
                        );
                        let accuracy =
                            card::accuracy_with_ranks(&predicted, &ranks, &actual, &actual_ranks);
                        (deciles, accuracy)
                    },
                    || {
                        let baseline = col(|p| p.baseline_purchases);
                        card::accuracy_ranked(&baseline, &actual, &actual_ranks)
                    },
                )
            },
            || {
                rayon::join(
                    || {
                        rayon::join(
                            || card::rank_descending_top(&predicted_revenue, top),
                            || card::rank_descending_top(&baseline_revenue, top),
                        )
                    },
                    || {
                        rayon::join(
                            || card::reliability(&col(|p| p.p_alive), &bought),
                            || {
                                let predictions = predictions.par_iter().copied();
                                split.rows.par_iter().copied().zip(predictions).collect()
                            },
                        )
                    },
                )
            },
        );
    let c = ReportCard {
        customers: split.rows.len(),
        repeat_customers_cal: split.rows.iter().filter(|r| r.frequency_cal > 0).count(),
        deciles,
        model,
        baseline,
        p_alive_reliability: reliability,
        brier,
        predicted_revenue: predicted_revenue.iter().sum(),
        actual_revenue: actual_revenue.iter().sum(),
        top_10_revenue_share: card::top_share_of_top(&by_model, &actual_revenue, 10),
        top_20_revenue_share: card::top_share_of_top(&by_model, &actual_revenue, 20),
        baseline_top_10_revenue_share: card::top_share_of_top(&by_baseline, &actual_revenue, 10),
        baseline_top_20_revenue_share: card::top_share_of_top(&by_baseline, &actual_revenue, 20),
    };
    Backtest {
        calibration_end: split.calibration_end,
        end: split.end,
        time_unit: split.time_unit,
        duration_holdout: split.duration_holdout,
        verdict: verdict(&c),
        bgnbd: Some(*bg),
        gamma_gamma: Some(*gg),
        card: Some(c),
        sample: None,
        rows,
    }
}

/// Lift the top 20 % must reach: twice their share of the holdout revenue.
pub const MIN_TOP_20_REVENUE_SHARE: f64 = 0.4;

/// The verdict rule of the module docs.
pub fn verdict(c: &ReportCard) -> Verdict {
    let lift = c
        .top_20_revenue_share
        .is_some_and(|s| s >= MIN_TOP_20_REVENUE_SHARE);
    if c.model.mae < c.baseline.mae && lift {
        Verdict::GoodEnoughToTarget
    } else {
        Verdict::NotBetterThanBaseline
    }
}
