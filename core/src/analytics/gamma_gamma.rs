//! Gamma-Gamma spend model (Fader & Hardie 2013, note 025): fit on customers with repeat
//! purchases, and the conditional expected average order value.

use serde::{Deserialize, Serialize};

use super::optimize::{BfgsSettings, Minimum, Settings, bfgs, nelder_mead};
use super::special::{digamma, ln_gamma};

/// Gamma-Gamma parameters: per-transaction spend ~ Gamma(p, ν), ν ~ Gamma(q, γ).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaParams {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// A fitted Gamma-Gamma model and how the fit went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaFit {
    pub params: GammaGammaParams,
    pub log_likelihood: f64,
    pub converged: bool,
    /// Customers used (x > 0 and m_x > 0).
    pub customers: usize,
    pub evaluations: usize,
}

/// One customer as the spend model sees them: x repeat purchases with mean value m_x.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpendObservation {
    pub x: f64,
    pub m_x: f64,
}

impl GammaGammaParams {
    /// Population mean spend per transaction, pγ/(q−1); infinite when q ≤ 1.
    pub fn population_mean(&self) -> f64 {
        if self.q > 1.0 {
            self.p * self.gamma / (self.q - 1.0)
        } else {
            f64::INFINITY
        }
    }

    /// E[M | x, m_x] = (γ + m_x x) p / (px + q − 1), a weighted average of the population mean
    /// and the customer's own mean; the population mean when x = 0.
    pub fn conditional_expected_value(&self, x: f64, m_x: f64) -> f64 {
        let GammaGammaParams { p, q, gamma } = *self;
        let m = if x > 0.0 { m_x } else { 0.0 };
        (gamma + m * x) * p / (p * x + q - 1.0)
    }

    /// Marginal ln f(m_x | x) of one customer (eq. 1a).
    pub fn log_likelihood(&self, x: f64, m_x: f64) -> f64 {
        let GammaGammaParams { p, q, gamma } = *self;
        let px = p * x;
        ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q)
            + q * gamma.ln()
            + (px - 1.0) * m_x.ln()
            + px * x.ln()
            - (px + q) * (x * m_x + gamma).ln()
    }
}

/// Sufficient statistics per distinct x, so the lnΓ and ψ terms are evaluated once per x,
/// not once per customer; only ln(x m_x + γ) and 1/(x m_x + γ) remain per customer.
struct Grouped {
    /// (x, count, Σ ln m_x) per distinct x.
    by_x: Vec<(f64, f64, f64)>,
    /// (x, x·m_x) per customer.
    spend: Vec<(f64, f64)>,
}

impl Grouped {
    fn new(obs: &[SpendObservation]) -> Grouped {
        let mut by_x: std::collections::BTreeMap<u64, (f64, f64, f64)> = Default::default();
        let mut spend = Vec::with_capacity(obs.len());
        for o in obs {
            let e = by_x.entry(o.x.to_bits()).or_insert((o.x, 0.0, 0.0));
            e.1 += 1.0;
            e.2 += o.m_x.ln();
            spend.push((o.x, o.x * o.m_x));
        }
        Grouped {
            by_x: by_x.into_values().collect(),
            spend,
        }
    }

    fn log_likelihood(&self, g: &GammaGammaParams) -> f64 {
        self.log_likelihood_and_gradient(g, &mut [0.0; 3])
    }

    /// Σ ln f and its gradient with respect to (ln p, ln q, ln γ).
    fn log_likelihood_and_gradient(&self, g: &GammaGammaParams, grad: &mut [f64]) -> f64 {
        let GammaGammaParams { p, q, gamma } = *g;
        let (lg_q, psi_q, ln_g) = (ln_gamma(q), digamma(q), gamma.ln());
        let (mut value, mut dp, mut dq, mut dg) = (0.0, 0.0, 0.0, 0.0);
        for &(x, n, sum_ln_m) in &self.by_x {
            let px = p * x;
            let psi_pxq = digamma(px + q);
            value += n * (ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_g + px * x.ln())
                + (px - 1.0) * sum_ln_m;
            dp += n * x * (psi_pxq - digamma(px) + x.ln()) + x * sum_ln_m;
            dq += n * (psi_pxq - psi_q + ln_g);
            dg += n * q / gamma;
        }
        for &(x, xm) in &self.spend {
            let ln_s = (xm + gamma).ln();
            let k = p * x + q;
            value -= k * ln_s;
            dp -= x * ln_s;
            dq -= ln_s;
            dg -= k / (xm + gamma);
        }
        grad[0] = dp * p;
        grad[1] = dq * q;
        grad[2] = dg * gamma;
        value
    }
}

/// Only customers with x > 0 and a positive finite m_x inform the model.
pub fn usable(o: &SpendObservation) -> bool {
    o.x > 0.0 && o.m_x > 0.0 && o.m_x.is_finite()
}

/// Maximum-likelihood fit on log-parameters. Observations that are not `usable` are skipped.
pub fn fit(observations: &[SpendObservation]) -> GammaGammaFit {
    let obs: Vec<SpendObservation> = observations.iter().copied().filter(usable).collect();
    let grouped = Grouped::new(&obs);
    let n = obs.len().max(1) as f64;
    // Spend has a unit (currency); start γ near the data's scale so the start is scale-free.
    let mean_m = obs.iter().map(|o| o.m_x).sum::<f64>() / n;
    let from_log = |v: &[f64]| GammaGammaParams {
        p: v[0].exp(),
        q: v[1].exp(),
        gamma: v[2].exp(),
    };
    let objective = |v: &[f64], grad: &mut [f64]| {
        let value = grouped.log_likelihood_and_gradient(&from_log(v), grad);
        grad.iter_mut().for_each(|g| *g = -*g / n);
        -value / n
    };
    let start = [0.0, 0.0, mean_m.max(1e-9).ln()];
    let mut min = bfgs(objective, &start, &BfgsSettings::default());
    if !min.converged {
        let mut scratch = [0.0; 3];
        let more = nelder_mead(
            |v: &[f64]| objective(v, &mut scratch),
            &min.x,
            &Settings::default(),
        );
        min = Minimum {
            evaluations: min.evaluations + more.evaluations,
            ..more
        };
    }
    let params = from_log(&min.x);
    let log_likelihood = grouped.log_likelihood(&params);
    let sane = [params.p, params.q, params.gamma]
        .iter()
        .all(|v| v.is_finite() && *v > 0.0);
    GammaGammaFit {
        params,
        log_likelihood,
        converged: min.converged && sane && log_likelihood.is_finite() && !obs.is_empty(),
        customers: obs.len(),
        evaluations: min.evaluations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLISHED: GammaGammaParams = GammaGammaParams {
        p: 6.25,
        q: 3.74,
        gamma: 15.44,
    };

    #[test]
    fn conditional_value_is_the_population_mean_without_repeats() {
        let v = PUBLISHED.conditional_expected_value(0.0, 123.0);
        assert!((v - PUBLISHED.population_mean()).abs() < 1e-12);
    }

    #[test]
    fn conditional_value_moves_toward_own_mean_with_more_purchases() {
        let own = 100.0;
        let few = PUBLISHED.conditional_expected_value(1.0, own);
        let many = PUBLISHED.conditional_expected_value(50.0, own);
        assert!(few < many && many < own);
    }

    #[test]
    fn grouped_likelihood_equals_the_per_customer_sum() {
        let obs = [
            SpendObservation { x: 1.0, m_x: 10.0 },
            SpendObservation { x: 1.0, m_x: 30.0 },
            SpendObservation { x: 4.0, m_x: 22.5 },
        ];
        let direct: f64 = obs
            .iter()
            .map(|o| PUBLISHED.log_likelihood(o.x, o.m_x))
            .sum();
        let g = Grouped::new(&obs);
        assert!((direct - g.log_likelihood(&PUBLISHED)).abs() < 1e-10);
        let mut grad = [0.0; 3];
        g.log_likelihood_and_gradient(&PUBLISHED, &mut grad);
        let logs = [PUBLISHED.p.ln(), PUBLISHED.q.ln(), PUBLISHED.gamma.ln()];
        for k in 0..3 {
            let h = 1e-6;
            let at = |d: f64| {
                let mut v = logs;
                v[k] += d;
                g.log_likelihood(&GammaGammaParams {
                    p: v[0].exp(),
                    q: v[1].exp(),
                    gamma: v[2].exp(),
                })
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (grad[k] - numeric).abs() < 1e-6,
                "d{k}: {} vs {numeric}",
                grad[k]
            );
        }
    }
}
