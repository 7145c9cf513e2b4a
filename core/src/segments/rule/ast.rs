//! Typed syntax tree of a segment rule. Each condition's shape fixes which operators and values
//! it can hold, so an ill-typed rule (`rfm_group > 3`) cannot be represented once parsed.
//! `Display` prints the canonical text, which parses back to the same tree.

use crate::types::{ChurnRisk, RfmGroup};
use chrono::NaiveDate;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Two or more alternatives (flattened: no `Or` directly inside an `Or`).
    Or(Vec<Expr>),
    /// Two or more conjuncts (flattened: no `And` directly inside an `And`).
    And(Vec<Expr>),
    Not(Box<Expr>),
    Cond(Condition),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Number { attr: NumberAttr, test: NumberTest },
    Date { attr: DateAttr, test: DateTest },
    Tags(TagTest),
    EmailDomain(TextTest),
    RfmGroup { negated: bool, value: RfmGroup },
    ChurnRisk { negated: bool, value: ChurnRisk },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberAttr {
    NumberOfOrders,
    AmountSpent,
    AverageOrderValue,
    PredictedClv,
    PAlive,
    DiscountOrderShare,
    RefundsOrCancellations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateAttr {
    FirstOrderDate,
    LastOrderDate,
    AbandonedCheckoutDate,
    CustomerAddedDate,
    LastRefundOrCancellationDate,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NumberTest {
    Compare(CmpOp, f64),
    /// Inclusive; the parser guarantees `low <= high`.
    Between(f64, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateUnit {
    Days,
    Weeks,
    Months,
    Years,
}

impl DateUnit {
    fn suffix(self) -> char {
        match self {
            DateUnit::Days => 'd',
            DateUnit::Weeks => 'w',
            DateUnit::Months => 'm',
            DateUnit::Years => 'y',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateValue {
    Absolute(NaiveDate),
    /// `amount` units before the evaluation's `now`, e.g. `-90d`.
    Relative {
        amount: u32,
        unit: DateUnit,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum DateTest {
    Compare(CmpOp, DateValue),
    /// Inclusive at day granularity; bounds may be given in either order.
    Between(DateValue, DateValue),
    IsNull,
    IsNotNull,
}

/// Tag tests compare whole tags, trimmed and case-insensitively. The value is stored as written.
#[derive(Debug, Clone, PartialEq)]
pub enum TagTest {
    Contains(String),
    NotContains(String),
    /// The customer has no tags at all.
    IsNull,
    IsNotNull,
}

/// Text tests compare case-insensitively.
#[derive(Debug, Clone, PartialEq)]
pub enum TextTest {
    Eq(String),
    Ne(String),
    IsNull,
    IsNotNull,
}

/// Every attribute a rule may name, with its spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    Number(NumberAttr),
    Date(DateAttr),
    CustomerTags,
    EmailDomain,
    RfmGroup,
    ChurnRisk,
}

impl Attribute {
    pub const ALL: [Attribute; 16] = [
        Attribute::Number(NumberAttr::NumberOfOrders),
        Attribute::Number(NumberAttr::AmountSpent),
        Attribute::Number(NumberAttr::AverageOrderValue),
        Attribute::Number(NumberAttr::PredictedClv),
        Attribute::Number(NumberAttr::PAlive),
        Attribute::Number(NumberAttr::DiscountOrderShare),
        Attribute::Number(NumberAttr::RefundsOrCancellations),
        Attribute::Date(DateAttr::FirstOrderDate),
        Attribute::Date(DateAttr::LastOrderDate),
        Attribute::Date(DateAttr::AbandonedCheckoutDate),
        Attribute::Date(DateAttr::CustomerAddedDate),
        Attribute::Date(DateAttr::LastRefundOrCancellationDate),
        Attribute::CustomerTags,
        Attribute::EmailDomain,
        Attribute::RfmGroup,
        Attribute::ChurnRisk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attribute::Number(a) => match a {
                NumberAttr::NumberOfOrders => "number_of_orders",
                NumberAttr::AmountSpent => "amount_spent",
                NumberAttr::AverageOrderValue => "average_order_value",
                NumberAttr::PredictedClv => "predicted_clv",
                NumberAttr::PAlive => "p_alive",
                NumberAttr::DiscountOrderShare => "discount_order_share",
                NumberAttr::RefundsOrCancellations => "refunds_or_cancellations",
            },
            Attribute::Date(a) => match a {
                DateAttr::FirstOrderDate => "first_order_date",
                DateAttr::LastOrderDate => "last_order_date",
                DateAttr::AbandonedCheckoutDate => "abandoned_checkout_date",
                DateAttr::CustomerAddedDate => "customer_added_date",
                DateAttr::LastRefundOrCancellationDate => "last_refund_or_cancellation_date",
            },
            Attribute::CustomerTags => "customer_tags",
            Attribute::EmailDomain => "customer_email_domain",
            Attribute::RfmGroup => "rfm_group",
            Attribute::ChurnRisk => "churn_risk",
        }
    }

    /// Attribute names are matched case-insensitively, like the keywords.
    pub fn from_name(name: &str) -> Option<Attribute> {
        Attribute::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// What kind of value the attribute holds, for error messages.
    pub fn kind(self) -> &'static str {
        match self {
            Attribute::Number(_) => "a number",
            Attribute::Date(_) => "a date",
            Attribute::CustomerTags => "a list of tags",
            Attribute::EmailDomain => "a text",
            Attribute::RfmGroup => "an RFM group",
            Attribute::ChurnRisk => "a churn risk level",
        }
    }

    /// The operators the attribute accepts, for error messages.
    pub fn operators(self) -> &'static str {
        match self {
            Attribute::Number(_) => "=, !=, <, <=, >, >=, BETWEEN",
            Attribute::Date(_) => "=, !=, <, <=, >, >=, BETWEEN, IS NULL, IS NOT NULL",
            Attribute::CustomerTags => "CONTAINS, NOT CONTAINS, IS NULL, IS NOT NULL",
            Attribute::EmailDomain => "=, !=, IS NULL, IS NOT NULL",
            Attribute::RfmGroup | Attribute::ChurnRisk => "=, !=",
        }
    }

    pub fn all_names() -> String {
        Attribute::ALL.map(|a| a.name()).join(", ")
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(items) => join(f, items, " OR ", |e| matches!(e, Expr::Or(_))),
            Expr::And(items) => join(f, items, " AND ", |e| {
                matches!(e, Expr::Or(_) | Expr::And(_))
            }),
            Expr::Not(inner) => match **inner {
                Expr::Cond(_) | Expr::Not(_) => write!(f, "NOT {inner}"),
                _ => write!(f, "NOT ({inner})"),
            },
            Expr::Cond(c) => write!(f, "{c}"),
        }
    }
}

fn join(
    f: &mut fmt::Formatter<'_>,
    items: &[Expr],
    sep: &str,
    needs_parens: impl Fn(&Expr) -> bool,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        if needs_parens(item) {
            write!(f, "({item})")?;
        } else {
            write!(f, "{item}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Number { attr, test } => {
                let name = Attribute::Number(*attr).name();
                match test {
                    NumberTest::Compare(op, v) => write!(f, "{name} {} {v}", op.as_str()),
                    NumberTest::Between(lo, hi) => write!(f, "{name} BETWEEN {lo} AND {hi}"),
                }
            }
            Condition::Date { attr, test } => {
                let name = Attribute::Date(*attr).name();
                match test {
                    DateTest::Compare(op, v) => write!(f, "{name} {} {v}", op.as_str()),
                    DateTest::Between(lo, hi) => write!(f, "{name} BETWEEN {lo} AND {hi}"),
                    DateTest::IsNull => write!(f, "{name} IS NULL"),
                    DateTest::IsNotNull => write!(f, "{name} IS NOT NULL"),
                }
            }
            Condition::Tags(t) => match t {
                TagTest::Contains(v) => write!(f, "customer_tags CONTAINS {}", Quoted(v)),
                TagTest::NotContains(v) => write!(f, "customer_tags NOT CONTAINS {}", Quoted(v)),
                TagTest::IsNull => f.write_str("customer_tags IS NULL"),
                TagTest::IsNotNull => f.write_str("customer_tags IS NOT NULL"),
            },
            Condition::EmailDomain(t) => match t {
                TextTest::Eq(v) => write!(f, "customer_email_domain = {}", Quoted(v)),
                TextTest::Ne(v) => write!(f, "customer_email_domain != {}", Quoted(v)),
                TextTest::IsNull => f.write_str("customer_email_domain IS NULL"),
                TextTest::IsNotNull => f.write_str("customer_email_domain IS NOT NULL"),
            },
            Condition::RfmGroup { negated, value } => {
                write!(f, "rfm_group {} {value}", if *negated { "!=" } else { "=" })
            }
            Condition::ChurnRisk { negated, value } => {
                write!(
                    f,
                    "churn_risk {} {value}",
                    if *negated { "!=" } else { "=" }
                )
            }
        }
    }
}

impl fmt::Display for DateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateValue::Absolute(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            DateValue::Relative { amount, unit } => write!(f, "-{amount}{}", unit.suffix()),
        }
    }
}

/// A single-quoted string literal with `'` and `\` escaped by a backslash.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        for c in self.0.chars() {
            if c == '\'' || c == '\\' {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("'")
    }
}
