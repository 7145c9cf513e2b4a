//! P10-P90 ranges of each customer's predicted CLV from the uncertainty of the fitted
//! parameters (Laplace approximation).
//!
//! At the maximum-likelihood optimum the log-likelihood is close to quadratic in the fit's
//! own parameterisation (log-parameters), so the parameters are approximately normal there
//! with covariance (−H)⁻¹, H the Hessian of the log-likelihood (numerical, from the analytic
//! gradients: `bgnbd::log_likelihood_hessian`, `gamma_gamma::log_likelihood_hessian`). The
//! two models have separate likelihoods, so their draws are independent. Each of `draws`
//! seeded draws of (r, α, a, b, p, q, γ) prices every customer with the model's own CLV
//! (`FittedModel::alive_curve`, `outlook_from`, `expected_value`: the same code as the point
//! estimate), and each customer's 10th and 90th percentiles of those CLVs are the range.
//!
//! **Cost**: per draw, one CLV curve (horizon-months hypergeometric evaluations) per distinct
//! (x, T), then one P(alive) and one spend per customer, plus a sort of `draws` values per
//! customer; i.e. about `draws` times the scoring of the customers with orders. Memory is one
//! curve table per draw (16 bytes per distinct (x, T)), never customers × draws. Blocks of
//! customers run on all cores. The benchmark prints the figure for a million customers.

use serde::{Deserialize, Serialize};

use super::bgnbd::{self, BgNbdParams};
use super::compress::Compressed;
use super::features::CustomerFeatures;
use super::gamma_gamma::{self, GammaGammaParams, SpendObservation};
use super::model::{AliveCurve, FittedModel, Method, PurchaseModel, SpendModel};
use super::optimize::{cholesky, spd_inverse};
use super::parallel::{BLOCK, KeyMap, fill_blocks, map_blocks};
use crate::random::Rng;
use crate::stats::quantile_sorted;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UncertaintySettings {
    pub draws: usize,
    pub seed: u64,
}

impl Default for UncertaintySettings {
    fn default() -> Self {
        UncertaintySettings {
            draws: 200,
            seed: 0xC1F,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UncertaintyError {
    #[error("the {0} model is a heuristic fallback: no fitted parameters to perturb")]
    NoFit(&'static str),
    #[error("the {0} log-likelihood is not concave at the fit (no Laplace approximation)")]
    NotConcave(&'static str),
}

/// A customer's CLV range over the parameter draws.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClvRange {
    pub p10: f64,
    pub p90: f64,
}

/// Parameter draws of both models.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterDraws {
    pub bgnbd: Vec<BgNbdParams>,
    pub gamma_gamma: Vec<GammaGammaParams>,
}

/// `draws` normal draws around `centre` with covariance (−hessian)⁻¹, all on the log scale.
fn laplace(
    hessian: &[f64],
    centre: &[f64],
    draws: usize,
    rng: &mut Rng,
    model: &'static str,
) -> Result<Vec<Vec<f64>>, UncertaintyError> {
    let n = centre.len();
    let negated: Vec<f64> = hessian.iter().map(|v| -v).collect();
    let covariance = spd_inverse(&negated, n).ok_or(UncertaintyError::NotConcave(model))?;
    let l = cholesky(&covariance, n).ok_or(UncertaintyError::NotConcave(model))?;
    Ok((0..draws)
        .map(|_| {
            let z: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            (0..n)
                .map(|i| centre[i] + (0..=i).map(|k| l[i * n + k] * z[k]).sum::<f64>())
                .collect()
        })
        .collect())
}

/// Seeded parameter draws around a model's fits. `compressed` and `features` are what the
/// model was fitted on (`fit_model` returns the former).
pub fn parameter_draws<F: AsRef<CustomerFeatures>>(
    model: &FittedModel,
    features: &[F],
    compressed: &Compressed,
    settings: &UncertaintySettings,
) -> Result<ParameterDraws, UncertaintyError> {
    let PurchaseModel::BgNbd(bg) = model.purchase else {
        return Err(UncertaintyError::NoFit("purchase"));
    };
    let SpendModel::GammaGamma(gg) = model.spend else {
        return Err(UncertaintyError::NoFit("spend"));
    };
    let observations: Vec<SpendObservation> = features
        .iter()
        .map(AsRef::as_ref)
        .filter(|f| f.has_orders())
        .map(|f| SpendObservation {
            x: f64::from(f.frequency),
            m_x: f.monetary_value,
        })
        .collect();
    let mut rng = Rng::new(settings.seed);
    let bg_centre = [bg.r.ln(), bg.alpha.ln(), bg.a.ln(), bg.b.ln()];
    let bg_draws = laplace(
        &bgnbd::log_likelihood_hessian(compressed, &bg),
        &bg_centre,
        settings.draws,
        &mut rng,
        "BG/NBD",
    )?;
    let gg_centre = [gg.p.ln(), gg.q.ln(), gg.gamma.ln()];
    let gg_draws = laplace(
        &gamma_gamma::log_likelihood_hessian(&observations, &gg),
        &gg_centre,
        settings.draws,
        &mut rng,
        "Gamma-Gamma",
    )?;
    Ok(ParameterDraws {
        bgnbd: bg_draws
            .iter()
            .map(|v| BgNbdParams {
                r: v[0].exp(),
                alpha: v[1].exp(),
                a: v[2].exp(),
                b: v[3].exp(),
            })
            .collect(),
        gamma_gamma: gg_draws
            .iter()
            .map(|v| GammaGammaParams {
                p: v[0].exp(),
                q: v[1].exp(),
                gamma: v[2].exp(),
            })
            .collect(),
    })
}

/// Each customer's P10-P90 CLV range over the draws (None for PROSPECTS). `compressed` holds
/// the (x, t_x, T) rows of the customers with orders in the order of `features`, as
/// `fit_model` returns it.
pub fn clv_ranges<F: AsRef<CustomerFeatures> + Sync>(
    features: &[F],
    model: &FittedModel,
    compressed: &Compressed,
    draws: &ParameterDraws,
) -> Vec<Option<ClvRange>> {
    let models: Vec<FittedModel> = draws
        .bgnbd
        .iter()
        .zip(&draws.gamma_gamma)
        .map(|(bg, gg)| FittedModel {
            purchase: PurchaseModel::BgNbd(*bg),
            spend: SpendModel::GammaGamma(*gg),
            ..model.clone()
        })
        .collect();
    // Distinct (x, T): the curves depend on nothing else.
    let mut ids: KeyMap<(u64, u64), u32> = KeyMap::default();
    let mut keys: Vec<(f64, f64)> = Vec::new();
    let curve_of_row: Vec<u32> = compressed
        .rows
        .iter()
        .map(|r| {
            *ids.entry((r.x.to_bits(), r.t.to_bits()))
                .or_insert_with(|| {
                    keys.push((r.x, r.t));
                    (keys.len() - 1) as u32
                })
        })
        .collect();
    // curves[d][key]: discounted purchases of an active customer, and which model gave it.
    let curves: Vec<Vec<(f64, Method)>> = models
        .iter()
        .map(|m| {
            map_blocks(keys.len(), |range| {
                keys[range]
                    .iter()
                    .map(|&(x, t)| {
                        let c = m.alive_curve(x, t);
                        (c.discounted, c.method)
                    })
                    .collect::<Vec<_>>()
            })
            .into_iter()
            .flatten()
            .collect()
        })
        .collect();
    let mut first_buyer = Vec::with_capacity(features.len().div_ceil(BLOCK));
    let mut buyers = 0usize;
    for block in features.chunks(BLOCK) {
        first_buyer.push(buyers);
        buyers += block.iter().filter(|f| f.as_ref().has_orders()).count();
    }
    let mut out = vec![None; features.len()];
    fill_blocks(&mut out, |offset, block| {
        let mut next = first_buyer[offset / BLOCK];
        let mut values = Vec::with_capacity(models.len());
        for (f, slot) in features[offset..].iter().zip(block.iter_mut()) {
            let f = f.as_ref();
            if !f.has_orders() {
                continue;
            }
            let Some(&row) = compressed.row_of.get(next) else {
                continue;
            };
            next += 1;
            let r = compressed.rows[row as usize];
            let key = curve_of_row[row as usize] as usize;
            values.clear();
            for (m, table) in models.iter().zip(&curves) {
                let (discounted, method) = table[key];
                let curve = AliveCurve {
                    expected: 0.0,
                    discounted,
                    next_purchase_in: 0.0,
                    method,
                };
                let o = m.outlook_from(&curve, r.x, r.t_x, r.t);
                let (value, _) = m.expected_value(r.x, f.monetary_value);
                values.push(value * o.discounted_purchases);
            }
            values.sort_by(f64::total_cmp);
            *slot = Some(ClvRange {
                p10: quantile_sorted(&values, 0.1),
                p90: quantile_sorted(&values, 0.9),
            });
        }
    });
    out
}

/// `parameter_draws` and `clv_ranges` for a finished analysis (`ShopAnalysis::customers` in
/// customer order, as `analyze_shop` returns them): the fit's compressed rows are rebuilt
/// exactly as `fit_model` builds them, so no refit is needed.
pub fn analysis_clv_ranges(
    analysis: &super::ShopAnalysis,
    settings: &UncertaintySettings,
) -> Result<Vec<Option<ClvRange>>, UncertaintyError> {
    let compressed = Compressed::from_triples(
        analysis
            .customers
            .iter()
            .map(|c| &c.features)
            .filter(|f| f.has_orders())
            .map(|f| (f.frequency, f.recency, f.age)),
    );
    let draws = parameter_draws(&analysis.model, &analysis.customers, &compressed, settings)?;
    Ok(clv_ranges(
        &analysis.customers,
        &analysis.model,
        &compressed,
        &draws,
    ))
}
