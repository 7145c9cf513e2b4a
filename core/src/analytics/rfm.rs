//! RFM scores 1–5 by quintile within the shop, and Shopify's 11 `rfm_group`s.
//!
//! **Scores.** R ranks days since the last order (fewer is better), F the number of counted
//! orders, M the net amount spent. A customer's score is the quintile of the *mid-rank* of
//! their value: with n customers and their value occupying sorted positions [lo, hi), the
//! mid-rank fraction is (lo + hi) / 2n and the score 1 + ⌊5 · fraction⌋ (at most 5). Equal
//! values therefore always share a score (ties are deterministic and independent of customer
//! order), and distinct values fall into quintiles of n/5 ± 1. The scoring is stored as four
//! cut points per dimension (`QuintileCuts`), the smallest value reaching each quintile, so
//! one customer can be re-scored later against the same cut points; for the batch this gives
//! exactly the mid-rank rule above. A shop with a single customer scores 3/3/3.
//!
//! **Groups.** Shopify publishes the groups' descriptions but not its R × FM table
//! (reference/clv.md §5), so Lifecycle uses this grid, FM = (F + M) / 2:
//!
//! | R \ FM | FM < 2.5 | 2.5 ≤ FM < 3 | 3 ≤ FM < 4 | 4 ≤ FM < 4.5 | FM ≥ 4.5 |
//! |---|---|---|---|---|---|
//! | 5 | NEW | ACTIVE | ACTIVE | CHAMPIONS | CHAMPIONS |
//! | 4 | PROMISING | ACTIVE | ACTIVE | LOYAL | LOYAL |
//! | 3 | ALMOST_LOST | NEEDS_ATTENTION | NEEDS_ATTENTION | NEEDS_ATTENTION | LOYAL |
//! | 2 | ALMOST_LOST | ALMOST_LOST | AT_RISK | AT_RISK | PREVIOUSLY_LOYAL |
//! | 1 | DORMANT | DORMANT | AT_RISK | AT_RISK | PREVIOUSLY_LOYAL |
//!
//! Customers without counted orders are PROSPECTS with scores 0/0/0.
//! Reading: recent (R 4–5) with many orders and the most spend are CHAMPIONS (very recent) or
//! LOYAL; recent with some orders ACTIVE; very recent with few orders NEW, recent with few
//! PROMISING; middling recency with some orders NEEDS_ATTENTION; not recent (R 1–2) with a
//! very strong history PREVIOUSLY_LOYAL, a strong one AT_RISK, a weak one ALMOST_LOST (R 2 or
//! R 3) or DORMANT (R 1).

use serde::{Deserialize, Serialize};

use super::features::CustomerFeatures;
use super::parallel::{BLOCK, threads};
use crate::types::RfmGroup;

/// Which end of a dimension is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

/// Cut points of one dimension: `thresholds[k]` is the least good value that still scores
/// at least k + 2 (None: no value reached that quintile).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuintileCuts {
    pub direction: Direction,
    pub thresholds: [Option<f64>; 4],
}

impl QuintileCuts {
    /// Cut points from the shop's values (any order; the slice is sorted in place).
    pub fn fit(values: &mut [f64], direction: Direction) -> QuintileCuts {
        let key = |v: f64| match direction {
            Direction::HigherIsBetter => v,
            Direction::LowerIsBetter => -v,
        };
        values.sort_unstable_by(|a, b| key(*a).total_cmp(&key(*b)));
        let n = values.len();
        let mut thresholds = [None; 4];
        let mut lo = 0;
        while lo < n {
            let hi = lo
                + values[lo..]
                    .iter()
                    .take_while(|v| **v == values[lo])
                    .count();
            let score = mid_rank_score(lo, hi, n);
            // The first tie block reaching a score sets the threshold of that score and of
            // any score it skipped.
            for t in thresholds.iter_mut().take(usize::from(score) - 1) {
                t.get_or_insert(values[lo]);
            }
            lo = hi;
        }
        QuintileCuts {
            direction,
            thresholds,
        }
    }

    /// Score 1–5 of a value against the cut points.
    pub fn score(&self, v: f64) -> u8 {
        let reaches = |t: f64| match self.direction {
            Direction::HigherIsBetter => v >= t,
            Direction::LowerIsBetter => v <= t,
        };
        1 + self
            .thresholds
            .iter()
            .flatten()
            .filter(|t| reaches(**t))
            .count() as u8
    }
}

/// 1 + ⌊5 · (lo + hi) / 2n⌋, in integers so ties at quintile edges are exact.
fn mid_rank_score(lo: usize, hi: usize, n: usize) -> u8 {
    (1 + (5 * (lo + hi)) / (2 * n)).min(5) as u8
}

/// R, F and M cut points of a shop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RfmCuts {
    pub recency_days: QuintileCuts,
    pub orders: QuintileCuts,
    pub spent: QuintileCuts,
}

/// A customer's R, F, M scores (0 for PROSPECTS) and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmScore {
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub group: RfmGroup,
}

impl RfmCuts {
    /// Cut points over the customers with orders. The three sorts are independent, so on a
    /// large shop they run on separate threads (the result is the same either way).
    pub fn fit(features: &[CustomerFeatures]) -> RfmCuts {
        let with_orders = || features.iter().filter(|f| f.has_orders());
        let recency = || {
            let mut r: Vec<f64> = with_orders()
                .map(|f| f.days_since_last_order.unwrap_or(0.0))
                .collect();
            QuintileCuts::fit(&mut r, Direction::LowerIsBetter)
        };
        let orders = || {
            let mut v: Vec<f64> = with_orders().map(|f| f64::from(f.orders)).collect();
            QuintileCuts::fit(&mut v, Direction::HigherIsBetter)
        };
        let spent = || {
            let mut v: Vec<f64> = with_orders().map(|f| f.total_value).collect();
            QuintileCuts::fit(&mut v, Direction::HigherIsBetter)
        };
        let (recency_days, orders, spent) = if features.len() >= BLOCK && threads() > 1 {
            let (r, (o, m)) = rayon::join(recency, || rayon::join(orders, spent));
            (r, o, m)
        } else {
            (recency(), orders(), spent())
        };
        RfmCuts {
            recency_days,
            orders,
            spent,
        }
    }

    pub fn score(&self, f: &CustomerFeatures) -> RfmScore {
        let Some(days) = f.days_since_last_order.filter(|_| f.has_orders()) else {
            return RfmScore {
                r: 0,
                f: 0,
                m: 0,
                group: RfmGroup::Prospects,
            };
        };
        let r = self.recency_days.score(days);
        let fs = self.orders.score(f64::from(f.orders));
        let m = self.spent.score(f.total_value);
        RfmScore {
            r,
            f: fs,
            m,
            group: rfm_group(r, fs, m),
        }
    }
}

/// The grid in the module documentation. Scores outside 1–5 are clamped.
pub fn rfm_group(r: u8, f: u8, m: u8) -> RfmGroup {
    use RfmGroup::*;
    let r = r.clamp(1, 5);
    // Twice FM, so the half steps stay integers: fm2 = F + M in 2..=10.
    let fm2 = f.clamp(1, 5) + m.clamp(1, 5);
    let band = match fm2 {
        ..=4 => 0, // FM < 2.5
        5 => 1,    // 2.5
        6 | 7 => 2,
        8 => 3,
        _ => 4, // FM ≥ 4.5
    };
    const GRID: [[RfmGroup; 5]; 5] = [
        [Dormant, Dormant, AtRisk, AtRisk, PreviouslyLoyal],
        [AlmostLost, AlmostLost, AtRisk, AtRisk, PreviouslyLoyal],
        [
            AlmostLost,
            NeedsAttention,
            NeedsAttention,
            NeedsAttention,
            Loyal,
        ],
        [Promising, Active, Active, Loyal, Loyal],
        [New, Active, Active, Champions, Champions],
    ];
    GRID[usize::from(r) - 1][band]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_shops_get_the_same_cuts_from_the_threaded_fit() {
        let n = BLOCK + 1_000;
        let features: Vec<CustomerFeatures> = (0..n as u32)
            .map(|c| {
                let mut f = CustomerFeatures::prospect(c);
                if c % 9 != 0 {
                    f.orders = 1 + c % 7;
                    f.total_value = f64::from(c % 1_000) * 1.5;
                    f.days_since_last_order = Some(f64::from(c % 400));
                }
                f
            })
            .collect();
        let buyers: Vec<&CustomerFeatures> = features.iter().filter(|f| f.has_orders()).collect();
        let cuts = |values: Vec<f64>, d| QuintileCuts::fit(&mut values.clone(), d);
        let serial = RfmCuts {
            recency_days: cuts(
                buyers
                    .iter()
                    .map(|f| f.days_since_last_order.unwrap())
                    .collect(),
                Direction::LowerIsBetter,
            ),
            orders: cuts(
                buyers.iter().map(|f| f64::from(f.orders)).collect(),
                Direction::HigherIsBetter,
            ),
            spent: cuts(
                buyers.iter().map(|f| f.total_value).collect(),
                Direction::HigherIsBetter,
            ),
        };
        assert_eq!(RfmCuts::fit(&features), serial);
    }

    #[test]
    fn distinct_values_split_into_fifths() {
        let mut v: Vec<f64> = (0..100).map(f64::from).collect();
        let cuts = QuintileCuts::fit(&mut v, Direction::HigherIsBetter);
        let mut counts = [0; 5];
        for i in 0..100 {
            counts[usize::from(cuts.score(f64::from(i))) - 1] += 1;
        }
        assert_eq!(counts, [20; 5]);
        assert_eq!(cuts.score(0.0), 1);
        assert_eq!(cuts.score(99.0), 5);
    }

    #[test]
    fn lower_is_better_reverses_the_scale() {
        let mut v: Vec<f64> = (0..10).map(f64::from).collect();
        let cuts = QuintileCuts::fit(&mut v, Direction::LowerIsBetter);
        assert_eq!(cuts.score(0.0), 5);
        assert_eq!(cuts.score(9.0), 1);
    }

    #[test]
    fn ties_share_the_mid_rank_score() {
        // 70 % one order: mid-rank 35 % -> score 2; 2 orders (70..90 %, mid 80 %) -> 5.
        let mut v: Vec<f64> = std::iter::repeat_n(1.0, 70)
            .chain(std::iter::repeat_n(2.0, 20))
            .chain(std::iter::repeat_n(3.0, 10))
            .collect();
        let cuts = QuintileCuts::fit(&mut v, Direction::HigherIsBetter);
        assert_eq!(cuts.score(1.0), 2);
        assert_eq!(cuts.score(2.0), 5);
        assert_eq!(cuts.score(3.0), 5);
        let mut single = vec![7.0];
        assert_eq!(
            QuintileCuts::fit(&mut single, Direction::HigherIsBetter).score(7.0),
            3
        );
    }

    #[test]
    fn cut_points_survive_json() {
        let mut v = vec![4.0];
        let cuts = QuintileCuts::fit(&mut v, Direction::LowerIsBetter);
        let json = serde_json::to_string(&cuts).unwrap();
        assert_eq!(serde_json::from_str::<QuintileCuts>(&json).unwrap(), cuts);
    }

    #[test]
    fn grid_covers_every_cell_and_every_group_but_prospects() {
        let mut seen = std::collections::BTreeSet::new();
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    seen.insert(rfm_group(r, f, m));
                }
            }
        }
        assert_eq!(seen.len(), 10);
        assert!(!seen.contains(&RfmGroup::Prospects));
        assert_eq!(rfm_group(5, 5, 5), RfmGroup::Champions);
        assert_eq!(rfm_group(5, 1, 1), RfmGroup::New);
        assert_eq!(rfm_group(1, 5, 5), RfmGroup::PreviouslyLoyal);
        assert_eq!(rfm_group(1, 1, 1), RfmGroup::Dormant);
    }
}
