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

use crate::analytics::features::{CustomerFeatures, compute_features, day_number};
use crate::analytics::input::{ShopInput, TimeUnit};
use crate::analytics::parallel::fill_blocks;

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
    /// Every customer's features at the calibration end (what the fit takes).
    pub features: Vec<CustomerFeatures>,
}

/// Splits a valid input (`ShopInput::validate`) at `calibration_end`; orders after `end` are
/// ignored. The caller makes sure `calibration_end < end`.
pub fn calibration_and_holdout(
    input: &ShopInput,
    calibration_end: DateTime<Utc>,
    end: DateTime<Utc>,
    unit: TimeUnit,
) -> CalibrationHoldout {
    let features = compute_features(input, calibration_end, unit);
    let holdout = holdout_counts(input, calibration_end, end);
    let rows = features
        .iter()
        .zip(&holdout)
        .filter(|(f, _)| f.has_orders())
        .map(|(f, &(frequency_holdout, revenue_holdout))| CalHoldoutRow {
            customer: f.customer,
            frequency_cal: f.frequency,
            recency_cal: f.recency,
            t_cal: f.age,
            monetary_value_cal: f.monetary_value,
            frequency_holdout,
            revenue_holdout,
        })
        .collect();
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

/// (distinct purchase days, net revenue) of every customer in (from, to]; customers are
/// contiguous in a valid input, so blocks of them are counted on all cores.
fn holdout_counts(input: &ShopInput, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(u32, f64)> {
    let mut out = vec![(0u32, 0.0f64); input.customers as usize];
    fill_blocks(&mut out, |offset, block| {
        let first = offset as u32;
        let last = first + block.len() as u32;
        let start = input.orders.partition_point(|o| o.customer < first);
        let mut last_day = (u32::MAX, i64::MIN);
        for o in input.orders[start..]
            .iter()
            .take_while(|o| o.customer < last)
        {
            if o.at <= from || o.at > to || !o.counts() {
                continue;
            }
            let slot = &mut block[(o.customer - first) as usize];
            let day = day_number(o.at);
            if (o.customer, day) != last_day {
                slot.0 += 1;
                last_day = (o.customer, day);
            }
            slot.1 += o.net();
        }
    });
    out
}
