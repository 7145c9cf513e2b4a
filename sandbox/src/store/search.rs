//! Shopify search syntax for connection `query:` arguments: `updated_at:>'2024-01-01T00:00:00Z'`,
//! `created_at:<=2024-05-01`, `id:>123`, `email:a@b.c`, `tag:vip`, joined by spaces or `AND`.

use super::table::{IndexFilter, Key, Range};
use chrono::{DateTime, NaiveDate, Utc};
use std::ops::Bound;

#[derive(Debug, Clone, Default)]
pub struct Search {
    pub index: IndexFilter,
    pub email: Option<String>,
    pub tags: Vec<String>,
    /// Free text and fields this sandbox does not index; Shopify ignores what it cannot use.
    pub ignored: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SearchError {
    #[error("invalid value '{value}' for {field}: expected a date or an ISO 8601 time")]
    BadTime { field: String, value: String },
    #[error("invalid value '{value}' for id: expected an integer")]
    BadId { value: String },
}

fn tokens(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for ch in q.chars() {
        match (quote, ch) {
            (Some(qc), c) if c == qc => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => quote = Some(ch),
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse_time(field: &str, v: &str) -> Result<DateTime<Utc>, SearchError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    // Shopify also accepts a naive time; read it as UTC.
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t.and_utc());
    }
    Err(SearchError::BadTime {
        field: field.to_string(),
        value: v.to_string(),
    })
}

fn split_op(v: &str) -> (&str, &str) {
    for op in [">=", "<=", ">", "<", "="] {
        if let Some(rest) = v.strip_prefix(op) {
            return (op, rest);
        }
    }
    ("=", v)
}

/// Bounds on `(value, id)` keys for `value op x`.
fn bound(op: &str, x: i64) -> Range {
    let mut r = Range::default();
    match op {
        ">" => r.lo = Bound::Excluded((x, u64::MAX)),
        ">=" => r.lo = Bound::Included((x, 0)),
        "<" => r.hi = Bound::Excluded((x, 0)),
        "<=" => r.hi = Bound::Included((x, u64::MAX)),
        _ => {
            r.lo = Bound::Included((x, 0));
            r.hi = Bound::Included((x, u64::MAX));
        }
    }
    r
}

fn id_bound(op: &str, id: u64) -> Range {
    let k = |i: u64| -> Key { (0, i) };
    let mut r = Range::default();
    match op {
        ">" => r.lo = Bound::Excluded(k(id)),
        ">=" => r.lo = Bound::Included(k(id)),
        "<" => r.hi = Bound::Excluded(k(id)),
        "<=" => r.hi = Bound::Included(k(id)),
        _ => {
            r.lo = Bound::Included(k(id));
            r.hi = Bound::Included(k(id));
        }
    }
    r
}

fn and(a: Option<Range>, b: Range) -> Option<Range> {
    Some(a.map_or(b, |a| a.intersect(b)))
}

pub fn parse(q: &str) -> Result<Search, SearchError> {
    let mut s = Search::default();
    for tok in tokens(q) {
        if tok.eq_ignore_ascii_case("AND") {
            continue;
        }
        let Some((field, value)) = tok.split_once(':') else {
            s.ignored.push(tok);
            continue;
        };
        let (op, v) = split_op(value);
        let v = v.trim_matches(|c| c == '\'' || c == '"');
        match field {
            "updated_at" | "created_at" => {
                let t = parse_time(field, v)?.timestamp_micros();
                let r = bound(op, t);
                if field == "updated_at" {
                    s.index.updated = and(s.index.updated, r);
                } else {
                    s.index.created = and(s.index.created, r);
                }
            }
            "id" => {
                let id = v
                    .rsplit('/')
                    .next()
                    .unwrap_or(v)
                    .parse::<u64>()
                    .map_err(|_| SearchError::BadId {
                        value: v.to_string(),
                    })?;
                s.index.id = and(s.index.id, id_bound(op, id));
            }
            "email" => s.email = Some(v.to_lowercase()),
            "tag" => s.tags.push(v.to_lowercase()),
            _ => s.ignored.push(tok.clone()),
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_time_bounds() {
        let s = parse("updated_at:>'2024-01-01T00:00:00Z' AND updated_at:<=2024-02-01").unwrap();
        let r = s.index.updated.unwrap();
        let jan = parse_time("x", "2024-01-01T00:00:00Z")
            .unwrap()
            .timestamp_micros();
        let feb = parse_time("x", "2024-02-01").unwrap().timestamp_micros();
        assert!(!r.contains((jan, 5)));
        assert!(r.contains((jan + 1, 5)));
        assert!(r.contains((feb, 5)));
        assert!(!r.contains((feb + 1, 0)));
    }

    #[test]
    fn rejects_bad_values_and_keeps_free_text() {
        assert!(matches!(
            parse("updated_at:>yesterday"),
            Err(SearchError::BadTime { .. })
        ));
        assert!(matches!(parse("id:>abc"), Err(SearchError::BadId { .. })));
        let s = parse("bob email:Bob@Example.com tag:VIP").unwrap();
        assert_eq!(s.email.as_deref(), Some("bob@example.com"));
        assert_eq!(s.tags, vec!["vip"]);
        assert_eq!(s.ignored, vec!["bob"]);
    }
}
