//! The backtest's numbers on a shop small enough to work out by hand.

use chrono::{DateTime, TimeZone, Utc};

use lifecycle_core::analytics::backtest::card::{
    accuracy, average_ranks, decile_table, reliability, spearman, top_share,
};
use lifecycle_core::analytics::backtest::{
    self, BacktestOptions, Shortfall, Verdict, calibration_and_holdout,
    calibration_and_holdout_after, calibration_end_for,
};
use lifecycle_core::analytics::{AnalysisOptions, OrderFact, ShopInput, TimeUnit};

fn at(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, month, day, hour, 0, 0).unwrap()
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

/// Calibration end 2024-03-31 23:00, end 2024-06-29 23:00 (90 days later).
fn shop() -> ShopInput {
    let cancelled = OrderFact {
        cancelled: true,
        ..order(0, at(5, 2, 10), 99.0)
    };
    let refunded = OrderFact {
        refunded: 40.0,
        ..order(1, at(4, 20, 9), 40.0)
    };
    ShopInput {
        customers: 4,
        orders: vec![
            // 0: days 1 Jan, 11 Jan, 11 Jan (same day), 31 Jan → x = 2, t_x = 30, T = 90.
            order(0, at(1, 1, 10), 10.0),
            order(0, at(1, 11, 9), 20.0),
            order(0, at(1, 11, 18), 5.0),
            order(0, at(1, 31, 12), 30.0),
            // Holdout: 1 May twice (one day), 2 May cancelled, 29 Jun 22:00 (in), 30 Jun (after end).
            order(0, at(5, 1, 8), 12.0),
            order(0, at(5, 1, 20), 8.0),
            cancelled,
            order(0, at(6, 29, 22), 7.0),
            order(0, at(6, 30, 1), 1000.0),
            // 1: one order on 31 Mar (T = 0); in the holdout only a fully refunded order.
            order(1, at(3, 31, 8), 50.0),
            refunded,
            // 2: first order in the holdout only: not in the card.
            order(2, at(4, 2, 10), 15.0),
            order(2, at(4, 9, 10), 15.0),
            // 3: 1 Mar, then one holdout day (1 Apr, 0:30 is after the calibration end).
            order(3, at(3, 1, 12), 25.0),
            order(3, at(4, 1, 0) + chrono::Duration::minutes(30), 60.0),
        ],
        abandoned_checkouts: vec![],
    }
}

#[test]
fn summaries_and_holdout_counts() {
    let input = shop();
    input.validate().unwrap();
    let s = calibration_and_holdout(&input, at(3, 31, 23), at(6, 29, 23), TimeUnit::Days);
    assert_eq!(s.duration_holdout, 90.0);
    let rows: Vec<_> = s
        .rows
        .iter()
        .map(|r| {
            (
                r.customer,
                r.frequency_cal,
                r.recency_cal,
                r.t_cal,
                r.monetary_value_cal,
                r.frequency_holdout,
                r.revenue_holdout,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            // Repeat days 11 Jan (25) and 31 Jan (30): mean 27.5. Holdout days 1 May, 29 Jun.
            (0, 2, 30.0, 90.0, 27.5, 2, 27.0),
            (1, 0, 0.0, 0.0, 0.0, 0, 0.0),
            (3, 0, 0.0, 30.0, 0.0, 1, 60.0),
        ]
    );
    // Weeks: the same days divided by 7.
    let w = calibration_and_holdout(&input, at(3, 31, 23), at(6, 29, 23), TimeUnit::Weeks);
    assert_eq!(w.duration_holdout, 90.0 / 7.0);
    assert_eq!(
        (w.rows[0].recency_cal, w.rows[0].t_cal),
        (30.0 / 7.0, 90.0 / 7.0)
    );
}

#[test]
fn decile_table_accuracy_and_brier_by_hand() {
    // Ten customers, one per decile. Predicted 1.0, 0.9, …, 0.1 (customer 9 the lowest).
    let predicted: Vec<f64> = (0..10).map(|i| f64::from(10 - i) / 10.0).collect();
    let actual = [2.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
    let predicted_revenue: Vec<f64> = predicted.iter().map(|p| p * 10.0).collect();
    let actual_revenue = [30.0, 0.0, 10.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0];
    let t = decile_table(&predicted, &actual, &predicted_revenue, &actual_revenue);
    assert_eq!(t.len(), 10);
    assert_eq!(
        (
            t[0].decile,
            t[0].customers,
            t[0].predicted_purchases,
            t[0].actual_purchases
        ),
        (1, 1, 1.0, 2.0)
    );
    assert_eq!((t[0].predicted_revenue, t[0].actual_revenue), (10.0, 30.0));
    assert_eq!(
        (t[2].predicted_purchases, t[2].actual_purchases),
        (0.8, 1.0)
    );
    assert_eq!((t[9].decile, t[9].predicted_purchases), (10, 0.1));

    // |errors|: 1.0, 0.9, 0.2, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1 → 4.9 / 10.
    // Σ(pred − actual) = 5.5 − 4 = 1.5 → bias 0.15.
    let a = accuracy(&predicted, &actual);
    assert!((a.mae - 0.49).abs() < 1e-12, "{a:?}");
    assert!((a.bias - 0.15).abs() < 1e-12, "{a:?}");
    assert_eq!((a.predicted_total, a.actual_total), (5.5, 4.0));

    // Top 10 % = customer 0 (30 of 50); top 20 % = customers 0, 1 (still 30).
    assert_eq!(
        top_share(&predicted_revenue, &actual_revenue, 10),
        Some(0.6)
    );
    assert_eq!(
        top_share(&predicted_revenue, &actual_revenue, 20),
        Some(0.6)
    );
    assert_eq!(top_share(&predicted_revenue, &[0.0; 10], 20), None);

    // Probabilities 0.05 (no), 0.15 (yes), 0.95 (yes), 1.0 (no):
    // Brier = (0.0025 + 0.7225 + 0.0025 + 1) / 4 = 0.431875.
    let (bins, brier) = reliability(&[0.05, 0.15, 0.95, 1.0], &[false, true, true, false]);
    assert!((brier.unwrap() - 0.431875).abs() < 1e-12);
    assert_eq!(bins.len(), 10);
    assert_eq!((bins[0].customers, bins[0].observed_share), (1, Some(0.0)));
    assert_eq!((bins[1].customers, bins[1].observed_share), (1, Some(1.0)));
    assert_eq!((bins[5].customers, bins[5].mean_predicted), (0, None));
    assert_eq!(bins[9].customers, 2);
    assert!((bins[9].mean_predicted.unwrap() - 0.975).abs() < 1e-12);
    assert_eq!(bins[9].observed_share, Some(0.5));
}

#[test]
fn ranks_and_spearman_handle_ties() {
    assert_eq!(average_ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[5.0, 5.0, 5.0]), None);
    // Ranks (1, 2, 3, 4) against (1.5, 1.5, 3, 4): r = 4.5 / sqrt(5 · 4.5).
    let r = spearman(&[1.0, 2.0, 3.0, 4.0], &[0.0, 0.0, 1.0, 2.0]).unwrap();
    assert!((r - 4.5 / (5.0f64 * 4.5).sqrt()).abs() < 1e-12, "{r}");
}

#[test]
fn young_and_small_shops_get_no_card_and_the_reason() {
    let input = shop();
    let bt = BacktestOptions::default();
    // 180 days of history: a quarter is 45 days, below the 8-week minimum.
    let reason = calibration_end_for(&input, at(6, 29, 23), &bt).unwrap_err();
    assert_eq!(
        reason,
        Shortfall::ShortHoldout {
            history_days: 180,
            holdout_days: 45,
            need_holdout_days: 56
        }
    );
    let opts = AnalysisOptions::default();
    let out = backtest::backtest(&input, at(6, 29, 23), None, &opts, &bt).unwrap();
    assert_eq!(out.verdict, Verdict::TooLittleData { reason });
    assert!(out.card.is_none() && out.bgnbd.is_none());
    // Two years of history would give the full 26 weeks; a given calibration end is used as is.
    let two_years = ShopInput {
        orders: [order(0, at(1, 1, 1) - chrono::Duration::days(800), 1.0)]
            .into_iter()
            .chain(shop().orders)
            .collect(),
        ..shop()
    };
    let end = at(6, 29, 23);
    assert_eq!(
        calibration_end_for(&two_years, end, &bt),
        Ok(end - chrono::Duration::days(182))
    );
    let out = backtest::backtest(&input, end, Some(at(3, 31, 23)), &opts, &bt).unwrap();
    assert_eq!(
        out.verdict,
        Verdict::TooLittleData {
            reason: Shortfall::TooFewCustomers { have: 3, need: 300 }
        }
    );
    assert!(backtest::backtest(&input, end, Some(end), &opts, &bt).is_err());
}

/// The split's one-pass calibration features equal `compute_features` at the calibration end
/// on every field the fit reads (with a partial refund and an order at the end's instant).
#[test]
fn split_features_are_the_analysis_features_at_the_calibration_end() {
    let mut input = shop();
    input.orders.push(OrderFact {
        refunded: 5.0,
        ..order(3, at(3, 31, 23), 20.0)
    });
    input.orders.sort_by_key(|o| (o.customer, o.at));
    input.validate().unwrap();
    for unit in [TimeUnit::Days, TimeUnit::Weeks] {
        let cal = at(3, 31, 23);
        let split = calibration_and_holdout(&input, cal, at(6, 29, 23), unit);
        let full = lifecycle_core::analytics::compute_features(&input, cal, unit);
        assert_eq!(split.features.len(), full.len());
        for (s, f) in split.features.iter().zip(&full) {
            assert_eq!(
                (s.customer, s.orders, s.first_order_at, s.last_order_at),
                (f.customer, f.orders, f.first_order_at, f.last_order_at)
            );
            assert_eq!(
                (s.frequency, s.recency, s.age),
                (f.frequency, f.recency, f.age)
            );
            assert_eq!(
                (s.monetary_value, s.total_value, s.average_order_value),
                (f.monetary_value, f.total_value, f.average_order_value)
            );
            assert_eq!(s.days_since_last_order, f.days_since_last_order);
        }
    }
}

/// A shop of `customers` BTYD-like customers over two years ending at `end`, with cancelled,
/// refunded and same-day orders, and orders after `end`.
fn synthetic(customers: u32, seed: u64, end: DateTime<Utc>) -> ShopInput {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let mut orders = Vec::new();
    for customer in 0..customers {
        let rate = rng.random_range(0.005..0.08f64); // purchases per day
        let churn = rng.random_range(0.02..0.3f64);
        let mean = rng.random_range(10.0..80.0f64);
        let mut t = end - chrono::Duration::hours(rng.random_range(0..24 * 730));
        loop {
            let amount = (mean * rng.random_range(0.5..1.5f64) * 100.0).round() / 100.0;
            let roll: f64 = rng.random();
            orders.push(OrderFact {
                customer,
                at: t,
                amount,
                refunded: if (0.03..0.06).contains(&roll) {
                    amount
                } else if (0.06..0.08).contains(&roll) {
                    amount / 2.0
                } else {
                    0.0
                },
                cancelled: roll < 0.03,
                discounted: false,
            });
            if rng.random::<f64>() < churn || t > end + chrono::Duration::days(20) {
                break;
            }
            let gap_hours = -(1.0 - rng.random::<f64>()).ln() / rate * 24.0;
            t += chrono::Duration::minutes((gap_hours * 60.0) as i64 + 1);
        }
    }
    ShopInput {
        customers,
        orders,
        abandoned_checkouts: vec![],
    }
}

/// The split made from an analysis' features (what `backtest_after` uses) has exactly the
/// rows of the split that walks every order.
#[test]
fn split_from_the_analysis_features_equals_the_full_split() {
    let end = at(6, 29, 23);
    let check = |input: &ShopInput, cal: DateTime<Utc>| {
        input.validate().unwrap();
        for unit in [TimeUnit::Days, TimeUnit::Weeks] {
            let at_end = lifecycle_core::analytics::compute_features(input, end, unit);
            let fast = calibration_and_holdout_after(input, &at_end, cal, end, unit);
            let full = calibration_and_holdout(input, cal, end, unit);
            assert_eq!(fast.rows, full.rows);
            assert_eq!(fast.duration_holdout, full.duration_holdout);
            assert!(fast.features.is_empty());
        }
    };
    check(&shop(), at(3, 31, 23));
    let big = synthetic(3_000, 17, end);
    check(&big, end - chrono::Duration::days(182));
    check(&big, end - chrono::Duration::days(400));
}

/// `backtest_after` (split from the analysis' features, fits started from the analysis'
/// parameters) gives the card `backtest` gives, to the optimiser's tolerance (a gradient
/// below 1e-9 per customer; on a shop this small the spend model's p and q are loosely
/// determined, so two starts stop about 1e-6 apart in them).
#[test]
fn backtest_after_an_analysis_equals_the_backtest() {
    let end = at(6, 29, 23);
    let input = synthetic(4_000, 23, end);
    let opts = AnalysisOptions::default();
    let bt = BacktestOptions::default();
    let analysis = lifecycle_core::analytics::analyze_shop(&input, &opts, end).unwrap();
    let after = backtest::backtest_after(&input, &analysis, None, &opts, &bt).unwrap();
    let direct = backtest::backtest(&input, end, None, &opts, &bt).unwrap();
    assert_eq!(after.calibration_end, direct.calibration_end);
    assert_eq!(after.verdict, direct.verdict);
    let close = |u: f64, v: f64, what: &str| {
        assert!(
            (u - v).abs() <= 1e-5 * v.abs().max(1e-3),
            "{what}: {u} vs {v}"
        );
    };
    let (a, d) = (after.bgnbd.unwrap(), direct.bgnbd.unwrap());
    for (name, u, v) in [
        ("r", a.r, d.r),
        ("alpha", a.alpha, d.alpha),
        ("a", a.a, d.a),
        ("b", a.b, d.b),
    ] {
        close(u, v, name);
    }
    let (a, d) = (after.gamma_gamma.unwrap(), direct.gamma_gamma.unwrap());
    for (name, u, v) in [
        ("p", a.p, d.p),
        ("q", a.q, d.q),
        ("gamma", a.gamma, d.gamma),
    ] {
        close(u, v, name);
    }
    let (a, d) = (after.card.unwrap(), direct.card.unwrap());
    assert_eq!(
        (a.customers, a.repeat_customers_cal),
        (d.customers, d.repeat_customers_cal)
    );
    close(a.model.mae, d.model.mae, "mae");
    close(a.model.bias, d.model.bias, "bias");
    close(a.baseline.mae, d.baseline.mae, "baseline mae");
    close(
        a.model.spearman.unwrap(),
        d.model.spearman.unwrap(),
        "spearman",
    );
    close(a.brier.unwrap(), d.brier.unwrap(), "brier");
    close(
        a.predicted_revenue,
        d.predicted_revenue,
        "predicted revenue",
    );
    assert_eq!(a.actual_revenue, d.actual_revenue);
    for (u, v) in a.deciles.iter().zip(&d.deciles) {
        assert_eq!(
            (u.customers, u.actual_purchases),
            (v.customers, v.actual_purchases)
        );
        close(u.predicted_purchases, v.predicted_purchases, "decile");
    }
    assert_eq!(after.rows.len(), direct.rows.len());
}

/// The card's shortcuts (one sort for deciles and ranks, counting for whole numbers, a
/// selection for the top shares) give exactly the full sorts' figures, ties included.
#[test]
fn card_shortcuts_equal_the_full_rankings() {
    use lifecycle_core::analytics::backtest::card::{
        average_ranks_from_descending, average_ranks_of_counts, rank_descending,
        rank_descending_top, top_count, top_share_of_top,
    };
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(9);
    for n in [0usize, 1, 7, 10, 31, 1000, 40_000] {
        // Few distinct values (many ties), zeros of both signs.
        let score: Vec<f64> = (0..n)
            .map(|_| match rng.random_range(0..4) {
                0 => 0.0,
                1 => -0.0,
                _ => f64::from(rng.random_range(0..50u32)) / 8.0,
            })
            .collect();
        let counts: Vec<u32> = (0..n).map(|_| rng.random_range(0..6u32)).collect();
        let actual: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..100.0)).collect();
        let order = rank_descending(&score);
        assert_eq!(
            average_ranks_from_descending(&score, &order),
            average_ranks(&score)
        );
        let as_f64: Vec<f64> = counts.iter().map(|&c| f64::from(c)).collect();
        assert_eq!(average_ranks_of_counts(&counts), average_ranks(&as_f64));
        for percent in [10, 20] {
            let top = rank_descending_top(&score, top_count(n, 20));
            assert_eq!(top[..], order[..top_count(n, 20)]);
            assert_eq!(
                top_share_of_top(&top, &actual, percent),
                top_share(&score, &actual, percent)
            );
        }
    }
}

/// Above `max_customers`, the card is computed on a sample: exactly the full split's rows of
/// the customers `in_sample` (the same customers by either path), about `max_customers` of
/// them, and its figures estimate the whole card's. At or below the cap the card is the
/// whole one, with no sample recorded.
#[test]
fn a_capped_card_is_a_uniform_sample_of_the_whole() {
    let end = at(6, 29, 23);
    let input = synthetic(20_000, 29, end);
    let opts = AnalysisOptions::default();
    let analysis = lifecycle_core::analytics::analyze_shop(&input, &opts, end).unwrap();
    let whole =
        backtest::backtest_after(&input, &analysis, None, &opts, &BacktestOptions::default())
            .unwrap();
    let of = whole.rows.len();
    assert!(whole.sample.is_none());

    let capped = BacktestOptions {
        max_customers: Some(5_000),
        ..BacktestOptions::default()
    };
    let sampled = backtest::backtest_after(&input, &analysis, None, &opts, &capped).unwrap();
    let direct = backtest::backtest(&input, end, None, &opts, &capped).unwrap();
    let sample = sampled.sample.expect("a sample is recorded");
    assert_eq!(sample.of_customers, of);
    assert!((sample.share - 5_000.0 / of as f64).abs() < 1e-12);
    assert_eq!(direct.sample, Some(sample));
    // The sample's rows: the whole split's rows of the sampled customers, by either path.
    let expected: Vec<_> = whole
        .rows
        .iter()
        .map(|(r, _)| *r)
        .filter(|r| backtest::split::in_sample(r.customer, sample.share))
        .collect();
    let rows = |b: &backtest::Backtest| b.rows.iter().map(|(r, _)| *r).collect::<Vec<_>>();
    assert_eq!(rows(&sampled), expected);
    assert_eq!(rows(&direct), expected);
    // About 5,000 (a binomial count: 4 standard deviations is about 250).
    let n = expected.len() as f64;
    assert!((n - 5_000.0).abs() < 300.0, "{n} customers sampled");
    let (s, w) = (sampled.card.unwrap(), whole.card.clone().unwrap());
    assert_eq!(s.customers, expected.len());
    assert_eq!(sampled.verdict, whole.verdict);
    let near = |u: f64, v: f64, tol: f64, what: &str| {
        assert!(
            (u - v).abs() <= tol * v.abs(),
            "{what}: sample {u} vs whole {v}"
        );
    };
    near(s.model.mae, w.model.mae, 0.1, "MAE");
    near(s.baseline.mae, w.baseline.mae, 0.1, "baseline MAE");
    near(
        s.actual_revenue / n,
        w.actual_revenue / of as f64,
        0.15,
        "holdout revenue per customer",
    );
    near(
        s.top_20_revenue_share.unwrap(),
        w.top_20_revenue_share.unwrap(),
        0.1,
        "top 20 % share",
    );

    let roomy = BacktestOptions {
        max_customers: Some(of),
        ..BacktestOptions::default()
    };
    let all = backtest::backtest_after(&input, &analysis, None, &opts, &roomy).unwrap();
    assert!(all.sample.is_none());
    assert_eq!(rows(&all), rows(&whole));
}
