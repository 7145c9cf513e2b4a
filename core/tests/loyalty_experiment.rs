//! Control groups and the effect estimator: assignment properties, and interval coverage in
//! seeded simulations of many experiments with a known truth.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Gamma, LogNormal};

use lifecycle_core::loyalty::experiment::effect::{EffectSettings, IntervalMethod};
use lifecycle_core::loyalty::experiment::{
    ExperimentError, ExperimentVerdict, Outcome, estimate_effect, in_control,
};

const SECRET: &[u8] = b"shop-secret-0123456789";

fn share_in_control(offer: &str, period: &str, percent: u8, n: u32) -> f64 {
    let hits = (0..n)
        .filter(|i| {
            in_control(
                SECRET,
                &format!("gid://shopify/Customer/{i}"),
                offer,
                period,
                percent,
            )
            .unwrap()
        })
        .count();
    hits as f64 / f64::from(n)
}

#[test]
fn assignment_is_stable_and_near_the_share() {
    let a = in_control(SECRET, "c-1", "winback", "2026-01", 10).unwrap();
    assert!((0..5).all(|_| in_control(SECRET, "c-1", "winback", "2026-01", 10).unwrap() == a));
    let n = 100_000;
    // 10 %: within 4 standard errors (sd of the share 0.00095).
    let s = share_in_control("winback", "2026-01", 10, n);
    assert!(
        (s - 0.10).abs() < 4.0 * (0.1f64 * 0.9 / f64::from(n)).sqrt(),
        "{s}"
    );
    assert_eq!(share_in_control("winback", "2026-01", 0, 1000), 0.0);
    let half = share_in_control("winback", "2026-01", 50, 20_000);
    assert!(
        (half - 0.5).abs() < 4.0 * (0.25f64 / 20_000.0).sqrt(),
        "{half}"
    );
    // A larger share contains the smaller one's customers (same draw, higher threshold).
    for i in 0..2000 {
        let c = format!("c-{i}");
        if in_control(SECRET, &c, "o", "p", 10).unwrap() {
            assert!(in_control(SECRET, &c, "o", "p", 20).unwrap());
        }
    }
}

#[test]
fn shares_outside_0_to_50_are_rejected() {
    assert_eq!(
        in_control(SECRET, "c", "o", "p", 51),
        Err(ExperimentError::ControlShareOutOfRange(51))
    );
    assert!(in_control(SECRET, "c", "o", "p", 255).is_err());
    assert!(in_control(SECRET, "c", "o", "p", 50).is_ok());
}

#[test]
fn different_offers_periods_and_secrets_split_independently() {
    let n = 100_000u32;
    let both = |f: &dyn Fn(&str) -> (bool, bool)| {
        (0..n)
            .filter(|i| {
                let (a, b) = f(&format!("c-{i}"));
                a && b
            })
            .count() as f64
            / f64::from(n)
    };
    // Independent 10 % splits overlap on 1 % (sd 0.00031).
    let tol = 4.0 * (0.01f64 * 0.99 / f64::from(n)).sqrt();
    let offers = both(&|c| {
        (
            in_control(SECRET, c, "winback", "2026-01", 10).unwrap(),
            in_control(SECRET, c, "vip", "2026-01", 10).unwrap(),
        )
    });
    let periods = both(&|c| {
        (
            in_control(SECRET, c, "winback", "2026-01", 10).unwrap(),
            in_control(SECRET, c, "winback", "2026-02", 10).unwrap(),
        )
    });
    let secrets = both(&|c| {
        (
            in_control(SECRET, c, "winback", "2026-01", 10).unwrap(),
            in_control(b"another shop", c, "winback", "2026-01", 10).unwrap(),
        )
    });
    for (name, s) in [
        ("offers", offers),
        ("periods", periods),
        ("secrets", secrets),
    ] {
        assert!((s - 0.01).abs() < tol, "{name}: {s}");
    }
}

/// An arm of `n` customers who buy with probability `p`, spend drawn from `spend` when they
/// do, and get `discount_rate` of it as discount.
fn arm(
    rng: &mut StdRng,
    n: usize,
    p: f64,
    spend: &impl Distribution<f64>,
    discount_rate: f64,
) -> Vec<Outcome> {
    (0..n)
        .map(|_| {
            let bought = rng.random::<f64>() < p;
            let net_revenue = if bought { spend.sample(rng) } else { 0.0 };
            Outcome {
                bought,
                net_revenue,
                discount: net_revenue * discount_rate,
            }
        })
        .collect()
}

struct Coverage {
    experiments: usize,
    conversion: usize,
    revenue: usize,
    methods: Vec<IntervalMethod>,
}

fn simulate(
    experiments: usize,
    n: usize,
    (p_t, p_c): (f64, f64),
    spend: &impl Distribution<f64>,
    mean_spend: f64,
    settings: &EffectSettings,
    seed: u64,
) -> Coverage {
    let mut rng = StdRng::seed_from_u64(seed);
    let (true_conv, true_rev) = (p_t - p_c, (p_t - p_c) * mean_spend);
    let mut c = Coverage {
        experiments,
        conversion: 0,
        revenue: 0,
        methods: Vec::new(),
    };
    for i in 0..experiments {
        let t = arm(&mut rng, n, p_t, spend, 0.0);
        let k = arm(&mut rng, n, p_c, spend, 0.0);
        // Each experiment its own bootstrap seed, as each offer and period would have: with one
        // seed for all, the bootstrap's own Monte Carlo error would be shared by every interval.
        let settings = EffectSettings {
            seed: settings.seed + i as u64,
            ..*settings
        };
        let e = estimate_effect(&t, &k, &settings);
        let conv = e.conversion_difference.unwrap();
        let rev = e.revenue_difference.unwrap();
        c.conversion += usize::from(conv.contains(true_conv));
        c.revenue += usize::from(rev.contains(true_rev));
        c.methods.push(rev.method);
    }
    c
}

fn rate(hits: usize, of: usize) -> f64 {
    hits as f64 / of as f64
}

#[test]
fn intervals_cover_the_truth_at_their_nominal_rate() {
    // 2,000 experiments of 1,000 + 1,000 customers, conversion 20 % → 25 %, spend Gamma(2, 25)
    // (mean 50, skewed): Newcombe for the proportions, Welch for the means (Cochran's rule
    // holds at this size).
    let spend = Gamma::new(2.0, 25.0).unwrap();
    let c = simulate(
        2000,
        1000,
        (0.25, 0.20),
        &spend,
        50.0,
        &EffectSettings::default(),
        11,
    );
    let (conv, rev) = (
        rate(c.conversion, c.experiments),
        rate(c.revenue, c.experiments),
    );
    println!("coverage: proportions {conv:.4}, means {rev:.4}");
    assert!((0.93..=0.97).contains(&conv), "proportions {conv}");
    assert!((0.93..=0.97).contains(&rev), "means {rev}");
    assert!(c.methods.iter().all(|m| *m == IntervalMethod::Welch));
}

#[test]
fn the_bootstrap_covers_where_the_normal_approximation_is_poor() {
    // 1,000 experiments of 120 + 120 customers, 10 % → 15 % buying, log-normal spend (σ 1):
    // about 12-18 buyers an arm and heavy skew, so the bootstrap-t widens Welch's interval.
    let sigma: f64 = 1.0;
    let spend = LogNormal::new(3.0, sigma).unwrap();
    let mean = (3.0 + sigma * sigma / 2.0).exp();
    let settings = EffectSettings {
        bootstrap_resamples: 400,
        seed: 3,
    };
    let c = simulate(1000, 120, (0.15, 0.10), &spend, mean, &settings, 5);
    let (conv, rev) = (
        rate(c.conversion, c.experiments),
        rate(c.revenue, c.experiments),
    );
    let boot = c
        .methods
        .iter()
        .filter(|m| **m == IntervalMethod::WelchAndBootstrapT)
        .count();
    println!("small arms: proportions {conv:.4}, means {rev:.4}, bootstrap used {boot}");
    assert!(boot as f64 > 0.95 * c.experiments as f64, "{boot}");
    assert!((0.93..=0.97).contains(&conv), "proportions {conv}");
    assert!((0.93..=0.97).contains(&rev), "means {rev}");
}

#[test]
fn a_large_effect_is_detected_and_the_verdict_weighs_the_discounts() {
    let mut rng = StdRng::seed_from_u64(1);
    let spend = Gamma::new(2.0, 25.0).unwrap();
    let s = EffectSettings::default();
    // Conversion 20 % → 40 %, 10 % discount: keep.
    let t = arm(&mut rng, 2000, 0.40, &spend, 0.10);
    let c = arm(&mut rng, 2000, 0.20, &spend, 0.0);
    let e = estimate_effect(&t, &c, &s);
    let conv = e.conversion_difference.unwrap();
    assert!(
        conv.low > 0.0 && (conv.estimate - 0.2).abs() < 0.05,
        "{conv:?}"
    );
    assert!(e.value_difference.unwrap().low > 0.0);
    assert_eq!(e.verdict, ExperimentVerdict::Keep);
    assert_eq!(e.more_customers_needed, Some(0));
    assert_eq!((e.treatment.customers, e.control.customers), (2000, 2000));
    assert!(e.mde_conversion.unwrap() < 0.2);
    // The same uplift with a 90 % discount: the offer gives away more than it brings.
    let t = arm(&mut rng, 2000, 0.40, &spend, 0.90);
    let e = estimate_effect(&t, &c, &s);
    assert_eq!(e.verdict, ExperimentVerdict::CostsMoreThanItBrings, "{e:?}");
    // No effect at 300 + 300: not conclusive, and a size to aim for.
    let t = arm(&mut rng, 300, 0.20, &spend, 0.0);
    let c = arm(&mut rng, 300, 0.20, &spend, 0.0);
    let e = estimate_effect(&t, &c, &s);
    assert_eq!(e.verdict, ExperimentVerdict::NotYetConclusive);
    assert!(e.value_difference.unwrap().contains(0.0));
    assert!(e.more_customers_needed.unwrap() > 0, "{e:?}");
    // Empty arms give no intervals and no conclusion.
    let e = estimate_effect(&t, &[], &s);
    assert!(e.conversion_difference.is_none() && e.value_difference.is_none());
    assert_eq!(e.verdict, ExperimentVerdict::NotYetConclusive);
}
