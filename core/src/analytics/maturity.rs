//! Maturity stage of a shop and the recommended share of marketing effort on retention.
//!
//! Exact thresholds (the issue gives them loosely; `sales` = counted orders, the rate is
//! measured over the 30 days up to `now`, the age from the first counted order):
//!
//! | stage | condition (first match from the top) | retention share |
//! |---|---|---|
//! | WELL_ESTABLISHED | age ≥ 365 d and ≥ 10 sales/day | 60 % |
//! | ESTABLISHED | age ≥ 120 d and ≥ 10 sales/day | 50 % |
//! | CONSISTENT | age ≥ 60 d and ≥ 1 sale/day | 30 % |
//! | GAINING_TRACTION | any sale so far | 15 % |
//! | JUST_STARTED | no sales yet | 0 % (acquisition first) |
//!
//! A shop selling ≥ 10 a day before 120 days is CONSISTENT once 60 days old: the stages
//! follow the "after 2–3 / 4–6 months / a year", using the earliest month of each
//! range, so a fast start does not skip the stages meant for building a customer base.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::input::ShopInput;
use super::parallel::map_blocks;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MaturityStage {
    JustStarted,
    GainingTraction,
    Consistent,
    Established,
    WellEstablished,
}

impl MaturityStage {
    /// Recommended share of effort on retention, in percent.
    pub fn retention_share_pct(self) -> u8 {
        match self {
            MaturityStage::JustStarted => 0,
            MaturityStage::GainingTraction => 15,
            MaturityStage::Consistent => 30,
            MaturityStage::Established => 50,
            MaturityStage::WellEstablished => 60,
        }
    }
}

/// Days over which the current sales rate is measured.
pub const RATE_WINDOW_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Maturity {
    pub stage: MaturityStage,
    pub retention_share_pct: u8,
    /// Whole days since the first counted order (0 without sales).
    pub age_days: i64,
    /// Counted orders per day over the last `RATE_WINDOW_DAYS` days.
    pub sales_per_day: f64,
}

/// The stage from the shop's age and recent sales rate (the table in the module docs).
pub fn stage(has_sales: bool, age_days: i64, sales_per_day: f64) -> MaturityStage {
    match (has_sales, age_days, sales_per_day) {
        (false, _, _) => MaturityStage::JustStarted,
        (_, 365.., r) if r >= 10.0 => MaturityStage::WellEstablished,
        (_, 120.., r) if r >= 10.0 => MaturityStage::Established,
        (_, 60.., r) if r >= 1.0 => MaturityStage::Consistent,
        _ => MaturityStage::GainingTraction,
    }
}

/// Maturity of a shop at `now` from its orders.
pub fn assess(input: &ShopInput, now: DateTime<Utc>) -> Maturity {
    let since = now - Duration::days(RATE_WINDOW_DAYS);
    // Blocks of orders on all cores; a minimum and a count combine in any order.
    let parts = map_blocks(input.orders.len(), |block| {
        let mut first: Option<DateTime<Utc>> = None;
        let mut recent = 0u64;
        for o in input.orders[block]
            .iter()
            .filter(|o| o.counts() && o.at <= now)
        {
            first = Some(first.map_or(o.at, |f| f.min(o.at)));
            recent += u64::from(o.at > since);
        }
        (first, recent)
    });
    let first = parts.iter().filter_map(|p| p.0).min();
    let recent: u64 = parts.iter().map(|p| p.1).sum();
    let age_days = first.map_or(0, |f| (now - f).num_days());
    let sales_per_day = recent as f64 / RATE_WINDOW_DAYS as f64;
    let stage = stage(first.is_some(), age_days, sales_per_day);
    Maturity {
        stage,
        retention_share_pct: stage.retention_share_pct(),
        age_days,
        sales_per_day,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_follow_the_documented_thresholds() {
        use MaturityStage::*;
        assert_eq!(stage(false, 0, 0.0), JustStarted);
        assert_eq!(stage(true, 10, 0.5), GainingTraction);
        assert_eq!(stage(true, 59, 3.0), GainingTraction);
        assert_eq!(stage(true, 60, 1.0), Consistent);
        assert_eq!(stage(true, 119, 20.0), Consistent);
        assert_eq!(stage(true, 120, 10.0), Established);
        assert_eq!(stage(true, 364, 9.9), Consistent);
        assert_eq!(stage(true, 365, 10.0), WellEstablished);
        assert_eq!(stage(true, 900, 0.2), GainingTraction);
        assert_eq!(WellEstablished.retention_share_pct(), 60);
    }
}
