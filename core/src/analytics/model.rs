//! The fitted, serialisable state of a shop's analysis and the scoring of one customer with it.
//!
//! **Fallbacks.** The BG/NBD is used when at least `min_customers_for_fit` customers have
//! orders, at least `min_repeat_customers` of them bought again, and the fit converged to
//! parameters in [1e-6, 1e6]. The Gamma-Gamma is used when at least `min_repeat_customers`
//! customers have repeat purchases, the fit converged and q > 1 (a finite population mean).
//! Otherwise the heuristics below are used and the reason is listed in `fallbacks`:
//! - purchases: the shop rate λ̂ = (Σx + 1) / (ΣT + Y) repeat purchases per unit, with Y one
//!   year in the unit (one pseudo-purchase per pseudo-year keeps λ̂ > 0 in a shop without
//!   repeats). Each customer's rate shrinks their own towards it with one year of
//!   pseudo-exposure, λ = (x + λ̂Y) / (T + Y); P(alive) = e^{−λ (T − t_x)} (the chance an
//!   active customer at that rate stays silent that long); E[Y(t)] = P(alive) · λ · t.
//! - spend: (x · m_x + m̄) / (x + 1), with m̄ the mean order value of the shop's customers.
//!
//! The heuristics are always stored and also replace any single non-finite model prediction,
//! so no output is ever NaN.
//!
//! **Churn risk** = 1 − P(alive), banded LOW below `medium_from` (default 1/3), HIGH from
//! `high_from` (default 2/3), MEDIUM between. Note the BG/NBD gives P(alive) = 1 to customers
//! who never bought again (x = 0), so they are LOW by construction of the model.
//!
//! **Expected next order**: now + (α+T)/(r+x) units, the reciprocal of the posterior mean
//! purchase rate of a customer who is still active (1/λ for the heuristic); None when the
//! churn risk is HIGH, since the model then expects no next order.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::bgnbd::{self, BgNbdFit, BgNbdParams};
use super::compress::Compressed;
use super::features::CustomerFeatures;
use super::gamma_gamma::{self, GammaGammaFit, GammaGammaParams, SpendObservation};
use super::input::TimeUnit;
use super::parallel::{BLOCK, KeyMap, fill_blocks, map_blocks};
use super::rfm::{RfmCuts, RfmScore};
use super::{AnalysisError, AnalysisOptions};
use crate::types::{ChurnRisk, RfmGroup};

/// CLV settings: lifetimes' helper, Σ_{i=1..H} E[M] · ΔE[Y]_i / (1 + d)^i over H months.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClvSettings {
    pub horizon_months: u32,
    pub monthly_discount: f64,
}

impl Default for ClvSettings {
    fn default() -> Self {
        ClvSettings {
            horizon_months: 12,
            monthly_discount: 0.01,
        }
    }
}

/// Cut-offs of 1 − P(alive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChurnBands {
    pub medium_from: f64,
    pub high_from: f64,
}

impl Default for ChurnBands {
    fn default() -> Self {
        ChurnBands {
            medium_from: 1.0 / 3.0,
            high_from: 2.0 / 3.0,
        }
    }
}

impl ChurnBands {
    pub fn band(&self, churn_probability: f64) -> ChurnRisk {
        if churn_probability >= self.high_from {
            ChurnRisk::High
        } else if churn_probability >= self.medium_from {
            ChurnRisk::Medium
        } else {
            ChurnRisk::Low
        }
    }
}

/// The purchase heuristic's state (see module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeuristicPurchase {
    /// λ̂, repeat purchases per time unit.
    pub shop_rate: f64,
    /// Y, one year in the time unit.
    pub prior_exposure: f64,
}

/// The spend heuristic's state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeuristicSpend {
    pub mean_value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PurchaseModel {
    BgNbd(BgNbdParams),
    Heuristic(HeuristicPurchase),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpendModel {
    GammaGamma(GammaGammaParams),
    Heuristic(HeuristicSpend),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Purchase,
    Spend,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum FallbackReason {
    TooFewCustomers {
        have: usize,
        need: usize,
    },
    TooFewRepeatCustomers {
        have: usize,
        need: usize,
    },
    NotConverged,
    /// q ≤ 1: the fitted spend distribution has no finite mean.
    InfiniteMeanSpend,
}

/// Why a model was replaced by its heuristic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fallback {
    pub model: ModelKind,
    #[serde(flatten)]
    pub reason: FallbackReason,
}

/// Everything needed to score a customer later (stored as JSON per shop by the app).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedModel {
    pub fitted_at: DateTime<Utc>,
    pub time_unit: TimeUnit,
    pub purchase: PurchaseModel,
    pub spend: SpendModel,
    pub heuristic_purchase: HeuristicPurchase,
    pub heuristic_spend: HeuristicSpend,
    /// The fits as attempted (also when rejected), for diagnostics.
    pub bgnbd: Option<BgNbdFit>,
    pub gamma_gamma: Option<GammaGammaFit>,
    pub fallbacks: Vec<Fallback>,
    pub rfm: RfmCuts,
    pub clv: ClvSettings,
    pub churn_bands: ChurnBands,
}

/// Which model produced a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Model,
    Heuristic,
}

/// Predictions for a customer with orders.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub p_alive: f64,
    /// Expected purchases over the CLV horizon.
    pub expected_purchases: f64,
    /// Expected value per future order.
    pub expected_avg_value: f64,
    /// Discounted value over the CLV horizon.
    pub clv: f64,
    pub churn_risk: ChurnRisk,
    pub next_order_at: Option<DateTime<Utc>>,
    pub purchase_method: Method,
    pub spend_method: Method,
}

/// A customer's scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CustomerScore {
    pub customer: u32,
    pub rfm: RfmScore,
    /// None for PROSPECTS.
    pub prediction: Option<Prediction>,
}

/// The part of a prediction that depends on (x, t_x, T) only, shared by all customers with
/// the same triple.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outlook {
    pub p_alive: f64,
    pub expected_purchases: f64,
    /// Σ_i ΔE[Y]_i / (1 + d)^i; CLV = E[M] times this.
    pub discounted_purchases: f64,
    /// Expected time to the next purchase of an active customer, in the time unit.
    pub next_purchase_in: f64,
    pub method: Method,
}

impl HeuristicPurchase {
    fn rate(&self, x: f64, t: f64) -> f64 {
        (x + self.shop_rate * self.prior_exposure) / (t + self.prior_exposure)
    }

    fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        (-self.rate(x, t) * (t - t_x).max(0.0)).exp()
    }

    fn expected_if_alive(&self, horizon: f64, x: f64, t: f64) -> f64 {
        self.rate(x, t) * horizon.max(0.0)
    }
}

/// Expectations for a customer who is still active (see `FittedModel::alive_curve`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AliveCurve {
    /// Purchases over the CLV horizon.
    pub expected: f64,
    /// Σ_i ΔE_i / (1 + d)^i over the horizon's months.
    pub discounted: f64,
    /// Expected time to the next purchase, in the time unit.
    pub next_purchase_in: f64,
    pub method: Method,
}

impl HeuristicSpend {
    fn value(&self, x: f64, m_x: f64) -> f64 {
        (x * m_x + self.mean_value) / (x + 1.0)
    }
}

impl FittedModel {
    /// The (x, t_x, T) part of a prediction, from the model or, if it gives a non-finite
    /// number, from the heuristic.
    pub fn outlook(&self, x: f64, t_x: f64, t: f64) -> Outlook {
        self.outlook_from(&self.alive_curve(x, t), x, t_x, t)
    }

    /// What an active customer with x repeat purchases and age T is expected to do: every
    /// expectation of either purchase model is P(alive) times this, which depends on (x, T)
    /// only, so the batch computes it once per distinct (x, T).
    pub fn alive_curve(&self, x: f64, t: f64) -> AliveCurve {
        if let PurchaseModel::BgNbd(p) = self.purchase {
            let c = self.curve_with(
                |h| p.expected_purchases_if_alive(h, x, t),
                (p.alpha + t) / (p.r + x),
                Method::Model,
            );
            if [c.expected, c.discounted, c.next_purchase_in]
                .iter()
                .all(|v| v.is_finite())
            {
                return c;
            }
        }
        let h = self.heuristic_purchase;
        self.curve_with(
            |hz| h.expected_if_alive(hz, x, t),
            1.0 / h.rate(x, t),
            Method::Heuristic,
        )
    }

    /// Expected purchases in (T, T + horizon] of a customer who is still active, by `method`
    /// (the one their prediction used, `Prediction::purchase_method`), so forecasts over other
    /// windows than the CLV's agree with it; the heuristic where the model's figure is not
    /// finite. Times in the model's unit. Times P(alive) gives the expectation.
    pub fn expected_purchases_if_alive(&self, horizon: f64, x: f64, t: f64, method: Method) -> f64 {
        if let (Method::Model, PurchaseModel::BgNbd(p)) = (method, self.purchase) {
            let v = p.expected_purchases_if_alive(horizon, x, t);
            if v.is_finite() {
                return v;
            }
        }
        self.heuristic_purchase.expected_if_alive(horizon, x, t)
    }

    fn curve_with(
        &self,
        expected: impl Fn(f64) -> f64,
        next_purchase_in: f64,
        method: Method,
    ) -> AliveCurve {
        let month = self.time_unit.per_month();
        let mut discounted = 0.0;
        let mut previous = 0.0;
        let mut factor = 1.0;
        for i in 1..=self.clv.horizon_months {
            let now = expected(f64::from(i) * month);
            factor /= 1.0 + self.clv.monthly_discount;
            discounted += (now - previous) * factor;
            previous = now;
        }
        AliveCurve {
            expected: previous.max(0.0),
            discounted: discounted.max(0.0),
            next_purchase_in,
            method,
        }
    }

    /// Completes an `alive_curve` with the customer's P(alive) from the same model.
    pub fn outlook_from(&self, curve: &AliveCurve, x: f64, t_x: f64, t: f64) -> Outlook {
        let p_alive = match (curve.method, self.purchase) {
            (Method::Model, PurchaseModel::BgNbd(p)) => p.p_alive(x, t_x, t),
            _ => self.heuristic_purchase.p_alive(x, t_x, t),
        }
        .clamp(0.0, 1.0);
        Outlook {
            p_alive,
            expected_purchases: p_alive * curve.expected,
            discounted_purchases: p_alive * curve.discounted,
            next_purchase_in: curve.next_purchase_in,
            method: curve.method,
        }
    }

    /// Expected value per future order, from the model or the heuristic.
    pub fn expected_value(&self, x: f64, m_x: f64) -> (f64, Method) {
        if let SpendModel::GammaGamma(g) = self.spend {
            let v = g.conditional_expected_value(x, m_x);
            if v.is_finite() && v >= 0.0 {
                return (v, Method::Model);
            }
        }
        (self.heuristic_spend.value(x, m_x), Method::Heuristic)
    }

    /// Completes a prediction from a shared outlook.
    pub fn score_with(
        &self,
        f: &CustomerFeatures,
        outlook: &Outlook,
        now: DateTime<Utc>,
    ) -> CustomerScore {
        let rfm = self.rfm.score(f);
        if !f.has_orders() {
            return CustomerScore {
                customer: f.customer,
                rfm,
                prediction: None,
            };
        }
        let x = f64::from(f.frequency);
        let (value, spend_method) = self.expected_value(x, f.monetary_value);
        let churn_risk = self.churn_bands.band(1.0 - outlook.p_alive);
        let next_order_at = (churn_risk != ChurnRisk::High)
            .then(|| {
                let seconds = outlook.next_purchase_in * self.time_unit.days() * 86_400.0;
                // Bounded to a century so the addition cannot overflow chrono's range.
                now.checked_add_signed(Duration::seconds(seconds.min(3.2e9) as i64))
            })
            .flatten();
        CustomerScore {
            customer: f.customer,
            rfm,
            prediction: Some(Prediction {
                p_alive: outlook.p_alive,
                expected_purchases: outlook.expected_purchases,
                expected_avg_value: value,
                clv: value * outlook.discounted_purchases,
                churn_risk,
                next_order_at,
                purchase_method: outlook.method,
                spend_method,
            }),
        }
    }
}

/// Scores one customer with previously fitted state (near-real-time updates after a
/// webhook). `features` must be computed at `now` in the model's time unit.
pub fn score_customer(
    features: &CustomerFeatures,
    model: &FittedModel,
    now: DateTime<Utc>,
) -> CustomerScore {
    let o = model.outlook(
        f64::from(features.frequency),
        features.recency,
        features.age,
    );
    model.score_with(features, &o, now)
}

/// Fits the models of a shop; returns the state and the compressed (x, t_x, T) rows of the
/// customers with orders (in the order of `features`), which the batch scoring reuses.
pub fn fit_model(
    features: &[CustomerFeatures],
    opts: &AnalysisOptions,
    now: DateTime<Utc>,
) -> Result<(FittedModel, Compressed), AnalysisError> {
    fit_model_with(features, opts, now, true)
}

/// `fit_model`, with the RFM cut points (three sorts of every customer, which only scoring
/// reads) left empty unless `rfm`: the backtest needs the two models only.
pub fn fit_model_with(
    features: &[CustomerFeatures],
    opts: &AnalysisOptions,
    now: DateTime<Utc>,
    rfm: bool,
) -> Result<(FittedModel, Compressed), AnalysisError> {
    opts.validate()?;
    let buyers = || features.iter().filter(|f| f.has_orders());
    let compressed = Compressed::from_triples(buyers().map(|f| (f.frequency, f.recency, f.age)));
    let customers = compressed.customers();
    let repeaters = buyers().filter(|f| f.frequency > 0).count();
    let year = 365.0 / opts.time_unit.days();
    let (sum_x, sum_t) = buyers().fold((0.0, 0.0), |(sx, st), f| {
        (sx + f64::from(f.frequency), st + f.age)
    });
    let heuristic_purchase = HeuristicPurchase {
        shop_rate: (sum_x + 1.0) / (sum_t + year),
        prior_exposure: year,
    };
    let mean_value = if customers > 0 {
        buyers().map(|f| f.average_order_value).sum::<f64>() / customers as f64
    } else {
        0.0
    };
    let heuristic_spend = HeuristicSpend { mean_value };

    let observations: Vec<SpendObservation> = buyers()
        .map(|f| SpendObservation {
            x: f64::from(f.frequency),
            m_x: f.monetary_value,
        })
        .filter(gamma_gamma::usable)
        .collect();
    let fits = fit_models(&compressed, repeaters, &observations, opts, None);
    drop(observations);
    let purchase = fits.purchase.map_or(
        PurchaseModel::Heuristic(heuristic_purchase),
        PurchaseModel::BgNbd,
    );
    let spend = fits.spend.map_or(
        SpendModel::Heuristic(heuristic_spend),
        SpendModel::GammaGamma,
    );
    let (bgnbd_fit, gg_fit, fallbacks) = (fits.bgnbd, fits.gamma_gamma, fits.fallbacks);

    let model = FittedModel {
        fitted_at: now,
        time_unit: opts.time_unit,
        purchase,
        spend,
        heuristic_purchase,
        heuristic_spend,
        bgnbd: bgnbd_fit,
        gamma_gamma: gg_fit,
        fallbacks,
        rfm: RfmCuts::fit(if rfm { features } else { &[] }),
        clv: opts.clv,
        churn_bands: opts.churn_bands,
    };
    Ok((model, compressed))
}

/// The two models' fits as `fit_model` makes them: the accepted parameters (None where the
/// heuristic stands in), the fits as attempted, and the fallbacks.
pub(crate) struct ModelFits {
    pub purchase: Option<BgNbdParams>,
    pub spend: Option<GammaGammaParams>,
    pub bgnbd: Option<BgNbdFit>,
    pub gamma_gamma: Option<GammaGammaFit>,
    pub fallbacks: Vec<Fallback>,
}

/// `fit_model`'s BG/NBD and Gamma-Gamma with its acceptance rules (module docs), from the
/// buyers' compressed (x, t_x, T), how many of them bought again, and the `usable` spend
/// observations. `warm`: parameters near the optimum (for instance the same shop's fit on a
/// longer history) to start both fits from; the optimum reached is the same to the
/// optimiser's tolerance (see `bgnbd::fit_from`, `gamma_gamma::fit_from`).
pub(crate) fn fit_models(
    compressed: &Compressed,
    repeaters: usize,
    observations: &[SpendObservation],
    opts: &AnalysisOptions,
    warm: Option<(&BgNbdParams, &GammaGammaParams)>,
) -> ModelFits {
    let purchase = fit_purchase(compressed, repeaters, opts, warm.map(|w| w.0));
    let spend = fit_spend(observations, opts, warm.map(|w| w.1));
    ModelFits::from_parts(purchase, spend)
}

/// One model's part of `fit_models`: the accepted parameters, the fit as attempted, any fallback.
pub(crate) type PartFit<P, F> = (Option<P>, Option<F>, Option<Fallback>);

impl ModelFits {
    pub(crate) fn from_parts(
        purchase: PartFit<BgNbdParams, BgNbdFit>,
        spend: PartFit<GammaGammaParams, GammaGammaFit>,
    ) -> ModelFits {
        ModelFits {
            purchase: purchase.0,
            spend: spend.0,
            bgnbd: purchase.1,
            gamma_gamma: spend.1,
            fallbacks: purchase.2.into_iter().chain(spend.2).collect(),
        }
    }
}

/// The BG/NBD of `fit_models`.
pub(crate) fn fit_purchase(
    compressed: &Compressed,
    repeaters: usize,
    opts: &AnalysisOptions,
    warm: Option<&BgNbdParams>,
) -> PartFit<BgNbdParams, BgNbdFit> {
    let customers = compressed.customers();
    let fallback = |reason| Fallback {
        model: ModelKind::Purchase,
        reason,
    };
    if customers < opts.min_customers_for_fit {
        let reason = FallbackReason::TooFewCustomers {
            have: customers,
            need: opts.min_customers_for_fit,
        };
        return (None, None, Some(fallback(reason)));
    }
    if repeaters < opts.min_repeat_customers {
        let reason = FallbackReason::TooFewRepeatCustomers {
            have: repeaters,
            need: opts.min_repeat_customers,
        };
        return (None, None, Some(fallback(reason)));
    }
    let fit = bgnbd::fit_from(compressed, warm);
    if fit.converged {
        (Some(fit.params), Some(fit), None)
    } else {
        (
            None,
            Some(fit),
            Some(fallback(FallbackReason::NotConverged)),
        )
    }
}

/// The Gamma-Gamma of `fit_models`.
pub(crate) fn fit_spend(
    observations: &[SpendObservation],
    opts: &AnalysisOptions,
    warm: Option<&GammaGammaParams>,
) -> PartFit<GammaGammaParams, GammaGammaFit> {
    let fallback = |reason| Fallback {
        model: ModelKind::Spend,
        reason,
    };
    if observations.len() < opts.min_repeat_customers.max(1) {
        let reason = FallbackReason::TooFewRepeatCustomers {
            have: observations.len(),
            need: opts.min_repeat_customers.max(1),
        };
        return (None, None, Some(fallback(reason)));
    }
    let fit = gamma_gamma::fit_from(observations, warm);
    let reason = if !fit.converged {
        Some(FallbackReason::NotConverged)
    } else if fit.params.q <= 1.0 {
        Some(FallbackReason::InfiniteMeanSpend)
    } else {
        None
    };
    match reason {
        None => (Some(fit.params), Some(fit), None),
        Some(reason) => (None, Some(fit), Some(fallback(reason))),
    }
}

/// Scores every customer, computing each distinct (x, T) curve and (x, t_x, T) outlook once.
/// Curves, outlooks and customers are each independent, so each step runs in blocks on all
/// cores (the results do not depend on how the blocks are shared out).
pub fn score_all(
    features: &[CustomerFeatures],
    model: &FittedModel,
    compressed: &Compressed,
    now: DateTime<Utc>,
) -> Vec<CustomerScore> {
    let mut curve_ids: KeyMap<(u64, u64), u32> = KeyMap::default();
    let mut curve_keys: Vec<(f64, f64)> = Vec::new();
    let curve_of_row: Vec<u32> = compressed
        .rows
        .iter()
        .map(|row| {
            *curve_ids
                .entry((row.x.to_bits(), row.t.to_bits()))
                .or_insert_with(|| {
                    curve_keys.push((row.x, row.t));
                    (curve_keys.len() - 1) as u32
                })
        })
        .collect();
    drop(curve_ids);
    let curves: Vec<AliveCurve> = concat(map_blocks(curve_keys.len(), |r| {
        curve_keys[r]
            .iter()
            .map(|&(x, t)| model.alive_curve(x, t))
            .collect()
    }));
    let outlooks: Vec<Outlook> = concat(map_blocks(compressed.rows.len(), |r| {
        compressed.rows[r.clone()]
            .iter()
            .zip(&curve_of_row[r])
            .map(|(row, &c)| model.outlook_from(&curves[c as usize], row.x, row.t_x, row.t))
            .collect()
    }));
    let placeholder = Outlook {
        p_alive: 1.0,
        expected_purchases: 0.0,
        discounted_purchases: 0.0,
        next_purchase_in: 0.0,
        method: Method::Heuristic,
    };
    // Buyers appear in `compressed` in the same order as in `features`: each block starts at
    // the number of buyers before it.
    let mut first_buyer = Vec::with_capacity(features.len().div_ceil(BLOCK));
    let mut buyers = 0usize;
    for block in features.chunks(BLOCK) {
        first_buyer.push(buyers);
        buyers += block.iter().filter(|f| f.has_orders()).count();
    }
    let mut scores = vec![
        CustomerScore {
            customer: 0,
            rfm: RfmScore {
                r: 0,
                f: 0,
                m: 0,
                group: RfmGroup::Prospects,
            },
            prediction: None,
        };
        features.len()
    ];
    fill_blocks(&mut scores, |offset, block| {
        let mut next = first_buyer[offset / BLOCK];
        for (f, slot) in features[offset..].iter().zip(block.iter_mut()) {
            let o = if f.has_orders() {
                next += 1;
                compressed
                    .row_of
                    .get(next - 1)
                    .map_or(placeholder, |&i| outlooks[i as usize])
            } else {
                placeholder
            };
            *slot = model.score_with(f, &o, now);
        }
    });
    scores
}

fn concat<T>(parts: Vec<Vec<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for part in parts {
        out.extend(part);
    }
    out
}
