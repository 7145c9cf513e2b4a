//! Replenishment windows: how long customers take to buy the same product again, and who is
//! due.
//!
//! Rules: only lines placed by `as_of`. A *repeat* is a later order of the same customer
//! holding a product they bought before; its gap is the whole UTC calendar days since the
//! previous order holding that product (0 for two orders on one day, as in
//! `between_orders`). A product's window is the median of its gaps (interpolated,
//! `stats::quantile_of`), given only for products with at least `min_repeats` gaps. A customer
//! is due for a product with a window when last purchase day + window <= the day of `as_of`.

use chrono::{DateTime, Days, NaiveDate, Utc};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Baskets, map_customer_pieces};
use crate::analytics::AnalysisError;
use crate::analytics::features::day_number;
use crate::stats::quantile_of;

/// Settings of `replenishment`. `Default`: at least 5 repeats.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReplenishmentOptions {
    /// Products with fewer gaps get no window.
    pub min_repeats: u64,
}

impl Default for ReplenishmentOptions {
    fn default() -> Self {
        ReplenishmentOptions { min_repeats: 5 }
    }
}

/// A product's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplenishmentWindow {
    pub product: u32,
    /// Gaps (repeat purchases) observed.
    pub repeats: u64,
    /// Customers with at least one repeat of it.
    pub customers: u64,
    pub median_days: f64,
}

/// A customer due to buy a product again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DueProduct {
    pub customer: u32,
    pub product: u32,
    pub last_purchase: NaiveDate,
    /// last_purchase + the window rounded up to whole days.
    pub due_on: NaiveDate,
    /// Whole days from `due_on` to `as_of` (0 = due today).
    pub days_overdue: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Replenishment {
    /// Products with enough repeats, by product.
    pub windows: Vec<ReplenishmentWindow>,
    /// By customer, then product.
    pub due: Vec<DueProduct>,
}

/// Each (product, day, order) a customer bought, sorted, once each, into `out`.
fn purchases(mine: &[super::LineItem], as_of: DateTime<Utc>, out: &mut Vec<(u32, i64, u32)>) {
    out.clear();
    out.extend(
        mine.iter()
            .filter(|l| l.at <= as_of)
            .map(|l| (l.product, day_number(l.at), l.order)),
    );
    out.sort_unstable();
    out.dedup();
}

fn date_of(day: i64) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day as i32).expect("a day of a valid time")
}

/// Replenishment windows and the customers due at `as_of`.
pub fn replenishment(
    baskets: &Baskets,
    as_of: DateTime<Utc>,
    opts: &ReplenishmentOptions,
) -> Result<Replenishment, AnalysisError> {
    baskets.validate()?;
    if opts.min_repeats == 0 {
        return Err(AnalysisError::InvalidOption {
            name: "min_repeats",
            reason: "must be at least 1 for a median".into(),
        });
    }
    // Pass 1: every gap, as (product << 32 | days), and customers with a repeat per product.
    let products = baskets.products as usize;
    let parts = map_customer_pieces(&baskets.items, |items| {
        let mut gaps = Vec::new();
        let mut repeaters = vec![0u64; products];
        let mut bought = Vec::new();
        for mine in items.chunk_by(|a, b| a.customer == b.customer) {
            purchases(mine, as_of, &mut bought);
            for run in bought.chunk_by(|a, b| a.0 == b.0) {
                if run.len() > 1 {
                    repeaters[run[0].0 as usize] += 1;
                }
                gaps.extend(
                    run.windows(2)
                        .map(|w| (u64::from(w[0].0) << 32) | (w[1].1 - w[0].1) as u64),
                );
            }
        }
        (gaps, repeaters)
    });
    let mut repeaters = vec![0u64; products];
    let mut gaps = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
    for (g, r) in parts {
        gaps.extend(g);
        repeaters.iter_mut().zip(r).for_each(|(t, r)| *t += r);
    }
    gaps.par_sort_unstable();
    let mut window_of = vec![None::<f64>; products];
    let windows: Vec<ReplenishmentWindow> = gaps
        .chunk_by(|a, b| a >> 32 == b >> 32)
        .filter(|run| run.len() as u64 >= opts.min_repeats)
        .map(|run| {
            let product = (run[0] >> 32) as u32;
            let median = quantile_of(run.len(), 0.5, |i| (run[i] & 0xFFFF_FFFF) as f64);
            window_of[product as usize] = Some(median);
            ReplenishmentWindow {
                product,
                repeats: run.len() as u64,
                customers: repeaters[product as usize],
                median_days: median,
            }
        })
        .collect();
    drop(gaps);
    // Pass 2: the last purchase of each product with a window.
    let today = day_number(as_of);
    let parts = map_customer_pieces(&baskets.items, |items| {
        let mut due = Vec::new();
        let mut bought = Vec::new();
        for mine in items.chunk_by(|a, b| a.customer == b.customer) {
            purchases(mine, as_of, &mut bought);
            for run in bought.chunk_by(|a, b| a.0 == b.0) {
                let (product, last, _) = *run.last().expect("a run is never empty");
                let Some(window) = window_of[product as usize] else {
                    continue;
                };
                if last as f64 + window <= today as f64 {
                    let due_on = date_of(last)
                        .checked_add_days(Days::new(window.ceil() as u64))
                        .expect("before as_of");
                    due.push(DueProduct {
                        customer: mine[0].customer,
                        product,
                        last_purchase: date_of(last),
                        due_on,
                        days_overdue: (today
                            - day_number(due_on.and_time(Default::default()).and_utc()))
                            as u32,
                    });
                }
            }
        }
        due
    });
    Ok(Replenishment {
        windows,
        due: parts.concat(),
    })
}
