//! Turns rule text into tokens with byte spans. Keywords and identifiers are both `Word`s;
//! the parser decides by position, so attribute names never clash with keywords.

use super::ast::DateUnit;
use super::error::RuleError;
use chrono::NaiveDate;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Word(String),
    Number(f64),
    RelDate { amount: u32, unit: DateUnit },
    Date(NaiveDate),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Range<usize>,
}

/// Relative dates beyond this many units are certainly typos and would overflow date maths.
pub const MAX_RELATIVE_AMOUNT: u32 = 100_000;

pub fn lex(src: &str) -> Result<Vec<Token>, RuleError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let tok = match c {
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'=' => {
                i += 1;
                Tok::Op("=")
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Op("!=")
            }
            b'<' | b'>' => {
                let eq = bytes.get(i + 1) == Some(&b'=');
                i += if eq { 2 } else { 1 };
                Tok::Op(match (c, eq) {
                    (b'<', true) => "<=",
                    (b'<', false) => "<",
                    (_, true) => ">=",
                    _ => ">",
                })
            }
            b'\'' | b'"' => {
                let (s, end) = lex_string(src, i)?;
                i = end;
                Tok::Str(s)
            }
            b'-' | b'0'..=b'9' | b'.' => {
                let (t, end) = lex_number_or_date(src, i)?;
                i = end;
                t
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                Tok::Word(src[start..i].to_string())
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                let hint = if matches!(ch, '$' | '€' | '£' | '¥') {
                    "; amounts are written without a currency symbol"
                } else {
                    ""
                };
                return Err(RuleError::new(
                    src,
                    i..i + ch.len_utf8(),
                    format!("unexpected character `{ch}`{hint}"),
                ));
            }
        };
        out.push(Token {
            tok,
            span: start..i,
        });
    }
    out.push(Token {
        tok: Tok::End,
        span: src.len()..src.len(),
    });
    Ok(out)
}

/// A quoted string; the quote character itself and `\` are escaped with a backslash.
fn lex_string(src: &str, start: usize) -> Result<(String, usize), RuleError> {
    let quote = src.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, ch)) = chars.next() {
        match ch {
            '\\' => match chars.next() {
                Some((_, esc)) => out.push(esc),
                None => break,
            },
            c if c == quote => return Ok((out, start + 1 + off + 1)),
            c => out.push(c),
        }
    }
    Err(RuleError::new(
        src,
        start..src.len(),
        format!("unterminated text starting with {quote}: add a closing {quote}"),
    ))
}

/// Numbers (`200`, `12.5`, `-3`), relative dates (`-90d`, `-4w`, `-3m`, `-1y`) and absolute
/// dates (`2024-01-31`) all start like numbers; the shape decides.
fn lex_number_or_date(src: &str, start: usize) -> Result<(Tok, usize), RuleError> {
    let bytes = src.as_bytes();
    let mut end = start;
    // A word-like run: everything up to whitespace, a paren, an operator or a quote.
    while end < bytes.len()
        && !bytes[end].is_ascii_whitespace()
        && !matches!(
            bytes[end],
            b'(' | b')' | b'=' | b'!' | b'<' | b'>' | b'\'' | b'"'
        )
    {
        end += 1;
    }
    // Stop at a char boundary if the run contains non-ASCII text.
    while !src.is_char_boundary(end) {
        end += 1;
    }
    let text = &src[start..end];
    let span = start..end;

    if let Some(date) = absolute_date_shape(text) {
        return match NaiveDate::parse_from_str(date, "%Y-%m-%d") {
            Ok(d) => Ok((Tok::Date(d), end)),
            Err(_) => Err(RuleError::new(
                src,
                span,
                format!("`{text}` is not a valid calendar date (YYYY-MM-DD)"),
            )),
        };
    }
    let last = text.chars().last().unwrap_or('0');
    if matches!(last, 'd' | 'w' | 'm' | 'y' | 'D' | 'W' | 'M' | 'Y') {
        let digits = &text[..text.len() - 1];
        let unit = match last.to_ascii_lowercase() {
            'd' => DateUnit::Days,
            'w' => DateUnit::Weeks,
            'm' => DateUnit::Months,
            _ => DateUnit::Years,
        };
        if let Some(n) = digits.strip_prefix('-')
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
        {
            return match n.parse::<u32>() {
                Ok(amount) if amount <= MAX_RELATIVE_AMOUNT => {
                    Ok((Tok::RelDate { amount, unit }, end))
                }
                _ => Err(RuleError::new(
                    src,
                    span,
                    format!(
                        "relative date `{text}` is too far back (at most {MAX_RELATIVE_AMOUNT} units)"
                    ),
                )),
            };
        }
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RuleError::new(
                src,
                span,
                format!("relative dates count back from today: write `-{text}`"),
            ));
        }
    }
    match text.parse::<f64>() {
        Ok(v)
            if v.is_finite()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') =>
        {
            Ok((Tok::Number(v), end))
        }
        _ => Err(RuleError::new(
            src,
            span,
            format!("`{text}` is not a number, a date (YYYY-MM-DD) or a relative date (-30d)"),
        )),
    }
}

fn absolute_date_shape(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    shape.then_some(text)
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self, src: &str, span: &Range<usize>) -> String {
        match self {
            Tok::End => "end of rule".to_string(),
            _ => format!("`{}`", &src[span.clone()]),
        }
    }
}
