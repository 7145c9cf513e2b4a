use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::analytics::model::{Method, PurchaseModel};
use crate::analytics::{AnalysisOptions, analyze_shop};

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn order(customer: u32, at: DateTime<Utc>, amount: f64) -> OrderFact {
    OrderFact {
        customer,
        at,
        amount,
        refunded: 0.0,
        cancelled: false,
        discounted: false,
    }
}

/// Five customers, `now` = 2024-03-15 12:00:
/// - 0: Jan 10 (100), Jan 20 (50), Mar 1 (30, 10 refunded: net 20);
/// - 1: Jan 31 23:00 (40), Feb 1 01:00 (60: the next month), Feb 10 (500, cancelled);
/// - 2: Feb 5 (80, fully refunded: not an order), Feb 20 (25), Mar 16 (70, after now);
/// - 3: only a cancelled order (Jan 5): in no cohort;
/// - 4: Mar 2 (10).
fn shop() -> ShopInput {
    let mut partly = order(0, at(2024, 3, 1, 9), 30.0);
    partly.refunded = 10.0;
    let mut cancelled = order(1, at(2024, 2, 10, 9), 500.0);
    cancelled.cancelled = true;
    let mut refunded = order(2, at(2024, 2, 5, 9), 80.0);
    refunded.refunded = 80.0;
    let mut never = order(3, at(2024, 1, 5, 9), 20.0);
    never.cancelled = true;
    ShopInput {
        customers: 5,
        orders: vec![
            order(0, at(2024, 1, 10, 9), 100.0),
            order(0, at(2024, 1, 20, 9), 50.0),
            partly,
            order(1, at(2024, 1, 31, 23), 40.0),
            order(1, at(2024, 2, 1, 1), 60.0),
            cancelled,
            refunded,
            order(2, at(2024, 2, 20, 9), 25.0),
            order(2, at(2024, 3, 16, 9), 70.0),
            never,
            order(4, at(2024, 3, 2, 9), 10.0),
        ],
        abandoned_checkouts: vec![],
    }
}

fn now() -> DateTime<Utc> {
    at(2024, 3, 15, 12)
}

/// (period, active, retention, orders, net revenue, cumulative per customer, partial)
type Row = (u32, u64, f64, u64, f64, f64, bool);

fn rows(c: &Cohort) -> Vec<Row> {
    c.actual
        .iter()
        .map(|a| {
            (
                a.period,
                a.active_customers,
                a.retention,
                a.orders,
                a.net_revenue,
                a.cumulative_revenue_per_customer,
                a.partial,
            )
        })
        .collect()
}

#[test]
fn monthly_triangle_of_a_hand_made_shop() {
    let c = cohorts(&shop(), now(), CohortPeriod::Month).unwrap();
    let labels: Vec<(&str, u64)> = c
        .cohorts
        .iter()
        .map(|c| (c.label.as_str(), c.customers))
        .collect();
    // January: customers 0 and 1; February: 2 (its refunded order does not count); March: 4.
    assert_eq!(labels, [("2024-01", 2), ("2024-02", 1), ("2024-03", 1)]);
    assert_eq!(
        c.cohorts[0].start,
        NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()
    );
    // January, period 0: 0 (100 + 50) and 1 (40): 2 active, 3 orders, 190, 190/2 = 95.
    // Period 1 (February): only 1 (60; the cancelled order is out): 1/2, (190+60)/2 = 125.
    // Period 2 (March, partial): 0's refunded-in-part order, net 20: (250+20)/2 = 135.
    assert_eq!(
        rows(&c.cohorts[0]),
        [
            (0, 2, 1.0, 3, 190.0, 95.0, false),
            (1, 1, 0.5, 1, 60.0, 125.0, false),
            (2, 1, 0.5, 1, 20.0, 135.0, true),
        ]
    );
    // February: 2's 25 in period 0; its March order is after now, so March is empty.
    assert_eq!(
        rows(&c.cohorts[1]),
        [
            (0, 1, 1.0, 1, 25.0, 25.0, false),
            (1, 0, 0.0, 0, 0.0, 25.0, true),
        ]
    );
    assert_eq!(rows(&c.cohorts[2]), [(0, 1, 1.0, 1, 10.0, 10.0, true)]);
    assert!(c.cohorts.iter().all(|c| c.predicted.is_empty()));
}

#[test]
fn quarters_and_iso_weeks() {
    // One quarter: 4 customers, 7 orders, 100+50+20+40+60+25+10 = 305, 305/4 = 76.25.
    let q = cohorts(&shop(), now(), CohortPeriod::Quarter).unwrap();
    assert_eq!(q.cohorts.len(), 1);
    assert_eq!(
        (q.cohorts[0].label.as_str(), q.cohorts[0].customers),
        ("2024-Q1", 4)
    );
    assert_eq!(rows(&q.cohorts[0]), [(0, 4, 1.0, 7, 305.0, 76.25, true)]);

    let w = cohorts(&shop(), now(), CohortPeriod::Week).unwrap();
    let labels: Vec<&str> = w.cohorts.iter().map(|c| c.label.as_str()).collect();
    // Jan 10 is in ISO week 2, Jan 31 (Wed) in week 5, Feb 20 in week 8, Mar 2 (Sat) in 9.
    assert_eq!(labels, ["2024-W02", "2024-W05", "2024-W08", "2024-W09"]);
    // Customer 1's Jan 31 and Feb 1 orders are one week: 1 active, 2 orders.
    assert_eq!(rows(&w.cohorts[1])[0], (0, 1, 1.0, 2, 100.0, 100.0, false));
    // Week 2's cohort: 100 in week 2, 50 in week 3, 20 in week 9 (period 7); observed up to
    // now's week 11 (period 9), which is partial.
    let w2 = rows(&w.cohorts[0]);
    assert_eq!(w2.len(), 10);
    assert_eq!(w2[1], (1, 1, 1.0, 1, 50.0, 150.0, false));
    assert_eq!(w2[7], (7, 1, 1.0, 1, 20.0, 170.0, false));
    assert_eq!(w2[9], (9, 0, 0.0, 0, 0.0, 170.0, true));
}

#[test]
fn a_period_ending_with_now_is_complete() {
    // `--end 2024-03-31` means the last second of March.
    let end = Utc.with_ymd_and_hms(2024, 3, 31, 23, 59, 59).unwrap();
    let c = cohorts(&shop(), end, CohortPeriod::Month).unwrap();
    assert!(c.cohorts.iter().flat_map(|c| &c.actual).all(|a| !a.partial));
    // And customer 2's March 16 order is now in.
    assert_eq!(c.cohorts[1].actual[1].orders, 1);
}

#[test]
fn a_shop_without_counted_orders_has_no_cohorts_and_bad_input_is_refused() {
    let mut s = shop();
    s.orders.retain(|o| o.customer == 3);
    assert!(
        cohorts(&s, now(), CohortPeriod::Month)
            .unwrap()
            .cohorts
            .is_empty()
    );
    let mut s = shop();
    s.orders.swap(0, 1);
    assert!(matches!(
        cohorts(&s, now(), CohortPeriod::Month),
        Err(AnalysisError::InvalidOrder { index: 1, .. })
    ));
}

#[test]
fn predicted_cells_continue_the_actuals_with_the_heuristic_by_hand() {
    // Five buyers are far too few to fit: both models are the documented heuristics.
    let input = shop();
    let analysis = analyze_shop(&input, &AnalysisOptions::default(), now()).unwrap();
    assert!(matches!(
        analysis.model.purchase,
        PurchaseModel::Heuristic(_)
    ));
    let mut c = cohorts(&input, now(), CohortPeriod::Month).unwrap();
    predict(&mut c, &analysis, 2).unwrap();
    // Windows after now (2024-03-15 12:00): the rest of March (16.5 days), April (30), May (31).
    let windows = [16.5, 30.0, 31.0];
    let h = analysis.model.heuristic_purchase;
    // Heuristic: λ = (x + λ̂Y) / (T + Y) a day, expected purchases = P(alive) · λ · days,
    // each worth the customer's expected value.
    let expect = |customers: &[usize], w: f64| {
        customers.iter().fold((0.0, 0.0), |(o, r), &i| {
            let cr = &analysis.customers[i];
            let p = cr.score.prediction.unwrap();
            let f = &cr.features;
            let rate = (f64::from(f.frequency) + h.shop_rate * h.prior_exposure)
                / (f.age + h.prior_exposure);
            let n = p.p_alive * rate * w;
            (o + n, r + n * p.expected_avg_value)
        })
    };
    let members: [&[usize]; 3] = [&[0, 1], &[2], &[4]];
    for (cohort, customers) in c.cohorts.iter().zip(members) {
        let last = cohort.actual.last().unwrap();
        assert!(last.partial);
        assert_eq!(cohort.predicted.len(), 3, "{}", cohort.label);
        let mut cumulative = last.cumulative_revenue_per_customer;
        for (k, (cell, w)) in cohort.predicted.iter().zip(windows).enumerate() {
            assert!(cell.predicted);
            assert_eq!(cell.partial, k == 0);
            // The rest of the current period carries its period number, then one per month.
            assert_eq!(cell.period, last.period + k as u32);
            let (orders, revenue) = expect(customers, w);
            assert!((cell.expected_orders - orders).abs() < 1e-9, "{cell:?}");
            assert!((cell.expected_net_revenue - revenue).abs() < 1e-9);
            cumulative += revenue / cohort.customers as f64;
            assert!((cell.cumulative_revenue_per_customer - cumulative).abs() < 1e-9);
        }
    }
    // The actuals are untouched by the forecast.
    let plain = cohorts(&input, now(), CohortPeriod::Month).unwrap();
    for (a, b) in c.cohorts.iter().zip(&plain.cohorts) {
        assert_eq!(a.actual, b.actual);
    }
}

#[test]
fn predicted_cells_need_the_analysis_of_the_same_moment() {
    let input = shop();
    let analysis = analyze_shop(&input, &AnalysisOptions::default(), now()).unwrap();
    let mut c = cohorts(&input, at(2024, 3, 10, 0), CohortPeriod::Month).unwrap();
    let e = predict(&mut c, &analysis, 12).unwrap_err();
    assert!(e.to_string().contains("fitted at"), "{e}");
    assert!(c.cohorts.iter().all(|c| c.predicted.is_empty()));
}

/// A deterministic shop of `customers` with a few orders each over 2023-2024.
fn random_shop(customers: u32, seed: u64) -> ShopInput {
    let mut rng = crate::random::Rng::new(seed);
    let start = at(2023, 1, 1, 0);
    let mut orders = Vec::new();
    for c in 0..customers {
        let mut t = start + chrono::Duration::hours((rng.next_u64() % (24 * 600)) as i64);
        for _ in 0..rng.next_u64() % 6 {
            let amount = (rng.next_u64() % 20_000) as f64 / 100.0;
            let roll = rng.next_u64() % 20;
            orders.push(OrderFact {
                customer: c,
                at: t,
                amount,
                refunded: if roll == 1 {
                    amount
                } else if roll == 2 {
                    amount / 2.0
                } else {
                    0.0
                },
                cancelled: roll == 0,
                discounted: false,
            });
            t += chrono::Duration::hours((rng.next_u64() % (24 * 120)) as i64);
        }
    }
    ShopInput {
        customers,
        orders,
        abandoned_checkouts: vec![],
    }
}

/// Customers from the BG/NBD process (λ ~ Gamma(0.8, 1/20 a day), dropout after each
/// purchase with p ~ Beta(1, 10)), first orders over 2023-2024, spend ~ Gamma.
fn btyd_shop(customers: u32, seed: u64, now: DateTime<Utc>) -> ShopInput {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Beta, Distribution, Gamma};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let rate = Gamma::new(0.8, 1.0 / 20.0).unwrap();
    let dropout = Beta::new(1.0, 10.0).unwrap();
    let spend = Gamma::new(4.0, 10.0).unwrap();
    let mut orders = Vec::new();
    for customer in 0..customers {
        let (lambda, p): (f64, f64) = (rate.sample(&mut rng), dropout.sample(&mut rng));
        let mut t = now - chrono::Duration::hours(rng.random_range(0..24 * 600));
        loop {
            let amount = (spend.sample(&mut rng) * 100.0f64).round() / 100.0;
            orders.push(order(customer, t, amount));
            if rng.random::<f64>() < p {
                break;
            }
            let days = -(1.0 - rng.random::<f64>()).ln() / lambda.max(1e-9);
            t += chrono::Duration::seconds((days * 86_400.0).min(1e9) as i64 + 1);
            if t > now {
                break;
            }
        }
    }
    ShopInput {
        customers,
        orders,
        abandoned_checkouts: vec![],
    }
}

#[test]
fn bgnbd_forecasts_are_the_models_conditional_expectations_summed_by_cohort() {
    let now = at(2024, 8, 20, 6);
    let input = btyd_shop(3_000, 11, now);
    let analysis = analyze_shop(&input, &AnalysisOptions::default(), now).unwrap();
    let PurchaseModel::BgNbd(bg) = analysis.model.purchase else {
        panic!("expected a fit: {:?}", analysis.model.fallbacks);
    };
    let mut c = cohorts(&input, now, CohortPeriod::Month).unwrap();
    predict(&mut c, &analysis, 12).unwrap();
    // Over the whole forecast (now to 2025-09-01), each customer expects
    // E[Y(h) | x, t_x, T] purchases by the BG/NBD (eq. 10), h in days.
    let h = (at(2025, 9, 1, 0) - now).num_seconds() as f64 / 86_400.0;
    let want: f64 = analysis
        .customers
        .iter()
        .filter_map(|c| c.score.prediction.map(|p| (c, p)))
        .map(|(c, p)| {
            assert_eq!(p.purchase_method, Method::Model);
            let f = &c.features;
            bg.conditional_expected_purchases(h, f64::from(f.frequency), f.recency, f.age)
        })
        .sum();
    let got: f64 = c
        .cohorts
        .iter()
        .flat_map(|c| &c.predicted)
        .map(|p| p.expected_orders)
        .sum();
    assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");
    assert!(c.cohorts.iter().all(|c| c.predicted.len() == 13));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn triangle_invariants(
        customers in 1u32..120,
        seed in any::<u64>(),
        now_hours in 0i64..(24 * 800),
        period in prop::sample::select(CohortPeriod::ALL.to_vec()),
    ) {
        let input = random_shop(customers, seed);
        let now = at(2023, 1, 1, 0) + chrono::Duration::hours(now_hours);
        let c = cohorts(&input, now, period).unwrap();
        let counted: Vec<&OrderFact> = input.orders.iter().filter(|o| o.counts_at(now)).collect();
        let mut buyers: Vec<u32> = counted.iter().map(|o| o.customer).collect();
        buyers.dedup();
        // Counts add up: every buyer in one cohort, every counted order and its value in one cell.
        prop_assert_eq!(c.cohorts.iter().map(|c| c.customers).sum::<u64>(), buyers.len() as u64);
        let cells = || c.cohorts.iter().flat_map(|c| &c.actual);
        prop_assert_eq!(cells().map(|a| a.orders).sum::<u64>(), counted.len() as u64);
        let revenue: f64 = counted.iter().map(|o| o.net()).sum();
        prop_assert!((cells().map(|a| a.net_revenue).sum::<f64>() - revenue).abs() < 1e-6);
        let current = period.index(now);
        for cohort in &c.cohorts {
            let first = &cohort.actual[0];
            // Period 0: everyone is active.
            prop_assert_eq!(first.retention, 1.0);
            prop_assert_eq!(first.active_customers, cohort.customers);
            let index = period.index_of_date(cohort.start);
            prop_assert_eq!(cohort.actual.len() as i32, current - index + 1);
            for w in cohort.actual.windows(2) {
                prop_assert!(w[1].cumulative_revenue_per_customer >= w[0].cumulative_revenue_per_customer);
            }
            for a in &cohort.actual {
                prop_assert!((0.0..=1.0).contains(&a.retention));
                prop_assert!(a.active_customers <= a.orders);
                let n = cohort.customers as f64;
                prop_assert!((a.retention - a.active_customers as f64 / n).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn forecasts_extend_the_curves_upwards(
        customers in 1u32..80,
        seed in any::<u64>(),
        horizon in 0u32..14,
    ) {
        let input = random_shop(customers, seed);
        let now = at(2024, 9, 30, 12);
        let analysis = analyze_shop(&input, &AnalysisOptions::default(), now).unwrap();
        let mut c = cohorts(&input, now, CohortPeriod::Month).unwrap();
        predict(&mut c, &analysis, horizon).unwrap();
        for cohort in &c.cohorts {
            prop_assert_eq!(cohort.predicted.len() as u32, horizon + 1);
            let mut previous = cohort.actual.last().unwrap().cumulative_revenue_per_customer;
            for p in &cohort.predicted {
                prop_assert!(p.predicted && p.expected_orders >= 0.0);
                prop_assert!(p.cumulative_revenue_per_customer >= previous);
                previous = p.cumulative_revenue_per_customer;
            }
        }
    }
}
