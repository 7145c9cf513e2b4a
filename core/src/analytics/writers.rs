//! Output files of `lifecycle analyze`: `customers.csv`, `summary.json` and the optional
//! holdout, cohorts, between-orders and affinity CSVs.

use serde::Serialize;
use std::io::Write;

use chrono::{DateTime, Utc};

use super::backtest::Backtest;
use super::between_orders::gaps;
use super::cli::AnalyzeOutput;
use super::maturity::Maturity;
use super::model::Fallback;
use super::products::{Affinity, AffinityScope};
use super::{Cohorts, ShopAnalysis, ShopInput, ShopMetrics};

/// The exact header of `customers.csv`.
pub const CUSTOMERS_HEADER: [&str; 14] = [
    "customer_id",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "rfm_group",
    "p_alive",
    "expected_purchases",
    "expected_avg_value",
    "clv",
    "churn_risk",
];

/// One row per customer; prediction columns are empty for PROSPECTS.
pub fn write_customers_csv(out: &AnalyzeOutput, w: impl Write) -> Result<(), csv::Error> {
    let mut wtr = csv::Writer::from_writer(w);
    wtr.write_record(CUSTOMERS_HEADER)?;
    let empty = String::new;
    for c in &out.analysis.customers {
        let f = &c.features;
        let s = &c.score;
        let p = s.prediction;
        let num = |v: Option<f64>| v.map_or_else(empty, |v| v.to_string());
        let id = out
            .ids
            .get(f.customer as usize)
            .cloned()
            .unwrap_or_else(|| f.customer.to_string());
        wtr.write_record([
            id,
            f.frequency.to_string(),
            f.recency.to_string(),
            f.age.to_string(),
            f.monetary_value.to_string(),
            s.rfm.r.to_string(),
            s.rfm.f.to_string(),
            s.rfm.m.to_string(),
            s.rfm.group.as_str().to_string(),
            num(p.map(|p| p.p_alive)),
            num(p.map(|p| p.expected_purchases)),
            num(p.map(|p| p.expected_avg_value)),
            num(p.map(|p| p.clv)),
            p.map_or_else(empty, |p| p.churn_risk.as_str().to_string()),
        ])?;
    }
    wtr.flush()?;
    Ok(())
}

/// The exact header of the `--holdout` CSV (lifetimes' `calibration_and_holdout_data` names).
pub const HOLDOUT_HEADER: [&str; 6] = [
    "customer_id",
    "frequency_cal",
    "recency_cal",
    "T_cal",
    "frequency_holdout",
    "predicted_holdout",
];

/// One row per customer of the backtest (those with orders up to the calibration end), with
/// the model's expected purchases over the holdout; only the header when there is no card.
pub fn write_holdout_csv(out: &AnalyzeOutput, w: impl Write) -> Result<(), csv::Error> {
    let mut wtr = csv::Writer::from_writer(w);
    wtr.write_record(HOLDOUT_HEADER)?;
    for (r, p) in out.backtest.iter().flat_map(|b| &b.rows) {
        let id = out
            .ids
            .get(r.customer as usize)
            .cloned()
            .unwrap_or_else(|| r.customer.to_string());
        wtr.write_record([
            id,
            r.frequency_cal.to_string(),
            r.recency_cal.to_string(),
            r.t_cal.to_string(),
            r.frequency_holdout.to_string(),
            p.predicted_purchases.to_string(),
        ])?;
    }
    wtr.flush()?;
    Ok(())
}

/// The exact header of the `--cohorts` CSV.
pub const COHORTS_HEADER: [&str; 7] = [
    "cohort",
    "period",
    "customers",
    "active_customers",
    "orders",
    "net_revenue",
    "cumulative_revenue_per_customer",
];

/// One row per cohort and observed period, oldest cohort first (actuals only: the forecast
/// never goes in this file). Money with two decimals.
pub fn write_cohorts_csv(cohorts: &Cohorts, w: impl Write) -> Result<(), csv::Error> {
    let mut wtr = csv::Writer::from_writer(w);
    wtr.write_record(COHORTS_HEADER)?;
    for c in &cohorts.cohorts {
        for a in &c.actual {
            wtr.write_record([
                c.label.clone(),
                a.period.to_string(),
                c.customers.to_string(),
                a.active_customers.to_string(),
                a.orders.to_string(),
                format!("{:.2}", a.net_revenue),
                format!("{:.2}", a.cumulative_revenue_per_customer),
            ])?;
        }
    }
    wtr.flush()?;
    Ok(())
}

/// The exact header of the `--between-orders` CSV.
pub const BETWEEN_ORDERS_HEADER: [&str; 3] = ["customer_id", "order_number", "days_since_previous"];

/// One row per counted order after a customer's first (`between_orders::gaps`): its number
/// among the customer's counted orders (2 for the second) and the whole days since the
/// previous one; customers in the file's order.
pub fn write_between_orders_csv(
    ids: &[String],
    input: &ShopInput,
    now: DateTime<Utc>,
    w: impl Write,
) -> Result<(), csv::Error> {
    let mut wtr = csv::Writer::from_writer(w);
    wtr.write_record(BETWEEN_ORDERS_HEADER)?;
    for mine in input.orders.chunk_by(|a, b| a.customer == b.customer) {
        let customer = mine[0].customer;
        let id = ids
            .get(customer as usize)
            .cloned()
            .unwrap_or_else(|| customer.to_string());
        for (k, days) in gaps(mine, now).enumerate() {
            wtr.write_record([id.clone(), (k + 2).to_string(), days.to_string()])?;
        }
    }
    wtr.flush()?;
    Ok(())
}

/// The exact header of the affinity CSV.
pub const AFFINITY_HEADER: [&str; 9] = [
    "scope",
    "product_a",
    "product_b",
    "together",
    "support",
    "confidence_a_to_b",
    "confidence_b_to_a",
    "lift",
    "transactions",
];

/// Pairs of each affinity (scope `basket` or `history`), in each one's order (highest lift
/// first), products by their external ids.
pub fn write_affinity_csv(
    product_ids: &[String],
    affinities: &[Affinity],
    w: impl Write,
) -> Result<(), csv::Error> {
    let mut wtr = csv::Writer::from_writer(w);
    wtr.write_record(AFFINITY_HEADER)?;
    let name = |p: u32| {
        product_ids
            .get(p as usize)
            .cloned()
            .unwrap_or_else(|| p.to_string())
    };
    for a in affinities {
        let scope = match a.scope {
            AffinityScope::Basket => "basket",
            AffinityScope::History => "history",
        };
        for p in &a.pairs {
            wtr.write_record([
                scope.to_string(),
                name(p.a),
                name(p.b),
                p.together.to_string(),
                p.support.to_string(),
                p.confidence_a_to_b.to_string(),
                p.confidence_b_to_a.to_string(),
                p.lift.to_string(),
                a.transactions.to_string(),
            ])?;
        }
    }
    wtr.flush()?;
    Ok(())
}

#[derive(Serialize)]
struct BgNbdSummary {
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
    log_likelihood: f64,
    converged: bool,
    unique_rows: usize,
}

#[derive(Serialize)]
struct GammaGammaSummary {
    p: f64,
    q: f64,
    gamma: f64,
    log_likelihood: f64,
    converged: bool,
    customers: usize,
}

/// The shape of `summary.json`.
#[derive(Serialize)]
struct Summary<'a> {
    customers: usize,
    time_unit: &'a str,
    horizon_months: u32,
    /// None when the fit was not attempted (too little data; see `fallbacks`).
    bgnbd: Option<BgNbdSummary>,
    gamma_gamma: Option<GammaGammaSummary>,
    fallbacks: &'a [Fallback],
    metrics: &'a ShopMetrics,
    maturity: Option<&'a Maturity>,
    skipped_rows: u64,
    /// The model report card (with the calibration fit), or why there is none; absent for a
    /// summary file.
    #[serde(skip_serializing_if = "Option::is_none")]
    backtest: Option<&'a Backtest>,
}

fn summary(out: &AnalyzeOutput) -> Summary<'_> {
    let a: &ShopAnalysis = &out.analysis;
    Summary {
        customers: a.customers.len(),
        time_unit: a.model.time_unit.as_str(),
        horizon_months: a.model.clv.horizon_months,
        bgnbd: a.model.bgnbd.as_ref().map(|f| BgNbdSummary {
            r: f.params.r,
            alpha: f.params.alpha,
            a: f.params.a,
            b: f.params.b,
            log_likelihood: f.log_likelihood,
            converged: f.converged,
            unique_rows: f.unique_rows,
        }),
        gamma_gamma: a.model.gamma_gamma.as_ref().map(|f| GammaGammaSummary {
            p: f.params.p,
            q: f.params.q,
            gamma: f.params.gamma,
            log_likelihood: f.log_likelihood,
            converged: f.converged,
            customers: f.customers,
        }),
        fallbacks: &a.model.fallbacks,
        metrics: &a.metrics,
        maturity: a.maturity.as_ref(),
        skipped_rows: out.skipped_rows,
        backtest: out.backtest.as_ref(),
    }
}

/// `{"customers":N,"bgnbd":{…},"gamma_gamma":{…},"metrics":{…},"maturity":{…}, …}`, pretty.
pub fn write_summary_json(out: &AnalyzeOutput, mut w: impl Write) -> Result<(), serde_json::Error> {
    serde_json::to_writer_pretty(&mut w, &summary(out))?;
    w.write_all(b"\n").map_err(serde_json::Error::io)
}
