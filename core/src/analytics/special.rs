//! Special functions the models need: lnΓ, ψ, ln B and the Gauss hypergeometric ₂F₁ on [0, 1).

/// ln Γ(x) for x > 0 (libm's `lgamma`, accurate to a few ulp).
pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// Digamma ψ(x) = d/dx ln Γ(x) for x > 0: recurrence up to x ≥ 10, then the asymptotic series
/// (truncation error below 1e-13 there).
pub fn digamma(mut x: f64) -> f64 {
    let mut acc = 0.0;
    while x < 10.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let series = inv2
        * (1.0 / 12.0
            - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 / 132.0))));
    acc + x.ln() - 0.5 * inv - series
}

/// ln B(a, b) = lnΓ(a) + lnΓ(b) − lnΓ(a + b).
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// ln(e^u + e^v) without overflow.
pub fn log_add_exp(u: f64, v: f64) -> f64 {
    let (hi, lo) = if u >= v { (u, v) } else { (v, u) };
    if hi == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// Upper bound on series terms; z < 1 guarantees convergence, this only bounds the work when
/// z is within about 1e-4 of 1 (documented truncation, never a hang).
const MAX_TERMS: usize = 200_000;

/// (1 − z)^s · ₂F₁(a, b; c; z) for 0 ≤ z < 1.
///
/// The prefactor is folded in on the log scale because the BG/NBD expectation multiplies a
/// ₂F₁ whose parameters grow with the number of purchases x by ((α+T)/(α+T+t))^{r+x}: each
/// factor alone over- or underflows for large x, the product does not.
///
/// The series is summed either directly or after Euler's transformation
/// ₂F₁(a,b;c;z) = (1−z)^{c−a−b} ₂F₁(c−a, c−b; c; z), whichever has the smaller upper
/// parameters (terms then shrink from the start instead of growing first).
pub fn scaled_hyp2f1(a: f64, b: f64, c: f64, z: f64, s: f64) -> f64 {
    debug_assert!((0.0..1.0).contains(&z), "z = {z} outside [0, 1)");
    if z == 0.0 {
        return 1.0;
    }
    let ln1mz = (-z).ln_1p();
    let (pa, pb, power) = if (c - a).abs() + (c - b).abs() < a.abs() + b.abs() {
        (c - a, c - b, s + c - a - b)
    } else {
        (a, b, s)
    };
    power_times(power * ln1mz, hyp2f1_series(pa, pb, c, z))
}

/// ₂F₁(a, b; c; z) for 0 ≤ z < 1.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    scaled_hyp2f1(a, b, c, z, 0.0)
}

/// e^{ln_power} · value, with value = 0 short-circuited so 0 · ∞ cannot become NaN.
fn power_times(ln_power: f64, value: f64) -> f64 {
    if value == 0.0 {
        0.0
    } else {
        value * ln_power.exp()
    }
}

/// The Gauss series Σ (a)_k (b)_k / ((c)_k k!) z^k, Kahan-summed.
fn hyp2f1_series(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0f64;
    let mut sum = 1.0f64;
    let mut comp = 0.0f64;
    for k in 0..MAX_TERMS {
        let kf = k as f64;
        term *= (a + kf) * (b + kf) / ((c + kf) * (kf + 1.0)) * z;
        if term == 0.0 || !term.is_finite() {
            break;
        }
        let y = term - comp;
        let t = sum + y;
        comp = (t - sum) - y;
        sum = t;
        // Past the peak (k > a, b) the ratio is below 1, so a tiny term means a tiny tail.
        if term.abs() <= 1e-17 * sum.abs() && kf > a.abs() + b.abs() {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-14));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-14
        ));
        assert!(close(ln_beta(2.0, 3.0), (1.0f64 / 12.0).ln(), 1e-14));
    }

    #[test]
    fn digamma_matches_known_values_and_the_lgamma_slope() {
        let euler = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler).abs() < 1e-13);
        assert!((digamma(0.5) + euler + 2.0 * 2f64.ln()).abs() < 1e-13);
        for &x in &[0.01, 0.3, 2.5, 7.0, 40.0, 1e5] {
            let h = 1e-6 * x;
            let slope = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!(
                (digamma(x) - slope).abs() < 1e-6 * (1.0 + slope.abs()),
                "x={x}"
            );
        }
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        for z in [0.0f64, 0.1, 0.5, 0.9, 0.99] {
            // 2F1(1,1;2;z) = −ln(1−z)/z
            let expect = if z == 0.0 { 1.0 } else { -(-z).ln_1p() / z };
            assert!(close(hyp2f1(1.0, 1.0, 2.0, z), expect, 1e-12), "z={z}");
            // 2F1(a,b;b;z) = (1−z)^−a
            assert!(close(hyp2f1(0.7, 3.3, 3.3, z), (1.0 - z).powf(-0.7), 1e-12));
            // 2F1(1/2,1;3/2;−w²)… use 2F1(1/2,1/2;3/2;z²) = asin(z)/z
            let w: f64 = z.sqrt();
            if w > 0.0 {
                assert!(close(hyp2f1(0.5, 0.5, 1.5, z), w.asin() / w, 1e-12));
            }
        }
    }

    #[test]
    fn scaled_form_survives_parameters_that_overflow_alone() {
        // (1−z)^{r+x} · 2F1(r+x, b+x; a+b+x−1; z) for x = 10^6: each factor alone is out of
        // range, the product is (1−z)^{a−1} · 2F1(a+b−1−r, a−1; a+b+x−1; z) ≈ (1−z)^{a−1}.
        let (r, a, b, x, z) = (0.243, 0.793, 2.426, 1.0e6, 0.5);
        let v = scaled_hyp2f1(r + x, b + x, a + b + x - 1.0, z, r + x);
        assert!(v.is_finite());
        assert!(close(v, (1.0f64 - z).powf(a - 1.0), 1e-5), "{v}");
    }

    #[test]
    fn log_add_exp_is_stable() {
        assert!(close(
            log_add_exp(1000.0, 1000.0),
            1000.0 + 2f64.ln(),
            1e-15
        ));
        assert_eq!(log_add_exp(f64::NEG_INFINITY, -3.0), -3.0);
    }
}
