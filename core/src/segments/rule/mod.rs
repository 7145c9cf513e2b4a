//! The custom segment rule language, close to Shopify's segment query language:
//!
//! ```text
//! number_of_orders >= 2 AND last_order_date < -90d AND amount_spent > 200
//! (rfm_group = AT_RISK OR churn_risk = HIGH) AND NOT customer_tags CONTAINS 'wholesale'
//! first_order_date BETWEEN 2024-01-01 AND 2024-03-31
//! ```
//!
//! Semantics worth knowing:
//! - Dates compare by UTC day. `-7d`, `-4w`, `-3m`, `-1y` count back from `now` (months and
//!   years by the calendar); `BETWEEN` is inclusive and accepts its bounds in either order.
//! - A comparison with a missing value (no last order, no e-mail) is false, as in SQL; use
//!   `IS NULL` / `IS NOT NULL` to ask about absence. `NOT` is plain negation, so
//!   `NOT last_order_date < -90d` includes customers who never ordered.
//! - `customer_tags CONTAINS 'x'` matches a whole tag, trimmed and case-insensitively.
//! - Number equality tolerates float rounding far below a cent.
//!
//! A [`Segment`] is compiled once, when the merchant saves it; every error is reported then,
//! with its position. Evaluation cannot fail.

mod ast;
mod error;
mod eval;
mod lexer;
mod parser;

pub use ast::{
    Attribute, CmpOp, Condition, DateAttr, DateTest, DateUnit, DateValue, Expr, NumberAttr,
    NumberTest, TagTest, TextTest,
};
pub use error::RuleError;
pub use parser::MAX_DEPTH;

use crate::segments::facts::CustomerFacts;
use chrono::{DateTime, Utc};
use std::fmt;

/// Rules longer than this are refused: a segment rule is a line, not a document.
pub const MAX_RULE_LEN: usize = 4_096;

/// A validated custom segment rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    expr: Expr,
}

impl Segment {
    /// Parses and type-checks `rule`.
    pub fn compile(rule: &str) -> Result<Segment, RuleError> {
        if rule.len() > MAX_RULE_LEN {
            return Err(RuleError::new(
                rule,
                MAX_RULE_LEN..rule.len(),
                format!("rule is longer than {MAX_RULE_LEN} bytes"),
            ));
        }
        parser::parse(rule).map(|expr| Segment { expr })
    }

    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Resolves relative dates against `now`; use the result for a whole run.
    pub fn at(&self, now: DateTime<Utc>) -> BoundSegment {
        BoundSegment {
            node: eval::bind(&self.expr, now),
        }
    }

    /// One-off evaluation. For many customers, bind once with [`Segment::at`].
    pub fn matches(&self, facts: &CustomerFacts, now: DateTime<Utc>) -> bool {
        self.at(now).matches(facts)
    }
}

/// Canonical text: parses back to an equal [`Segment`].
impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl std::str::FromStr for Segment {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Segment::compile(s)
    }
}

/// A segment with its dates resolved for one run.
#[derive(Debug, Clone)]
pub struct BoundSegment {
    node: eval::Node,
}

impl BoundSegment {
    pub fn matches(&self, facts: &CustomerFacts) -> bool {
        self.node.matches(facts)
    }
}
