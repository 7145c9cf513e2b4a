//! Calibration and holdout summaries, in the convention of lifetimes'
//! `calibration_and_holdout_data` with `freq="D"` (and `freq_multiplier=7` for weeks):
//! - the calibration summary is exactly `features` at the calibration end (distinct purchase
//!   days, whole days divided by the unit's length), so the backtest's model is the one the
//!   analysis would have fitted on that day;
//! - `frequency_holdout` counts the distinct UTC days with a counted order in
//!   (calibration end, end] (the first holdout purchase counts: it is a repeat purchase);
//! - `duration_holdout` is the number of whole days between the two ends' days, in the unit.
//!
//! Only customers with a counted order up to the calibration end appear, as in lifetimes (a
//! customer first seen in the holdout has nothing to predict from).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::analytics::features::{CustomerFeatures, PurchaseDays, day_number};
use crate::analytics::input::{OrderFact, ShopInput, TimeUnit};
use crate::analytics::parallel::{fill_blocks, map_blocks};
use crate::random::mix64;

/// One customer's calibration summary and what they did in the holdout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalHoldoutRow {
    pub customer: u32,
    pub frequency_cal: u32,
    pub recency_cal: f64,
    #[serde(rename = "T_cal")]
    pub t_cal: f64,
    /// Mean value of the calibration repeat purchase days (0 when x = 0).
    pub monetary_value_cal: f64,
    /// Distinct purchase days in (calibration end, end].
    pub frequency_holdout: u32,
    /// Net value of the counted holdout orders.
    pub revenue_holdout: f64,
}

/// The split of a shop's history.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationHoldout {
    pub calibration_end: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub time_unit: TimeUnit,
    /// Holdout length in the time unit.
    pub duration_holdout: f64,
    /// Customers with orders up to the calibration end, in customer order.
    pub rows: Vec<CalHoldoutRow>,
    /// Every customer's features at the calibration end; empty when the split was made from
    /// an analysis' features (`calibration_and_holdout_after`), whose rows hold all the fit
    /// reads.
    pub features: Vec<CustomerFeatures>,
}

/// Splits a valid input (`ShopInput::validate`) at `calibration_end`; orders after `end` are
/// ignored. The caller makes sure `calibration_end < end`.
///
/// One pass over the orders gives both halves. `features` holds what the fit reads, computed
/// exactly as `compute_features` at the calibration end does (orders, first and last order,
/// x, t_x, T, monetary and total value, average order value); the segment-only fields
/// (discount and refund shares, days since the last order, abandoned checkouts) are left at
/// a prospect's values, which the backtest never reads.
pub fn calibration_and_holdout(
    input: &ShopInput,
    calibration_end: DateTime<Utc>,
    end: DateTime<Utc>,
    unit: TimeUnit,
) -> CalibrationHoldout {
    let mut both = vec![(CustomerFeatures::prospect(0), 0u32, 0.0f64); input.customers as usize];
    let cal_day = day_number(calibration_end);
    fill_blocks(&mut both, |offset, block| {
        let first = offset as u32;
        let mut oi = input.orders.partition_point(|o| o.customer < first);
        for (customer, slot) in (first..).zip(block.iter_mut()) {
            let o_end = oi
                + input.orders[oi..]
                    .iter()
                    .take_while(|o| o.customer == customer)
                    .count();
            let orders = &input.orders[oi..o_end];
            *slot = split_customer(customer, orders, calibration_end, end, cal_day, unit);
            oi = o_end;
        }
    });
    let mut rows = Vec::new();
    let mut features = Vec::with_capacity(both.len());
    for (f, frequency_holdout, revenue_holdout) in both {
        if f.has_orders() {
            rows.push(CalHoldoutRow {
                customer: f.customer,
                frequency_cal: f.frequency,
                recency_cal: f.recency,
                t_cal: f.age,
                monetary_value_cal: f.monetary_value,
                frequency_holdout,
                revenue_holdout,
            });
        }
        features.push(f);
    }
    let days = (day_number(end) - day_number(calibration_end)) as f64;
    CalibrationHoldout {
        calibration_end,
        end,
        time_unit: unit,
        duration_holdout: days / unit.days(),
        rows,
        features,
    }
}

/// `calibration_and_holdout` (without `features`) for an input whose features at `end` are
/// known: `at_end[i]` is customer i's `compute_features(input, end, unit)`, as an analysis
/// at `end` of the same input has them.
///
/// A customer whose last counted order is on or before the calibration end has the same
/// counted orders up to either end, so their calibration summary is their summary at `end`
/// with T counted to the calibration end, and nothing in the holdout; a customer whose first
/// counted order came after the calibration end has no row. Only the customers who bought
/// in the holdout after buying before it have their orders walked (found by galloping
/// through the sorted orders, so the orders of everyone else are not read). The rows equal
/// `calibration_and_holdout`'s exactly: the same orders folded in the same order.
pub fn calibration_and_holdout_after<F: AsRef<CustomerFeatures> + Sync>(
    input: &ShopInput,
    at_end: &[F],
    calibration_end: DateTime<Utc>,
    end: DateTime<Utc>,
    unit: TimeUnit,
) -> CalibrationHoldout {
    calibration_and_holdout_sample(input, at_end, 1.0, calibration_end, end, unit)
}

/// `calibration_and_holdout_after` for the customers `in_sample(customer, share)` only: the
/// rows are those of the whole split that belong to the sample, and the customers outside it
/// cost one hash each.
pub fn calibration_and_holdout_sample<F: AsRef<CustomerFeatures> + Sync>(
    input: &ShopInput,
    at_end: &[F],
    share: f64,
    calibration_end: DateTime<Utc>,
    end: DateTime<Utc>,
    unit: TimeUnit,
) -> CalibrationHoldout {
    let cal_day = day_number(calibration_end);
    let orders = &input.orders;
    let blocks = map_blocks(at_end.len(), |range| {
        let mut rows = Vec::with_capacity(range.len());
        let mut oi = 0;
        // By index (customer i's features are at i): a customer outside the sample costs a
        // hash, not a read of their features.
        for i in range.filter(|&i| in_sample(i as u32, share)) {
            let f = at_end[i].as_ref();
            let (Some(first), Some(last)) = (f.first_order_at, f.last_order_at) else {
                continue;
            };
            if first > calibration_end {
                continue;
            }
            if last <= calibration_end {
                rows.push(CalHoldoutRow {
                    customer: f.customer,
                    frequency_cal: f.frequency,
                    recency_cal: f.recency,
                    t_cal: (cal_day - day_number(first)) as f64 / unit.days(),
                    monetary_value_cal: f.monetary_value,
                    frequency_holdout: 0,
                    revenue_holdout: 0.0,
                });
                continue;
            }
            let customer = f.customer;
            oi = gallop(orders, oi, |o| o.customer < customer);
            let o_end = gallop(orders, oi, |o| o.customer <= customer);
            let (c, frequency_holdout, revenue_holdout) = split_customer(
                customer,
                &orders[oi..o_end],
                calibration_end,
                end,
                cal_day,
                unit,
            );
            oi = o_end;
            rows.push(CalHoldoutRow {
                customer,
                frequency_cal: c.frequency,
                recency_cal: c.recency,
                t_cal: c.age,
                monetary_value_cal: c.monetary_value,
                frequency_holdout,
                revenue_holdout,
            });
        }
        rows
    });
    let days = (day_number(end) - day_number(calibration_end)) as f64;
    CalibrationHoldout {
        calibration_end,
        end,
        time_unit: unit,
        duration_holdout: days / unit.days(),
        rows: blocks.concat(),
        features: Vec::new(),
    }
}

/// Seed of the card's customer sample: fixed, so a shop's sample is the same customers on
/// every run and every instance, and its figures move only when the customers do.
const SAMPLE_SEED: u64 = 0x6C69_6665_6379_636C;

/// Whether customer `customer` (an index of the input) is in the uniform sample holding about
/// `share` of the customers (every customer at a share of 1 or more).
pub fn in_sample(customer: u32, share: f64) -> bool {
    // The top 53 bits of the hash as a uniform number in [0, 1).
    share >= 1.0
        || ((mix64(u64::from(customer) ^ SAMPLE_SEED) >> 11) as f64) * (1.0 / (1u64 << 53) as f64)
            < share
}

/// The first index at or after `from` where `before` turns false (`before` is true on a
/// prefix of `v[from..]`): exponential steps, then a binary search within the last one, so
/// a nearby answer costs a few reads.
fn gallop<T>(v: &[T], from: usize, before: impl Fn(&T) -> bool) -> usize {
    let mut lo = from;
    let mut step = 1;
    while lo + step <= v.len() && before(&v[lo + step - 1]) {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step).min(v.len());
    lo + v[lo..hi].partition_point(before)
}

/// One customer's orders (sorted by time): the calibration features (the fit's fields, with
/// `customer_features`' formulas), and (distinct purchase days, net revenue) in
/// (calibration end, end].
fn split_customer(
    customer: u32,
    orders: &[OrderFact],
    calibration_end: DateTime<Utc>,
    end: DateTime<Utc>,
    cal_day: i64,
    unit: TimeUnit,
) -> (CustomerFeatures, u32, f64) {
    let mut f = CustomerFeatures::prospect(customer);
    let mut purchases = PurchaseDays::new();
    let (mut holdout_days, mut holdout_revenue, mut holdout_last) = (0u32, 0.0, i64::MIN);
    for o in orders.iter().take_while(|o| o.at <= end) {
        if !o.counts() {
            continue;
        }
        let day = day_number(o.at);
        if o.at > calibration_end {
            if day != holdout_last {
                holdout_days += 1;
                holdout_last = day;
            }
            holdout_revenue += o.net();
            continue;
        }
        purchases.add(&mut f, o, day);
    }
    if f.orders > 0 {
        purchases.finish(&mut f, cal_day, unit);
    }
    (f, holdout_days, holdout_revenue)
}
