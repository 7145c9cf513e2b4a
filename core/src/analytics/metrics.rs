//! Shop-level retention figures for a period, and the same figures month by month.
//!
//! Definitions (periods are half-open, [start, end); only counted orders, see `features`):
//! - a customer is *active* at time t if they ordered in [t − window, t) (window default 365 d);
//! - B = active at the start, E = active at the end, N = first order inside the period;
//!   **CRR** = (E − N) / B × 100; **churn rate** = share of B not active at the end × 100;
//! - **repeat-purchase rate** = customers with ≥ 2 orders / customers with ≥ 1, both counted
//!   over all orders before the period's end;
//! - **AOV** = net revenue / orders in the period; **purchase frequency** = orders / customers
//!   who ordered in the period; **returning revenue share** = revenue of orders that are not
//!   the customer's first / all revenue in the period × 100.
//!
//! Ratios with an empty denominator are None, never NaN.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::input::{OrderFact, ShopInput};
use super::parallel::map_blocks;

/// Retention figures of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodMetrics {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub orders: u64,
    pub revenue: f64,
    pub new_customers: u64,
    pub active_at_start: u64,
    pub active_at_end: u64,
    pub customer_retention_rate_pct: Option<f64>,
    pub churn_rate_pct: Option<f64>,
    pub repeat_purchase_rate_pct: Option<f64>,
    pub average_order_value: Option<f64>,
    pub purchase_frequency: Option<f64>,
    pub returning_revenue_share_pct: Option<f64>,
}

/// One point of the monthly series (the current month runs up to `now`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyPoint {
    /// First day of the month.
    pub month: NaiveDate,
    #[serde(flatten)]
    pub metrics: PeriodMetrics,
}

#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    orders: u64,
    revenue: f64,
    returning_revenue: f64,
    new_customers: u64,
    ordering_customers: u64,
    retained: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct AtBoundary {
    active: u64,
    buyers: u64,
    repeaters: u64,
}

/// Walks every customer's counted orders once and fills, for boundaries b_0 < … < b_n, the
/// state at each boundary and the flows inside each [b_j, b_{j+1}). Customers are
/// independent and every figure is a sum over them, so blocks of orders (cut at customer
/// boundaries) run on all cores and their results are added in block order.
fn accumulate(
    orders: &[OrderFact],
    boundaries: &[DateTime<Utc>],
    window: Duration,
) -> (Vec<AtBoundary>, Vec<Acc>) {
    let parts = map_blocks(orders.len(), |block| {
        // A block owns the customers whose first order falls inside it.
        let owned = |i: usize| {
            let mut i = i;
            while i > 0 && i < orders.len() && orders[i].customer == orders[i - 1].customer {
                i += 1;
            }
            i
        };
        accumulate_serial(
            &orders[owned(block.start)..owned(block.end)],
            boundaries,
            window,
        )
    });
    let mut parts = parts.into_iter();
    let Some((mut at, mut acc)) = parts.next() else {
        return accumulate_serial(&[], boundaries, window);
    };
    for (part_at, part_acc) in parts {
        for (a, p) in at.iter_mut().zip(part_at) {
            a.active += p.active;
            a.buyers += p.buyers;
            a.repeaters += p.repeaters;
        }
        for (a, p) in acc.iter_mut().zip(part_acc) {
            a.orders += p.orders;
            a.revenue += p.revenue;
            a.returning_revenue += p.returning_revenue;
            a.new_customers += p.new_customers;
            a.ordering_customers += p.ordering_customers;
            a.retained += p.retained;
        }
    }
    (at, acc)
}

/// One block of customers. Instead of visiting every boundary for every customer, each
/// customer adds to difference arrays at the few boundaries where their state changes (first
/// and second order, start and end of each active run), and one prefix sum at the end turns
/// them into counts, so the cost grows with orders, not with customers × boundaries.
fn accumulate_serial(
    orders: &[OrderFact],
    boundaries: &[DateTime<Utc>],
    window: Duration,
) -> (Vec<AtBoundary>, Vec<Acc>) {
    let n = boundaries.len();
    let mut acc = vec![Acc::default(); n.saturating_sub(1)];
    let Some(&last) = boundaries.last() else {
        return (Vec::new(), acc);
    };
    // A customer is active at boundary k when their last order before b_k is at or after
    // b_k − window; active_from is monotone like the boundaries.
    let active_from: Vec<DateTime<Utc>> = boundaries.iter().map(|b| *b - window).collect();
    let (bounds, from) = (boundaries, &active_from);
    // d_*[k] changes the count from boundary k on (one extra slot for "never").
    let mut d_buyers = vec![0i64; n + 1];
    let mut d_repeaters = vec![0i64; n + 1];
    let mut d_active = vec![0i64; n + 1];
    let mut d_retained = vec![0i64; n + 1];
    let mut add_run = |run: Option<(usize, usize)>| {
        if let Some((s, e)) = run.filter(|(s, e)| e > s) {
            d_active[s] += 1;
            d_active[e] -= 1;
            // Retained in [b_k, b_k+1) when active at both ends: k in [s, e − 1).
            if e - 1 > s {
                d_retained[s] += 1;
                d_retained[e - 1] -= 1;
            }
        }
    };
    // Orders are grouped by customer: each run is one customer's orders.
    for mine in orders.chunk_by(|a, b| a.customer == b.customer) {
        let mut j = 0; // boundaries at or before the current order
        let mut jw = 0; // boundaries whose active_from is at or before it
        let mut last_ordered_in = usize::MAX;
        // Order i is the last one before boundaries [j_i, j_{i+1}) and makes the customer
        // active at those below jw_i: intervals [j_i, min(j_{i+1}, jw_i)), disjoint and in
        // order. Adjacent ones are merged into runs (retention counts across them).
        let mut previous: Option<(usize, usize)> = None; // (j, jw) of the previous order
        let mut run: Option<(usize, usize)> = None;
        let mut push = |run: &mut Option<(usize, usize)>, s: usize, e: usize| {
            if e <= s {
                return;
            }
            match run {
                Some((_, re)) if *re == s => *re = e,
                _ => {
                    add_run(run.take());
                    *run = Some((s, e));
                }
            }
        };
        // seen: counted orders before the current one.
        let counted = mine.iter().filter(|o| o.counts() && o.at < last);
        for (seen, o) in counted.enumerate() {
            let t = o.at;
            if seen == 0 {
                // Jump to the first order; later orders move on a step at a time.
                j = bounds.partition_point(|b| *b <= t);
                jw = from.partition_point(|b| *b <= t);
            }
            while j < n && bounds[j] <= t {
                j += 1;
            }
            while jw < n && from[jw] <= t {
                jw += 1;
            }
            if let Some((pj, pjw)) = previous {
                push(&mut run, pj, j.min(pjw));
            }
            previous = Some((j, jw));
            match seen {
                0 => d_buyers[j] += 1,
                1 => d_repeaters[j] += 1,
                _ => {}
            }
            if j > 0 {
                let a = &mut acc[j - 1];
                a.orders += 1;
                a.revenue += o.net();
                if seen > 0 {
                    a.returning_revenue += o.net();
                } else {
                    a.new_customers += 1;
                }
                if last_ordered_in != j - 1 {
                    last_ordered_in = j - 1;
                    a.ordering_customers += 1;
                }
            }
        }
        if let Some((pj, pjw)) = previous {
            push(&mut run, pj, n.min(pjw));
        }
        add_run(run);
    }
    let mut at = vec![AtBoundary::default(); n];
    let (mut buyers, mut repeaters, mut active, mut retained) = (0i64, 0i64, 0i64, 0i64);
    for k in 0..n {
        buyers += d_buyers[k];
        repeaters += d_repeaters[k];
        active += d_active[k];
        retained += d_retained[k];
        at[k] = AtBoundary {
            active: active as u64,
            buyers: buyers as u64,
            repeaters: repeaters as u64,
        };
        if k + 1 < n {
            acc[k].retained = retained as u64;
        }
    }
    (at, acc)
}

fn pct(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den * 100.0)
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

fn period_metrics(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    s: &AtBoundary,
    e: &AtBoundary,
    a: &Acc,
) -> PeriodMetrics {
    let b = s.active as f64;
    PeriodMetrics {
        start,
        end,
        orders: a.orders,
        revenue: a.revenue,
        new_customers: a.new_customers,
        active_at_start: s.active,
        active_at_end: e.active,
        customer_retention_rate_pct: pct(e.active as f64 - a.new_customers as f64, b),
        churn_rate_pct: pct(b - a.retained as f64, b),
        repeat_purchase_rate_pct: pct(e.repeaters as f64, e.buyers as f64),
        average_order_value: ratio(a.revenue, a.orders as f64),
        purchase_frequency: ratio(a.orders as f64, a.ordering_customers as f64),
        returning_revenue_share_pct: pct(a.returning_revenue, a.revenue),
    }
}

/// End of the period that includes `now` itself (orders at `now` count).
fn inclusive(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::nanoseconds(1)
}

/// Figures for [now − period_days, now].
pub fn period(
    input: &ShopInput,
    now: DateTime<Utc>,
    period_days: u32,
    window_days: u32,
) -> PeriodMetrics {
    let start = now - Duration::days(i64::from(period_days));
    let bounds = [start, inclusive(now)];
    let (at, acc) = accumulate(
        &input.orders,
        &bounds,
        Duration::days(i64::from(window_days)),
    );
    period_metrics(start, now, &at[0], &at[1], &acc[0])
}

/// Calendar months (UTC) from the first counted order's month, at most `max_months` of them
/// ending with the month of `now`.
pub fn monthly(
    input: &ShopInput,
    now: DateTime<Utc>,
    window_days: u32,
    max_months: u32,
) -> Vec<MonthlyPoint> {
    let firsts = map_blocks(input.orders.len(), |block| {
        input.orders[block]
            .iter()
            .filter(|o| o.counts() && o.at <= now)
            .map(|o| o.at)
            .min()
    });
    let Some(first) = firsts.into_iter().flatten().min() else {
        return Vec::new();
    };
    let month_index = |d: NaiveDate| d.year() * 12 + d.month0() as i32;
    let last_m = month_index(now.date_naive());
    let first_m = month_index(first.date_naive()).max(last_m - max_months as i32 + 1);
    if max_months == 0 || first_m > last_m {
        return Vec::new();
    }
    let month_start = |m: i32| {
        NaiveDate::from_ymd_opt(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1)
            .expect("month index maps to a valid first day")
    };
    let mut bounds: Vec<DateTime<Utc>> = (first_m..=last_m)
        .map(|m| {
            month_start(m)
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc()
        })
        .collect();
    bounds.push(inclusive(now));
    let (at, acc) = accumulate(
        &input.orders,
        &bounds,
        Duration::days(i64::from(window_days)),
    );
    (0..acc.len())
        .map(|j| MonthlyPoint {
            month: month_start(first_m + j as i32),
            metrics: period_metrics(
                bounds[j],
                if j + 1 == acc.len() {
                    now
                } else {
                    bounds[j + 1]
                },
                &at[j],
                &at[j + 1],
                &acc[j],
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward walk (every customer visits every boundary), kept to check the
    /// difference-array version against.
    fn reference_accumulate(
        orders: &[OrderFact],
        boundaries: &[DateTime<Utc>],
        window: Duration,
    ) -> (Vec<AtBoundary>, Vec<Acc>) {
        let n = boundaries.len();
        let mut at = vec![AtBoundary::default(); n];
        let mut acc = vec![Acc::default(); n.saturating_sub(1)];
        let Some(&last) = boundaries.last() else {
            return (at, acc);
        };
        // Active at boundary j = last order at or after this (computed once, not per customer).
        let active_from: Vec<DateTime<Utc>> = boundaries.iter().map(|b| *b - window).collect();
        let mut active = vec![false; n];
        let mut ordered_in = vec![false; n];
        // Orders are grouped by customer: each run is one customer's orders.
        for mine in orders.chunk_by(|a, b| a.customer == b.customer) {
            active.fill(false);
            ordered_in.fill(false);
            let mut seen = 0u64; // counted orders before the current position
            let mut last_at: Option<DateTime<Utc>> = None;
            let mut j = 0;
            for o in mine.iter().filter(|o| o.counts() && o.at < last) {
                while j < n && boundaries[j] <= o.at {
                    record_boundary(&mut at[j], &mut active[j], last_at, seen, active_from[j]);
                    j += 1;
                }
                if j > 0 {
                    let a = &mut acc[j - 1];
                    a.orders += 1;
                    a.revenue += o.net();
                    if seen > 0 {
                        a.returning_revenue += o.net();
                    } else {
                        a.new_customers += 1;
                    }
                    if !ordered_in[j - 1] {
                        ordered_in[j - 1] = true;
                        a.ordering_customers += 1;
                    }
                }
                seen += 1;
                last_at = Some(o.at);
            }
            while j < n {
                record_boundary(&mut at[j], &mut active[j], last_at, seen, active_from[j]);
                j += 1;
            }
            for k in 0..n.saturating_sub(1) {
                if active[k] && active[k + 1] {
                    acc[k].retained += 1;
                }
            }
        }
        (at, acc)
    }

    fn record_boundary(
        at: &mut AtBoundary,
        active: &mut bool,
        last_at: Option<DateTime<Utc>>,
        seen: u64,
        active_from: DateTime<Utc>,
    ) {
        *active = last_at.is_some_and(|t| t >= active_from);
        at.active += u64::from(*active);
        at.buyers += u64::from(seen >= 1);
        at.repeaters += u64::from(seen >= 2);
    }
    use chrono::TimeZone;

    fn o(customer: u32, y: i32, m: u32, d: u32, amount: f64) -> OrderFact {
        OrderFact {
            customer,
            at: Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap(),
            amount,
            refunded: 0.0,
            cancelled: false,
            discounted: false,
        }
    }

    fn shop() -> ShopInput {
        // c0: 2023 and 2024 (retained); c1: 2023 only (lost); c2: new in 2024;
        // c3: 2021 then 2024 (reactivated, not active at start).
        ShopInput {
            customers: 4,
            orders: vec![
                o(0, 2023, 6, 1, 10.0),
                o(0, 2024, 3, 1, 30.0),
                o(1, 2023, 6, 15, 20.0),
                o(2, 2024, 4, 1, 40.0),
                o(2, 2024, 5, 1, 60.0),
                o(3, 2021, 1, 1, 5.0),
                o(3, 2024, 2, 1, 50.0),
            ],
            abandoned_checkouts: vec![],
        }
    }

    #[test]
    fn crr_follows_the_textbook_formula() {
        let now = Utc.with_ymd_and_hms(2024, 6, 30, 0, 0, 0).unwrap();
        let p = period(&shop(), now, 182, 365);
        // start 2023-12-31: active (ordered in 2023) c0, c1 -> B = 2.
        // end: active c0, c2, c3 -> E = 3; N = c2 -> 1. CRR = (3 - 1) / 2 = 100 %.
        assert_eq!(
            (p.active_at_start, p.active_at_end, p.new_customers),
            (2, 3, 1)
        );
        assert_eq!(p.customer_retention_rate_pct, Some(100.0));
        // c1 was active at the start and is not at the end.
        assert_eq!(p.churn_rate_pct, Some(50.0));
        assert_eq!(p.orders, 4);
        assert_eq!(p.revenue, 180.0);
        assert_eq!(p.average_order_value, Some(45.0));
        assert_eq!(p.purchase_frequency, Some(4.0 / 3.0));
        // returning: c0's 30, c2's second 60, c3's 50.
        assert_eq!(p.returning_revenue_share_pct, Some(140.0 / 180.0 * 100.0));
        // every customer but c1 has two orders by the end.
        assert_eq!(p.repeat_purchase_rate_pct, Some(75.0));
    }

    #[test]
    fn difference_arrays_agree_with_the_straightforward_walk() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let origin = Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap();
        let mut orders = Vec::new();
        for customer in 0..3_000u32 {
            let mut at = origin + Duration::hours(rng.random_range(0..30_000));
            for _ in 0..rng.random_range(0..12) {
                orders.push(OrderFact {
                    customer,
                    at,
                    amount: f64::from(rng.random_range(0..10_000u32)) / 100.0,
                    refunded: 0.0,
                    cancelled: rng.random::<f64>() < 0.1,
                    discounted: false,
                });
                // Often the same day or month, sometimes long gaps.
                let longest = if rng.random() { 48 } else { 9_000 };
                at += Duration::hours(rng.random_range(0..longest));
            }
        }
        let mut bounds: Vec<DateTime<Utc>> = (0..40)
            .map(|m| origin + Duration::days(30 * m + 3))
            .collect();
        bounds.push(origin + Duration::days(1_500));
        for window_days in [1, 45, 90, 365, 2_000] {
            let window = Duration::days(window_days);
            for b in [&bounds[..], &bounds[5..7], &bounds[..1], &bounds[10..]] {
                let (at, acc) = accumulate_serial(&orders, b, window);
                let (at_r, acc_r) = reference_accumulate(&orders, b, window);
                let at_key = |v: &[AtBoundary]| {
                    v.iter()
                        .map(|a| (a.active, a.buyers, a.repeaters))
                        .collect::<Vec<_>>()
                };
                assert_eq!(at_key(&at), at_key(&at_r), "window {window_days}");
                let acc_key = |v: &[Acc]| {
                    v.iter()
                        .map(|a| {
                            (
                                a.orders,
                                a.revenue.to_bits(),
                                a.returning_revenue.to_bits(),
                                a.new_customers,
                                a.ordering_customers,
                                a.retained,
                            )
                        })
                        .collect::<Vec<_>>()
                };
                assert_eq!(acc_key(&acc), acc_key(&acc_r), "window {window_days}");
            }
        }
        assert!(
            accumulate_serial(&orders, &[], Duration::days(1))
                .0
                .is_empty()
        );
    }

    #[test]
    fn parallel_blocks_count_every_customer_once() {
        // The 4-customer shop repeated past several blocks, plus one customer whose orders
        // straddle block edges, gives the serial walk's figures.
        let mut orders = Vec::new();
        let copies = crate::analytics::parallel::BLOCK as u32 / 2;
        for k in 0..copies {
            orders.extend(shop().orders.into_iter().map(|mut x| {
                x.customer += 4 * k;
                x
            }));
        }
        let big = 4 * copies;
        for i in 0..crate::analytics::parallel::BLOCK as u32 + 100 {
            // Sorted by time: 8 months a year, a thousand orders a month.
            orders.push(o(big, 2022 + (i / 8000) as i32, 1 + (i / 1000) % 8, 1, 1.0));
        }
        let now = Utc.with_ymd_and_hms(2024, 6, 30, 0, 0, 0).unwrap();
        let bounds = [
            now - Duration::days(400),
            now - Duration::days(182),
            inclusive(now),
        ];
        let window = Duration::days(365);
        let (at, acc) = accumulate(&orders, &bounds, window);
        let (at_s, acc_s) = accumulate_serial(&orders, &bounds, window);
        for (p, q) in at.iter().zip(&at_s) {
            assert_eq!(
                (p.active, p.buyers, p.repeaters),
                (q.active, q.buyers, q.repeaters)
            );
        }
        for (p, q) in acc.iter().zip(&acc_s) {
            let key = |a: &Acc| (a.orders, a.new_customers, a.ordering_customers, a.retained);
            assert_eq!(key(p), key(q));
            assert!((p.revenue - q.revenue).abs() < 1e-6 * q.revenue.max(1.0));
        }
        assert_eq!(at[2].buyers, u64::from(big) + 1);
    }

    #[test]
    fn empty_denominators_give_none() {
        let now = Utc.with_ymd_and_hms(2024, 6, 30, 0, 0, 0).unwrap();
        let p = period(&ShopInput::default(), now, 365, 365);
        assert_eq!(p.customer_retention_rate_pct, None);
        assert_eq!(p.average_order_value, None);
    }

    #[test]
    fn monthly_series_sums_to_the_orders_and_ends_at_now() {
        let now = Utc.with_ymd_and_hms(2024, 5, 15, 0, 0, 0).unwrap();
        let series = monthly(&shop(), now, 365, 24);
        assert_eq!(
            series.first().unwrap().month,
            NaiveDate::from_ymd_opt(2022, 6, 1).unwrap()
        );
        assert_eq!(
            series.last().unwrap().month,
            NaiveDate::from_ymd_opt(2024, 5, 1).unwrap()
        );
        assert_eq!(series.len(), 24);
        assert_eq!(series.iter().map(|p| p.metrics.orders).sum::<u64>(), 6);
        let may = series.last().unwrap();
        assert_eq!(may.metrics.end, now);
        assert_eq!(may.metrics.revenue, 60.0);
        assert_eq!(may.metrics.new_customers, 0);
    }
}
