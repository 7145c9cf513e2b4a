//! BG/NBD purchase model (Fader, Hardie & Lee 2005): fit by maximum likelihood, P(alive),
//! conditional and unconditional expected purchases.
//!
//! Notation: x repeat purchases, t_x time of the last one and T the age, both measured from the
//! first purchase in the model's time unit; t a forecast horizon in the same unit.

use serde::{Deserialize, Serialize};

use super::compress::Compressed;
use super::optimize::{
    BfgsSettings, Minimum, Settings, bfgs_warm, hessian_from_gradient, nelder_mead, spd_inverse,
};
use super::parallel::{BLOCK, KeyMap, sum_blocks};
use super::special::{digamma, ln_beta, ln_gamma, log_add_exp, scaled_hyp2f1};

/// The four BG/NBD parameters: purchase rates λ ~ Gamma(r, α), dropout p ~ Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// A fitted BG/NBD model and how the fit went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BgNbdFit {
    pub params: BgNbdParams,
    /// Σ ln L over customers, in the time unit of the data (comparable with the literature).
    pub log_likelihood: f64,
    pub converged: bool,
    pub customers: usize,
    pub unique_rows: usize,
    /// Objective evaluations over all stages (coarsened copy, exact data, any Nelder–Mead).
    pub evaluations: usize,
}

/// Parameters outside this range mean the optimiser ran off to a degenerate corner (for
/// example b → ∞ when nobody ever drops out); such a fit is reported as not converged.
const PARAM_RANGE: (f64, f64) = (1e-6, 1e6);

impl BgNbdParams {
    fn from_log(v: &[f64]) -> BgNbdParams {
        BgNbdParams {
            r: v[0].exp(),
            alpha: v[1].exp(),
            a: v[2].exp(),
            b: v[3].exp(),
        }
    }

    fn in_range(&self) -> bool {
        [self.r, self.alpha, self.a, self.b]
            .iter()
            .all(|v| v.is_finite() && (PARAM_RANGE.0..=PARAM_RANGE.1).contains(v))
    }

    /// ln L for one customer, in the factorisation of Fader & Hardie's note 027: the power
    /// term ((α+t_x)/(α+T))^{r+x} is at most 1, so nothing overflows for any x.
    pub fn log_likelihood(&self, x: f64, t_x: f64, t: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *self;
        let ln_a_tx = (alpha + t_x).ln();
        let head = r * alpha.ln() + ln_gamma(r + x) - ln_gamma(r) - (r + x) * ln_a_tx;
        let ln_bab = ln_beta(a, b);
        let stay = ln_beta(a, b + x) - ln_bab + (r + x) * (ln_a_tx - (alpha + t).ln());
        let tail = if x > 0.0 {
            log_add_exp(stay, ln_beta(a + 1.0, b + x - 1.0) - ln_bab)
        } else {
            stay
        };
        head + tail
    }

    /// Σ weight · ln L over compressed rows.
    pub fn total_log_likelihood(&self, data: &Compressed) -> f64 {
        data.rows
            .iter()
            .zip(&data.weights)
            .map(|(row, w)| w * self.log_likelihood(row.x, row.t_x, row.t))
            .sum()
    }

    /// P(alive | x, t_x, T) (note 021). Exactly 1 when x = 0.
    pub fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        if x <= 0.0 {
            return 1.0;
        }
        let BgNbdParams { r, alpha, a, b } = *self;
        // 1 / (1 + e^{ln_odds}) computed on the side that cannot overflow.
        let ln_odds =
            a.ln() - (b + x - 1.0).ln() + (r + x) * ((alpha + t).ln() - (alpha + t_x).ln());
        if ln_odds > 0.0 {
            let e = (-ln_odds).exp();
            e / (1.0 + e)
        } else {
            1.0 / (1.0 + ln_odds.exp())
        }
    }

    /// E[Y(t) | x, t_x, T]: expected purchases in (T, T + t] (eq. 10). It factors into
    /// P(alive | x, t_x, T) times `expected_purchases_if_alive(t, x, T)`.
    pub fn conditional_expected_purchases(&self, horizon: f64, x: f64, t_x: f64, t: f64) -> f64 {
        (self.expected_purchases_if_alive(horizon, x, t) * self.p_alive(x, t_x, t)).max(0.0)
    }

    /// The numerator of eq. 10, which depends on x and T only (not on t_x).
    ///
    /// The factor ((α+T)/(α+T+t))^{r+x} · ₂F₁(r+x, b+x; a+b+x−1; z) is evaluated as one
    /// scaled hypergeometric, which turns it into (1−z)^{a−1} ₂F₁(a+b−1−r, a−1; a+b+x−1; z)
    /// and keeps it finite for any x.
    pub fn expected_purchases_if_alive(&self, horizon: f64, x: f64, t: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        let BgNbdParams { r, alpha, b, .. } = *self;
        let a = away_from_one(self.a);
        let z = horizon / (alpha + t + horizon);
        let c = a + b + x - 1.0;
        let scaled = scaled_hyp2f1(r + x, b + x, c, z, r + x);
        (c / (a - 1.0) * (1.0 - scaled)).max(0.0)
    }

    /// E[X(t)] for a customer drawn at random at time 0 (eq. 9).
    pub fn expected_purchases(&self, horizon: f64) -> f64 {
        self.conditional_expected_purchases(horizon, 0.0, 0.0, 0.0)
    }
}

/// The expectations divide by a − 1; at a = 1 exactly they have a finite limit, reached here
/// by moving a a hair's breadth away (relative change 1e-7, far below the fit's precision).
fn away_from_one(a: f64) -> f64 {
    if (a - 1.0).abs() < 1e-7 {
        if a >= 1.0 { 1.0 + 1e-7 } else { 1.0 - 1e-7 }
    } else {
        a
    }
}

/// The compressed rows re-indexed for fast likelihood evaluation: every term that depends
/// only on x is computed once per distinct x, every ln(α + t) once per distinct time, so a
/// row costs one exp, one log and one division. One evaluation of value and gradient walks the
/// rows once, in parallel blocks (`parallel::sum_blocks`, the same sum on any thread count).
struct Prepared {
    xs: Vec<f64>,
    /// Σ weights per distinct x.
    weight_of_x: Vec<f64>,
    /// Distinct times (t_x and T) divided by the time scale, in first-seen order.
    times: Vec<f64>,
    /// (x index, t_x index, T index, weight)
    rows: Vec<(u32, u32, u32, f64)>,
}

/// Index of `key` in `values`, appending it when new.
fn intern(ids: &mut KeyMap<u64, u32>, values: &mut Vec<f64>, key: f64) -> u32 {
    // +0.0 folds −0.0 into 0.0.
    let key = key + 0.0;
    *ids.entry(key.to_bits()).or_insert_with(|| {
        values.push(key);
        (values.len() - 1) as u32
    })
}

impl Prepared {
    fn new(data: &Compressed, time_scale: f64) -> Prepared {
        let (mut x_ids, mut t_ids) = (KeyMap::default(), KeyMap::default());
        let (mut xs, mut times) = (Vec::new(), Vec::new());
        let mut weight_of_x = Vec::new();
        let rows = data
            .rows
            .iter()
            .zip(&data.weights)
            .map(|(r, &w)| {
                let xi = intern(&mut x_ids, &mut xs, r.x);
                weight_of_x.resize(xs.len(), 0.0);
                weight_of_x[xi as usize] += w;
                let txi = intern(&mut t_ids, &mut times, r.t_x / time_scale);
                let ti = intern(&mut t_ids, &mut times, r.t / time_scale);
                (xi, txi, ti, w)
            })
            .collect();
        Prepared {
            xs,
            weight_of_x,
            times,
            rows,
        }
    }

    /// The same customers with every (scaled) time snapped to a grid of 1/`steps`, rows that
    /// become equal merged. Snapping is monotone, so t_x ≤ T still holds; the weights per x
    /// are unchanged.
    fn coarsened(&self, steps: f64) -> Prepared {
        let mut t_ids = KeyMap::default();
        let mut times = Vec::new();
        let snapped: Vec<u32> = self
            .times
            .iter()
            .map(|t| intern(&mut t_ids, &mut times, (t * steps).round() / steps))
            .collect();
        let mut row_ids: KeyMap<(u32, u32, u32), usize> = KeyMap::default();
        let mut rows: Vec<(u32, u32, u32, f64)> = Vec::new();
        for &(xi, txi, ti, w) in &self.rows {
            let key = (xi, snapped[txi as usize], snapped[ti as usize]);
            let i = *row_ids.entry(key).or_insert_with(|| {
                rows.push((key.0, key.1, key.2, 0.0));
                rows.len() - 1
            });
            rows[i].3 += w;
        }
        Prepared {
            xs: self.xs.clone(),
            weight_of_x: self.weight_of_x.clone(),
            times,
            rows,
        }
    }

    /// Σ w ln L and its gradient with respect to (ln r, ln α, ln a, ln b).
    fn log_likelihood_and_gradient(&self, p: &BgNbdParams, grad: &mut [f64]) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *p;
        let (ln_bab, psi_ab, psi_a, psi_b) =
            (ln_beta(a, b), digamma(a + b), digamma(a), digamma(b));
        let (lg_r, psi_r, ln_alpha) = (ln_gamma(r), digamma(r), alpha.ln());
        // Per distinct x: stay / die log-weights and their a, b derivatives.
        struct PerX {
            rx: f64,
            stay0: f64,
            die: f64,
            ds_a: f64,
            ds_b: f64,
            dd_a: f64,
            dd_b: f64,
        }
        let mut value = 0.0;
        let mut g = [0.0f64; 4];
        let psi_a1 = digamma(a + 1.0);
        let per_x: Vec<PerX> = self
            .xs
            .iter()
            .zip(&self.weight_of_x)
            .map(|(&x, &w)| {
                let psi_abx = digamma(a + b + x);
                value += w * (ln_gamma(r + x) - lg_r + r * ln_alpha);
                g[0] += w * (digamma(r + x) - psi_r + ln_alpha);
                g[1] += w * r / alpha;
                let (die, dd_a, dd_b) = if x > 0.0 {
                    (
                        ln_beta(a + 1.0, b + x - 1.0) - ln_bab,
                        psi_a1 - psi_abx - psi_a + psi_ab,
                        digamma(b + x - 1.0) - psi_abx - psi_b + psi_ab,
                    )
                } else {
                    (f64::NEG_INFINITY, 0.0, 0.0)
                };
                PerX {
                    rx: r + x,
                    stay0: ln_beta(a, b + x) - ln_bab,
                    die,
                    ds_a: psi_ab - psi_abx,
                    ds_b: digamma(b + x) - psi_abx - psi_b + psi_ab,
                    dd_a,
                    dd_b,
                }
            })
            .collect();
        let ln_t: Vec<f64> = self.times.iter().map(|t| (alpha + t).ln()).collect();
        let inv_t: Vec<f64> = self.times.iter().map(|t| 1.0 / (alpha + t)).collect();
        let sums = sum_blocks(self.rows.len(), |range| {
            let mut acc = [0.0f64; 5];
            for &(xi, txi, ti, w) in &self.rows[range] {
                let px = &per_x[xi as usize];
                let (l_tx, l_t) = (ln_t[txi as usize], ln_t[ti as usize]);
                let stay = px.stay0 + px.rx * (l_tx - l_t);
                // log(e^stay + e^die) and the share of the "stay" branch. ln(1 + e) rather
                // than ln_1p(e): e ≤ 1, and the absolute error of the former (≤ 1 ulp of 1)
                // is already below that of adding the result to stay or die.
                let (lse, p_stay) = if px.die == f64::NEG_INFINITY {
                    (stay, 1.0)
                } else if stay >= px.die {
                    let one_e = 1.0 + (px.die - stay).exp();
                    (stay + one_e.ln(), 1.0 / one_e)
                } else {
                    let e = (stay - px.die).exp();
                    let one_e = 1.0 + e;
                    (px.die + one_e.ln(), e / one_e)
                };
                let p_die = 1.0 - p_stay;
                let (i_tx, i_t) = (inv_t[txi as usize], inv_t[ti as usize]);
                acc[0] += w * (lse - px.rx * l_tx);
                acc[1] += w * (-l_tx + p_stay * (l_tx - l_t));
                acc[2] += w * (-px.rx * i_tx + p_stay * px.rx * (i_tx - i_t));
                acc[3] += w * (p_stay * px.ds_a + p_die * px.dd_a);
                acc[4] += w * (p_stay * px.ds_b + p_die * px.dd_b);
            }
            acc
        });
        value += sums[0];
        for (gk, s) in g.iter_mut().zip(&sums[1..]) {
            *gk += s;
        }
        for (out, (d, v)) in grad.iter_mut().zip(g.iter().zip([r, alpha, a, b])) {
            *out = d * v; // chain rule for log-parameters
        }
        value
    }

    /// Minimises −(1/W) Σ w ln L over log-parameters, from `start` and (when known) an
    /// inverse Hessian of that scaled objective.
    fn minimise(&self, start: &[f64], inverse_hessian: Option<&[f64]>) -> (Minimum, Vec<f64>) {
        let total_weight: f64 = self.weight_of_x.iter().sum::<f64>().max(1.0);
        let objective = |v: &[f64], grad: &mut [f64]| {
            let value = self.log_likelihood_and_gradient(&BgNbdParams::from_log(v), grad);
            grad.iter_mut().for_each(|g| *g = -*g / total_weight);
            -value / total_weight
        };
        bfgs_warm(objective, start, inverse_hessian, &BfgsSettings::default())
    }
}

/// Above this many unique rows a fit starts on a coarsened copy of the data (see `fit`).
const COARSE_ABOVE: usize = 4 * BLOCK;
/// Grid of the coarse copy: 1/32 of the largest T (about 23 days on two years of data).
///
/// Times are already whole days (see `features`), so rounding to the day merges nothing
/// more; coarser grids do, at a cost in accuracy. Measured on the benchmark's million
/// customers (646k exact rows, exact fit r 0.8435, α 20.880, a 1.0780, b 14.187):
///
/// | grid (of max T) | rows | r of the coarse fit | BFGS evaluations coarse + exact |
/// |---|---|---|---|
/// | 1/512 (1.4 days) | 540k | 0.8436 | 42 + 7 |
/// | 1/128 (5.7 days) | 168k | 0.8426 | 22 + 5 |
/// | 1/64 (11 days) | 65k | 0.8369 | 69 + 9 |
/// | 1/32 (23 days) | 23k | 0.8139 (b 14.30, a 1.100) | 72 + 7 |
///
/// Even the 23-day grid moves the parameters by under 4 %, too much to use as the answer
/// but close enough that the exact stage converges in a handful of passes; a coarser
/// copy is the cheapest start, so 1/32 it is.
const COARSE_STEPS: f64 = 32.0;

/// Maximum-likelihood fit on compressed rows.
///
/// Works on log-parameters (all four must be positive) with time rescaled so the largest T is
/// 1, as lifetimes does; this makes the starting point scale-free. BFGS with the analytic
/// gradient does the work; should it stall, Nelder–Mead continues from its best point. The
/// log-likelihood reported is in the data's own time unit.
///
/// Large data (over `COARSE_ABOVE` unique rows) is fitted in two stages: first on a copy with
/// times snapped to a grid of 1/`COARSE_STEPS` of the largest T, which merges most rows and
/// lands within a few percent of the optimum; then BFGS on the exact rows starts from that
/// point and that fit's inverse Hessian. The second stage has the same convergence test as a
/// direct fit, so the result is the maximum of the exact likelihood to the same tolerance;
/// only the path there is shorter (a few full passes over the rows instead of dozens). Should
/// the coarse stage fail, the exact fit starts from scratch as a direct fit would.
pub fn fit(data: &Compressed) -> BgNbdFit {
    fit_staged(data, true, None)
}

/// `fit` started from `start` (when its parameters are in range) instead of the generic
/// starting point: for parameters known to be near the optimum, such as the same shop's fit
/// on a longer history (the backtest's calibration fit starts from the analysis'). Large data
/// then skips the coarse fit: the exact stage starts at `start` with the inverse of the
/// coarse copy's Hessian there (central differences of its gradient), so its first steps are
/// Newton steps. The exact stage's convergence test is unchanged, so the result is the same
/// optimum to the optimiser's tolerance. On the benchmark's calibration data (443k rows,
/// started from the fit on the whole history) this takes 8 coarse gradients and 7 exact
/// evaluations instead of 68 coarse and 8 exact ones.
pub fn fit_from(data: &Compressed, start: Option<&BgNbdParams>) -> BgNbdFit {
    fit_staged(data, true, start)
}

fn fit_staged(data: &Compressed, coarse_first: bool, from: Option<&BgNbdParams>) -> BgNbdFit {
    let max_t = data
        .rows
        .iter()
        .map(|row| row.t)
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let prepared = Prepared::new(data, max_t);
    let start = match from {
        // Time is rescaled so the largest T is 1: α scales with it.
        Some(p) if p.in_range() => [p.r.ln(), (p.alpha / max_t).ln(), p.a.ln(), p.b.ln()],
        _ => [0.0, (0.1f64).ln(), 0.0, 0.0],
    };
    let mut evaluations = 0;
    let mut warm = None;
    if from.is_some() && coarse_first {
        // A start near the optimum needs no coarse fit to get close, only the curvature
        // for Newton-like first steps: the Hessian at the start, by central differences of
        // the gradient (eight passes over the coarse copy of large data, or over small data
        // itself; without it the first steps of a warm start on small data crawled).
        let coarse_copy;
        let coarse = if prepared.rows.len() > COARSE_ABOVE {
            coarse_copy = prepared.coarsened(COARSE_STEPS);
            &coarse_copy
        } else {
            &prepared
        };
        let total_weight: f64 = coarse.weight_of_x.iter().sum::<f64>().max(1.0);
        let hessian = hessian_from_gradient(
            |v, g| {
                coarse.log_likelihood_and_gradient(&BgNbdParams::from_log(v), g);
                g.iter_mut().for_each(|x| *x = -*x / total_weight);
            },
            &start,
            1e-5,
        );
        evaluations += 8;
        if let Some(h) = spd_inverse(&hessian, 4) {
            warm = Some((start.to_vec(), h));
        }
    } else if coarse_first && prepared.rows.len() > COARSE_ABOVE {
        let (coarse, h) = prepared.coarsened(COARSE_STEPS).minimise(&start, None);
        evaluations += coarse.evaluations;
        if coarse.converged && BgNbdParams::from_log(&coarse.x).in_range() {
            warm = Some((coarse.x, h));
        }
    }
    let (mut min, _) = match &warm {
        Some((x, h)) => prepared.minimise(x, Some(h)),
        None => prepared.minimise(&start, None),
    };
    evaluations += min.evaluations;
    if !min.converged {
        let total_weight: f64 = data.weights.iter().sum::<f64>().max(1.0);
        let mut scratch = [0.0; 4];
        let more = nelder_mead(
            |v: &[f64]| {
                let p = BgNbdParams::from_log(v);
                -prepared.log_likelihood_and_gradient(&p, &mut scratch) / total_weight
            },
            &min.x,
            &Settings::default(),
        );
        evaluations += more.evaluations;
        min = more;
    }
    let mut params = BgNbdParams::from_log(&min.x);
    // ln L in the data's unit: scaling times by s changes each customer's ln L by −x ln s.
    let sum_wx: f64 = prepared
        .xs
        .iter()
        .zip(&prepared.weight_of_x)
        .map(|(x, w)| x * w)
        .sum();
    let log_likelihood =
        prepared.log_likelihood_and_gradient(&params, &mut [0.0; 4]) - sum_wx * max_t.ln();
    params.alpha *= max_t;
    BgNbdFit {
        params,
        log_likelihood,
        converged: min.converged && params.in_range() && log_likelihood.is_finite(),
        customers: data.customers(),
        unique_rows: data.rows.len(),
        evaluations,
    }
}

/// Hessian of Σ w ln L with respect to (ln r, ln α, ln a, ln b), the fit's own
/// parameterisation, at `params` (in the data's time unit: rescaling time only shifts ln α,
/// so the Hessian is the same as in the fit's scaled units). Row-major 4×4.
pub fn log_likelihood_hessian(data: &Compressed, params: &BgNbdParams) -> Vec<f64> {
    let prepared = Prepared::new(data, 1.0);
    let at = [
        params.r.ln(),
        params.alpha.ln(),
        params.a.ln(),
        params.b.ln(),
    ];
    hessian_from_gradient(
        |v, g| {
            prepared.log_likelihood_and_gradient(&BgNbdParams::from_log(v), g);
        },
        &at,
        1e-5,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLISHED: BgNbdParams = BgNbdParams {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };

    #[test]
    fn likelihood_sums_the_two_branches() {
        // Direct eq. 6 for a small customer, no logs.
        let p = PUBLISHED;
        let (x, tx, t) = (2.0f64, 30.43, 38.86);
        let g = |v: f64| ln_gamma(v).exp();
        let beta = |u: f64, v: f64| g(u) * g(v) / g(u + v);
        let common = g(p.r + x) * p.alpha.powf(p.r) / g(p.r);
        let l = beta(p.a, p.b + x) / beta(p.a, p.b) * common / (p.alpha + t).powf(p.r + x)
            + beta(p.a + 1.0, p.b + x - 1.0) / beta(p.a, p.b) * common
                / (p.alpha + tx).powf(p.r + x);
        assert!((p.log_likelihood(x, tx, t) - l.ln()).abs() < 1e-12);
    }

    #[test]
    fn prepared_likelihood_and_gradient_match_the_direct_form() {
        let data = Compressed::from_triples([
            (0, 0.0, 30.0),
            (2, 20.0, 38.0),
            (2, 20.0, 38.0),
            (7, 35.5, 36.0),
            (1, 3.0, 10.0),
        ]);
        let prepared = Prepared::new(&data, 1.0);
        let logs = [
            PUBLISHED.r.ln(),
            PUBLISHED.alpha.ln(),
            PUBLISHED.a.ln(),
            PUBLISHED.b.ln(),
        ];
        let mut grad = [0.0; 4];
        let value = prepared.log_likelihood_and_gradient(&PUBLISHED, &mut grad);
        assert!((value - PUBLISHED.total_log_likelihood(&data)).abs() < 1e-10);
        for k in 0..4 {
            let h = 1e-6;
            let mut up = logs;
            up[k] += h;
            let mut down = logs;
            down[k] -= h;
            let f = |v: &[f64; 4]| BgNbdParams::from_log(v).total_log_likelihood(&data);
            let numeric = (f(&up) - f(&down)) / (2.0 * h);
            assert!(
                (grad[k] - numeric).abs() < 1e-6,
                "d{k}: {} vs {numeric}",
                grad[k]
            );
        }
    }

    /// Customers from the BG/NBD process at `truth`, times in whole days over two years.
    fn simulated(customers: usize, seed: u64) -> Compressed {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Beta, Distribution, Gamma};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let rate = Gamma::new(0.8, 1.0 / 20.0).unwrap();
        let dropout = Beta::new(1.0, 10.0).unwrap();
        Compressed::from_triples((0..customers).map(|_| {
            let (lambda, p): (f64, f64) = (rate.sample(&mut rng), dropout.sample(&mut rng));
            let age = f64::from(rng.random_range(0..730u32));
            let (mut x, mut last, mut at) = (0u32, 0.0, 0.0);
            loop {
                at += -(1.0 - rng.random::<f64>()).ln() / lambda.max(1e-9);
                if at > age {
                    break;
                }
                x += 1;
                last = at.floor();
                if rng.random::<f64>() < p {
                    break;
                }
            }
            (x, last, age)
        }))
    }

    #[test]
    fn two_stage_fit_reaches_the_direct_fits_optimum() {
        let data = simulated(120_000, 11);
        assert!(data.rows.len() > COARSE_ABOVE, "{} rows", data.rows.len());
        let staged = fit_staged(&data, true, None);
        let direct = fit_staged(&data, false, None);
        assert!(staged.converged && direct.converged);
        let (s, d) = (staged.params, direct.params);
        for (name, u, v) in [
            ("r", s.r, d.r),
            ("alpha", s.alpha, d.alpha),
            ("a", s.a, d.a),
            ("b", s.b, d.b),
        ] {
            assert!((u - v).abs() <= 1e-6 * v.abs(), "{name}: {u} vs {v}");
        }
        let ll_gap = (staged.log_likelihood - direct.log_likelihood).abs();
        assert!(ll_gap <= 1e-9 * direct.log_likelihood.abs(), "{ll_gap}");
        // The point of the first stage: fewer passes over the exact rows.
        assert!(staged.evaluations > 0 && direct.evaluations > 0);
    }

    #[test]
    fn warm_started_fit_reaches_the_cold_fits_optimum() {
        // As the backtest does: start from a fit of another (here: independently drawn)
        // history of the same kind of shop, and from a start far off.
        let data = simulated(120_000, 11);
        let cold = fit(&data);
        let other = fit(&simulated(90_000, 12)).params;
        let far = BgNbdParams {
            r: cold.params.r * 3.0,
            alpha: cold.params.alpha / 4.0,
            a: cold.params.a * 2.0,
            b: cold.params.b / 3.0,
        };
        for start in [other, far] {
            let warm = fit_from(&data, Some(&start));
            assert!(cold.converged && warm.converged);
            let (w, c) = (warm.params, cold.params);
            for (name, u, v) in [
                ("r", w.r, c.r),
                ("alpha", w.alpha, c.alpha),
                ("a", w.a, c.a),
                ("b", w.b, c.b),
            ] {
                assert!((u - v).abs() <= 1e-6 * v.abs(), "{name}: {u} vs {v}");
            }
            let ll_gap = (warm.log_likelihood - cold.log_likelihood).abs();
            assert!(ll_gap <= 1e-9 * cold.log_likelihood.abs(), "{ll_gap}");
        }
    }

    #[test]
    fn reported_log_likelihood_is_the_direct_sum_in_the_data_unit() {
        let data = simulated(3_000, 5);
        let fit = fit(&data);
        let direct = fit.params.total_log_likelihood(&data);
        assert!(
            (fit.log_likelihood - direct).abs() < 1e-8 * direct.abs(),
            "{} vs {direct}",
            fit.log_likelihood
        );
    }

    #[test]
    fn p_alive_is_one_without_repeats_and_falls_with_silence() {
        assert_eq!(PUBLISHED.p_alive(0.0, 0.0, 50.0), 1.0);
        let recent = PUBLISHED.p_alive(3.0, 38.0, 39.0);
        let silent = PUBLISHED.p_alive(3.0, 5.0, 39.0);
        assert!(recent > silent && silent > 0.0 && recent < 1.0);
    }

    #[test]
    fn expectation_is_zero_at_zero_horizon_and_finite_for_huge_x() {
        assert_eq!(
            PUBLISHED.conditional_expected_purchases(0.0, 2.0, 30.0, 38.0),
            0.0
        );
        let v = PUBLISHED.conditional_expected_purchases(52.0, 1.0e7, 38.0, 38.0);
        assert!(v.is_finite() && v > 0.0);
    }
}
