//! Gamma-Gamma spend model (Fader & Hardie 2013, note 025): fit on customers with repeat
//! purchases, and the conditional expected average order value.

use serde::{Deserialize, Serialize};

use super::compress::group_keys;
use super::optimize::{
    BfgsSettings, Minimum, Settings, bfgs_warm, hessian_from_gradient, nelder_mead,
};
use super::parallel::{BLOCK, KeyMap, sum_blocks};
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
    /// Objective evaluations over all stages (coarsened copy, exact data, any Nelder–Mead).
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

/// Sufficient statistics. The likelihood is a sum of terms in x and ln m_x, which add up per
/// distinct x, and of −(p x + q) ln(x m_x + γ), which is linear in p and q, so it adds up per
/// distinct total repeat spend s = x m_x into (customers, Σ x). The lnΓ and ψ terms are
/// evaluated once per distinct x and one ln and one division once per distinct s.
struct Grouped {
    /// (x, customers, Σ ln m_x) per distinct x.
    by_x: Vec<(f64, f64, f64)>,
    /// (s, customers, Σ x) per distinct s = x m_x.
    by_spend: Vec<(f64, f64, f64)>,
}

impl Grouped {
    fn new(obs: &[SpendObservation]) -> Grouped {
        let mut x_ids: KeyMap<u64, usize> = KeyMap::default();
        let mut by_x: Vec<(f64, f64, f64)> = Vec::new();
        for o in obs {
            let i = *x_ids.entry(o.x.to_bits()).or_insert_with(|| {
                by_x.push((o.x, 0.0, 0.0));
                by_x.len() - 1
            });
            by_x[i].1 += 1.0;
            by_x[i].2 += o.m_x.ln();
        }
        // Distinct totals can be hundreds of thousands: grouped cache-friendly, first-seen order.
        let spend = |o: &SpendObservation| o.x * o.m_x + 0.0;
        let keys: Vec<u64> = obs.iter().map(|o| spend(o).to_bits()).collect();
        let (group_of, first) = group_keys(&keys);
        let mut by_spend: Vec<(f64, f64, f64)> = first
            .iter()
            .map(|&i| (spend(&obs[i as usize]), 0.0, 0.0))
            .collect();
        for (o, &g) in obs.iter().zip(&group_of) {
            by_spend[g as usize].1 += 1.0;
            by_spend[g as usize].2 += o.x;
        }
        Grouped { by_x, by_spend }
    }

    /// An approximation for a first fit: totals s within a factor 2^(1/`per_doubling`) of each
    /// other merged into one at their customer-weighted mean. ln(s + γ) varies by less than
    /// that factor's log across a bin, so the optimum moves very little.
    fn coarsened(&self, per_doubling: f64) -> Grouped {
        let mut ids: KeyMap<i64, usize> = KeyMap::default();
        let mut bins: Vec<(f64, f64, f64)> = Vec::new();
        for &(spend, n, sx) in &self.by_spend {
            let key = (spend.log2() * per_doubling).round() as i64;
            let i = *ids.entry(key).or_insert_with(|| {
                bins.push((0.0, 0.0, 0.0));
                bins.len() - 1
            });
            bins[i].0 += spend * n;
            bins[i].1 += n;
            bins[i].2 += sx;
        }
        for b in &mut bins {
            b.0 /= b.1;
        }
        Grouped {
            by_x: self.by_x.clone(),
            by_spend: bins,
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
        // Per distinct s: Σ ln(s+γ) weighted by Σ x and by customers, and Σ (p x + q)/(s+γ).
        let [x_ln, n_ln, k_inv] = sum_blocks(self.by_spend.len(), |range| {
            let mut acc = [0.0f64; 3];
            for &(spend, n, sx) in &self.by_spend[range] {
                let ln_s = (spend + gamma).ln();
                acc[0] += sx * ln_s;
                acc[1] += n * ln_s;
                acc[2] += (p * sx + q * n) / (spend + gamma);
            }
            acc
        });
        value -= p * x_ln + q * n_ln;
        dp -= x_ln;
        dq -= n_ln;
        dg -= k_inv;
        grad[0] = dp * p;
        grad[1] = dq * q;
        grad[2] = dg * gamma;
        value
    }

    /// Minimises −(1/n) Σ ln f over log-parameters.
    fn minimise(
        &self,
        n: f64,
        start: &[f64],
        inverse_hessian: Option<&[f64]>,
    ) -> (Minimum, Vec<f64>) {
        let objective = |v: &[f64], grad: &mut [f64]| {
            let value = self.log_likelihood_and_gradient(&from_log(v), grad);
            grad.iter_mut().for_each(|g| *g = -*g / n);
            -value / n
        };
        bfgs_warm(objective, start, inverse_hessian, &BfgsSettings::default())
    }
}

fn from_log(v: &[f64]) -> GammaGammaParams {
    GammaGammaParams {
        p: v[0].exp(),
        q: v[1].exp(),
        gamma: v[2].exp(),
    }
}

/// Only customers with x > 0 and a positive finite m_x inform the model.
pub fn usable(o: &SpendObservation) -> bool {
    o.x > 0.0 && o.m_x > 0.0 && o.m_x.is_finite()
}

/// Above this many distinct totals a fit starts on a coarsened copy (see `fit`).
const COARSE_ABOVE: usize = 4 * BLOCK;
/// Bins per doubling of the total in the coarse copy (adjacent bins 0.5 % apart).
const COARSE_PER_DOUBLING: f64 = 128.0;

/// Maximum-likelihood fit on log-parameters. Observations that are not `usable` are skipped.
///
/// As for the BG/NBD: with many distinct totals the fit runs first on a copy with totals
/// binned (`Grouped::coarsened`), then BFGS on the exact statistics starts from that optimum
/// and inverse Hessian, with the usual convergence test, so the result is the exact maximum
/// to the same tolerance.
pub fn fit(observations: &[SpendObservation]) -> GammaGammaFit {
    fit_staged(observations, true, None)
}

/// `fit` with both stages started from `start` (when its parameters are finite and
/// positive) instead of the generic starting point, for parameters known to be near the
/// optimum (the backtest's calibration fit starts from the analysis'). The exact stage's
/// convergence test is unchanged: the same optimum to the optimiser's tolerance.
pub fn fit_from(
    observations: &[SpendObservation],
    start: Option<&GammaGammaParams>,
) -> GammaGammaFit {
    fit_staged(observations, true, start)
}

fn fit_staged(
    observations: &[SpendObservation],
    coarse_first: bool,
    from: Option<&GammaGammaParams>,
) -> GammaGammaFit {
    let obs: Vec<SpendObservation> = observations.iter().copied().filter(usable).collect();
    let grouped = Grouped::new(&obs);
    let n = obs.len().max(1) as f64;
    // Spend has a unit (currency); start γ near the data's scale so the start is scale-free.
    let mean_m = obs.iter().map(|o| o.m_x).sum::<f64>() / n;
    let start = match from {
        Some(p)
            if [p.p, p.q, p.gamma]
                .iter()
                .all(|v| v.is_finite() && *v > 0.0) =>
        {
            [p.p.ln(), p.q.ln(), p.gamma.ln()]
        }
        _ => [0.0, 0.0, mean_m.max(1e-9).ln()],
    };
    let mut evaluations = 0;
    let mut warm = None;
    if coarse_first && grouped.by_spend.len() > COARSE_ABOVE {
        let (coarse, h) = grouped
            .coarsened(COARSE_PER_DOUBLING)
            .minimise(n, &start, None);
        evaluations += coarse.evaluations;
        if coarse.converged {
            warm = Some((coarse.x, h));
        }
    }
    let (mut min, _) = match &warm {
        Some((x, h)) => grouped.minimise(n, x, Some(h)),
        None => grouped.minimise(n, &start, None),
    };
    evaluations += min.evaluations;
    if !min.converged {
        let mut scratch = [0.0; 3];
        let more = nelder_mead(
            |v: &[f64]| -grouped.log_likelihood_and_gradient(&from_log(v), &mut scratch) / n,
            &min.x,
            &Settings::default(),
        );
        evaluations += more.evaluations;
        min = more;
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
        evaluations,
    }
}

/// Hessian of Σ ln f over the `usable` observations with respect to (ln p, ln q, ln γ), the
/// fit's parameterisation, at `params`. Row-major 3×3.
pub fn log_likelihood_hessian(
    observations: &[SpendObservation],
    params: &GammaGammaParams,
) -> Vec<f64> {
    let obs: Vec<SpendObservation> = observations.iter().copied().filter(usable).collect();
    let grouped = Grouped::new(&obs);
    let at = [params.p.ln(), params.q.ln(), params.gamma.ln()];
    hessian_from_gradient(
        |v, g| {
            grouped.log_likelihood_and_gradient(&from_log(v), g);
        },
        &at,
        1e-5,
    )
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
    fn two_stage_fit_reaches_the_direct_fits_optimum() {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Distribution, Gamma};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let nu = Gamma::new(4.0, 1.0 / 15.0).unwrap();
        let obs: Vec<SpendObservation> = (0..150_000)
            .map(|_| {
                let x = rng.random_range(1..12u32);
                let spend = Gamma::new(6.0, 1.0 / nu.sample(&mut rng)).unwrap();
                let total: f64 = (0..x).map(|_| spend.sample(&mut rng)).sum();
                SpendObservation {
                    x: f64::from(x),
                    m_x: total / f64::from(x),
                }
            })
            .collect();
        assert!(Grouped::new(&obs).by_spend.len() > COARSE_ABOVE);
        let staged = fit_staged(&obs, true, None);
        let direct = fit_staged(&obs, false, None);
        assert!(staged.converged && direct.converged);
        let (s, d) = (staged.params, direct.params);
        for (name, u, v) in [
            ("p", s.p, d.p),
            ("q", s.q, d.q),
            ("gamma", s.gamma, d.gamma),
        ] {
            assert!((u - v).abs() <= 1e-6 * v.abs(), "{name}: {u} vs {v}");
        }
        let gap = (staged.log_likelihood - direct.log_likelihood).abs();
        assert!(gap <= 1e-9 * direct.log_likelihood.abs(), "{gap}");
        // Near the generating values (p 6, q 4, γ 15).
        assert!((s.p - 6.0).abs() < 0.3 && (s.q - 4.0).abs() < 0.3, "{s:?}");
    }

    #[test]
    fn warm_started_fit_reaches_the_cold_fits_optimum() {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Distribution, Gamma};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let nu = Gamma::new(4.0, 1.0 / 15.0).unwrap();
        let obs: Vec<SpendObservation> = (0..150_000)
            .map(|_| {
                let x = rng.random_range(1..12u32);
                let spend = Gamma::new(6.0, 1.0 / nu.sample(&mut rng)).unwrap();
                let total: f64 = (0..x).map(|_| spend.sample(&mut rng)).sum();
                SpendObservation {
                    x: f64::from(x),
                    m_x: total / f64::from(x),
                }
            })
            .collect();
        let cold = fit(&obs);
        // From the fit on the first half (as the backtest starts from the analysis' fit on
        // more data), and from a start far off.
        let half = fit(&obs[..75_000]).params;
        let far = GammaGammaParams {
            p: cold.params.p * 3.0,
            q: cold.params.q / 2.0,
            gamma: cold.params.gamma * 5.0,
        };
        for start in [half, far] {
            let warm = fit_from(&obs, Some(&start));
            assert!(cold.converged && warm.converged);
            let (w, c) = (warm.params, cold.params);
            for (name, u, v) in [
                ("p", w.p, c.p),
                ("q", w.q, c.q),
                ("gamma", w.gamma, c.gamma),
            ] {
                assert!((u - v).abs() <= 1e-6 * v.abs(), "{name}: {u} vs {v}");
            }
            let gap = (warm.log_likelihood - cold.log_likelihood).abs();
            assert!(gap <= 1e-9 * cold.log_likelihood.abs(), "{gap}");
        }
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
