//! Where a read of a resource resumes. Ecwid pages by `offset`, which is only stable while the
//! list does not change under it: customers are read by updated time, and a customer updated
//! behind the offset moves to the end and shifts every later one back by one, so one customer is
//! never read. Customers therefore page by key instead: `updatedFrom` the last updated second
//! read, skipping those of that second already read. An update then moves a customer out of the
//! part not yet read only within that one second, and the moved customer is read again at the
//! end (reads are idempotent).

use chrono::{DateTime, Utc};

/// A resume point: `updatedFrom` (UNIX seconds; `None` = from the start) and how many rows at
/// or after it were already read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub from: Option<i64>,
    pub skip: u64,
}

impl Cursor {
    /// The first page of a read of rows updated at or after `since` (all rows without it).
    pub fn start(since: Option<DateTime<Utc>>) -> Self {
        Cursor {
            from: since.map(|t| t.timestamp()),
            skip: 0,
        }
    }

    /// `from:skip`, or a bare offset (a cursor of the plain offset form).
    pub fn parse(text: &str, since: Option<DateTime<Utc>>) -> Option<Self> {
        match text.split_once(':') {
            Some((from, skip)) => Some(Cursor {
                from: Some(from.parse().ok()?),
                skip: skip.parse().ok()?,
            }),
            None => Some(Cursor {
                skip: text.parse().ok()?,
                ..Cursor::start(since)
            }),
        }
    }

    /// Where the next page starts after one whose rows, in order, were updated at `updated`.
    pub fn after(self, updated: &[DateTime<Utc>]) -> Self {
        let Some(last) = updated.last().map(DateTime::timestamp) else {
            return self;
        };
        let same = updated.iter().rev().take_while(|t| t.timestamp() == last).count() as u64;
        if Some(last) == self.from && same == updated.len() as u64 {
            // The whole page was in the second already being skipped through.
            Cursor {
                from: self.from,
                skip: self.skip + same,
            }
        } else {
            Cursor {
                from: Some(last),
                skip: same,
            }
        }
    }

    pub fn render(self) -> String {
        format!("{}:{}", self.from.unwrap_or(0), self.skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    #[test]
    fn the_next_page_starts_at_the_last_second_read() {
        let c = Cursor::start(None).after(&[at(10), at(11), at(12), at(12)]);
        assert_eq!(c, Cursor { from: Some(12), skip: 2 });
        // A page wholly inside that second skips further through it.
        let c = c.after(&[at(12), at(12)]);
        assert_eq!(c, Cursor { from: Some(12), skip: 4 });
        // Leaving it starts counting afresh.
        assert_eq!(c.after(&[at(12), at(13)]), Cursor { from: Some(13), skip: 1 });
        // Sub-second times count as their second.
        let t = at(20) + chrono::Duration::milliseconds(700);
        assert_eq!(
            Cursor::start(None).after(&[at(20), t]),
            Cursor { from: Some(20), skip: 2 }
        );
    }

    #[test]
    fn an_empty_page_keeps_the_cursor() {
        let c = Cursor { from: Some(5), skip: 3 };
        assert_eq!(c.after(&[]), c);
    }

    #[test]
    fn cursors_round_trip_and_bare_offsets_still_read() {
        let c = Cursor { from: Some(1_714_541_200), skip: 7 };
        assert_eq!(Cursor::parse(&c.render(), None), Some(c));
        assert_eq!(
            Cursor::parse("40", Some(at(9))),
            Some(Cursor { from: Some(9), skip: 40 })
        );
        assert_eq!(Cursor::parse("x:1", None), None);
        assert_eq!(Cursor::parse("", None), None);
    }
}
