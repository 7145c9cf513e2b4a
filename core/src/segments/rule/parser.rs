//! Recursive-descent parser: tokens to a typed [`Expr`]. Type checking happens here, so every
//! rule that parses can be evaluated without a run-time error.
//!
//! Grammar (keywords case-insensitive; `NOT` binds tighter than `AND`, `AND` than `OR`):
//! ```text
//! rule      := or END
//! or        := and ( OR and )*
//! and       := unary ( AND unary )*
//! unary     := NOT unary | '(' or ')' | condition
//! condition := attribute ( cmp value | BETWEEN value AND value | IS [NOT] NULL
//!                        | [NOT] CONTAINS text )
//! ```

use super::ast::*;
use super::error::RuleError;
use super::lexer::{Tok, Token, lex};
use crate::types::{ChurnRisk, RfmGroup};
use std::ops::Range;

/// Deeper nesting than this is refused rather than risking the stack on hostile input.
pub const MAX_DEPTH: usize = 64;

pub fn parse(src: &str) -> Result<Expr, RuleError> {
    let tokens = lex(src)?;
    let mut p = Parser {
        src,
        tokens,
        pos: 0,
        depth: 0,
    };
    let expr = p.or()?;
    let t = p.peek();
    if t.tok != Tok::End {
        let found = t.tok.describe(src, &t.span);
        let msg = if t.tok == Tok::RParen {
            "unmatched `)`".to_string()
        } else {
            format!("expected AND, OR or end of rule, found {found}")
        };
        return Err(RuleError::new(src, t.span.clone(), msg));
    }
    Ok(expr)
}

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> &Token {
        // The token list always ends with `End`, and `bump` never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::End {
            self.pos += 1;
        }
        t
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn peek_keyword_at(&self, offset: usize, kw: &str) -> bool {
        matches!(self.tokens.get(self.pos + offset), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(kw))
    }

    fn err(&self, span: Range<usize>, msg: impl Into<String>) -> RuleError {
        RuleError::new(self.src, span, msg)
    }

    fn found(&self, t: &Token) -> String {
        t.tok.describe(self.src, &t.span)
    }

    fn enter(&mut self, span: &Range<usize>) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(
                span.clone(),
                format!("rule is nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        let mut items = vec![self.and()?];
        while self.peek_keyword("OR") {
            self.bump();
            items.push(self.and()?);
        }
        Ok(flatten(items, true))
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        let mut items = vec![self.unary()?];
        while self.peek_keyword("AND") {
            self.bump();
            items.push(self.unary()?);
        }
        Ok(flatten(items, false))
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        let t = self.peek().clone();
        if self.peek_keyword("NOT") {
            self.bump();
            self.enter(&t.span)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if t.tok == Tok::LParen {
            self.bump();
            self.enter(&t.span)?;
            let inner = self.or()?;
            self.depth -= 1;
            let close = self.bump();
            if close.tok != Tok::RParen {
                let col = RuleError::new(self.src, t.span.clone(), "").column;
                return Err(self.err(
                    close.span.clone(),
                    format!(
                        "expected AND, OR or `)` to close the `(` at {col}, found {}",
                        self.found(&close)
                    ),
                ));
            }
            return Ok(inner);
        }
        self.condition().map(Expr::Cond)
    }

    fn condition(&mut self) -> Result<Condition, RuleError> {
        let t = self.bump();
        let attr = match &t.tok {
            Tok::Word(w) if is_keyword(w) => {
                return Err(self.err(
                    t.span.clone(),
                    format!(
                        "expected a condition such as `number_of_orders >= 2`, found {}",
                        self.found(&t)
                    ),
                ));
            }
            Tok::Word(w) => Attribute::from_name(w).ok_or_else(|| {
                self.err(
                    t.span.clone(),
                    format!(
                        "unknown attribute `{w}`; valid attributes: {}",
                        Attribute::all_names()
                    ),
                )
            })?,
            _ => {
                return Err(self.err(
                    t.span.clone(),
                    format!(
                        "expected a condition such as `number_of_orders >= 2`, found {}",
                        self.found(&t)
                    ),
                ));
            }
        };
        let op = self.operator(attr, &t)?;
        self.check_operator(attr, &op)?;
        match attr {
            Attribute::Number(a) => self.number_condition(a, op),
            Attribute::Date(a) => self.date_condition(a, op),
            Attribute::CustomerTags => self.tag_condition(op),
            Attribute::EmailDomain => self.text_condition(op),
            Attribute::RfmGroup => {
                let negated = op.kind == OpKind::Cmp(CmpOp::Ne);
                let value = self.enum_value::<RfmGroup>(&op, "an RFM group", || {
                    RfmGroup::ALL.map(|g| g.as_str()).join(", ")
                })?;
                Ok(Condition::RfmGroup { negated, value })
            }
            Attribute::ChurnRisk => {
                let negated = op.kind == OpKind::Cmp(CmpOp::Ne);
                let value = self.enum_value::<ChurnRisk>(&op, "a churn risk level", || {
                    ChurnRisk::ALL.map(|g| g.as_str()).join(", ")
                })?;
                Ok(Condition::ChurnRisk { negated, value })
            }
        }
    }

    fn operator(&mut self, attr: Attribute, attr_tok: &Token) -> Result<Op, RuleError> {
        let t = self.bump();
        let kind = match &t.tok {
            Tok::Op(s) => OpKind::Cmp(match *s {
                "=" => CmpOp::Eq,
                "!=" => CmpOp::Ne,
                "<" => CmpOp::Lt,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                _ => CmpOp::Ge,
            }),
            Tok::Word(w) if w.eq_ignore_ascii_case("BETWEEN") => OpKind::Between,
            Tok::Word(w) if w.eq_ignore_ascii_case("CONTAINS") => OpKind::Contains,
            Tok::Word(w) if w.eq_ignore_ascii_case("NOT") && self.peek_keyword("CONTAINS") => {
                self.bump();
                OpKind::NotContains
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("IS") => {
                let negated = self.peek_keyword("NOT") && self.peek_keyword_at(1, "NULL");
                if negated {
                    self.bump();
                }
                let null = self.bump();
                if !matches!(&null.tok, Tok::Word(w) if w.eq_ignore_ascii_case("NULL")) {
                    return Err(self.err(
                        null.span.clone(),
                        format!(
                            "expected NULL or NOT NULL after `IS`, found {}",
                            self.found(&null)
                        ),
                    ));
                }
                let span = t.span.start..null.span.end;
                let kind = if negated {
                    OpKind::IsNotNull
                } else {
                    OpKind::IsNull
                };
                return Ok(Op { kind, span });
            }
            _ => {
                return Err(self.err(
                    t.span.clone(),
                    format!(
                        "expected an operator ({}) after `{}`, found {}",
                        attr.operators(),
                        &self.src[attr_tok.span.clone()],
                        self.found(&t)
                    ),
                ));
            }
        };
        let span = if kind == OpKind::NotContains {
            t.span.start..self.tokens[self.pos - 1].span.end
        } else {
            t.span.clone()
        };
        Ok(Op { kind, span })
    }

    fn check_operator(&self, attr: Attribute, op: &Op) -> Result<(), RuleError> {
        let ok = match (attr, op.kind) {
            (Attribute::Number(_), OpKind::Cmp(_) | OpKind::Between) => true,
            (Attribute::Date(_), OpKind::Cmp(_) | OpKind::Between) => true,
            (Attribute::Date(_), OpKind::IsNull | OpKind::IsNotNull) => true,
            (Attribute::CustomerTags, k) => !matches!(k, OpKind::Cmp(_) | OpKind::Between),
            (Attribute::EmailDomain, OpKind::Cmp(CmpOp::Eq | CmpOp::Ne)) => true,
            (Attribute::EmailDomain, OpKind::IsNull | OpKind::IsNotNull) => true,
            (Attribute::RfmGroup | Attribute::ChurnRisk, OpKind::Cmp(CmpOp::Eq | CmpOp::Ne)) => {
                true
            }
            _ => false,
        };
        if ok {
            return Ok(());
        }
        Err(self.err(
            op.span.clone(),
            format!(
                "operator `{}` does not apply to `{}` ({}); use {}",
                &self.src[op.span.clone()],
                attr.name(),
                attr.kind(),
                attr.operators()
            ),
        ))
    }

    fn op_text(&self, op: &Op) -> &'s str {
        &self.src[op.span.clone()]
    }

    fn number(&mut self, after: &str) -> Result<(f64, Range<usize>), RuleError> {
        let t = self.bump();
        match t.tok {
            Tok::Number(v) => Ok((v, t.span)),
            _ => Err(self.err(
                t.span.clone(),
                format!(
                    "expected a number after `{after}`, found {}",
                    self.found(&t)
                ),
            )),
        }
    }

    fn between_and(&mut self) -> Result<(), RuleError> {
        let t = self.bump();
        if matches!(&t.tok, Tok::Word(w) if w.eq_ignore_ascii_case("AND")) {
            return Ok(());
        }
        Err(self.err(
            t.span.clone(),
            format!(
                "expected AND between the two BETWEEN bounds, found {}",
                self.found(&t)
            ),
        ))
    }

    fn number_condition(&mut self, attr: NumberAttr, op: Op) -> Result<Condition, RuleError> {
        let test = match op.kind {
            OpKind::Cmp(c) => NumberTest::Compare(c, self.number(self.op_text(&op))?.0),
            _ => {
                let (lo, lo_span) = self.number("BETWEEN")?;
                self.between_and()?;
                let (hi, hi_span) = self.number("AND")?;
                if lo > hi {
                    return Err(self.err(
                        lo_span.start..hi_span.end,
                        format!("BETWEEN bounds are reversed: {lo} is greater than {hi}"),
                    ));
                }
                NumberTest::Between(lo, hi)
            }
        };
        Ok(Condition::Number { attr, test })
    }

    fn date(&mut self, after: &str) -> Result<DateValue, RuleError> {
        let t = self.bump();
        match t.tok {
            Tok::Date(d) => Ok(DateValue::Absolute(d)),
            Tok::RelDate { amount, unit } => Ok(DateValue::Relative { amount, unit }),
            _ => Err(self.err(
                t.span.clone(),
                format!(
                    "expected a date (YYYY-MM-DD) or a relative date (-30d, -4w, -3m, -1y) after `{after}`, found {}",
                    self.found(&t)
                ),
            )),
        }
    }

    fn date_condition(&mut self, attr: DateAttr, op: Op) -> Result<Condition, RuleError> {
        let test = match op.kind {
            OpKind::Cmp(c) => DateTest::Compare(c, self.date(self.op_text(&op))?),
            OpKind::IsNull => DateTest::IsNull,
            OpKind::IsNotNull => DateTest::IsNotNull,
            _ => {
                let lo = self.date("BETWEEN")?;
                self.between_and()?;
                let hi = self.date("AND")?;
                DateTest::Between(lo, hi)
            }
        };
        Ok(Condition::Date { attr, test })
    }

    fn text(&mut self, after: &str, what: &str) -> Result<String, RuleError> {
        let t = self.bump();
        match t.tok {
            Tok::Str(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Tok::Str(_) => Err(self.err(t.span.clone(), format!("{what} must not be empty"))),
            _ => Err(self.err(
                t.span.clone(),
                format!(
                    "expected {what} in quotes, e.g. 'vip', after `{after}`, found {}",
                    self.found(&t)
                ),
            )),
        }
    }

    fn tag_condition(&mut self, op: Op) -> Result<Condition, RuleError> {
        let after = self.op_text(&op);
        Ok(Condition::Tags(match op.kind {
            OpKind::Contains => TagTest::Contains(self.text(after, "a tag")?),
            OpKind::NotContains => TagTest::NotContains(self.text(after, "a tag")?),
            OpKind::IsNull => TagTest::IsNull,
            _ => TagTest::IsNotNull,
        }))
    }

    fn text_condition(&mut self, op: Op) -> Result<Condition, RuleError> {
        let after = self.op_text(&op);
        Ok(Condition::EmailDomain(match op.kind {
            OpKind::Cmp(CmpOp::Eq) => TextTest::Eq(self.text(after, "a domain")?),
            OpKind::Cmp(_) => TextTest::Ne(self.text(after, "a domain")?),
            OpKind::IsNull => TextTest::IsNull,
            _ => TextTest::IsNotNull,
        }))
    }

    fn enum_value<T: std::str::FromStr>(
        &mut self,
        op: &Op,
        what: &str,
        valid: impl Fn() -> String,
    ) -> Result<T, RuleError> {
        let t = self.bump();
        let parsed = match &t.tok {
            Tok::Word(w) | Tok::Str(w) => w.parse::<T>().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| {
            self.err(
                t.span.clone(),
                format!(
                    "expected {what} ({}) after `{}`, found {}",
                    valid(),
                    self.op_text(op),
                    self.found(&t)
                ),
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Cmp(CmpOp),
    Between,
    Contains,
    NotContains,
    IsNull,
    IsNotNull,
}

struct Op {
    kind: OpKind,
    span: Range<usize>,
}

fn is_keyword(w: &str) -> bool {
    ["AND", "OR", "NOT", "BETWEEN", "IS", "NULL", "CONTAINS"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(w))
}

/// One item stays itself; nested items of the same connective are spliced in.
fn flatten(items: Vec<Expr>, is_or: bool) -> Expr {
    if items.len() == 1 {
        return items.into_iter().next().unwrap_or(Expr::And(Vec::new()));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match (item, is_or) {
            (Expr::Or(inner), true) | (Expr::And(inner), false) => out.extend(inner),
            (other, _) => out.push(other),
        }
    }
    if is_or { Expr::Or(out) } else { Expr::And(out) }
}
