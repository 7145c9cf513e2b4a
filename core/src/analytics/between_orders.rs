//! Time between orders: how long customers take to come back.
//!
//! Rules: only counted orders (`OrderFact::counts_at`, as every analysis); a gap is the number
//! of whole UTC calendar days between two consecutive counted orders of a customer (0 for two
//! orders on one day: here every order counts, unlike the purchase days of the models).
//! Quantiles interpolate between order statistics (`stats::quantile_of`, numpy's default).
//! The shares of second orders within N days are not corrected for customers whose first
//! order is less than N days old; both denominators are given, each named in its field.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AnalysisError;
use super::features::day_number;
use super::input::{OrderFact, ShopInput};
use super::parallel::map_customer_parts;
use crate::stats::quantile_of;

/// The windows of `TimeBetweenOrders::second_order_within`, in days.
pub const SECOND_ORDER_WINDOWS: [u32; 4] = [30, 60, 90, 180];

/// Days since the previous counted order for each of one customer's counted orders after the
/// first, in order (`orders`: that customer's orders, sorted by time).
pub fn gaps(orders: &[OrderFact], now: DateTime<Utc>) -> impl Iterator<Item = u32> + '_ {
    let mut previous: Option<i64> = None;
    orders
        .iter()
        .filter(move |o| o.counts_at(now))
        .filter_map(move |o| {
            let day = day_number(o.at);
            let gap = previous.map(|p| (day - p) as u32);
            previous = Some(day);
            gap
        })
}

/// A distribution of gaps in days.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GapDistribution {
    pub gaps: u64,
    /// `histogram[d]` = gaps of exactly d days (up to the longest gap).
    pub histogram: Vec<u64>,
    /// None without gaps.
    pub median_days: Option<f64>,
    pub q1_days: Option<f64>,
    pub q3_days: Option<f64>,
    pub mean_days: Option<f64>,
}

impl GapDistribution {
    fn from_histogram(histogram: Vec<u64>) -> GapDistribution {
        let gaps: u64 = histogram.iter().sum();
        // The i-th smallest gap: the first d whose cumulative count passes i.
        let cumulative: Vec<u64> = histogram
            .iter()
            .scan(0, |c, &n| {
                *c += n;
                Some(*c)
            })
            .collect();
        let nth = |i: usize| cumulative.partition_point(|&c| c <= i as u64) as f64;
        let q = |p: f64| (gaps > 0).then(|| quantile_of(gaps as usize, p, nth));
        let total: f64 = histogram
            .iter()
            .enumerate()
            .map(|(d, &n)| d as f64 * n as f64)
            .sum();
        GapDistribution {
            gaps,
            median_days: q(0.5),
            q1_days: q(0.25),
            q3_days: q(0.75),
            mean_days: (gaps > 0).then(|| total / gaps as f64),
            histogram,
        }
    }

    /// Gaps of at most `days` days.
    fn within(&self, days: u32) -> u64 {
        self.histogram.iter().take(days as usize + 1).sum()
    }
}

/// Second orders within a number of days of the first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondOrderShare {
    pub within_days: u32,
    pub customers: u64,
    /// customers / all customers with at least one order.
    pub share_of_buyers: Option<f64>,
    /// customers / customers with a second order.
    pub share_of_repeat_buyers: Option<f64>,
}

/// Time between orders of a group of customers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeBetweenOrders {
    /// Customers with at least one counted order.
    pub buyers: u64,
    /// Customers with at least two.
    pub repeat_buyers: u64,
    pub first_to_second: GapDistribution,
    pub second_to_third: GapDistribution,
    /// Every gap between consecutive orders.
    pub all_consecutive: GapDistribution,
    /// One entry per `SECOND_ORDER_WINDOWS`.
    pub second_order_within: Vec<SecondOrderShare>,
}

#[derive(Clone, Default)]
struct Acc {
    buyers: u64,
    first_to_second: Vec<u64>,
    second_to_third: Vec<u64>,
    all: Vec<u64>,
}

fn bump(h: &mut Vec<u64>, days: u32) {
    let d = days as usize;
    if h.len() <= d {
        h.resize(d + 1, 0);
    }
    h[d] += 1;
}

fn add_histogram(a: &mut Vec<u64>, b: Vec<u64>) {
    if a.len() < b.len() {
        a.resize(b.len(), 0);
    }
    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
}

impl Acc {
    fn add(&mut self, mine: &[OrderFact], now: DateTime<Utc>) {
        if !mine.iter().any(|o| o.counts_at(now)) {
            return;
        }
        self.buyers += 1;
        for (k, gap) in gaps(mine, now).enumerate() {
            match k {
                0 => bump(&mut self.first_to_second, gap),
                1 => bump(&mut self.second_to_third, gap),
                _ => {}
            }
            bump(&mut self.all, gap);
        }
    }

    fn merge(&mut self, other: Acc) {
        self.buyers += other.buyers;
        add_histogram(&mut self.first_to_second, other.first_to_second);
        add_histogram(&mut self.second_to_third, other.second_to_third);
        add_histogram(&mut self.all, other.all);
    }

    fn finish(self) -> TimeBetweenOrders {
        let first_to_second = GapDistribution::from_histogram(self.first_to_second);
        let repeat_buyers = first_to_second.gaps;
        let share = |n: u64, of: u64| (of > 0).then(|| n as f64 / of as f64);
        let second_order_within = SECOND_ORDER_WINDOWS
            .iter()
            .map(|&days| {
                let customers = first_to_second.within(days);
                SecondOrderShare {
                    within_days: days,
                    customers,
                    share_of_buyers: share(customers, self.buyers),
                    share_of_repeat_buyers: share(customers, repeat_buyers),
                }
            })
            .collect();
        TimeBetweenOrders {
            buyers: self.buyers,
            repeat_buyers,
            first_to_second,
            second_to_third: GapDistribution::from_histogram(self.second_to_third),
            all_consecutive: GapDistribution::from_histogram(self.all),
            second_order_within,
        }
    }
}

/// Accumulators of `groups` groups, customer c going to `group_of(c)`.
fn accumulate(
    input: &ShopInput,
    now: DateTime<Utc>,
    groups: usize,
    group_of: impl Fn(u32) -> usize + Sync,
) -> Vec<Acc> {
    let mut parts = map_customer_parts(
        &input.orders,
        |o| o.customer,
        |orders| {
            let mut accs = vec![Acc::default(); groups];
            for mine in orders.chunk_by(|a, b| a.customer == b.customer) {
                accs[group_of(mine[0].customer)].add(mine, now);
            }
            accs
        },
    )
    .into_iter();
    let mut total = parts.next().unwrap_or_else(|| vec![Acc::default(); groups]);
    for part in parts {
        total.iter_mut().zip(part).for_each(|(a, p)| a.merge(p));
    }
    total
}

/// Time between orders over the whole shop at `now`.
pub fn time_between_orders(
    input: &ShopInput,
    now: DateTime<Utc>,
) -> Result<TimeBetweenOrders, AnalysisError> {
    input.validate()?;
    let mut accs = accumulate(input, now, 1, |_| 0);
    Ok(accs.pop().unwrap_or_default().finish())
}

/// The same per segment: `segments[c]` is customer c's label (one per customer of the shop).
/// Labels without any buyer still get an (empty) entry.
pub fn time_between_orders_by_segment<'a, L: Ord>(
    input: &ShopInput,
    now: DateTime<Utc>,
    segments: &'a [L],
) -> Result<BTreeMap<&'a L, TimeBetweenOrders>, AnalysisError> {
    input.validate()?;
    if segments.len() != input.customers as usize {
        return Err(AnalysisError::InvalidOption {
            name: "segments",
            reason: format!(
                "{} labels for {} customers: give one per customer",
                segments.len(),
                input.customers
            ),
        });
    }
    let mut index: BTreeMap<&L, usize> = segments.iter().map(|l| (l, 0)).collect();
    for (i, slot) in index.values_mut().enumerate() {
        *slot = i;
    }
    let group: Vec<u32> = segments.iter().map(|l| index[l] as u32).collect();
    let accs = accumulate(input, now, index.len(), |c| group[c as usize] as usize);
    Ok(index
        .into_keys()
        .zip(accs)
        .map(|(label, acc)| (label, acc.finish()))
        .collect())
}

#[cfg(test)]
mod tests;
