//! Calendar periods of cohort analyses: ISO weeks, months and quarters (UTC), each numbered
//! so that consecutive periods have consecutive indices and "periods since the first order"
//! is a subtraction.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The length of a cohort's periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CohortPeriod {
    /// ISO weeks, Monday to Sunday.
    Week,
    #[default]
    Month,
    /// Calendar quarters (January–March, …).
    Quarter,
}

impl CohortPeriod {
    pub const ALL: [CohortPeriod; 3] = [
        CohortPeriod::Week,
        CohortPeriod::Month,
        CohortPeriod::Quarter,
    ];

    /// Index of the period holding `at`.
    pub fn index(self, at: DateTime<Utc>) -> i32 {
        self.index_of_date(at.naive_utc().date())
    }

    /// Index of the period holding `date`.
    pub fn index_of_date(self, date: NaiveDate) -> i32 {
        match self {
            // Day 1 of the common era (0001-01-01) is a Monday, so weeks counted from it are
            // ISO weeks.
            CohortPeriod::Week => (date.num_days_from_ce() - 1).div_euclid(7),
            CohortPeriod::Month => date.year() * 12 + date.month0() as i32,
            CohortPeriod::Quarter => date.year() * 4 + date.month0() as i32 / 3,
        }
    }

    /// First day of period `index`; None outside chrono's range of dates.
    pub fn start(self, index: i32) -> Option<NaiveDate> {
        match self {
            CohortPeriod::Week => index
                .checked_mul(7)
                .and_then(|d| d.checked_add(1))
                .and_then(NaiveDate::from_num_days_from_ce_opt),
            CohortPeriod::Month => {
                NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
            }
            CohortPeriod::Quarter => {
                NaiveDate::from_ymd_opt(index.div_euclid(4), index.rem_euclid(4) as u32 * 3 + 1, 1)
            }
        }
    }

    /// Start of period `index` as a time (midnight UTC).
    pub fn start_at(self, index: i32) -> Option<DateTime<Utc>> {
        self.start(index)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    }

    /// `2024-W01` (the ISO week-numbering year), `2024-01`, `2024-Q1`.
    pub fn label(self, index: i32) -> String {
        let Some(start) = self.start(index) else {
            return format!("#{index}");
        };
        match self {
            CohortPeriod::Week => {
                let w = start.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            CohortPeriod::Month => format!("{:04}-{:02}", start.year(), start.month()),
            CohortPeriod::Quarter => {
                format!("{:04}-Q{}", start.year(), start.month0() / 3 + 1)
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CohortPeriod::Week => "week",
            CohortPeriod::Month => "month",
            CohortPeriod::Quarter => "quarter",
        }
    }
}

impl fmt::Display for CohortPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CohortPeriod {
    type Err = crate::types::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CohortPeriod::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| crate::types::UnknownValue {
                value: s.to_string(),
                expected: CohortPeriod::ALL.map(|p| p.as_str()).join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn weeks_are_iso_weeks() {
        let w = CohortPeriod::Week;
        // 2024-01-01 is a Monday (week 1 of 2024); 2023-12-31 a Sunday (week 52 of 2023).
        let monday = w.index_of_date(date(2024, 1, 1));
        assert_eq!(w.index_of_date(date(2024, 1, 7)), monday);
        assert_eq!(w.index_of_date(date(2023, 12, 31)), monday - 1);
        assert_eq!(w.start(monday), Some(date(2024, 1, 1)));
        assert_eq!(w.label(monday), "2024-W01");
        assert_eq!(w.label(monday - 1), "2023-W52");
        // 2021-01-03 (a Sunday) still belongs to ISO week 53 of 2020.
        assert_eq!(w.label(w.index_of_date(date(2021, 1, 3))), "2020-W53");
    }

    #[test]
    fn months_and_quarters_count_whole_calendar_periods() {
        let (m, q) = (CohortPeriod::Month, CohortPeriod::Quarter);
        let jan31 = Utc.with_ymd_and_hms(2024, 1, 31, 23, 59, 59).unwrap();
        let feb1 = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
        assert_eq!(m.index(feb1) - m.index(jan31), 1);
        assert_eq!(m.label(m.index(jan31)), "2024-01");
        assert_eq!(m.index_of_date(date(2025, 1, 1)) - m.index(jan31), 12);
        assert_eq!(m.start_at(m.index(jan31) + 1), Some(feb1));
        assert_eq!(q.index_of_date(date(2024, 3, 31)), q.index(jan31));
        assert_eq!(q.index_of_date(date(2024, 4, 1)), q.index(jan31) + 1);
        assert_eq!(q.label(q.index_of_date(date(2024, 11, 5))), "2024-Q4");
        assert_eq!(q.start(q.index(jan31) + 4), Some(date(2025, 1, 1)));
    }

    #[test]
    fn names_parse() {
        assert_eq!("Month".parse::<CohortPeriod>(), Ok(CohortPeriod::Month));
        let e = "year".parse::<CohortPeriod>().unwrap_err();
        assert_eq!(e.expected, "week, month, quarter");
    }
}
