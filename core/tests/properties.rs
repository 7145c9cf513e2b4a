//! Property tests: probabilities stay probabilities, expectations grow with the horizon, RFM
//! quintiles are balanced, and no input, however extreme, produces NaN.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use lifecycle_core::analytics::bgnbd::BgNbdParams;
use lifecycle_core::analytics::rfm::{Direction, QuintileCuts};
use lifecycle_core::analytics::{
    AnalysisOptions, CustomerFeatures, FittedModel, OrderFact, ShopAnalysis, ShopInput,
    analyze_shop, compute_features, score_customer,
};

fn params() -> impl Strategy<Value = BgNbdParams> {
    (1e-3f64..50.0, 1e-2f64..1e3, 1e-2f64..20.0, 1e-2f64..20.0)
        .prop_map(|(r, alpha, a, b)| BgNbdParams { r, alpha, a, b })
}

/// (x, t_x, T) with t_x ≤ T, including huge x and t_x = T.
fn customer() -> impl Strategy<Value = (f64, f64, f64)> {
    (0u32..2_000_000, 0.0f64..=1.0, 0.0f64..5_000.0).prop_map(|(x, share, t)| {
        let t_x = if x == 0 { 0.0 } else { t * share };
        (f64::from(x), t_x, t)
    })
}

proptest! {
    #[test]
    fn p_alive_is_a_probability_and_one_without_repeats(p in params(), (x, t_x, t) in customer()) {
        let v = p.p_alive(x, t_x, t);
        prop_assert!((0.0..=1.0).contains(&v), "{v}");
        prop_assert_eq!(p.p_alive(0.0, 0.0, t), 1.0);
    }

    #[test]
    fn expectations_are_finite_and_grow_with_the_horizon(
        p in params(),
        (x, t_x, t) in customer(),
        h1 in 0.0f64..500.0,
        dh in 0.0f64..500.0,
    ) {
        let e1 = p.conditional_expected_purchases(h1, x, t_x, t);
        let e2 = p.conditional_expected_purchases(h1 + dh, x, t_x, t);
        prop_assert!(e1.is_finite() && e2.is_finite() && e1 >= 0.0, "{e1} {e2}");
        prop_assert!(e2 >= e1 * (1.0 - 1e-9) - 1e-12, "E({h1}) = {e1} > E({}) = {e2}", h1 + dh);
        let u1 = p.expected_purchases(h1);
        let u2 = p.expected_purchases(h1 + dh);
        prop_assert!(u2 >= u1 * (1.0 - 1e-9) - 1e-12);
    }

    #[test]
    fn rfm_scores_are_balanced_quintiles(mut values in prop::collection::hash_set(0u32..1_000_000, 5..400)
        .prop_map(|s| s.into_iter().map(f64::from).collect::<Vec<f64>>()))
    {
        let n = values.len() as f64;
        let cuts = QuintileCuts::fit(&mut values.clone(), Direction::HigherIsBetter);
        let mut counts = [0f64; 5];
        for v in &values {
            counts[usize::from(cuts.score(*v)) - 1] += 1.0;
        }
        for c in counts {
            prop_assert!((c - n / 5.0).abs() <= 1.0, "{counts:?} of {n}");
        }
        // Reversed direction mirrors the scores.
        let rev = QuintileCuts::fit(&mut values, Direction::LowerIsBetter);
        let mut counts = [0f64; 5];
        for v in &values {
            counts[usize::from(rev.score(*v)) - 1] += 1.0;
        }
        for c in counts {
            prop_assert!((c - n / 5.0).abs() <= 1.0, "{counts:?} of {n}");
        }
    }
}

proptest! {
    // Each case fits the models, so fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn analysis_never_emits_nan(
        days in prop::collection::vec((0u32..50, 0i64..3_000, 0.0f64..1e6), 1..300),
        min_customers in prop_oneof![Just(0usize), Just(300usize)],
    ) {
        let input = shop(&days);
        let opts = AnalysisOptions { min_customers_for_fit: min_customers, min_repeat_customers: 1, ..Default::default() };
        let analysis = analyze_shop(&input, &opts, now()).unwrap();
        assert_finite(&analysis);
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

/// A shop from (customer, days before now, amount) triples.
fn shop(orders: &[(u32, i64, f64)]) -> ShopInput {
    let mut orders: Vec<OrderFact> = orders
        .iter()
        .map(|&(customer, days, amount)| OrderFact {
            customer,
            at: now() - Duration::days(days),
            amount,
            refunded: 0.0,
            cancelled: false,
            discounted: false,
        })
        .collect();
    orders.sort_by_key(|o| (o.customer, o.at));
    ShopInput {
        customers: orders.iter().map(|o| o.customer + 1).max().unwrap_or(0),
        orders,
        abandoned_checkouts: vec![],
    }
}

/// Every number in the serialised analysis is finite (serde_json writes NaN/∞ as null, so
/// the check goes through the typed values).
fn assert_finite(a: &ShopAnalysis) {
    for c in &a.customers {
        let f = &c.features;
        for v in [
            f.recency,
            f.age,
            f.monetary_value,
            f.total_value,
            f.average_order_value,
        ] {
            assert!(v.is_finite(), "{f:?}");
        }
        if let Some(p) = c.score.prediction {
            for v in [p.p_alive, p.expected_purchases, p.expected_avg_value, p.clv] {
                assert!(v.is_finite() && v >= 0.0, "{p:?} for {f:?}");
            }
            assert!(p.p_alive <= 1.0);
        }
    }
    if let Some(v) = a.metrics.average_predicted_clv {
        assert!(v.is_finite());
    }
}

#[test]
fn extreme_shops_give_finite_results() {
    let opts = AnalysisOptions {
        min_customers_for_fit: 0,
        min_repeat_customers: 0,
        ..Default::default()
    };
    let cases: Vec<Vec<(u32, i64, f64)>> = vec![
        // one customer, one order
        vec![(0, 10, 25.0)],
        // everyone bought on the same day, today (T = t_x = 0)
        (0..50).map(|c| (c, 0, 10.0)).collect(),
        // one customer with 3,000 purchase days, the last one today (t_x = T)
        (0..3_000).map(|d| (0, d, 1.0)).collect(),
        // zero-value orders only
        (0..10).map(|c| (c, i64::from(c) * 30, 0.0)).collect(),
    ];
    for orders in cases {
        let a = analyze_shop(&shop(&orders), &opts, now()).unwrap();
        assert_finite(&a);
    }
    // An empty shop.
    let a = analyze_shop(&ShopInput::default(), &opts, now()).unwrap();
    assert!(a.customers.is_empty());
}

#[test]
fn too_little_data_falls_back_and_says_so() {
    let orders: Vec<(u32, i64, f64)> = (0..20)
        .flat_map(|c| [(c, 100, 10.0), (c, 5, 12.0)])
        .collect();
    let a = analyze_shop(&shop(&orders), &AnalysisOptions::default(), now()).unwrap();
    let json = serde_json::to_value(&a.model.fallbacks).unwrap();
    assert_eq!(json[0]["model"], "purchase");
    assert_eq!(json[0]["reason"], "too_few_customers");
    assert_eq!(json[0]["have"], 20);
    assert_finite(&a);
    let p = a.customers[0].score.prediction.unwrap();
    assert!(p.p_alive > 0.0 && p.p_alive < 1.0);
}

/// A BTYD-like shop big enough to fit: rates and lifetimes vary by customer.
fn synthetic_shop(customers: u32) -> ShopInput {
    let mut orders = Vec::new();
    for c in 0..customers {
        let gap = 5 + (c * 37 % 120) as i64; // days between orders
        let life = (c * 53 % 700) as i64; // active days
        let start = 30 + (c * 97 % 600) as i64; // first order, days before now
        let mut d = start;
        while d >= 0 && start - d <= life {
            orders.push((c, d, 10.0 + f64::from(c % 17) * 3.0));
            d -= gap;
        }
    }
    shop(&orders)
}

#[test]
fn one_customer_rescored_with_the_stored_model_matches_the_batch() {
    let input = synthetic_shop(1_000);
    let a = analyze_shop(&input, &AnalysisOptions::default(), now()).unwrap();
    assert!(a.model.fallbacks.is_empty(), "{:?}", a.model.fallbacks);
    // The app stores the model as JSON and scores one customer later.
    let stored: FittedModel =
        serde_json::from_str(&serde_json::to_string(&a.model).unwrap()).unwrap();
    assert_eq!(stored, a.model);
    let features: Vec<CustomerFeatures> =
        compute_features(&input, now(), AnalysisOptions::default().time_unit);
    for c in [0usize, 1, 17, 500, 999] {
        let one = score_customer(&features[c], &stored, now());
        assert_eq!(one, a.customers[c].score);
    }
    // RFM groups cover several cells and every customer with orders has a prediction.
    let groups: std::collections::BTreeSet<_> =
        a.customers.iter().map(|c| c.score.rfm.group).collect();
    assert!(groups.len() >= 6, "{groups:?}");
    assert!(a.customers.iter().all(|c| c.score.prediction.is_some()));
    assert!(a.maturity.is_some() && !a.monthly.is_empty());
}

#[test]
fn batch_scoring_in_parallel_blocks_matches_one_by_one_scoring() {
    // Several blocks of customers, every seventh without orders (a PROSPECT), so the batch
    // must map buyers to their compressed rows across block edges.
    let mut input = synthetic_shop(40_000);
    input.orders.retain(|o| o.customer % 7 != 3);
    let a = analyze_shop(&input, &AnalysisOptions::default(), now()).unwrap();
    assert!(a.model.fallbacks.is_empty(), "{:?}", a.model.fallbacks);
    assert_eq!(a.customers.len(), 40_000);
    let features = compute_features(&input, now(), AnalysisOptions::default().time_unit);
    for c in (0..40_000).step_by(5) {
        assert_eq!(a.customers[c].features, features[c]);
        let one = score_customer(&features[c], &a.model, now());
        assert_eq!(one, a.customers[c].score, "customer {c}");
        assert_eq!(one.prediction.is_none(), c % 7 == 3);
    }
}
