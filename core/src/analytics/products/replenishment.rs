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
    // Pass 1: per product, a histogram of its gaps (days -> repeats) and the customers with
    // a repeat; histograms add exactly, so pieces merge in any order.
    let products = baskets.products as usize;
    let parts = map_customer_pieces(&baskets.items, |items| {
        let mut histograms: Vec<Vec<u64>> = vec![Vec::new(); products];
        let mut repeaters = vec![0u64; products];
        let mut bought = Vec::new();
        for mine in items.chunk_by(|a, b| a.customer == b.customer) {
            purchases(mine, as_of, &mut bought);
            for run in bought.chunk_by(|a, b| a.0 == b.0) {
                if run.len() < 2 {
                    continue;
                }
                let h = &mut histograms[run[0].0 as usize];
                repeaters[run[0].0 as usize] += 1;
                for w in run.windows(2) {
                    let d = (w[1].1 - w[0].1) as usize;
                    if h.len() <= d {
                        h.resize(d + 1, 0);
                    }
                    h[d] += 1;
                }
            }
        }
        (histograms, repeaters)
    });
    let mut parts = parts.into_iter();
    let (mut histograms, mut repeaters) = parts.next().expect("at least one piece");
    for (hs, r) in parts {
        repeaters.iter_mut().zip(r).for_each(|(t, r)| *t += r);
        for (t, h) in histograms.iter_mut().zip(hs) {
            if t.len() < h.len() {
                t.resize(h.len(), 0);
            }
            t.iter_mut().zip(h).for_each(|(t, h)| *t += h);
        }
    }
    let mut window_of = vec![None::<f64>; products];
    let windows: Vec<ReplenishmentWindow> = histograms
        .iter()
        .enumerate()
        .filter_map(|(product, h)| {
            let repeats: u64 = h.iter().sum();
            if repeats < opts.min_repeats {
                return None;
            }
            // The i-th smallest gap: the first d whose cumulative count passes i.
            let cumulative: Vec<u64> = h
                .iter()
                .scan(0, |c, &n| {
                    *c += n;
                    Some(*c)
                })
                .collect();
            let nth = |i: usize| cumulative.partition_point(|&c| c <= i as u64) as f64;
            let median = quantile_of(repeats as usize, 0.5, nth);
            window_of[product] = Some(median);
            Some(ReplenishmentWindow {
                product: product as u32,
                repeats,
                customers: repeaters[product],
                median_days: median,
            })
        })
        .collect();
    drop(histograms);
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
                        // last + window <= today in whole days, so last + ⌈window⌉ <= today.
                        days_overdue: (today - last - window.ceil() as i64) as u32,
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
