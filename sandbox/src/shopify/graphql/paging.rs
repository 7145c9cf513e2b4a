//! Connection arguments, opaque cursors, and turning a store page into a GraphQL connection.

use super::context::Resume;
use crate::store::search::{self, Search};
use crate::store::table::{Key, Page, PageRequest, Row, SortKey, Table};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Error, OutputType};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Shopify's page size limit (reference §3.3).
pub const MAX_PAGE: i32 = 250;

pub struct Args {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
    pub reverse: bool,
    pub query: Option<String>,
    /// A bulk run's page size for a root connection (see `BulkPager`); bulk mode ignores
    /// `first`/`last`, so this is the only limit a bulk run has.
    pub bulk_page: Option<usize>,
}

pub fn encode_cursor(k: Key) -> String {
    STANDARD.encode(format!("{{\"last_id\":{},\"last_value\":{}}}", k.1, k.0))
}

pub fn decode_cursor(c: &str) -> Result<Key, Error> {
    let bad = || Error::new(format!("Invalid cursor for current pagination sort: {c}"));
    let raw = STANDARD.decode(c).map_err(|_| bad())?;
    let v: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let id = v.get("last_id").and_then(|x| x.as_u64()).ok_or_else(bad)?;
    let val = v
        .get("last_value")
        .and_then(|x| x.as_i64())
        .ok_or_else(bad)?;
    Ok((val, id))
}

/// Validated paging: exactly Shopify's rules outside bulk mode, unlimited inside it.
pub fn limits(field: &str, a: &Args, bulk: bool) -> Result<(Option<usize>, Option<usize>), Error> {
    if bulk {
        return Ok((a.bulk_page, None));
    }
    match (a.first, a.last) {
        (None, None) => Err(Error::new("you must provide one of first or last")),
        (Some(_), Some(_)) => Err(Error::new("providing both first and last is not supported")),
        (Some(n), _) | (_, Some(n)) if !(0..=MAX_PAGE).contains(&n) => Err(Error::new(format!(
            "The page size for {field} must be between 0 and {MAX_PAGE}, got {n}"
        ))),
        (f, l) => Ok((f.map(|n| n as usize), l.map(|n| n as usize))),
    }
}

pub fn parse_query(q: Option<&str>) -> Result<Search, Error> {
    match q {
        None => Ok(Search::default()),
        Some(q) => search::parse(q).map_err(|e| Error::new(e.to_string())),
    }
}

/// A root connection. In a streamed bulk run it is read one page per pass of the query (see
/// `BulkPager`), so a run holds one page of roots at a time; elsewhere `page` runs as is.
pub fn root<N: OutputType>(
    c: &Context<'_>,
    mut a: Args,
    page: impl FnOnce(&Args) -> Result<Connection<String, N>, Error>,
) -> Result<Connection<String, N>, Error> {
    let Some(pager) = super::context::ctx(c).bulk_pager.as_deref() else {
        return page(&a);
    };
    let key = c.item.node.response_key().node.as_str();
    match pager.resume(key) {
        Resume::Done => return Ok(Connection::new(false, false)),
        Resume::Start => {}
        Resume::After(cursor) => a.after = Some(cursor),
    }
    a.bulk_page = Some(pager.page);
    let conn = page(&a)?;
    let last = conn.edges.last().map(|e| e.cursor.clone());
    pager.advance(key, last, conn.has_next_page);
    Ok(conn)
}

/// Pages `table` and maps the rows to GraphQL nodes.
pub fn connection<T: Row, N: OutputType>(
    field: &str,
    table: &Table<T>,
    a: &Args,
    sort: SortKey,
    x: &super::context::Ctx,
    extra: &dyn Fn(&T, &Search) -> bool,
    to_node: impl Fn(&T) -> N,
) -> Result<Connection<String, N>, Error> {
    let (first, last) = limits(field, a, x.bulk)?;
    let search = parse_query(a.query.as_deref())?;
    if x.dry_run {
        return Ok(Connection::new(false, false));
    }
    let after = a.after.as_deref().map(decode_cursor).transpose()?;
    let before = a.before.as_deref().map(decode_cursor).transpose()?;
    let pred = |row: &T| extra(row, &search);
    let req = PageRequest {
        sort,
        reverse: a.reverse,
        after,
        before,
        first,
        last,
        filter: search.index,
        predicate: &pred,
    };
    let page: Page<T> = table.page(&req);
    let mut conn = Connection::new(page.has_previous, page.has_next);
    conn.edges.extend(
        page.rows
            .iter()
            .map(|(k, row)| Edge::new(encode_cursor(*k), to_node(row))),
    );
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_roundtrip_and_garbage() {
        let k = (1_700_000_000_000_000, 7_000_000_000_123);
        assert_eq!(decode_cursor(&encode_cursor(k)).unwrap(), k);
        assert!(decode_cursor("not-a-cursor").is_err());
        assert!(decode_cursor(&STANDARD.encode("{}")).is_err());
    }
}
