//! Distribution check: the generated purchases follow BG/NBD and Gamma-Gamma with the true
//! parameters. Empirical figures are compared with the closed forms of `reference/clv.md` §2.1
//! (FHL 2005 eqs. 8 and 9) averaged over each customer's own observation span.

use std::collections::HashMap;

use lifecycle_sandbox::generate::{GenConfig, GeneratedShop, TrueParams, generate};

const MS_PER_DAY: f64 = 86_400_000.0;

/// Gauss hypergeometric ₂F₁(a, b; c; z) for 0 ≤ z < 1 by its power series.
fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 0..200_000 {
        let n = n as f64;
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if term.abs() < 1e-15 * sum.abs() {
            return sum;
        }
    }
    panic!("2F1({a}, {b}; {c}; {z}) did not converge");
}

/// E[X(t)], the expected number of repeat purchases in (0, t] after the first (eq. 9).
fn expected_repeats(p: &TrueParams, t: f64) -> f64 {
    let z = t / (p.alpha + t);
    (p.a + p.b - 1.0) / (p.a - 1.0)
        * (1.0 - (p.alpha / (p.alpha + t)).powf(p.r) * hyp2f1(p.r, p.b, p.a + p.b - 1.0, z))
}

/// P(X(t) = 0) (eq. 8 with x = 0): no repeat purchase in (0, t].
fn p_no_repeat(p: &TrueParams, t: f64) -> f64 {
    (p.alpha / (p.alpha + t)).powf(p.r)
}

/// Per ordering customer: (days from first purchase to the end, repeat purchases).
fn spans_and_repeats(shop: &GeneratedShop, config: &GenConfig) -> Vec<(f64, u64)> {
    let mut by_customer: HashMap<u64, (i64, u64)> = HashMap::new();
    for (customer, at, _) in shop.transactions() {
        let ms = at.timestamp_millis();
        let entry = by_customer.entry(customer).or_insert((ms, 0));
        entry.0 = entry.0.min(ms);
        entry.1 += 1;
    }
    let end = config.end.timestamp_millis();
    by_customer
        .values()
        .map(|&(first, count)| ((end - first) as f64 / MS_PER_DAY, count - 1))
        .collect()
}

fn config(params: TrueParams, seed: u64) -> GenConfig {
    GenConfig {
        customers: 20_000,
        seed,
        params,
        // Prospects and guests do not enter the purchase process; keep the run small.
        prospect_share: 0.0,
        guest_order_share: 0.0,
        ..GenConfig::default()
    }
}

fn check(params: TrueParams, seed: u64) {
    let config = config(params, seed);
    let shop = generate(&config).expect("valid config");
    let customers = spans_and_repeats(&shop, &config);
    let n = customers.len() as f64;
    assert_eq!(customers.len(), config.customers, "every customer orders");

    let empirical_repeats = customers.iter().map(|&(_, x)| x as f64).sum::<f64>() / n;
    let theory_repeats = customers
        .iter()
        .map(|&(t, _)| expected_repeats(&params, t))
        .sum::<f64>()
        / n;
    let rel = (empirical_repeats - theory_repeats).abs() / theory_repeats;
    println!("mean repeats: empirical {empirical_repeats:.4}, theory {theory_repeats:.4}");
    assert!(
        rel < 0.03,
        "mean repeat purchases {empirical_repeats:.4} vs BG/NBD {theory_repeats:.4} ({params})"
    );

    let empirical_zero = customers.iter().filter(|&&(_, x)| x == 0).count() as f64 / n;
    let theory_zero = customers
        .iter()
        .map(|&(t, _)| p_no_repeat(&params, t))
        .sum::<f64>()
        / n;
    println!("zero-repeat share: empirical {empirical_zero:.4}, theory {theory_zero:.4}");
    assert!(
        (empirical_zero - theory_zero).abs() < 0.012,
        "zero-repeat share {empirical_zero:.4} vs BG/NBD {theory_zero:.4} ({params})"
    );

    // Order values: independent of the purchase rate, so the mean over orders is pγ/(q−1).
    let values: Vec<f64> = shop
        .orders
        .iter()
        .filter(|o| o.customer_id.is_some() && o.cancelled_at.is_none())
        .map(|o| o.total_price_minor as f64 / 100.0)
        .collect();
    let empirical_value = values.iter().sum::<f64>() / values.len() as f64;
    let theory_value = params.mean_order_value();
    println!("mean order value: empirical {empirical_value:.3}, theory {theory_value:.3}");
    assert!(
        (empirical_value - theory_value).abs() / theory_value < 0.03,
        "mean order value {empirical_value:.3} vs Gamma-Gamma {theory_value:.3} ({params})"
    );
}

#[test]
fn default_parameters_match_bgnbd_and_gamma_gamma() {
    check(TrueParams::default(), 11);
}

#[test]
fn cdnow_like_parameters_match_bgnbd_and_gamma_gamma() {
    // The published CDNOW fit (per week) converted to days: α and γ scale, the rest do not.
    let params = TrueParams {
        r: 0.243,
        alpha: 4.414 * 7.0,
        a: 0.793,
        b: 2.426,
        p: 6.25,
        q: 3.74,
        gamma: 15.44,
    };
    check(params, 12);
}

#[test]
fn the_series_reproduces_published_expectations() {
    // lifetimes' unconditional E[X(t)] at its CDNOW fit (weeks; clv.md §1, lifetimes' own
    // estimates, which its test uses): 1.0405 at t = 31.8571 and 1.8576 at t = 78.
    let cdnow = TrueParams {
        r: 0.242593,
        alpha: 4.413532,
        a: 0.792886,
        b: 2.425752,
        ..TrueParams::default()
    };
    let e = expected_repeats(&cdnow, 31.8571);
    assert!((e - 1.0405).abs() < 1e-3, "E[X(31.86)] = {e}");
    let e78 = expected_repeats(&cdnow, 78.0);
    assert!((e78 - 1.8576).abs() < 1e-3, "E[X(78)] = {e78}");
}
