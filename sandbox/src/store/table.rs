//! A table of records keyed by id with secondary indexes on `updated_at` and `created_at`, and
//! cursor paging over any of the three orders without scanning the whole table.

use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

pub trait Row {
    fn id(&self) -> u64;
    fn updated_at(&self) -> DateTime<Utc>;
    fn created_at(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Id,
    UpdatedAt,
    CreatedAt,
}

/// Position in one ordering: (timestamp in µs, or 0 for the id order; id).
pub type Key = (i64, u64);

/// Inclusive/exclusive bounds over one index.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub lo: Bound<Key>,
    pub hi: Bound<Key>,
}

impl Default for Range {
    fn default() -> Self {
        Range {
            lo: Bound::Unbounded,
            hi: Bound::Unbounded,
        }
    }
}

fn tighter_lo(a: Bound<Key>, b: Bound<Key>) -> Bound<Key> {
    use Bound::*;
    match (a, b) {
        (Unbounded, x) | (x, Unbounded) => x,
        (Included(x), Included(y)) => Included(x.max(y)),
        (Excluded(x), Excluded(y)) => Excluded(x.max(y)),
        (Included(x), Excluded(y)) | (Excluded(y), Included(x)) => {
            if y >= x {
                Excluded(y)
            } else {
                Included(x)
            }
        }
    }
}

fn tighter_hi(a: Bound<Key>, b: Bound<Key>) -> Bound<Key> {
    use Bound::*;
    match (a, b) {
        (Unbounded, x) | (x, Unbounded) => x,
        (Included(x), Included(y)) => Included(x.min(y)),
        (Excluded(x), Excluded(y)) => Excluded(x.min(y)),
        (Included(x), Excluded(y)) | (Excluded(y), Included(x)) => {
            if y <= x {
                Excluded(y)
            } else {
                Included(x)
            }
        }
    }
}

impl Range {
    pub fn intersect(self, other: Range) -> Range {
        Range {
            lo: tighter_lo(self.lo, other.lo),
            hi: tighter_hi(self.hi, other.hi),
        }
    }
    /// `BTreeSet::range` panics on an inverted or empty-excluded range; detect those first.
    fn is_empty(&self) -> bool {
        use Bound::*;
        match (self.lo, self.hi) {
            (Included(a), Included(b)) => a > b,
            (Included(a), Excluded(b)) | (Excluded(a), Included(b)) => a >= b,
            (Excluded(a), Excluded(b)) => a >= b,
            _ => false,
        }
    }
    pub fn contains(&self, k: Key) -> bool {
        let lo_ok = match self.lo {
            Bound::Unbounded => true,
            Bound::Included(a) => k >= a,
            Bound::Excluded(a) => k > a,
        };
        let hi_ok = match self.hi {
            Bound::Unbounded => true,
            Bound::Included(b) => k <= b,
            Bound::Excluded(b) => k < b,
        };
        lo_ok && hi_ok
    }
}

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Restrictions a search query puts on the indexed columns.
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexFilter {
    pub updated: Option<Range>,
    pub created: Option<Range>,
    pub id: Option<Range>,
}

pub struct PageRequest<'a, T> {
    pub sort: SortKey,
    pub reverse: bool,
    /// Forward page: `first` items after `after`; backward page: `last` items before `before`.
    pub after: Option<Key>,
    pub before: Option<Key>,
    pub first: Option<usize>,
    pub last: Option<usize>,
    pub filter: IndexFilter,
    pub predicate: &'a dyn Fn(&T) -> bool,
}

pub struct Page<'a, T> {
    pub rows: Vec<(Key, &'a T)>,
    pub has_next: bool,
    pub has_previous: bool,
}

#[derive(Debug, Clone)]
pub struct Table<T> {
    /// Boxed: a node holds 16-byte entries, so a half-full node wastes little.
    rows: BTreeMap<u64, Box<T>>,
    by_updated: BTreeSet<Key>,
    by_created: BTreeSet<Key>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            rows: BTreeMap::new(),
            by_updated: BTreeSet::new(),
            by_created: BTreeSet::new(),
        }
    }
}

impl<T: Row> Table<T> {
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    pub fn get(&self, id: u64) -> Option<&T> {
        self.rows.get(&id).map(|r| &**r)
    }
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.rows.values().map(|r| &**r)
    }

    /// Fills an empty table from rows in any order (a later duplicate id replaces an earlier
    /// one, as with `upsert`). The map and both indexes are built from sorted runs, which
    /// packs their nodes full; rows are boxed, so sorting moves pointers, not records.
    pub fn load(&mut self, rows: impl IntoIterator<Item = T>) {
        debug_assert!(self.rows.is_empty(), "load fills an empty table");
        let mut rows: Vec<(u64, Box<T>)> =
            rows.into_iter().map(|r| (r.id(), Box::new(r))).collect();
        rows.sort_by_key(|(id, _)| *id);
        self.rows = rows.into_iter().collect();
        let index = |key: fn(&T) -> DateTime<Utc>| {
            let mut keys: Vec<Key> = self
                .rows
                .values()
                .map(|r| (micros(key(r)), r.id()))
                .collect();
            keys.sort_unstable();
            keys.into_iter().collect::<BTreeSet<Key>>()
        };
        self.by_updated = index(T::updated_at);
        self.by_created = index(T::created_at);
    }

    /// Inserts or replaces a row, keeping the indexes in step.
    pub fn upsert(&mut self, row: T) {
        let id = row.id();
        if let Some(old) = self.rows.get(&id) {
            self.by_updated.remove(&(micros(old.updated_at()), id));
            self.by_created.remove(&(micros(old.created_at()), id));
        }
        self.by_updated.insert((micros(row.updated_at()), id));
        self.by_created.insert((micros(row.created_at()), id));
        self.rows.insert(id, Box::new(row));
    }

    /// Changes a row in place; the closure may move its timestamps.
    pub fn modify<R>(&mut self, id: u64, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let row = self.rows.get_mut(&id)?;
        let (u, c) = (micros(row.updated_at()), micros(row.created_at()));
        let r = f(row);
        let (u2, c2) = (micros(row.updated_at()), micros(row.created_at()));
        if u != u2 {
            self.by_updated.remove(&(u, id));
            self.by_updated.insert((u2, id));
        }
        if c != c2 {
            self.by_created.remove(&(c, id));
            self.by_created.insert((c2, id));
        }
        Some(r)
    }

    pub fn remove(&mut self, id: u64) -> Option<T> {
        let row = self.rows.remove(&id)?;
        self.by_updated.remove(&(micros(row.updated_at()), id));
        self.by_created.remove(&(micros(row.created_at()), id));
        Some(*row)
    }

    pub fn key_of(&self, row: &T, sort: SortKey) -> Key {
        match sort {
            SortKey::Id => (0, row.id()),
            SortKey::UpdatedAt => (micros(row.updated_at()), row.id()),
            SortKey::CreatedAt => (micros(row.created_at()), row.id()),
        }
    }

    fn index_keys(
        &self,
        sort: SortKey,
        range: Range,
        asc: bool,
    ) -> Box<dyn Iterator<Item = Key> + '_> {
        if range.is_empty() {
            return Box::new(std::iter::empty());
        }
        let it: Box<dyn DoubleEndedIterator<Item = Key> + '_> = match sort {
            SortKey::Id => {
                let conv = |b: Bound<Key>| match b {
                    Bound::Included((_, id)) => Bound::Included(id),
                    Bound::Excluded((_, id)) => Bound::Excluded(id),
                    Bound::Unbounded => Bound::Unbounded,
                };
                Box::new(
                    self.rows
                        .range((conv(range.lo), conv(range.hi)))
                        .map(|(id, _)| (0, *id)),
                )
            }
            SortKey::UpdatedAt => Box::new(self.by_updated.range((range.lo, range.hi)).copied()),
            SortKey::CreatedAt => Box::new(self.by_created.range((range.lo, range.hi)).copied()),
        };
        if asc {
            Box::new(it)
        } else {
            Box::new(it.rev())
        }
    }

    /// Rows in ascending `sort` order from `lo` (inclusive) on, e.g. offset paging by
    /// updated time. Cost is proportional to the rows read, not the table size.
    pub fn scan_from(&self, sort: SortKey, lo: Option<Key>) -> impl Iterator<Item = &T> + '_ {
        let range = Range {
            lo: lo.map_or(Bound::Unbounded, Bound::Included),
            hi: Bound::Unbounded,
        };
        self.index_keys(sort, range, true)
            .filter_map(|(_, id)| self.get(id))
    }

    /// One page in the requested order. When the filter bounds a different column than the sort
    /// order, the matching ids come from that column's index (cost ∝ matches, not table size).
    pub fn page<'a>(&'a self, req: &PageRequest<'_, T>) -> Page<'a, T> {
        let backward = req.last.is_some() && req.first.is_none();
        let limit = if backward { req.last } else { req.first }.unwrap_or(usize::MAX);
        // Direction of travel through the sort order.
        let asc = req.reverse == backward;
        let sort_filter = match req.sort {
            SortKey::Id => req.filter.id,
            SortKey::UpdatedAt => req.filter.updated,
            SortKey::CreatedAt => req.filter.created,
        }
        .unwrap_or_default();
        let cursor_range = {
            // In ascending storage order, "after" in a reversed listing means "lower keys".
            let mut r = Range::default();
            let (start, end) = if backward {
                (req.before, req.after)
            } else {
                (req.after, req.before)
            };
            if let Some(c) = start {
                if asc {
                    r.lo = Bound::Excluded(c)
                } else {
                    r.hi = Bound::Excluded(c)
                }
            }
            if let Some(c) = end {
                if asc {
                    r.hi = Bound::Excluded(c)
                } else {
                    r.lo = Bound::Excluded(c)
                }
            }
            r
        };
        let other: Option<(SortKey, Range)> = [
            (SortKey::UpdatedAt, req.filter.updated),
            (SortKey::CreatedAt, req.filter.created),
        ]
        .into_iter()
        .find_map(|(k, r)| r.filter(|_| k != req.sort).map(|r| (k, r)));

        let matches = |row: &T| -> bool {
            let u = (micros(row.updated_at()), row.id());
            let c = (micros(row.created_at()), row.id());
            req.filter.updated.is_none_or(|r| r.contains(u))
                && req.filter.created.is_none_or(|r| r.contains(c))
                && req.filter.id.is_none_or(|r| r.contains((0, row.id())))
                && (req.predicate)(row)
        };

        let range = sort_filter.intersect(cursor_range);
        let mut out: Vec<(Key, &T)> = Vec::new();
        let mut has_more = false;
        match other {
            Some((col, col_range)) => {
                let mut cands: Vec<(Key, &T)> = self
                    .index_keys(col, col_range, true)
                    .filter_map(|(_, id)| self.get(id))
                    .map(|row| (self.key_of(row, req.sort), row))
                    .filter(|(k, row)| range.contains(*k) && matches(row))
                    .collect();
                cands.sort_by_key(|(k, _)| *k);
                if !asc {
                    cands.reverse();
                }
                has_more = cands.len() > limit;
                cands.truncate(limit);
                out = cands;
            }
            None => {
                for k in self.index_keys(req.sort, range, asc) {
                    let Some(row) = self.rows.get(&k.1) else {
                        continue;
                    };
                    if !matches(row) {
                        continue;
                    }
                    if out.len() == limit {
                        has_more = true;
                        break;
                    }
                    out.push((k, row));
                }
            }
        }
        if backward {
            out.reverse();
            Page {
                rows: out,
                has_next: req.before.is_some(),
                has_previous: has_more,
            }
        } else {
            Page {
                rows: out,
                has_next: has_more,
                has_previous: req.after.is_some(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[derive(Debug)]
    struct R(u64, i64, i64);
    impl Row for R {
        fn id(&self) -> u64 {
            self.0
        }
        fn updated_at(&self) -> DateTime<Utc> {
            Utc.timestamp_opt(self.1, 0).unwrap()
        }
        fn created_at(&self) -> DateTime<Utc> {
            Utc.timestamp_opt(self.2, 0).unwrap()
        }
    }

    fn table() -> Table<R> {
        let mut t = Table::default();
        for i in 1..=20u64 {
            // updated order is the reverse of id order
            t.upsert(R(i, 1000 - i as i64, i as i64));
        }
        t
    }

    fn ids(p: &Page<R>) -> Vec<u64> {
        p.rows.iter().map(|(_, r)| r.0).collect()
    }

    fn req<'a>(sort: SortKey, pred: &'a dyn Fn(&R) -> bool) -> PageRequest<'a, R> {
        PageRequest {
            sort,
            reverse: false,
            after: None,
            before: None,
            first: Some(7),
            last: None,
            filter: IndexFilter::default(),
            predicate: pred,
        }
    }

    #[test]
    fn pages_cover_every_row_once_in_each_order() {
        let t = table();
        let all = |_: &R| true;
        for sort in [SortKey::Id, SortKey::UpdatedAt, SortKey::CreatedAt] {
            for reverse in [false, true] {
                let mut seen = vec![];
                let mut r = req(sort, &all);
                r.reverse = reverse;
                loop {
                    let p = t.page(&r);
                    seen.extend(ids(&p));
                    if !p.has_next {
                        break;
                    }
                    r.after = Some(p.rows.last().unwrap().0);
                }
                let mut s = seen.clone();
                s.sort();
                s.dedup();
                assert_eq!(s.len(), 20, "{sort:?} {reverse}");
                assert_eq!(seen.len(), 20);
            }
        }
    }

    #[test]
    fn filter_on_other_column_and_backward_paging() {
        let t = table();
        let all = |_: &R| true;
        let mut r = req(SortKey::Id, &all);
        // updated_at >= 990 means ids <= 10
        r.filter.updated = Some(Range {
            lo: Bound::Included((990 * 1_000_000, 0)),
            hi: Bound::Unbounded,
        });
        let p = t.page(&r);
        assert_eq!(ids(&p), vec![1, 2, 3, 4, 5, 6, 7]);
        assert!(p.has_next);
        r.after = Some(p.rows.last().unwrap().0);
        let p2 = t.page(&r);
        assert_eq!(ids(&p2), vec![8, 9, 10]);
        assert!(!p2.has_next);

        let mut b = req(SortKey::Id, &all);
        b.first = None;
        b.last = Some(3);
        b.before = Some((0, 10));
        let p3 = t.page(&b);
        assert_eq!(ids(&p3), vec![7, 8, 9]);
        assert!(p3.has_previous);
    }

    #[test]
    fn modify_moves_index_entries() {
        let mut t = table();
        t.modify(1, |r| r.1 = 5000);
        let all = |_: &R| true;
        let mut r = req(SortKey::UpdatedAt, &all);
        r.reverse = true;
        r.first = Some(1);
        assert_eq!(ids(&t.page(&r)), vec![1]);
    }
}
