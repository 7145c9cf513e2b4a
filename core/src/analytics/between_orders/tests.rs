use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::*;

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn order(customer: u32, at: DateTime<Utc>) -> OrderFact {
    OrderFact {
        customer,
        at,
        amount: 10.0,
        refunded: 0.0,
        cancelled: false,
        discounted: false,
    }
}

fn now() -> DateTime<Utc> {
    at(2024, 6, 30, 0)
}

/// Six customers, `now` = 2024-06-30:
/// - 0: Jan 10, Jan 20, Mar 1 and a cancelled Mar 1: gaps 10, 41 (11 + 29 + 1, a leap year);
/// - 1: Jan 31 23:00, Feb 1 01:00: one calendar day;
/// - 2: a fully refunded Feb 5, then Feb 20: one order, no gap;
/// - 3: Jan 1 10:00 and 18:00, Mar 1: gaps 0, 60 (31 + 29);
/// - 4: Jan 1, May 1: 121 days (31 + 29 + 31 + 30);
/// - 5: Feb 1, and Jul 15 after now: no gap.
fn shop() -> ShopInput {
    let mut cancelled = order(0, at(2024, 3, 1, 12));
    cancelled.cancelled = true;
    let mut refunded = order(2, at(2024, 2, 5, 9));
    refunded.refunded = 10.0;
    ShopInput {
        customers: 6,
        orders: vec![
            order(0, at(2024, 1, 10, 9)),
            order(0, at(2024, 1, 20, 9)),
            order(0, at(2024, 3, 1, 9)),
            cancelled,
            order(1, at(2024, 1, 31, 23)),
            order(1, at(2024, 2, 1, 1)),
            refunded,
            order(2, at(2024, 2, 20, 9)),
            order(3, at(2024, 1, 1, 10)),
            order(3, at(2024, 1, 1, 18)),
            order(3, at(2024, 3, 1, 9)),
            order(4, at(2024, 1, 1, 9)),
            order(4, at(2024, 5, 1, 9)),
            order(5, at(2024, 2, 1, 9)),
            order(5, at(2024, 7, 15, 9)),
        ],
        abandoned_checkouts: vec![],
    }
}

fn summary(d: &GapDistribution) -> (u64, Option<f64>, Option<f64>, Option<f64>, Option<f64>) {
    (d.gaps, d.q1_days, d.median_days, d.q3_days, d.mean_days)
}

#[test]
fn gaps_of_a_hand_made_shop() {
    let s = shop();
    let of = |c: u32| -> Vec<u32> {
        let mine: Vec<OrderFact> = s
            .orders
            .iter()
            .filter(|o| o.customer == c)
            .copied()
            .collect();
        gaps(&mine, now()).collect()
    };
    let all: Vec<Vec<u32>> = (0..6).map(of).collect();
    assert_eq!(
        all,
        [
            vec![10, 41],
            vec![1],
            vec![],
            vec![0, 60],
            vec![121],
            vec![]
        ]
    );
}

#[test]
fn distributions_quartiles_and_second_order_shares_by_hand() {
    let t = time_between_orders(&shop(), now()).unwrap();
    assert_eq!((t.buyers, t.repeat_buyers), (6, 4));
    // First to second: 0, 1, 10, 121. Type-7 quartiles: positions 0.75, 1.5, 2.25 →
    // 0.75, 5.5, 10 + 0.25 · 111 = 37.75; mean 132 / 4 = 33.
    assert_eq!(
        summary(&t.first_to_second),
        (4, Some(0.75), Some(5.5), Some(37.75), Some(33.0))
    );
    let h = &t.first_to_second.histogram;
    assert_eq!((h.len(), h[0], h[1], h[10], h[121]), (122, 1, 1, 1, 1));
    assert_eq!(h.iter().sum::<u64>(), 4);
    // Second to third: 41, 60 → 45.75, 50.5, 55.25.
    assert_eq!(
        summary(&t.second_to_third),
        (2, Some(45.75), Some(50.5), Some(55.25), Some(50.5))
    );
    // All: 0, 1, 10, 41, 60, 121: positions 1.25, 2.5, 3.75 → 3.25, 25.5, 55.25; mean 233/6.
    assert_eq!(
        summary(&t.all_consecutive),
        (6, Some(3.25), Some(25.5), Some(55.25), Some(233.0 / 6.0))
    );
    // Second orders within 30, 60, 90 days: 3 (0, 1, 10), within 180: 4; of 6 buyers and of
    // 4 repeat buyers.
    let shares: Vec<(u32, u64, Option<f64>, Option<f64>)> = t
        .second_order_within
        .iter()
        .map(|s| {
            (
                s.within_days,
                s.customers,
                s.share_of_buyers,
                s.share_of_repeat_buyers,
            )
        })
        .collect();
    assert_eq!(
        shares,
        [
            (30, 3, Some(0.5), Some(0.75)),
            (60, 3, Some(0.5), Some(0.75)),
            (90, 3, Some(0.5), Some(0.75)),
            (180, 4, Some(4.0 / 6.0), Some(1.0)),
        ]
    );
}

#[test]
fn per_segment_and_empty_groups() {
    let labels = ["a", "b", "a", "b", "a", "b"];
    let by = time_between_orders_by_segment(&shop(), now(), &labels).unwrap();
    assert_eq!(by.len(), 2);
    // a: customers 0, 2, 4: first gaps 10 and 121.
    let a = &by[&"a"];
    assert_eq!((a.buyers, a.repeat_buyers), (3, 2));
    assert_eq!(a.first_to_second.median_days, Some(65.5));
    assert_eq!(a.second_order_within[0].share_of_buyers, Some(1.0 / 3.0));
    // b: customers 1, 3, 5: first gaps 1 and 0; 3's 60 days is b's only second-to-third.
    let b = &by[&"b"];
    assert_eq!((b.buyers, b.repeat_buyers), (3, 2));
    assert_eq!(b.first_to_second.median_days, Some(0.5));
    assert_eq!(b.second_to_third.median_days, Some(60.0));
    assert_eq!(b.second_order_within[0].share_of_repeat_buyers, Some(1.0));

    // A shop without repeat orders: no quartiles, shares of 0 (and None without buyers).
    let mut one = shop();
    one.orders.retain(|o| o.customer == 2);
    let t = time_between_orders(&one, now()).unwrap();
    assert_eq!(
        (t.buyers, t.repeat_buyers, t.all_consecutive.median_days),
        (1, 0, None)
    );
    assert_eq!(t.second_order_within[0].share_of_buyers, Some(0.0));
    assert_eq!(t.second_order_within[0].share_of_repeat_buyers, None);
    let none = time_between_orders(&ShopInput::default(), now()).unwrap();
    assert_eq!(none.second_order_within[3].share_of_buyers, None);
}

#[test]
fn bad_input_is_refused() {
    let e = time_between_orders_by_segment(&shop(), now(), &["a"; 5]).unwrap_err();
    assert!(e.to_string().contains("5 labels for 6 customers"), "{e}");
    let mut s = shop();
    s.orders[1].at = at(2023, 1, 1, 0);
    assert!(matches!(
        time_between_orders(&s, now()),
        Err(AnalysisError::InvalidOrder { index: 1, .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn counts_add_up_and_quartiles_are_ordered(
        days in prop::collection::vec(prop::collection::vec(0u32..400, 0..6), 0..60),
        split in 1usize..4,
    ) {
        let start = at(2023, 1, 1, 12);
        let mut orders = Vec::new();
        for (c, offsets) in days.iter().enumerate() {
            let mut d = 0i64;
            for &o in offsets {
                d += i64::from(o);
                orders.push(order(c as u32, start + chrono::Duration::days(d)));
            }
        }
        let input = ShopInput { customers: days.len() as u32, orders, abandoned_checkouts: vec![] };
        let now = at(2030, 1, 1, 0);
        let t = time_between_orders(&input, now).unwrap();
        let buyers = days.iter().filter(|d| !d.is_empty()).count() as u64;
        let gaps: usize = days.iter().map(|d| d.len().saturating_sub(1)).sum();
        prop_assert_eq!(t.buyers, buyers);
        prop_assert_eq!(t.repeat_buyers, days.iter().filter(|d| d.len() > 1).count() as u64);
        prop_assert_eq!(t.all_consecutive.gaps, gaps as u64);
        prop_assert_eq!(t.all_consecutive.histogram.iter().sum::<u64>(), gaps as u64);
        for d in [&t.first_to_second, &t.second_to_third, &t.all_consecutive] {
            if let (Some(a), Some(b), Some(c)) = (d.q1_days, d.median_days, d.q3_days) {
                prop_assert!(a <= b && b <= c);
            }
        }
        for w in t.second_order_within.windows(2) {
            prop_assert!(w[0].customers <= w[1].customers);
        }
        // Segments partition the shop: their counts add up to the whole.
        let labels: Vec<usize> = (0..days.len()).map(|c| c % split).collect();
        let by = time_between_orders_by_segment(&input, now, &labels).unwrap();
        prop_assert_eq!(by.values().map(|s| s.buyers).sum::<u64>(), t.buyers);
        prop_assert_eq!(by.values().map(|s| s.all_consecutive.gaps).sum::<u64>(), t.all_consecutive.gaps);
    }
}
