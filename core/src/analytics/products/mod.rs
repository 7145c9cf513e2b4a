//! Products: what customers buy together and in what order, from the line items of their
//! orders (`Baskets`).
//!
//! - [`journeys`]: first-order product -> second-order product;
//! - [`affinity`]: pairs bought together, in one basket or over a customer's history (support,
//!   confidence both ways, lift) above a minimum support;
//! - [`next_best_products`]: per customer, the highest-lift related product not yet bought;
//! - [`replenishment`]: per product, the median days between repeat purchases by one customer,
//!   and who is due.
//!
//! Rules common to all of them:
//! - the caller passes the line items of the orders that count (`OrderFact::counts_at`: not
//!   cancelled, not fully refunded, placed by `now`); products are dense integer ids
//!   `0..Baskets::products` (the caller interns its strings once, and keeps the names);
//! - an *order* is a run of consecutive items of one customer with the same order id and time
//!   (items are sorted by (customer, at, order)); a product appears in an order or a history
//!   once, whatever its quantity and however many lines hold it;
//! - results are integers counted exactly and sorted, so they are the same on any number of
//!   threads.

mod affinity;
mod replenishment;

pub use affinity::{
    Affinity, AffinityOptions, AffinityScope, NextBest, ProductPair, affinity, next_best_products,
};
pub use replenishment::{
    DueProduct, Replenishment, ReplenishmentOptions, ReplenishmentWindow, replenishment,
};

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::AnalysisError;
use super::parallel::threads;

/// One line of an order as the product analyses see it. 40 bytes: 30 million lines take
/// 1.2 GB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    /// Dense customer index, `0..Baskets::customers`.
    pub customer: u32,
    /// The order's id, unique within the customer (the caller's own numbering).
    pub order: u32,
    /// Dense product index, `0..Baskets::products`.
    pub product: u32,
    /// Units on the line, at least 1.
    pub quantity: u32,
    /// The order's time (the same on all its lines).
    pub at: DateTime<Utc>,
    /// Net line amount (after line discounts) in minor units of the shop's currency.
    pub net_minor: i64,
}

/// The line items of a shop.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baskets {
    pub customers: u32,
    pub products: u32,
    /// Sorted by (customer, at, order).
    pub items: Vec<LineItem>,
}

impl Baskets {
    /// Checks the invariants the single-pass stages rely on; names the first offending line.
    pub fn validate(&self) -> Result<(), AnalysisError> {
        let bad = |index: usize, reason: String| AnalysisError::InvalidLineItem { index, reason };
        let mut prev: Option<(u32, DateTime<Utc>, u32)> = None;
        for (i, l) in self.items.iter().enumerate() {
            if l.customer >= self.customers {
                return Err(bad(
                    i,
                    format!("customer {} is not below {}", l.customer, self.customers),
                ));
            }
            if l.product >= self.products {
                return Err(bad(
                    i,
                    format!("product {} is not below {}", l.product, self.products),
                ));
            }
            if l.quantity == 0 {
                return Err(bad(
                    i,
                    "quantity 0: give lines with at least one unit".into(),
                ));
            }
            if l.net_minor < 0 {
                return Err(bad(i, format!("net amount {} is negative", l.net_minor)));
            }
            let key = (l.customer, l.at, l.order);
            if prev.is_some_and(|p| p > key) {
                return Err(bad(
                    i,
                    "lines are not sorted by (customer, at, order)".into(),
                ));
            }
            prev = Some(key);
        }
        Ok(())
    }
}

/// One customer's orders (runs of lines with one order id and time), in order.
pub(crate) fn orders_of(mine: &[LineItem]) -> impl Iterator<Item = &[LineItem]> {
    mine.chunk_by(|a, b| a.order == b.order && a.at == b.at)
}

/// The distinct products of `lines` into `out` (cleared first), ascending.
pub(crate) fn distinct_products(lines: &[LineItem], out: &mut Vec<u32>) {
    out.clear();
    out.extend(lines.iter().map(|l| l.product));
    out.sort_unstable();
    out.dedup();
}

/// `f` of `threads()` consecutive pieces of `items`, each holding whole customers. The stages
/// here only add integers, so the number of pieces does not change any result; one piece per
/// thread keeps the per-piece tables (pair counts) few.
pub(crate) fn map_customer_pieces<T: Send>(
    items: &[LineItem],
    f: impl Fn(&[LineItem]) -> T + Sync,
) -> Vec<T> {
    let len = items.len();
    let pieces = if len < 65_536 { 1 } else { threads().max(1) };
    let cut = |i: usize| {
        let mut i = i.min(len);
        while i > 0 && i < len && items[i].customer == items[i - 1].customer {
            i += 1;
        }
        i
    };
    let bounds: Vec<usize> = (0..=pieces).map(|k| cut(len * k / pieces)).collect();
    let piece = |k: usize| f(&items[bounds[k]..bounds[k + 1]]);
    if pieces == 1 {
        return vec![piece(0)];
    }
    (0..pieces).into_par_iter().map(piece).collect()
}

/// `(start, end)` of each customer's lines: `starts[c]..starts[c + 1]`.
pub(crate) fn customer_starts(baskets: &Baskets) -> Vec<usize> {
    let mut starts = vec![0usize; baskets.customers as usize + 1];
    for l in &baskets.items {
        starts[l.customer as usize + 1] += 1;
    }
    for c in 1..starts.len() {
        starts[c] += starts[c - 1];
    }
    starts
}

/// Customers whose first order holds a product, and how many of them placed a second order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirstProduct {
    pub product: u32,
    pub customers: u64,
    pub second_order_customers: u64,
}

/// Customers who had `first` in their first order and `second` in their second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JourneyStep {
    pub first: u32,
    pub second: u32,
    pub customers: u64,
    /// customers / the sum of `customers` over every step from `first`: the shares of one
    /// first product add up to 1.
    pub share: f64,
}

/// First-order product -> second-order product.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journeys {
    /// Products that were in some first order, by product.
    pub first_products: Vec<FirstProduct>,
    /// By first product, then customers (most first), then second product.
    pub steps: Vec<JourneyStep>,
}

fn pack(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

fn unpack(k: u64) -> (u32, u32) {
    ((k >> 32) as u32, k as u32)
}

/// Product journeys. Rule: a customer whose first order holds the distinct products A and
/// whose second order holds B counts once for every pair (a, b) of A x B (a = b included: the
/// same product bought again). A step's share divides by all steps from the same first product,
/// so a customer with two products in the second order weighs twice in that sum.
pub fn journeys(baskets: &Baskets) -> Result<Journeys, AnalysisError> {
    baskets.validate()?;
    let products = baskets.products as usize;
    let parts = map_customer_pieces(&baskets.items, |items| {
        let mut first_counts = vec![[0u64; 2]; products];
        let mut pairs = Vec::new();
        let (mut first, mut second) = (Vec::new(), Vec::new());
        for mine in items.chunk_by(|a, b| a.customer == b.customer) {
            let mut orders = orders_of(mine);
            let Some(o1) = orders.next() else { continue };
            distinct_products(o1, &mut first);
            let o2 = orders.next();
            for &a in &first {
                first_counts[a as usize][0] += 1;
                first_counts[a as usize][1] += u64::from(o2.is_some());
            }
            if let Some(o2) = o2 {
                distinct_products(o2, &mut second);
                for &a in &first {
                    pairs.extend(second.iter().map(|&b| pack(a, b)));
                }
            }
        }
        (first_counts, pairs)
    });
    let mut counts = vec![[0u64; 2]; products];
    let mut pairs = Vec::with_capacity(parts.iter().map(|p| p.1.len()).sum());
    for (c, p) in parts {
        counts.iter_mut().zip(c).for_each(|(t, c)| {
            t[0] += c[0];
            t[1] += c[1];
        });
        pairs.extend(p);
    }
    pairs.par_sort_unstable();
    let mut steps: Vec<JourneyStep> = pairs
        .chunk_by(|a, b| a == b)
        .map(|run| {
            let (first, second) = unpack(run[0]);
            JourneyStep {
                first,
                second,
                customers: run.len() as u64,
                share: 0.0,
            }
        })
        .collect();
    for from in steps.chunk_by_mut(|a, b| a.first == b.first) {
        let total: u64 = from.iter().map(|s| s.customers).sum();
        from.iter_mut()
            .for_each(|s| s.share = s.customers as f64 / total as f64);
        from.sort_by(|a, b| b.customers.cmp(&a.customers).then(a.second.cmp(&b.second)));
    }
    let first_products = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| c[0] > 0)
        .map(|(p, c)| FirstProduct {
            product: p as u32,
            customers: c[0],
            second_order_customers: c[1],
        })
        .collect();
    Ok(Journeys {
        first_products,
        steps,
    })
}

#[cfg(test)]
mod tests;
