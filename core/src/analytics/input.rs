//! What the analytics read: flat, sorted vectors of order and checkout facts.
//!
//! The app maps its database rows to these (amounts already in the shop's currency, as
//! Shopify's `shop_money`), the CLI readers map files to them. Flat vectors sorted by customer
//! then time let every stage walk the data once, with no per-customer allocation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::AnalysisError;
use super::parallel::map_blocks;

/// One order as the analytics see it. 40 bytes, so 10 million orders take 400 MB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OrderFact {
    /// Dense customer index, `0..ShopInput::customers`.
    pub customer: u32,
    pub at: DateTime<Utc>,
    /// Gross order value in the shop's currency (converted from minor units by the caller).
    pub amount: f64,
    /// Amount refunded so far (0 if none).
    pub refunded: f64,
    pub cancelled: bool,
    /// A discount code was applied.
    pub discounted: bool,
}

/// An abandoned checkout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CheckoutFact {
    pub customer: u32,
    pub at: DateTime<Utc>,
}

/// Everything the analytics need about one shop.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShopInput {
    /// Number of customers, including those without orders (they become PROSPECTS).
    pub customers: u32,
    /// Sorted by (customer, at).
    pub orders: Vec<OrderFact>,
    /// Sorted by (customer, at).
    pub abandoned_checkouts: Vec<CheckoutFact>,
}

impl ShopInput {
    /// Checks the invariants the single-pass stages rely on; names the first offending row.
    pub fn validate(&self) -> Result<(), AnalysisError> {
        // Each order is checked against its predecessor only, so blocks of orders are checked
        // on all cores; the first failing block holds the first offending order.
        let first_error = map_blocks(self.orders.len(), |block| self.validate_orders(block).err())
            .into_iter()
            .flatten()
            .next();
        if let Some(e) = first_error {
            return Err(e);
        }
        self.validate_checkouts()
    }

    fn validate_orders(&self, range: std::ops::Range<usize>) -> Result<(), AnalysisError> {
        let bad = |index: usize, reason: String| AnalysisError::InvalidOrder { index, reason };
        let mut prev: Option<(u32, DateTime<Utc>)> = range
            .start
            .checked_sub(1)
            .map(|i| (self.orders[i].customer, self.orders[i].at));
        for (i, o) in self
            .orders
            .iter()
            .enumerate()
            .take(range.end)
            .skip(range.start)
        {
            if o.customer >= self.customers {
                return Err(bad(
                    i,
                    format!("customer {} is not below {}", o.customer, self.customers),
                ));
            }
            for (name, v) in [("amount", o.amount), ("refunded", o.refunded)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(bad(i, format!("{name} {v} is not a non-negative number")));
                }
            }
            if prev.is_some_and(|p| p > (o.customer, o.at)) {
                return Err(bad(i, "orders are not sorted by (customer, at)".into()));
            }
            prev = Some((o.customer, o.at));
        }
        Ok(())
    }

    fn validate_checkouts(&self) -> Result<(), AnalysisError> {
        let mut prev: Option<(u32, DateTime<Utc>)> = None;
        for (i, c) in self.abandoned_checkouts.iter().enumerate() {
            let reason = if c.customer >= self.customers {
                format!("customer {} is not below {}", c.customer, self.customers)
            } else if prev.is_some_and(|p| p > (c.customer, c.at)) {
                "checkouts are not sorted by (customer, at)".into()
            } else {
                prev = Some((c.customer, c.at));
                continue;
            };
            return Err(AnalysisError::InvalidCheckout { index: i, reason });
        }
        Ok(())
    }
}

impl OrderFact {
    /// Value kept after refunds, never negative.
    pub fn net(&self) -> f64 {
        (self.amount - self.refunded).max(0.0)
    }

    /// Whether the order counts as a purchase: not cancelled and not fully refunded (an
    /// undone purchase). Zero-value orders (free samples, 100 % discounts) do count: they are
    /// real transactions, and the CDNOW calibration data counts them too.
    pub fn counts(&self) -> bool {
        !self.cancelled && (self.refunded <= 0.0 || self.net() > 0.0)
    }

    /// Whether the order counts (`counts`) and had happened by `now`: the orders every
    /// analysis at `now` is built on.
    pub fn counts_at(&self, now: DateTime<Utc>) -> bool {
        self.at <= now && self.counts()
    }
}

/// The unit of x's companions t_x and T (and of the BG/NBD's α).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    #[default]
    Days,
    Weeks,
}

impl TimeUnit {
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 7.0,
        }
    }

    /// Length of a month in this unit, as lifetimes' CLV helper counts it (30 days or 4.345
    /// weeks), so CLV figures are comparable with lifetimes.
    pub fn per_month(self) -> f64 {
        match self {
            TimeUnit::Days => 30.0,
            TimeUnit::Weeks => 4.345,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TimeUnit::Days => "days",
            TimeUnit::Weeks => "weeks",
        }
    }
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimeUnit {
    type Err = crate::types::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "days" | "day" | "d" => Ok(TimeUnit::Days),
            "weeks" | "week" | "w" => Ok(TimeUnit::Weeks),
            _ => Err(crate::types::UnknownValue {
                value: s.to_string(),
                expected: "days, weeks".to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::parallel::BLOCK;
    use chrono::TimeZone;

    fn shop(orders: usize) -> ShopInput {
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        ShopInput {
            customers: orders as u32,
            orders: (0..orders)
                .map(|i| OrderFact {
                    customer: i as u32,
                    at: start,
                    amount: 1.0,
                    refunded: 0.0,
                    cancelled: false,
                    discounted: false,
                })
                .collect(),
            abandoned_checkouts: vec![],
        }
    }

    #[test]
    fn validation_names_the_first_offending_order_across_blocks() {
        let mut input = shop(BLOCK * 5);
        assert_eq!(input.validate(), Ok(()));
        // Out of order at the first row of a block (found against the previous block's last),
        // and a negative amount in a later block: the earlier one is reported.
        input.orders.swap(BLOCK * 2 - 1, BLOCK * 2);
        input.orders[BLOCK * 4 + 3].amount = -1.0;
        let index = |r: Result<(), AnalysisError>| match r {
            Err(AnalysisError::InvalidOrder { index, .. }) => index,
            other => panic!("{other:?}"),
        };
        assert_eq!(index(input.validate()), BLOCK * 2);
        input.orders.swap(BLOCK * 2 - 1, BLOCK * 2);
        assert_eq!(index(input.validate()), BLOCK * 4 + 3);
    }
}
