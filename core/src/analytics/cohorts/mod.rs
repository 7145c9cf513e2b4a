//! Cohorts: customers grouped by the calendar period of their first order, and what each
//! cohort did in each period since (the retention triangle and the LTV curves).
//!
//! Rules (the same orders as every other analysis, see `features`):
//! - only counted orders (`OrderFact::counts_at`: not cancelled, not fully refunded, placed by
//!   `now`); revenue is their net value (`OrderFact::net`);
//! - a customer's cohort is the period of their first counted order; period p of a cohort is
//!   the cohort's period plus p whole calendar periods (0 for the first one);
//! - *active* in a period = at least one counted order in it; *retention* = active / the
//!   cohort's customers; the cumulative revenue per customer of period p is the cohort's net
//!   revenue in periods 0..=p divided by its customers;
//! - only periods that have begun by `now` are reported as actuals; the period holding `now`
//!   is `partial` unless `now` is its last second (`--end 2024-03-31` completes March);
//! - the periods after `now` can be forecast from the fitted model (`predicted`), and are kept
//!   apart from the actuals.

mod predicted;

pub use predicted::predict;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::AnalysisError;
use super::input::{OrderFact, ShopInput};
use super::parallel::map_customer_parts;
use super::periods::CohortPeriod;

/// What a cohort did in one period since its first orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActualCell {
    /// Periods since the cohort's first (0 = the first).
    pub period: u32,
    pub active_customers: u64,
    /// active_customers / the cohort's customers, in [0, 1].
    pub retention: f64,
    pub orders: u64,
    pub net_revenue: f64,
    pub cumulative_revenue_per_customer: f64,
    /// The period holds `now` and has not ended: its figures will still grow.
    pub partial: bool,
}

/// The model's forecast for a period (or the rest of the current one) after `now`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictedCell {
    pub period: u32,
    /// Always true: these figures are forecasts, never observations.
    pub predicted: bool,
    /// The cell covers only the rest of the period holding `now`, after its actual part.
    pub partial: bool,
    /// Expected purchases of the cohort's customers in the cell's window.
    pub expected_orders: f64,
    pub expected_net_revenue: f64,
    /// The last actual cumulative revenue per customer plus the expected revenue per customer
    /// up to the end of this period.
    pub cumulative_revenue_per_customer: f64,
}

/// One cohort's row of the triangle and its LTV curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cohort {
    /// `2024-01`, `2024-W01` or `2024-Q1`.
    pub label: String,
    /// First day of the cohort's period.
    pub start: NaiveDate,
    pub customers: u64,
    /// Periods 0, 1, … up to the one holding `now`.
    pub actual: Vec<ActualCell>,
    /// Periods after the actuals (from the rest of a partial current period on), empty until
    /// `predict` fills them.
    pub predicted: Vec<PredictedCell>,
}

/// Every cohort of a shop, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cohorts {
    pub period: CohortPeriod,
    pub now: DateTime<Utc>,
    pub cohorts: Vec<Cohort>,
}

/// What one cohort did in one period.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    active: u64,
    orders: u64,
    revenue: f64,
}

/// One cohort's customers and cells (periods 0..=its distance from the current period).
#[derive(Debug, Clone, Default)]
struct Row {
    customers: u64,
    cells: Vec<Cell>,
}

/// Sums of one piece of the shop: a triangle whose row d is the cohort d periods before the
/// current one, grown as older cohorts turn up (no pass to find the oldest first).
struct Table {
    current: i32,
    rows: Vec<Row>,
}

impl Table {
    fn new(current: i32) -> Table {
        Table {
            current,
            rows: Vec::new(),
        }
    }

    fn row(&mut self, d: usize) -> &mut Row {
        while self.rows.len() <= d {
            let cells = vec![Cell::default(); self.rows.len() + 1];
            self.rows.push(Row {
                customers: 0,
                cells,
            });
        }
        &mut self.rows[d]
    }

    /// Adds one customer's orders.
    fn add(&mut self, mine: &[OrderFact], period: CohortPeriod, now: DateTime<Utc>) {
        let mut counted = mine.iter().filter(|o| o.counts_at(now));
        let Some(first) = counted.next() else {
            return;
        };
        let cohort = period.index(first.at);
        // o.at ≤ now, so the cohort is at or before the current period.
        let row = self.row((self.current - cohort) as usize);
        row.customers += 1;
        let mut last = usize::MAX;
        for o in std::iter::once(first).chain(counted) {
            // Orders are sorted by time, so 0 ≤ p ≤ the row's distance.
            let p = (period.index(o.at) - cohort) as usize;
            let cell = &mut row.cells[p];
            if p != last {
                cell.active += 1;
                last = p;
            }
            cell.orders += 1;
            cell.revenue += o.net();
        }
    }

    fn merge(&mut self, other: Table) {
        for (d, theirs) in other.rows.into_iter().enumerate() {
            let mine = self.row(d);
            mine.customers += theirs.customers;
            for (a, b) in mine.cells.iter_mut().zip(theirs.cells) {
                a.active += b.active;
                a.orders += b.orders;
                a.revenue += b.revenue;
            }
        }
    }
}

/// Whether the period `index` still runs after `now` (orders at `now` are in; a `now` in the
/// period's last second completes it).
fn is_partial(period: CohortPeriod, index: i32, now: DateTime<Utc>) -> bool {
    period
        .start_at(index + 1)
        .is_some_and(|end| now < end - Duration::seconds(1))
}

/// The actual cohort figures of a shop at `now` (see the module docs).
pub fn cohorts(
    input: &ShopInput,
    now: DateTime<Utc>,
    period: CohortPeriod,
) -> Result<Cohorts, AnalysisError> {
    input.validate()?;
    let current = period.index(now);
    let mut parts = map_customer_parts(
        &input.orders,
        |o| o.customer,
        |orders| {
            let mut t = Table::new(current);
            for mine in orders.chunk_by(|a, b| a.customer == b.customer) {
                t.add(mine, period, now);
            }
            t
        },
    )
    .into_iter();
    let mut table = parts.next().unwrap_or_else(|| Table::new(current));
    parts.for_each(|p| table.merge(p));

    let current_partial = is_partial(period, current, now);
    let cohorts = table
        .rows
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, row)| row.customers > 0)
        .map(|(d, row)| {
            let index = current - d as i32;
            let customers = row.customers;
            let mut cumulative = 0.0;
            let actual = row
                .cells
                .iter()
                .enumerate()
                .map(|(p, cell)| {
                    cumulative += cell.revenue;
                    ActualCell {
                        period: p as u32,
                        active_customers: cell.active,
                        retention: cell.active as f64 / customers as f64,
                        orders: cell.orders,
                        net_revenue: cell.revenue,
                        cumulative_revenue_per_customer: cumulative / customers as f64,
                        partial: p == d && current_partial,
                    }
                })
                .collect();
            Cohort {
                label: period.label(index),
                start: period.start(index).unwrap_or_default(),
                customers,
                actual,
                predicted: Vec::new(),
            }
        })
        .collect();
    Ok(Cohorts {
        period,
        now,
        cohorts,
    })
}

#[cfg(test)]
mod tests;
