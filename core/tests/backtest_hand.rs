//! The backtest's numbers on a shop small enough to work out by hand.

use chrono::{DateTime, TimeZone, Utc};

use lifecycle_core::analytics::backtest::card::{
    accuracy, average_ranks, decile_table, reliability, spearman, top_share,
};
use lifecycle_core::analytics::backtest::{
    self, BacktestOptions, Shortfall, Verdict, calibration_and_holdout, calibration_end_for,
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
