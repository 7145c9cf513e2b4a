//! The acceptance check of issue 3: fitting BG/NBD and Gamma-Gamma (with the analytics core) on
//! generated data gives parameters consistent with the generator's truth. "Consistent" is a
//! likelihood-ratio test: 2·(LL at the fit − LL at the truth) must stay below the χ² 99.9 %
//! quantile, which a process that is not BG/NBD / Gamma-Gamma fails by far at this size.

use std::collections::HashMap;

use lifecycle_core::analytics::bgnbd::{self, BgNbdParams};
use lifecycle_core::analytics::compress::Compressed;
use lifecycle_core::analytics::gamma_gamma::{self, GammaGammaParams, SpendObservation};
use lifecycle_sandbox::generate::{GenConfig, GeneratedShop, generate};

const MS_PER_DAY: f64 = 86_400_000.0;
/// χ² quantiles at 99.9 % for 4 and 3 degrees of freedom.
const CHI2_999_DF4: f64 = 18.467;
const CHI2_999_DF3: f64 = 16.266;

struct Customer {
    first: i64,
    last: i64,
    count: u32,
    /// Σ value of the repeat orders (all but the first), in shop-currency units.
    repeat_value: f64,
}

/// Per customer, from the non-cancelled customer orders in time order (gross order values:
/// refunds are not part of the spend process).
fn customers(shop: &GeneratedShop) -> Vec<Customer> {
    let mut by_id: HashMap<u64, Customer> = HashMap::new();
    for o in &shop.orders {
        let (Some(id), None) = (o.customer_id, o.cancelled_at) else {
            continue;
        };
        let ms = o.created_at.timestamp_millis();
        let value = o.total_price_minor as f64 / 100.0;
        by_id
            .entry(id)
            .and_modify(|c| {
                c.last = ms;
                c.count += 1;
                c.repeat_value += value;
            })
            .or_insert(Customer {
                first: ms,
                last: ms,
                count: 1,
                repeat_value: 0.0,
            });
    }
    let mut out: Vec<Customer> = by_id.into_values().collect();
    out.sort_by_key(|c| (c.first, c.count));
    out
}

#[test]
fn fitted_parameters_are_consistent_with_the_truth() {
    let config = GenConfig {
        customers: 20_000,
        seed: 31,
        prospect_share: 0.0,
        ..GenConfig::default()
    };
    let shop = generate(&config).unwrap();
    let truth = shop.truth;
    let end = config.end.timestamp_millis();
    let customers = customers(&shop);

    let data = Compressed::from_triples(customers.iter().map(|c| {
        (
            c.count - 1,
            (c.last - c.first) as f64 / MS_PER_DAY,
            (end - c.first) as f64 / MS_PER_DAY,
        )
    }));
    let fit = bgnbd::fit(&data);
    assert!(fit.converged, "{fit:?}");
    let at_truth = BgNbdParams {
        r: truth.r,
        alpha: truth.alpha,
        a: truth.a,
        b: truth.b,
    }
    .total_log_likelihood(&data);
    let lr = 2.0 * (fit.log_likelihood - at_truth);
    println!("truth: {truth}");
    println!("BG/NBD fit: {:?}, LR statistic {lr:.2}", fit.params);
    assert!(lr >= -1e-6, "the MLE cannot be worse than the truth: {lr}");
    assert!(lr < CHI2_999_DF4, "BG/NBD truth rejected: LR {lr:.2}");
    let rel = |fitted: f64, true_value: f64| (fitted - true_value).abs() / true_value;
    assert!(rel(fit.params.r, truth.r) < 0.15, "r {}", fit.params.r);
    assert!(
        rel(fit.params.alpha, truth.alpha) < 0.15,
        "alpha {}",
        fit.params.alpha
    );

    let observations: Vec<SpendObservation> = customers
        .iter()
        .filter(|c| c.count > 1)
        .map(|c| {
            let x = f64::from(c.count - 1);
            SpendObservation {
                x,
                m_x: c.repeat_value / x,
            }
        })
        .collect();
    let gg = gamma_gamma::fit(&observations);
    assert!(gg.converged, "{gg:?}");
    let true_gg = GammaGammaParams {
        p: truth.p,
        q: truth.q,
        gamma: truth.gamma,
    };
    let at_truth: f64 = observations
        .iter()
        .map(|o| true_gg.log_likelihood(o.x, o.m_x))
        .sum();
    let lr = 2.0 * (gg.log_likelihood - at_truth);
    println!("Gamma-Gamma fit: {:?}, LR statistic {lr:.2}", gg.params);
    assert!(lr >= -1e-6, "the MLE cannot be worse than the truth: {lr}");
    assert!(lr < CHI2_999_DF3, "Gamma-Gamma truth rejected: LR {lr:.2}");
    let mean = gg.params.population_mean();
    assert!(
        rel(mean, truth.mean_order_value()) < 0.05,
        "mean order value {mean}"
    );
}
