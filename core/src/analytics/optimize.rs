//! Minimisers used on log-parameters by the model fits: BFGS with analytic gradients (few
//! evaluations, which matters when one evaluation walks a million customers) and Nelder–Mead
//! with restarts (derivative-free, the fallback when BFGS stalls).
//!
//! Restarting Nelder–Mead from the best vertex until the value stops improving guards against
//! the simplex collapsing early, a known weakness of the plain method.

/// Settings of a minimisation.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Side of the initial simplex (in the units of the variables, i.e. log-parameters).
    pub initial_step: f64,
    /// Stop when the spread of values across the simplex is below this (relative to 1 + |f|).
    pub f_tol: f64,
    /// ... and every vertex is within this of the best one (max norm).
    pub x_tol: f64,
    /// Objective evaluations allowed in total (over all restarts).
    pub max_evaluations: usize,
    /// Restarts from the best point after a converged run.
    pub max_restarts: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            initial_step: 0.5,
            f_tol: 1e-13,
            x_tol: 1e-9,
            max_evaluations: 40_000,
            max_restarts: 8,
        }
    }
}

/// Outcome of a minimisation.
#[derive(Debug, Clone)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    pub evaluations: usize,
    /// The simplex met both tolerances and a restart did not improve the value.
    pub converged: bool,
}

/// Minimises `f` from `start`. Non-finite values are treated as +∞ (outside the domain).
pub fn nelder_mead(mut f: impl FnMut(&[f64]) -> f64, start: &[f64], s: &Settings) -> Minimum {
    let mut eval = |x: &[f64]| {
        let v = f(x);
        if v.is_finite() { v } else { f64::INFINITY }
    };
    let mut best = start.to_vec();
    let mut best_value = eval(&best);
    let mut evaluations = 1;
    let mut converged = false;
    for _ in 0..=s.max_restarts {
        let run = simplex_run(
            &mut eval,
            &best,
            best_value,
            s,
            s.max_evaluations.saturating_sub(evaluations),
        );
        evaluations += run.evaluations;
        let improvement = best_value - run.value;
        let improved = run.value < best_value;
        if improved {
            best = run.x;
            best_value = run.value;
        }
        if run.converged && improvement <= s.f_tol * (1.0 + best_value.abs()) {
            converged = best_value.is_finite();
            break;
        }
        if evaluations >= s.max_evaluations {
            break;
        }
    }
    Minimum {
        x: best,
        value: best_value,
        evaluations,
        converged,
    }
}

fn simplex_run(
    eval: &mut impl FnMut(&[f64]) -> f64,
    start: &[f64],
    start_value: f64,
    s: &Settings,
    budget: usize,
) -> Minimum {
    let n = start.len();
    let mut pts: Vec<Vec<f64>> = vec![start.to_vec()];
    let mut vals = vec![start_value];
    let mut evaluations = 0;
    for i in 0..n {
        let mut p = start.to_vec();
        p[i] += s.initial_step;
        vals.push(eval(&p));
        pts.push(p);
        evaluations += 1;
    }
    // Standard coefficients: reflection 1, expansion 2, contraction 1/2, shrink 1/2.
    let mut converged = false;
    while evaluations < budget {
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&i, &j| vals[i].total_cmp(&vals[j]));
        pts = order.iter().map(|&i| pts[i].clone()).collect();
        vals = order.iter().map(|&i| vals[i]).collect();

        let spread = vals[n] - vals[0];
        let size = pts[1..]
            .iter()
            .flat_map(|p| p.iter().zip(&pts[0]).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max);
        if spread <= s.f_tol * (1.0 + vals[0].abs()) && size <= s.x_tol {
            converged = vals[0].is_finite();
            break;
        }

        let centroid: Vec<f64> = (0..n)
            .map(|k| pts[..n].iter().map(|p| p[k]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&pts[n])
                .map(|(c, w)| c + t * (c - w))
                .collect()
        };
        let xr = along(1.0);
        let fr = eval(&xr);
        evaluations += 1;
        if fr < vals[0] {
            let xe = along(2.0);
            let fe = eval(&xe);
            evaluations += 1;
            if fe < fr {
                pts[n] = xe;
                vals[n] = fe;
            } else {
                pts[n] = xr;
                vals[n] = fr;
            }
        } else if fr < vals[n - 1] {
            pts[n] = xr;
            vals[n] = fr;
        } else {
            // Outside contraction when the reflection helped a little, inside otherwise.
            let (xc, fc) = if fr < vals[n] {
                let xc = along(0.5);
                let fc = eval(&xc);
                (xc, fc)
            } else {
                let xc = along(-0.5);
                let fc = eval(&xc);
                (xc, fc)
            };
            evaluations += 1;
            if fc < vals[n].min(fr) {
                pts[n] = xc;
                vals[n] = fc;
            } else {
                for i in 1..=n {
                    let shrunk: Vec<f64> = pts[i]
                        .iter()
                        .zip(&pts[0])
                        .map(|(p, b)| b + 0.5 * (p - b))
                        .collect();
                    vals[i] = eval(&shrunk);
                    pts[i] = shrunk;
                    evaluations += 1;
                }
            }
        }
    }
    let best = (0..=n)
        .min_by(|&i, &j| vals[i].total_cmp(&vals[j]))
        .unwrap_or(0);
    Minimum {
        x: pts[best].clone(),
        value: vals[best],
        evaluations,
        converged,
    }
}

/// BFGS settings.
#[derive(Debug, Clone, Copy)]
pub struct BfgsSettings {
    /// Converged when every gradient component is below this.
    pub g_tol: f64,
    pub max_iterations: usize,
}

impl Default for BfgsSettings {
    fn default() -> Self {
        BfgsSettings {
            g_tol: 1e-9,
            max_iterations: 500,
        }
    }
}

/// Minimises `fg` (value, and gradient written into the slice) from `start` by BFGS on the
/// inverse Hessian with a backtracking (Armijo) line search. Non-finite values count as +∞.
pub fn bfgs(fg: impl FnMut(&[f64], &mut [f64]) -> f64, start: &[f64], s: &BfgsSettings) -> Minimum {
    bfgs_warm(fg, start, None, s).0
}

/// BFGS started from a known inverse Hessian (row-major n×n), for instance the one a fit of
/// a coarser version of the same objective ended with; also returns the final one. A good
/// start turns the first steps into Newton steps, so a fit polished this way needs a handful
/// of evaluations instead of dozens. `None` starts from the identity, as `bfgs` does.
pub fn bfgs_warm(
    mut fg: impl FnMut(&[f64], &mut [f64]) -> f64,
    start: &[f64],
    inverse_hessian: Option<&[f64]>,
    s: &BfgsSettings,
) -> (Minimum, Vec<f64>) {
    let n = start.len();
    let mut x = start.to_vec();
    let mut g = vec![0.0; n];
    let mut f = fg(&x, &mut g);
    let mut evaluations = 1;
    let identity: Vec<f64> = (0..n * n)
        .map(|i| if i % (n + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let mut h = match inverse_hessian {
        Some(h) if h.len() == n * n && h.iter().all(|v| v.is_finite()) => h.to_vec(),
        _ => identity.clone(),
    };
    let finite = |f: f64, g: &[f64]| f.is_finite() && g.iter().all(|v| v.is_finite());
    if !finite(f, &g) {
        let min = Minimum {
            x,
            value: f64::INFINITY,
            evaluations,
            converged: false,
        };
        return (min, h);
    }
    let (mut x_new, mut g_new) = (vec![0.0; n], vec![0.0; n]);
    let mut converged = false;
    for _ in 0..s.max_iterations {
        if g.iter().all(|v| v.abs() < s.g_tol) {
            converged = true;
            break;
        }
        let mut d: Vec<f64> = (0..n)
            .map(|i| -(0..n).map(|j| h[i * n + j] * g[j]).sum::<f64>())
            .collect();
        let mut slope: f64 = d.iter().zip(&g).map(|(a, b)| a * b).sum();
        if slope >= 0.0 {
            // Not a descent direction: reset to steepest descent.
            h.copy_from_slice(&identity);
            d = g.iter().map(|v| -v).collect();
            slope = -g.iter().map(|v| v * v).sum::<f64>();
        }
        // Backtracking; steps in log-parameters larger than 2 are cut to keep exp() sane.
        let longest = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut step = if longest > 2.0 { 2.0 / longest } else { 1.0 };
        let mut f_new = f64::INFINITY;
        for _ in 0..60 {
            for i in 0..n {
                x_new[i] = x[i] + step * d[i];
            }
            f_new = fg(&x_new, &mut g_new);
            evaluations += 1;
            if finite(f_new, &g_new) && f_new <= f + 1e-4 * step * slope {
                break;
            }
            step *= 0.5;
        }
        if !finite(f_new, &g_new) || f_new > f + 1e-4 * step * slope {
            break; // no progress possible along any tried step
        }
        let sv: Vec<f64> = (0..n).map(|i| x_new[i] - x[i]).collect();
        let yv: Vec<f64> = (0..n).map(|i| g_new[i] - g[i]).collect();
        let sy: f64 = sv.iter().zip(&yv).map(|(a, b)| a * b).sum();
        if sy > 1e-300 {
            // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ
            let rho = 1.0 / sy;
            let hy: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|j| h[i * n + j] * yv[j]).sum())
                .collect();
            let yhy: f64 = yv.iter().zip(&hy).map(|(a, b)| a * b).sum();
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] += -rho * (hy[i] * sv[j] + sv[i] * hy[j])
                        + (rho * rho * yhy + rho) * sv[i] * sv[j];
                }
            }
        }
        let progress = f - f_new;
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        f = f_new;
        if progress == 0.0 && g.iter().all(|v| v.abs() < s.g_tol.sqrt()) {
            converged = true;
            break;
        }
    }
    let min = Minimum {
        x,
        value: f,
        evaluations,
        converged,
    };
    (min, h)
}

/// Hessian (row-major n×n) of a function whose gradient `grad` is known analytically, by
/// central differences of that gradient with step `h`, symmetrised. With an exact gradient
/// the error is O(h²) and needs only 2n gradient evaluations (the Laplace approximation
/// evaluates it once, at the optimum).
pub fn hessian_from_gradient(
    mut grad: impl FnMut(&[f64], &mut [f64]),
    at: &[f64],
    h: f64,
) -> Vec<f64> {
    let n = at.len();
    let mut out = vec![0.0; n * n];
    let (mut up, mut down) = (vec![0.0; n], vec![0.0; n]);
    let mut x = at.to_vec();
    for j in 0..n {
        x[j] = at[j] + h;
        grad(&x, &mut up);
        x[j] = at[j] - h;
        grad(&x, &mut down);
        x[j] = at[j];
        for i in 0..n {
            out[i * n + j] = (up[i] - down[i]) / (2.0 * h);
        }
    }
    for i in 0..n {
        for j in 0..i {
            let m = 0.5 * (out[i * n + j] + out[j * n + i]);
            out[i * n + j] = m;
            out[j * n + i] = m;
        }
    }
    out
}

/// Lower Cholesky factor of a symmetric positive definite row-major n×n matrix.
pub(crate) fn cholesky(m: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = m[i * n + i] - s;
                if !(d > 0.0 && d.is_finite()) {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (m[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Inverse of a symmetric positive definite matrix through its Cholesky factor.
pub(crate) fn spd_inverse(m: &[f64], n: usize) -> Option<Vec<f64>> {
    let l = cholesky(m, n)?;
    // Solve L Lᵀ X = I column by column.
    let mut inv = vec![0.0; n * n];
    for c in 0..n {
        let mut y = vec![0.0; n];
        for i in 0..n {
            let e = if i == c { 1.0 } else { 0.0 };
            y[i] = (e - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
        }
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|k| l[k * n + i] * inv[k * n + c]).sum();
            inv[i * n + c] = (y[i] - s) / l[i * n + i];
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfgs_finds_the_rosenbrock_minimum_with_few_evaluations() {
        let fg = |x: &[f64], g: &mut [f64]| {
            g[0] = -2.0 * (1.0 - x[0]) - 400.0 * x[0] * (x[1] - x[0] * x[0]);
            g[1] = 200.0 * (x[1] - x[0] * x[0]);
            (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2)
        };
        let m = bfgs(fg, &[-1.2, 1.0], &BfgsSettings::default());
        assert!(m.converged, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-8 && (m.x[1] - 1.0).abs() < 1e-8,
            "{:?}",
            m.x
        );
        assert!(m.evaluations < 200, "{}", m.evaluations);
    }

    #[test]
    fn bfgs_warm_started_with_the_inverse_hessian_takes_newton_steps() {
        // f = ½ (4 x² + y²) − x: the minimum is (1/4, 0), the inverse Hessian diag(1/4, 1).
        let fg = |v: &[f64], g: &mut [f64]| {
            g[0] = 4.0 * v[0] - 1.0;
            g[1] = v[1];
            0.5 * (4.0 * v[0] * v[0] + v[1] * v[1]) - v[0]
        };
        let s = BfgsSettings::default();
        let (warm, h) = bfgs_warm(fg, &[1.0, -1.0], Some(&[0.25, 0.0, 0.0, 1.0]), &s);
        assert!(warm.converged && warm.evaluations == 2, "{warm:?}");
        assert!((warm.x[0] - 0.25).abs() < 1e-12 && warm.x[1].abs() < 1e-12);
        assert_eq!(h.len(), 4);
        let cold = bfgs(fg, &[1.0, -1.0], &s);
        assert!(
            cold.converged && cold.evaluations > warm.evaluations,
            "{cold:?}"
        );
    }

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let rosen = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let m = nelder_mead(rosen, &[-1.2, 1.0], &Settings::default());
        assert!(m.converged);
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{:?}",
            m.x
        );
    }

    #[test]
    fn treats_non_finite_values_as_outside_the_domain() {
        // ln is undefined for x ≤ 0; the minimiser must stay inside and find x = 1.
        let f = |x: &[f64]| x[0] - x[0].ln();
        let m = nelder_mead(f, &[3.0], &Settings::default());
        assert!(m.converged);
        assert!((m.x[0] - 1.0).abs() < 1e-5, "{:?}", m.x);
    }

    #[test]
    fn reports_no_convergence_when_out_of_budget() {
        let rosen = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let s = Settings {
            max_evaluations: 20,
            ..Settings::default()
        };
        let m = nelder_mead(rosen, &[-1.2, 1.0], &s);
        assert!(!m.converged);
        assert!(m.evaluations <= 20 + 2);
    }
}
