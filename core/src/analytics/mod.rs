//! Customer analytics: features, RFM, BG/NBD + Gamma-Gamma predictions (P(alive), expected
//! purchases, CLV, churn risk), shop retention figures, maturity, monthly series.
//!
//! Plain data in, plain data out; `now` is always a parameter. Entry points:
//! - [`analyze_shop`]: a whole shop from its orders (what the scheduled job calls);
//! - [`score_customer`]: one customer against a stored [`FittedModel`] (after a webhook);
//! - [`cohorts()`] and [`cohorts::predict`]: the retention triangle and LTV curves by cohort;
//!   [`time_between_orders`]: how long customers take to come back;
//! - [`products`]: journeys, pair affinity, next best product and replenishment windows over
//!   the line items of orders ([`Baskets`]);
//! - [`cli::run_analyze`]: the `lifecycle analyze` command over files.
//!
//! Formulas and reference figures: `shared/reference/clv.md`. Rules the issue left open are
//! documented in the module that applies them (`features`, `rfm`, `model`, `metrics`,
//! `maturity`).

pub mod backtest;
pub mod between_orders;
pub mod bgnbd;
pub mod cli;
pub mod cohorts;
pub mod compress;
pub mod features;
pub mod gamma_gamma;
pub mod input;
pub mod maturity;
pub mod metrics;
pub mod model;
pub mod optimize;
pub mod parallel;
pub mod periods;
pub mod products;
pub mod readers;
pub mod rfm;
pub mod special;
pub mod uncertainty;
pub mod writers;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use between_orders::{TimeBetweenOrders, time_between_orders, time_between_orders_by_segment};
pub use cohorts::{Cohorts, cohorts};
pub use features::{CustomerFeatures, compute_features, customer_features};
pub use input::{CheckoutFact, OrderFact, ShopInput, TimeUnit};
pub use maturity::{Maturity, MaturityStage};
pub use metrics::{MonthlyPoint, PeriodMetrics};
pub use model::{
    ChurnBands, ClvSettings, CustomerScore, FittedModel, Prediction, fit_model, score_all,
    score_customer,
};
pub use periods::CohortPeriod;
pub use products::{
    Affinity, AffinityOptions, AffinityScope, Baskets, Journeys, LineItem, NextBest, Replenishment,
    ReplenishmentOptions, affinity, journeys, next_best_products, replenishment,
};

/// Invalid input or options; the analytics never panic on bad data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    #[error("order #{index}: {reason}")]
    InvalidOrder { index: usize, reason: String },
    #[error("line item #{index}: {reason}")]
    InvalidLineItem { index: usize, reason: String },
    #[error("abandoned checkout #{index}: {reason}")]
    InvalidCheckout { index: usize, reason: String },
    #[error("invalid option {name}: {reason}")]
    InvalidOption { name: &'static str, reason: String },
}

/// Settings of an analysis. `Default` gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnalysisOptions {
    pub time_unit: TimeUnit,
    pub clv: ClvSettings,
    pub churn_bands: ChurnBands,
    /// "Active" = ordered within this many days (CRR, churn rate).
    pub active_window_days: u32,
    /// Length of the period the shop metrics cover, ending at `now`.
    pub period_days: u32,
    /// Customer acquisition cost in the shop's currency, for CLV:CAC.
    pub cac: Option<f64>,
    /// Fewer customers with orders than this: heuristics instead of the BG/NBD.
    pub min_customers_for_fit: usize,
    /// Fewer customers with repeat purchases than this: heuristics (both models).
    pub min_repeat_customers: usize,
    /// Length of the monthly series (most recent months).
    pub monthly_series_months: u32,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions {
            time_unit: TimeUnit::Days,
            clv: ClvSettings::default(),
            churn_bands: ChurnBands::default(),
            active_window_days: 365,
            period_days: 365,
            cac: None,
            min_customers_for_fit: 300,
            min_repeat_customers: 30,
            monthly_series_months: 24,
        }
    }
}

impl AnalysisOptions {
    pub fn validate(&self) -> Result<(), AnalysisError> {
        let bad = |name, reason: &str| {
            Err(AnalysisError::InvalidOption {
                name,
                reason: reason.to_string(),
            })
        };
        let b = self.churn_bands;
        if self.clv.horizon_months == 0 || self.clv.horizon_months > 1200 {
            return bad("horizon_months", "must be between 1 and 1200");
        }
        if !(0.0..1.0).contains(&self.clv.monthly_discount) {
            return bad("monthly_discount", "must be in [0, 1)");
        }
        if !(0.0 < b.medium_from && b.medium_from <= b.high_from && b.high_from <= 1.0) {
            return bad("churn_bands", "need 0 < medium_from <= high_from <= 1");
        }
        if self.active_window_days == 0 || self.period_days == 0 {
            return bad("active_window_days/period_days", "must be positive");
        }
        if self.cac.is_some_and(|c| !c.is_finite() || c <= 0.0) {
            return bad("cac", "must be a positive amount");
        }
        Ok(())
    }
}

/// How CLV compares with the cost of acquiring a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClvCacHealth {
    /// Ratio ≤ 1: each new customer costs more than they bring.
    LosingMoney,
    /// 1 < ratio < 3.
    BelowTarget,
    /// 3 ≤ ratio ≤ 5: the commonly cited healthy range around 3:1.
    Healthy,
    /// Ratio > 5: acquisition is probably under-funded.
    UnderInvesting,
}

impl ClvCacHealth {
    pub fn of(ratio: f64) -> ClvCacHealth {
        if ratio <= 1.0 {
            ClvCacHealth::LosingMoney
        } else if ratio < 3.0 {
            ClvCacHealth::BelowTarget
        } else if ratio <= 5.0 {
            ClvCacHealth::Healthy
        } else {
            ClvCacHealth::UnderInvesting
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClvCac {
    pub cac: f64,
    /// Average predicted CLV (over the CLV horizon) / CAC.
    pub ratio: f64,
    pub health: ClvCacHealth,
}

/// Shop figures at `now`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopMetrics {
    pub customers_with_orders: u64,
    pub prospects: u64,
    /// Mean predicted CLV of the customers with orders.
    pub average_predicted_clv: Option<f64>,
    pub clv_cac: Option<ClvCac>,
    /// Retention figures over [now − period_days, now]; None when only a summary was given.
    pub period: Option<PeriodMetrics>,
}

/// One customer's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerResult {
    pub features: CustomerFeatures,
    pub score: CustomerScore,
}

impl AsRef<CustomerFeatures> for CustomerResult {
    fn as_ref(&self) -> &CustomerFeatures {
        &self.features
    }
}

/// The whole analysis of a shop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopAnalysis {
    pub now: DateTime<Utc>,
    pub customers: Vec<CustomerResult>,
    pub model: FittedModel,
    pub metrics: ShopMetrics,
    /// None when only a summary was given (no order dates).
    pub maturity: Option<Maturity>,
    pub monthly: Vec<MonthlyPoint>,
}

/// Models and scores from already computed features (orders or a summary file).
pub fn analyze_features(
    features: Vec<CustomerFeatures>,
    opts: &AnalysisOptions,
    now: DateTime<Utc>,
) -> Result<ShopAnalysis, AnalysisError> {
    let (model, compressed) = fit_model(&features, opts, now)?;
    let scores = score_all(&features, &model, &compressed, now);
    let metrics = shop_metrics(&features, &scores, opts);
    let customers = features
        .into_iter()
        .zip(scores)
        .map(|(features, score)| CustomerResult { features, score })
        .collect();
    Ok(ShopAnalysis {
        now,
        customers,
        model,
        metrics,
        maturity: None,
        monthly: Vec::new(),
    })
}

fn shop_metrics(
    features: &[CustomerFeatures],
    scores: &[CustomerScore],
    opts: &AnalysisOptions,
) -> ShopMetrics {
    let buyers = features.iter().filter(|f| f.has_orders()).count() as u64;
    let clv_sum: f64 = scores
        .iter()
        .filter_map(|s| s.prediction.map(|p| p.clv))
        .sum();
    let average_predicted_clv = (buyers > 0).then(|| clv_sum / buyers as f64);
    let clv_cac = opts.cac.zip(average_predicted_clv).map(|(cac, clv)| {
        let ratio = clv / cac;
        ClvCac {
            cac,
            ratio,
            health: ClvCacHealth::of(ratio),
        }
    });
    ShopMetrics {
        customers_with_orders: buyers,
        prospects: features.len() as u64 - buyers,
        average_predicted_clv,
        clv_cac,
        period: None,
    }
}

/// Everything for one shop from its orders.
pub fn analyze_shop(
    input: &ShopInput,
    opts: &AnalysisOptions,
    now: DateTime<Utc>,
) -> Result<ShopAnalysis, AnalysisError> {
    opts.validate()?;
    input.validate()?;
    let features = compute_features(input, now, opts.time_unit);
    let mut analysis = analyze_features(features, opts, now)?;
    complete_with_orders(&mut analysis, input, opts, now);
    Ok(analysis)
}

/// Adds the figures that need order dates (period metrics, maturity, monthly series).
pub fn complete_with_orders(
    analysis: &mut ShopAnalysis,
    input: &ShopInput,
    opts: &AnalysisOptions,
    now: DateTime<Utc>,
) {
    analysis.metrics.period = Some(metrics::period(
        input,
        now,
        opts.period_days,
        opts.active_window_days,
    ));
    analysis.maturity = Some(maturity::assess(input, now));
    analysis.monthly = metrics::monthly(
        input,
        now,
        opts.active_window_days,
        opts.monthly_series_months,
    );
}
