//! Evaluation of a parsed rule. Relative dates are resolved once per run ([`bind`]) into day
//! numbers, so evaluating a customer is plain comparisons with no allocation and no failure.

use super::ast::*;
use crate::segments::facts::{CustomerFacts, day_number};
use crate::segments::text::{eq_ignore_case, has_tag};
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

/// A rule with its dates resolved against one `now`.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Number(NumberAttr, NumberTest),
    Date(DateAttr, DateCheck),
    Tags(TagTest),
    EmailDomain(TextTest),
    Rfm(bool, crate::types::RfmGroup),
    Churn(bool, crate::types::ChurnRisk),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum DateCheck {
    Compare(CmpOp, i64),
    Between(i64, i64),
    IsNull,
    IsNotNull,
}

pub(crate) fn bind(expr: &Expr, now: DateTime<Utc>) -> Node {
    match expr {
        Expr::Or(items) => Node::Or(items.iter().map(|e| bind(e, now)).collect()),
        Expr::And(items) => Node::And(items.iter().map(|e| bind(e, now)).collect()),
        Expr::Not(inner) => Node::Not(Box::new(bind(inner, now))),
        Expr::Cond(c) => match c {
            Condition::Number { attr, test } => Node::Number(*attr, test.clone()),
            Condition::Date { attr, test } => Node::Date(
                *attr,
                match test {
                    DateTest::Compare(op, v) => DateCheck::Compare(*op, resolve(*v, now)),
                    DateTest::Between(a, b) => {
                        let (a, b) = (resolve(*a, now), resolve(*b, now));
                        DateCheck::Between(a.min(b), a.max(b))
                    }
                    DateTest::IsNull => DateCheck::IsNull,
                    DateTest::IsNotNull => DateCheck::IsNotNull,
                },
            ),
            Condition::Tags(t) => Node::Tags(t.clone()),
            Condition::EmailDomain(t) => Node::EmailDomain(t.clone()),
            Condition::RfmGroup { negated, value } => Node::Rfm(*negated, *value),
            Condition::ChurnRisk { negated, value } => Node::Churn(*negated, *value),
        },
    }
}

/// The day (days since the epoch, UTC) a date value stands for at `now`. Months and years
/// follow the calendar (`-1m` from 31 March is 28/29 February).
pub(crate) fn resolve(v: DateValue, now: DateTime<Utc>) -> i64 {
    let today = day_number(now);
    match v {
        DateValue::Absolute(d) => naive_day_number(d),
        DateValue::Relative { amount, unit } => {
            let amount = i64::from(amount);
            match unit {
                DateUnit::Days => today - amount,
                DateUnit::Weeks => today - 7 * amount,
                DateUnit::Months | DateUnit::Years => {
                    let months = if unit == DateUnit::Years {
                        amount * 12
                    } else {
                        amount
                    };
                    u32::try_from(months)
                        .ok()
                        .and_then(|m| now.date_naive().checked_sub_months(Months::new(m)))
                        .map(naive_day_number)
                        // Only reachable at the edge of chrono's range: approximate instead.
                        .unwrap_or(today - months * 30)
                }
            }
        }
    }
}

fn naive_day_number(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce()) - 719_163
}

impl Node {
    pub(crate) fn matches(&self, f: &CustomerFacts) -> bool {
        match self {
            Node::Or(items) => items.iter().any(|n| n.matches(f)),
            Node::And(items) => items.iter().all(|n| n.matches(f)),
            Node::Not(inner) => !inner.matches(f),
            Node::Number(attr, test) => number_matches(number_of(*attr, f), test),
            Node::Date(attr, check) => date_matches(date_of(*attr, f), *check),
            Node::Tags(t) => match t {
                TagTest::Contains(v) => has_tag(&f.customer_tags, v),
                TagTest::NotContains(v) => !has_tag(&f.customer_tags, v),
                TagTest::IsNull => f.customer_tags.iter().all(|t| t.trim().is_empty()),
                TagTest::IsNotNull => f.customer_tags.iter().any(|t| !t.trim().is_empty()),
            },
            Node::EmailDomain(t) => match (t, f.email_domain.as_deref()) {
                (TextTest::IsNull, d) => d.is_none(),
                (TextTest::IsNotNull, d) => d.is_some(),
                // Comparisons with a missing value are false, as in SQL.
                (_, None) => false,
                (TextTest::Eq(v), Some(d)) => eq_ignore_case(d.trim(), v),
                (TextTest::Ne(v), Some(d)) => !eq_ignore_case(d.trim(), v),
            },
            Node::Rfm(negated, v) => (f.rfm_group == *v) != *negated,
            Node::Churn(negated, v) => (f.churn_risk == *v) != *negated,
        }
    }
}

fn number_of(attr: NumberAttr, f: &CustomerFacts) -> f64 {
    match attr {
        NumberAttr::NumberOfOrders => f64::from(f.number_of_orders),
        NumberAttr::AmountSpent => f.amount_spent,
        NumberAttr::AverageOrderValue => f.average_order_value,
        NumberAttr::PredictedClv => f.predicted_clv,
        NumberAttr::PAlive => f.p_alive,
        NumberAttr::DiscountOrderShare => f.discount_order_share,
        NumberAttr::RefundsOrCancellations => f64::from(f.refunds_or_cancellations),
    }
}

fn date_of(attr: DateAttr, f: &CustomerFacts) -> Option<DateTime<Utc>> {
    match attr {
        DateAttr::FirstOrderDate => f.first_order_date,
        DateAttr::LastOrderDate => f.last_order_date,
        DateAttr::AbandonedCheckoutDate => f.abandoned_checkout_date,
        DateAttr::CustomerAddedDate => f.customer_added_date,
        DateAttr::LastRefundOrCancellationDate => f.last_refund_or_cancellation_date,
    }
}

/// Sums of money in `f64` are rarely exact (0.1 + 0.2), so equality allows a relative error
/// far below a cent.
fn approx_eq(a: f64, b: f64) -> bool {
    if a == b || !a.is_finite() || !b.is_finite() {
        return a == b;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

pub(crate) fn compare_number(a: f64, op: CmpOp, b: f64) -> bool {
    // A NaN fact (bad upstream data) matches no comparison.
    if a.is_nan() {
        return false;
    }
    let eq = approx_eq(a, b);
    match op {
        CmpOp::Eq => eq,
        CmpOp::Ne => !eq,
        CmpOp::Lt => a < b && !eq,
        CmpOp::Le => a < b || eq,
        CmpOp::Gt => a > b && !eq,
        CmpOp::Ge => a > b || eq,
    }
}

fn number_matches(v: f64, test: &NumberTest) -> bool {
    match *test {
        NumberTest::Compare(op, x) => compare_number(v, op, x),
        NumberTest::Between(lo, hi) => {
            compare_number(v, CmpOp::Ge, lo) && compare_number(v, CmpOp::Le, hi)
        }
    }
}

fn date_matches(v: Option<DateTime<Utc>>, check: DateCheck) -> bool {
    match (check, v) {
        (DateCheck::IsNull, v) => v.is_none(),
        (DateCheck::IsNotNull, v) => v.is_some(),
        (_, None) => false,
        (DateCheck::Compare(op, x), Some(t)) => {
            let d = day_number(t);
            match op {
                CmpOp::Eq => d == x,
                CmpOp::Ne => d != x,
                CmpOp::Lt => d < x,
                CmpOp::Le => d <= x,
                CmpOp::Gt => d > x,
                CmpOp::Ge => d >= x,
            }
        }
        (DateCheck::Between(lo, hi), Some(t)) => (lo..=hi).contains(&day_number(t)),
    }
}
