//! From assignments and orders to the per-customer [`Outcome`]s the estimator takes.
//!
//! The unit is one assignment (a customer offered a code, or held out, for one period of one
//! offer). Its window runs from the assignment to the end of the code's validity, or to `now`
//! while that is still ahead, the same for both groups. An order counts as in
//! [`OrderFact::counts`] and is worth [`OrderFact::net`], the analytics' own rules. An order
//! that carries the assignment's code is a **redemption**; its discount is what the offer gave.
//! Amounts are in whatever unit the caller passes (the app passes minor units of the shop's
//! currency, so figures need no rounding back).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::effect::Outcome;
use crate::analytics::input::OrderFact;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    Treatment,
    Control,
}

/// A customer in one group of an offer, for one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub customer_id: String,
    pub arm: Arm,
    /// The code given (treatment only).
    pub code: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// One order of an assigned customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerOrder {
    pub customer_id: String,
    pub at: DateTime<Utc>,
    pub amount: f64,
    pub refunded: f64,
    pub cancelled: bool,
    /// The order's discounts.
    pub discount: f64,
    /// The discount codes the order used, as the platform reported them.
    pub codes: Vec<String>,
}

/// The outcomes of both groups, and what the counts alone say.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub treatment: Vec<Outcome>,
    pub control: Vec<Outcome>,
    /// Counting orders in the windows, per group.
    pub treatment_orders: usize,
    pub control_orders: usize,
    /// Orders that used the assignment's code.
    pub redemptions: usize,
}

/// Codes compare as the platforms treat them: case-insensitive, surrounding blanks ignored.
fn same_code(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Folds `orders` (any order, any customer) into one outcome per assignment.
pub fn observe(
    assignments: &[Assignment],
    orders: &[CustomerOrder],
    now: DateTime<Utc>,
) -> Observed {
    let mut by_customer: HashMap<&str, Vec<&CustomerOrder>> = HashMap::new();
    for o in orders {
        by_customer
            .entry(o.customer_id.as_str())
            .or_default()
            .push(o);
    }
    let mut out = Observed::default();
    for a in assignments {
        let end = a.ends_at.min(now);
        let mut outcome = Outcome {
            bought: false,
            net_revenue: 0.0,
            discount: 0.0,
        };
        let mut count = 0;
        for o in by_customer
            .get(a.customer_id.as_str())
            .into_iter()
            .flatten()
        {
            let fact = OrderFact {
                customer: 0,
                at: o.at,
                amount: o.amount,
                refunded: o.refunded,
                cancelled: o.cancelled,
                discounted: !o.codes.is_empty(),
            };
            if o.at < a.starts_at || o.at >= end || !fact.counts() {
                continue;
            }
            count += 1;
            outcome.bought = true;
            outcome.net_revenue += fact.net();
            let redeemed = a
                .code
                .as_deref()
                .is_some_and(|code| o.codes.iter().any(|c| same_code(c, code)));
            if redeemed {
                out.redemptions += 1;
                outcome.discount += o.discount;
            }
        }
        match a.arm {
            Arm::Treatment => {
                out.treatment.push(outcome);
                out.treatment_orders += count;
            }
            Arm::Control => {
                out.control.push(outcome);
                out.control_orders += count;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(day: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(day)
    }

    fn order(customer: &str, day: i64, amount: f64, codes: &[&str]) -> CustomerOrder {
        CustomerOrder {
            customer_id: customer.into(),
            at: t(day),
            amount,
            refunded: 0.0,
            cancelled: false,
            discount: if codes.is_empty() { 0.0 } else { 5.0 },
            codes: codes.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn assign(customer: &str, arm: Arm, code: Option<&str>) -> Assignment {
        Assignment {
            customer_id: customer.into(),
            arm,
            code: code.map(str::to_string),
            starts_at: t(10),
            ends_at: t(40),
        }
    }

    #[test]
    fn counts_orders_in_the_window_and_attributes_the_code() {
        let assignments = [
            assign("a", Arm::Treatment, Some("LC-AAA")),
            assign("b", Arm::Treatment, Some("LC-BBB")),
            assign("c", Arm::Control, None),
            assign("d", Arm::Control, None),
        ];
        let mut cancelled = order("c", 21, 70.0, &[]);
        cancelled.cancelled = true;
        let mut refunded = order("c", 22, 30.0, &[]);
        refunded.refunded = 10.0;
        let orders = [
            order("a", 9, 100.0, &[]),          // before the window
            order("a", 12, 50.0, &["lc-aaa "]), // redemption, case and blanks ignored
            order("a", 15, 20.0, &[]),
            order("b", 40, 99.0, &["LC-BBB"]), // at the window's end: outside
            cancelled,
            refunded,
            order("x", 12, 10.0, &[]), // not assigned
        ];
        let o = observe(&assignments, &orders, t(100));
        assert_eq!(
            o.treatment,
            vec![
                Outcome {
                    bought: true,
                    net_revenue: 70.0,
                    discount: 5.0
                },
                Outcome {
                    bought: false,
                    net_revenue: 0.0,
                    discount: 0.0
                },
            ]
        );
        assert_eq!(
            o.control,
            vec![
                Outcome {
                    bought: true,
                    net_revenue: 20.0,
                    discount: 0.0
                },
                Outcome {
                    bought: false,
                    net_revenue: 0.0,
                    discount: 0.0
                },
            ]
        );
        assert_eq!(
            (o.treatment_orders, o.control_orders, o.redemptions),
            (2, 1, 1)
        );
    }

    #[test]
    fn an_open_window_ends_now() {
        let assignments = [assign("a", Arm::Treatment, Some("LC-AAA"))];
        let orders = [order("a", 20, 50.0, &[])];
        assert!(!observe(&assignments, &orders, t(15)).treatment[0].bought);
        assert!(observe(&assignments, &orders, t(25)).treatment[0].bought);
    }
}
