//! `lifecycle analyze`: read a file, analyse it, hand back what the writers print.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::io::Read;

use super::backtest::{Backtest, BacktestOptions, backtest_after};
use super::products::{Affinity, AffinityOptions, AffinityScope};
use super::readers::{self, InputFormat, Parsed, ProductLines, ReadError};
use super::{
    AnalysisError, AnalysisOptions, CohortPeriod, Cohorts, ShopAnalysis, ShopInput, TimeUnit,
};

/// Options of `lifecycle analyze` (one field per command-line option).
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeOptions {
    /// `--format {transactions,summary,cdnow}` or a platform's orders export
    pub format: InputFormat,
    /// `--end DATE`: end of observation (see `parse_end`); default the time of the last order.
    /// Orders after it are ignored. Unused by `summary` except as the reference date.
    pub end: Option<DateTime<Utc>>,
    /// `--time-unit {days,weeks}` (default days). For `summary` it is the file's unit.
    pub time_unit: TimeUnit,
    /// `--horizon N`: CLV and expected-purchases horizon in months (default 12).
    pub horizon_months: u32,
    /// Monthly discount rate of the CLV (default 0.01).
    pub monthly_discount: f64,
    /// Customer acquisition cost, for CLV:CAC (optional).
    pub cac: Option<f64>,
    /// `--calibration-end DATE` (see `parse_end`): the backtest's calibration end, `end` being
    /// the holdout's end; default the holdout rule of `backtest::calibration_end_for`.
    pub calibration_end: Option<DateTime<Utc>>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            format: InputFormat::Transactions,
            end: None,
            time_unit: TimeUnit::Days,
            horizon_months: 12,
            monthly_discount: 0.01,
            cac: None,
            calibration_end: None,
        }
    }
}

/// Parses `--end`: a date means the end of that day (its orders are included), a datetime is
/// taken as given (see `readers::parse_datetime` for the forms).
pub fn parse_end(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        let start = d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        return Ok(start + Duration::days(1) - Duration::seconds(1));
    }
    readers::parse_datetime(s).ok_or_else(|| format!("unparsable date `{s}`"))
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("{0}")]
    Input(#[from] ReadError),
    #[error("{0}")]
    Analysis(#[from] AnalysisError),
    #[error("no orders on or before the end date {0}")]
    NothingBeforeEnd(DateTime<Utc>),
    #[error("a backtest needs order dates: --calibration-end does not apply to a summary file")]
    BacktestNeedsOrders,
    #[error("{0} needs order dates: a summary file has none")]
    NeedsOrderDates(&'static str),
    #[error("{0} needs line items: give a transactions file with a product_id column")]
    NeedsProducts(&'static str),
}

/// The analysis plus what the writers need to name customers.
#[derive(Debug, Clone)]
pub struct AnalyzeOutput {
    /// External id of each customer index.
    pub ids: Vec<String>,
    pub analysis: ShopAnalysis,
    /// Input rows skipped on purpose (Shopify orders without an email).
    pub skipped_rows: u64,
    /// The model report card of the same orders (None for a summary file, which has no order
    /// dates to split); without a card it still says why.
    pub backtest: Option<Backtest>,
    /// The orders read (None for a summary file), for the analyses that need order dates.
    pub orders: Option<ShopInput>,
    /// The line items up to the analysis' end (transactions files with `product_id`).
    pub products: Option<ProductLines>,
}

impl AnalyzeOutput {
    /// The orders, or which `output` cannot be made from a summary file.
    pub fn orders(&self, output: &'static str) -> Result<&ShopInput, AnalyzeError> {
        self.orders
            .as_ref()
            .ok_or(AnalyzeError::NeedsOrderDates(output))
    }

    /// The cohorts of the file's orders at the analysis' end (actuals only).
    pub fn cohorts(&self, period: CohortPeriod) -> Result<Cohorts, AnalyzeError> {
        let input = self.orders("cohorts")?;
        Ok(super::cohorts(input, self.analysis.now, period)?)
    }

    /// Pair affinity over baskets and over histories (default options), for `output`.
    pub fn affinity(&self, output: &'static str) -> Result<[Affinity; 2], AnalyzeError> {
        let lines = self
            .products
            .as_ref()
            .ok_or(AnalyzeError::NeedsProducts(output))?;
        let opts = AffinityOptions::default();
        Ok([
            super::affinity(&lines.baskets, AffinityScope::Basket, &opts)?,
            super::affinity(&lines.baskets, AffinityScope::History, &opts)?,
        ])
    }
}

/// Reads, analyses, and returns the result; write it with `writers::write_customers_csv` and
/// `writers::write_summary_json`.
pub fn run_analyze(input: impl Read, opts: &AnalyzeOptions) -> Result<AnalyzeOutput, AnalyzeError> {
    let analysis_opts = AnalysisOptions {
        time_unit: opts.time_unit,
        clv: super::ClvSettings {
            horizon_months: opts.horizon_months,
            monthly_discount: opts.monthly_discount,
        },
        cac: opts.cac,
        ..AnalysisOptions::default()
    };
    analysis_opts.validate()?;
    match readers::read(input, opts.format, opts.time_unit)? {
        Parsed::Summary { ids, features } => {
            if opts.calibration_end.is_some() {
                return Err(AnalyzeError::BacktestNeedsOrders);
            }
            let now = opts.end.unwrap_or(DateTime::UNIX_EPOCH);
            let analysis = super::analyze_features(features, &analysis_opts, now)?;
            Ok(AnalyzeOutput {
                ids,
                analysis,
                skipped_rows: 0,
                backtest: None,
                orders: None,
                products: None,
            })
        }
        Parsed::Orders {
            ids,
            input,
            skipped_rows,
            mut products,
        } => {
            let last = input.orders.iter().map(|o| o.at).max();
            let now = match (opts.end, last) {
                (Some(end), _) => end,
                (None, Some(last)) => last,
                (None, None) => DateTime::UNIX_EPOCH,
            };
            if !input.orders.iter().any(|o| o.at <= now) && !input.orders.is_empty() {
                return Err(AnalyzeError::NothingBeforeEnd(now));
            }
            let analysis = super::analyze_shop(&input, &analysis_opts, now)?;
            if let Some(p) = &mut products {
                p.baskets.items.retain(|l| l.at <= now);
            }
            let backtest = backtest_after(
                &input,
                &analysis,
                opts.calibration_end,
                &analysis_opts,
                &BacktestOptions::default(),
            )?;
            Ok(AnalyzeOutput {
                ids,
                analysis,
                skipped_rows,
                backtest: Some(backtest),
                orders: Some(input),
                products,
            })
        }
    }
}
