//! Small pieces of frequentist statistics for the experiment results: normal and Student-t
//! quantiles, Wilson score intervals, sample moments.

use crate::analytics::special::ln_gamma;

/// z_{0.975}: two-sided 95 %.
pub const Z_975: f64 = 1.959_963_984_540_054;
/// z_{0.80}: 80 % power.
pub const Z_80: f64 = 0.841_621_233_572_914_3;

/// Regularised incomplete beta I_x(a, b) by its continued fraction (modified Lentz), with
/// the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
pub fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    let tiny = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    d = 1.0 / if d.abs() < tiny { tiny } else { d };
    let mut f = d;
    for m in 1..500 {
        let m = f64::from(m);
        for num in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + num * d;
            d = 1.0 / if d.abs() < tiny { tiny } else { d };
            c = 1.0 + num / c;
            if c.abs() < tiny {
                c = tiny;
            }
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-15 {
            break;
        }
    }
    ln_front.exp() * f / a
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / (df + t * t), df / 2.0, 0.5);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The t quantile for probability `p` in (0.5, 1), by bisection on the CDF (60 halvings of
/// [0, 1e4] reach 1e-14; called once per interval, so speed does not matter).
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if !df.is_finite() || df > 1e7 {
        return normal_quantile_975_or(p);
    }
    let (mut lo, mut hi) = (0.0f64, 1e4f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

fn normal_quantile_975_or(p: f64) -> f64 {
    // Only the 97.5 % point is needed in the limit.
    debug_assert!((p - 0.975).abs() < 1e-12);
    Z_975
}

/// Wilson score interval for k successes of n at z.
pub fn wilson(k: f64, n: f64, z: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// Mean, unbiased variance and sample skewness (g1, 0 when the variance is 0).
pub fn moments(v: &[f64]) -> (f64, f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mean = v.iter().sum::<f64>() / n;
    let (mut m2, mut m3) = (0.0, 0.0);
    for x in v {
        let d = x - mean;
        m2 += d * d;
        m3 += d * d * d;
    }
    let var = if v.len() > 1 { m2 / (n - 1.0) } else { 0.0 };
    let skew = if m2 > 0.0 {
        (m3 / n) / (m2 / n).powf(1.5)
    } else {
        0.0
    };
    (mean, var, skew)
}

/// The q-quantile of sorted values by linear interpolation between order statistics
/// (the "type 7" definition of R and numpy).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    quantile_of(sorted.len(), q, |i| sorted[i])
}

/// The same quantile of `n` values given by their order statistics: `nth(i)` is the i-th
/// smallest (from 0), as read off a histogram without materialising the values. NaN when
/// `n` is 0.
pub fn quantile_of(n: usize, q: f64, nth: impl Fn(usize) -> f64) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * q;
    let (lo, frac) = (h.floor() as usize, h - h.floor());
    let hi = (lo + 1).min(n - 1);
    let low = nth(lo);
    if frac == 0.0 {
        return low;
    }
    low + frac * (nth(hi) - low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        // Tables: t_{0.975} = 12.706 (1 df), 2.228 (10), 2.042 (30), 1.984 (100).
        for (df, want) in [
            (1.0, 12.7062),
            (10.0, 2.2281),
            (30.0, 2.0423),
            (100.0, 1.9840),
        ] {
            let t = student_t_quantile(0.975, df);
            assert!((t - want).abs() < 1e-4, "{df}: {t}");
        }
        assert!((student_t_quantile(0.975, 1e6) - Z_975).abs() < 1e-5);
        assert!((student_t_cdf(0.0, 5.0) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn wilson_matches_a_worked_example() {
        // 81 of 263 at 95 %: (0.2553, 0.3662) (Newcombe 1998, Table I's kind of example).
        let (lo, hi) = wilson(81.0, 263.0, Z_975);
        assert!(
            (lo - 0.2553).abs() < 1e-4 && (hi - 0.3662).abs() < 1e-4,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0.0, 10.0, Z_975).0, 0.0);
    }

    #[test]
    fn moments_and_quantiles() {
        let (m, v, s) = moments(&[1.0, 2.0, 3.0, 10.0]);
        assert_eq!(m, 4.0);
        assert!((v - 50.0 / 3.0).abs() < 1e-12);
        assert!(s > 1.0);
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.1), 1.4);
    }
}
