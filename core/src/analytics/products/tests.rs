use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;

use super::*;

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Lines of one order: one line per product (quantity 1, 10.00).
fn order(customer: u32, id: u32, at: DateTime<Utc>, products: &[u32]) -> Vec<LineItem> {
    products
        .iter()
        .map(|&product| LineItem {
            customer,
            order: id,
            product,
            quantity: 1,
            at,
            net_minor: 1000,
        })
        .collect()
}

/// Products 0 coffee, 1 filter, 2 mug, 3 tea; six customers (2024):
/// - 0: Jan 1 {coffee, filter}, Jan 21 {coffee}, Mar 1 {coffee, mug};
/// - 1: Jan 5 {coffee}, Feb 14 {coffee, filter};
/// - 2: Jan 10 {tea}, and again {tea} the same day in a second order;
/// - 3: Feb 1 {mug, tea};
/// - 4: no lines;
/// - 5: Mar 10 {filter}.
fn shop() -> Baskets {
    let items = [
        order(0, 1, at(2024, 1, 1), &[0, 1]),
        order(0, 2, at(2024, 1, 21), &[0]),
        order(0, 3, at(2024, 3, 1), &[2, 0]),
        order(1, 1, at(2024, 1, 5), &[0]),
        order(1, 2, at(2024, 2, 14), &[1, 0]),
        order(2, 1, at(2024, 1, 10), &[3]),
        order(2, 2, at(2024, 1, 10), &[3]),
        order(3, 1, at(2024, 2, 1), &[2, 3]),
        order(5, 1, at(2024, 3, 10), &[1]),
    ]
    .concat();
    Baskets {
        customers: 6,
        products: 4,
        items,
    }
}

#[test]
fn journeys_of_a_hand_made_shop() {
    let j = journeys(&shop()).unwrap();
    let firsts: Vec<(u32, u64, u64)> = j
        .first_products
        .iter()
        .map(|f| (f.product, f.customers, f.second_order_customers))
        .collect();
    // Coffee opened 0's and 1's histories, filter 0's and 5's, mug and tea 3's, tea 2's.
    assert_eq!(firsts, [(0, 2, 2), (1, 2, 1), (2, 1, 0), (3, 2, 1)]);
    let steps: Vec<(u32, u32, u64, f64)> = j
        .steps
        .iter()
        .map(|s| (s.first, s.second, s.customers, s.share))
        .collect();
    // 0: {coffee, filter} -> {coffee}; 1: {coffee} -> {coffee, filter}; 2: tea -> tea.
    assert_eq!(
        steps,
        [
            (0, 0, 2, 2.0 / 3.0),
            (0, 1, 1, 1.0 / 3.0),
            (1, 0, 1, 1.0),
            (3, 3, 1, 1.0),
        ]
    );
}

fn figures(a: &Affinity) -> Vec<(u32, u32, u64, f64, f64, f64, f64)> {
    a.pairs
        .iter()
        .map(|p| {
            (
                p.a,
                p.b,
                p.together,
                p.support,
                p.confidence_a_to_b,
                p.confidence_b_to_a,
                p.lift,
            )
        })
        .collect()
}

#[test]
fn basket_affinity_by_hand() {
    let opts = AffinityOptions {
        min_support: 0.0,
        ..Default::default()
    };
    let a = affinity(&shop(), AffinityScope::Basket, &opts).unwrap();
    // 9 orders; coffee in 5, filter 3, mug 2, tea 3.
    assert_eq!((a.transactions, a.capped_transactions), (9, 0));
    assert_eq!(a.product_transactions, [5, 3, 2, 3]);
    // (mug, tea) once: lift 1·9/(2·3) = 1.5; (coffee, filter) twice: 2·9/15 = 1.2;
    // (coffee, mug) once: 9/10.
    assert_eq!(
        figures(&a),
        [
            (2, 3, 1, 1.0 / 9.0, 0.5, 1.0 / 3.0, 1.5),
            (0, 1, 2, 2.0 / 9.0, 0.4, 2.0 / 3.0, 1.2),
            (0, 2, 1, 1.0 / 9.0, 0.2, 0.5, 0.9),
        ]
    );
    // A minimum support of 2/9 keeps only (coffee, filter): the bound is inclusive.
    let opts = AffinityOptions {
        min_support: 2.0 / 9.0,
        ..Default::default()
    };
    let a = affinity(&shop(), AffinityScope::Basket, &opts).unwrap();
    assert_eq!((a.pairs.len(), a.pairs[0].a, a.pairs[0].b), (1, 0, 1));
    // A cap below 2 products allows no pair: refused.
    let e = affinity(
        &shop(),
        AffinityScope::Basket,
        &AffinityOptions {
            min_support: 0.0,
            max_products: 1,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("max_products"), "{e}");
}

#[test]
fn history_affinity_and_the_basket_cap() {
    let opts = AffinityOptions {
        min_support: 0.0,
        max_products: 2,
    };
    let a = affinity(&shop(), AffinityScope::History, &opts).unwrap();
    // Histories: 0 {coffee, filter, mug} (3 products: over the cap, no pairs), 1 {coffee,
    // filter}, 2 {tea}, 3 {mug, tea}, 5 {filter}.
    assert_eq!((a.transactions, a.capped_transactions), (5, 1));
    assert_eq!(a.product_transactions, [2, 3, 2, 2]);
    // (mug, tea): 1·5/(2·2) = 1.25; (coffee, filter): 1·5/(2·3) = 5/6.
    assert_eq!(
        figures(&a),
        [
            (2, 3, 1, 0.2, 0.5, 0.5, 1.25),
            (0, 1, 1, 0.2, 0.5, 1.0 / 3.0, 5.0 / 6.0),
        ]
    );
}

#[test]
fn next_best_product_by_hand_and_ties() {
    let s = shop();
    let opts = AffinityOptions {
        min_support: 0.0,
        ..Default::default()
    };
    let a = affinity(&s, AffinityScope::Basket, &opts).unwrap();
    let next: Vec<Option<(u32, f64, u32, u64)>> = next_best_products(&s, &a)
        .unwrap()
        .into_iter()
        .map(|n| n.map(|n| (n.product, n.lift, n.because_of, n.together)))
        .collect();
    // 0 bought coffee, filter, mug: tea through mug (1.5); 1 has both of (coffee, filter);
    // 2: mug through tea; 3 has both of (mug, tea); 4 bought nothing; 5: coffee through filter.
    // (coffee, mug) has lift 0.9 and is never a reason.
    assert_eq!(
        next,
        [
            Some((3, 1.5, 2, 1)),
            None,
            Some((2, 1.5, 3, 1)),
            None,
            None,
            Some((0, 1.2, 1, 2)),
        ]
    );

    // Ties: (0, 1) and (0, 2) both have lift 4/3 and one basket each: the smaller id wins.
    let items = [
        order(0, 1, at(2024, 1, 1), &[0, 1]),
        order(1, 1, at(2024, 1, 1), &[0, 2]),
        order(2, 1, at(2024, 1, 1), &[0]),
        order(3, 1, at(2024, 1, 1), &[3]),
    ]
    .concat();
    let b = Baskets {
        customers: 4,
        products: 4,
        items,
    };
    let a = affinity(&b, AffinityScope::Basket, &opts).unwrap();
    let next: Vec<Option<u32>> = next_best_products(&b, &a)
        .unwrap()
        .into_iter()
        .map(|n| n.map(|n| n.product))
        .collect();
    assert_eq!(next, [Some(2), Some(1), Some(1), None]);
}

#[test]
fn replenishment_windows_and_who_is_due() {
    let s = shop();
    let due = |r: &Replenishment| -> Vec<(u32, u32, NaiveDate, NaiveDate, u32)> {
        r.due
            .iter()
            .map(|d| {
                (
                    d.customer,
                    d.product,
                    d.last_purchase,
                    d.due_on,
                    d.days_overdue,
                )
            })
            .collect()
    };
    let one = ReplenishmentOptions { min_repeats: 1 };
    let r = replenishment(&s, at(2024, 4, 15), &one).unwrap();
    // Coffee: 0 after 20 and 40 days (Jan 21 -> Mar 1, a leap year), 1 after 40: median 40.
    // Tea: customer 2's two orders on one day, a gap of 0.
    let windows: Vec<(u32, u64, u64, f64)> = r
        .windows
        .iter()
        .map(|w| (w.product, w.repeats, w.customers, w.median_days))
        .collect();
    assert_eq!(windows, [(0, 3, 2, 40.0), (3, 1, 1, 0.0)]);
    assert_eq!(
        due(&r),
        [
            (0, 0, date(2024, 3, 1), date(2024, 4, 10), 5),
            (1, 0, date(2024, 2, 14), date(2024, 3, 25), 21),
            (2, 3, date(2024, 1, 10), date(2024, 1, 10), 96),
            (3, 3, date(2024, 2, 1), date(2024, 2, 1), 74),
        ]
    );
    // At least 2 repeats: only coffee.
    let r = replenishment(
        &s,
        at(2024, 4, 15),
        &ReplenishmentOptions { min_repeats: 2 },
    )
    .unwrap();
    assert_eq!(r.windows.len(), 1);
    assert_eq!(r.due.len(), 2);
    // On Feb 20 the Mar 1 order has not happened: gaps 20 and 40, window 30; customer 0 is due
    // that very day (Jan 21 + 30), customer 1 (Feb 14) is not.
    let r = replenishment(
        &s,
        at(2024, 2, 20),
        &ReplenishmentOptions { min_repeats: 2 },
    )
    .unwrap();
    assert_eq!(r.windows[0].median_days, 30.0);
    assert_eq!(due(&r), [(0, 0, date(2024, 1, 21), date(2024, 2, 20), 0)]);
}

#[test]
fn bad_lines_and_options_are_refused() {
    let mut s = shop();
    s.items[4].product = 4;
    let e = journeys(&s).unwrap_err();
    assert_eq!(
        e,
        AnalysisError::InvalidLineItem {
            index: 4,
            reason: "product 4 is not below 4".into()
        }
    );
    let mut s = shop();
    s.items.swap(0, 3);
    assert!(
        affinity(&s, AffinityScope::Basket, &AffinityOptions::default())
            .unwrap_err()
            .to_string()
            .contains("not sorted")
    );
    let mut s = shop();
    s.items[2].quantity = 0;
    assert!(matches!(
        replenishment(&s, at(2024, 4, 1), &ReplenishmentOptions::default()),
        Err(AnalysisError::InvalidLineItem { index: 2, .. })
    ));
    let s = shop();
    assert!(replenishment(&s, at(2024, 4, 1), &ReplenishmentOptions { min_repeats: 0 }).is_err());
    let half = AffinityOptions {
        min_support: 1.5,
        ..Default::default()
    };
    assert!(affinity(&s, AffinityScope::History, &half).is_err());
    let a = affinity(&s, AffinityScope::Basket, &AffinityOptions::default()).unwrap();
    let mut more = s.clone();
    more.products = 5;
    assert!(next_best_products(&more, &a).is_err());
    // Empty shops give empty results.
    let none = Baskets::default();
    assert_eq!(journeys(&none).unwrap(), Journeys::default());
    let a = affinity(&none, AffinityScope::Basket, &AffinityOptions::default()).unwrap();
    assert_eq!((a.transactions, a.pairs.len()), (0, 0));
}

/// Baskets from (customer -> orders -> products), days 3 apart, product ids times `spread`.
fn baskets_of(shop: &[Vec<Vec<u32>>], products: u32, spread: u32) -> Baskets {
    let mut items = Vec::new();
    for (c, orders) in shop.iter().enumerate() {
        for (k, ps) in orders.iter().enumerate() {
            let when = at(2024, 1, 1) + chrono::Duration::days(3 * k as i64);
            let ps: Vec<u32> = ps.iter().map(|p| p * spread).collect();
            items.extend(order(c as u32, k as u32, when, &ps));
        }
    }
    Baskets {
        customers: shop.len() as u32,
        products: products * spread,
        items,
    }
}

/// n(ab) counted the slow way.
fn brute_pairs(b: &Baskets, scope: AffinityScope) -> BTreeMap<(u32, u32), u64> {
    let mut sets: BTreeMap<(u32, u32), BTreeSet<u32>> = BTreeMap::new();
    for l in &b.items {
        let key = match scope {
            AffinityScope::Basket => (l.customer, l.order),
            AffinityScope::History => (l.customer, 0),
        };
        sets.entry(key).or_default().insert(l.product);
    }
    let mut n = BTreeMap::new();
    for set in sets.values() {
        for &a in set {
            for &b in set.range(a + 1..) {
                *n.entry((a, b)).or_insert(0) += 1;
            }
        }
    }
    n
}

fn arb_shop() -> impl Strategy<Value = Vec<Vec<Vec<u32>>>> {
    prop::collection::vec(
        prop::collection::vec(prop::collection::vec(0u32..6, 1..4), 0..5),
        0..25,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn affinity_figures_are_bounded_symmetric_and_exact(shop in arb_shop()) {
        let opts = AffinityOptions { min_support: 0.0, max_products: 50 };
        for scope in [AffinityScope::Basket, AffinityScope::History] {
            let b = baskets_of(&shop, 6, 1);
            let a = affinity(&b, scope, &opts).unwrap();
            for p in &a.pairs {
                prop_assert!(p.a < p.b);
                for v in [p.support, p.confidence_a_to_b, p.confidence_b_to_a] {
                    prop_assert!((0.0..=1.0).contains(&v), "{v}");
                }
                prop_assert!(p.lift > 0.0 && p.lift.is_finite());
            }
            let counted: BTreeMap<(u32, u32), u64> =
                a.pairs.iter().map(|p| ((p.a, p.b), p.together)).collect();
            prop_assert_eq!(&counted, &brute_pairs(&b, scope));

            // Numbering the products backwards swaps a and b in every pair: the lifts stay.
            let mut reversed = b.clone();
            reversed.items.iter_mut().for_each(|l| l.product = 5 - l.product);
            let r = affinity(&reversed, scope, &opts).unwrap();
            let lift = |x: &Affinity, a: u32, b: u32| {
                x.pairs.iter().find(|p| (p.a, p.b) == (a.min(b), a.max(b))).map(|p| p.lift)
            };
            for p in &a.pairs {
                prop_assert_eq!(Some(p.lift), lift(&r, 5 - p.b, 5 - p.a));
            }

            // A catalogue too large for the table counts in the hash map: the same pairs.
            let wide = affinity(&baskets_of(&shop, 6, 1000), scope, &opts).unwrap();
            let scaled: Vec<(u32, u32, u64, f64)> =
                wide.pairs.iter().map(|p| (p.a / 1000, p.b / 1000, p.together, p.lift)).collect();
            let plain: Vec<(u32, u32, u64, f64)> =
                a.pairs.iter().map(|p| (p.a, p.b, p.together, p.lift)).collect();
            prop_assert_eq!(scaled, plain);
        }
    }

    #[test]
    fn next_best_is_never_bought_and_related(shop in arb_shop(), support in 0.0f64..0.3) {
        let b = baskets_of(&shop, 6, 1);
        let opts = AffinityOptions { min_support: support, max_products: 3 };
        for scope in [AffinityScope::Basket, AffinityScope::History] {
            let a = affinity(&b, scope, &opts).unwrap();
            let next = next_best_products(&b, &a).unwrap();
            prop_assert_eq!(next.len(), shop.len());
            for (c, n) in next.iter().enumerate() {
                let Some(n) = n else { continue };
                let bought: BTreeSet<u32> = shop[c].iter().flatten().copied().collect();
                prop_assert!(!bought.contains(&n.product));
                prop_assert!(bought.contains(&n.because_of));
                prop_assert!(n.lift > 1.0);
                let (x, y) = (n.product.min(n.because_of), n.product.max(n.because_of));
                prop_assert!(a.pairs.iter().any(|p| (p.a, p.b) == (x, y) && p.lift == n.lift));
            }
        }
    }

    #[test]
    fn journey_shares_add_up_to_one_per_first_product(shop in arb_shop()) {
        let j = journeys(&baskets_of(&shop, 6, 1)).unwrap();
        let mut sums: BTreeMap<u32, f64> = BTreeMap::new();
        for s in &j.steps {
            prop_assert!(s.share > 0.0 && s.share <= 1.0);
            *sums.entry(s.first).or_default() += s.share;
        }
        for (first, sum) in sums {
            prop_assert!((sum - 1.0).abs() < 1e-12, "{first}: {sum}");
            let f = j.first_products.iter().find(|f| f.product == first).unwrap();
            prop_assert!(f.second_order_customers > 0);
        }
        let firsts = shop.iter().filter(|o| !o.is_empty()).count() as u64;
        prop_assert!(j.first_products.iter().all(|f| f.customers <= firsts));
    }

    #[test]
    fn due_products_have_a_window_and_are_due(shop in arb_shop(), days in 0i64..30) {
        let b = baskets_of(&shop, 6, 1);
        let as_of = at(2024, 1, 1) + chrono::Duration::days(days);
        let r = replenishment(&b, as_of, &ReplenishmentOptions { min_repeats: 2 }).unwrap();
        for d in &r.due {
            let w = r.windows.iter().find(|w| w.product == d.product).unwrap();
            prop_assert!(w.repeats >= 2);
            let last = crate::analytics::features::day_number(d.last_purchase.and_time(Default::default()).and_utc());
            prop_assert!(last as f64 + w.median_days <= crate::analytics::features::day_number(as_of) as f64);
            prop_assert!(d.due_on <= as_of.date_naive() && d.last_purchase <= d.due_on);
        }
    }
}

#[test]
fn many_customers_over_several_pieces_count_exactly() {
    // 40,000 customers of 2 orders: enough lines for one piece per thread.
    let shop: Vec<Vec<Vec<u32>>> = (0..40_000u32)
        .map(|c| vec![vec![c % 5, (c / 5) % 6], vec![(c / 7) % 6]])
        .collect();
    let b = baskets_of(&shop, 6, 1);
    assert!(b.items.len() > 65_536);
    for scope in [AffinityScope::Basket, AffinityScope::History] {
        let a = affinity(
            &b,
            scope,
            &AffinityOptions {
                min_support: 0.0,
                max_products: 50,
            },
        )
        .unwrap();
        let counted: BTreeMap<(u32, u32), u64> =
            a.pairs.iter().map(|p| ((p.a, p.b), p.together)).collect();
        assert_eq!(counted, brute_pairs(&b, scope));
    }
    let j = journeys(&b).unwrap();
    assert_eq!(j.steps.iter().map(|s| s.customers).sum::<u64>(), {
        shop.iter()
            .map(|o| {
                let a: BTreeSet<_> = o[0].iter().collect();
                let b: BTreeSet<_> = o[1].iter().collect();
                (a.len() * b.len()) as u64
            })
            .sum::<u64>()
    });
}

#[test]
fn analyze_reads_lines_and_writes_the_affinity_csv() {
    use crate::analytics::cli::{AnalyzeOptions, parse_end, run_analyze};
    use crate::analytics::writers::write_affinity_csv;
    // Three orders: {tea, cup} twice, {tea} once; a fourth after --end is left out.
    let csv = "customer_id,order_id,date,amount,product_id,quantity\n\
               a,1,2024-01-01,5,tea,1\n\
               a,1,2024-01-01,3,cup,2\n\
               b,1,2024-01-02,5,tea,1\n\
               b,1,2024-01-02,3,cup,1\n\
               c,1,2024-01-03,5,tea,1\n\
               c,2,2024-03-01,9,spoon,1\n";
    let opts = AnalyzeOptions {
        end: Some(parse_end("2024-02-01").unwrap()),
        ..Default::default()
    };
    let out = run_analyze(csv.as_bytes(), &opts).unwrap();
    let lines = out.products.as_ref().unwrap();
    assert_eq!(lines.baskets.items.len(), 5);
    let affinity = out.affinity("--affinity").unwrap();
    let mut file = Vec::new();
    write_affinity_csv(&lines.product_ids, &affinity, &mut file).unwrap();
    // n(tea) = 3, n(cup) = 2, n(tea, cup) = 2 of 3: lift 2·3/6 = 1, in baskets and histories.
    assert_eq!(
        String::from_utf8(file).unwrap(),
        "scope,product_a,product_b,together,support,confidence_a_to_b,confidence_b_to_a,lift,transactions\n\
         basket,tea,cup,2,0.6666666666666666,0.6666666666666666,1,1,3\n\
         history,tea,cup,2,0.6666666666666666,0.6666666666666666,1,1,3\n"
    );
    // A plain transactions file says what is missing.
    let plain = "customer_id,date,amount\na,2024-01-01,5\n";
    let out = run_analyze(plain.as_bytes(), &AnalyzeOptions::default()).unwrap();
    let e = out.affinity("--affinity").unwrap_err().to_string();
    assert!(e.contains("product_id column"), "{e}");
}
