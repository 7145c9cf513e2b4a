//! Loyalty tiers: bronze, silver, gold, platinum by lifetime spend or predicted CLV, with
//! minimums the merchant sets in the shop currency.

use crate::segments::facts::CustomerFacts;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Bronze,
    Silver,
    Gold,
    Platinum,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Bronze, Tier::Silver, Tier::Gold, Tier::Platinum];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Bronze => "bronze",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
            Tier::Platinum => "platinum",
        }
    }
}

/// What a tier is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierBasis {
    /// Lifetime `amount_spent`: stable and easy to explain to customers.
    AmountSpent,
    /// `predicted_clv`: rewards expected future value rather than the past.
    PredictedClv,
}

/// Minimum value (shop currency, major units) of each tier. A customer needs at least one
/// order to hold any tier; bronze is then everyone who reaches `bronze_min`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TierConfig {
    pub basis: TierBasis,
    /// Default 0: every customer with an order is at least bronze.
    pub bronze_min: f64,
    /// Default 250.
    pub silver_min: f64,
    /// Default 500.
    pub gold_min: f64,
    /// Default 1000.
    pub platinum_min: f64,
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            basis: TierBasis::AmountSpent,
            bronze_min: 0.0,
            silver_min: 250.0,
            gold_min: 500.0,
            platinum_min: 1000.0,
        }
    }
}

impl TierConfig {
    /// Minimums must be finite, non-negative and strictly increasing from bronze to platinum.
    pub fn validate(&self) -> Result<(), String> {
        let mins = [
            self.bronze_min,
            self.silver_min,
            self.gold_min,
            self.platinum_min,
        ];
        if mins.iter().any(|m| !m.is_finite() || *m < 0.0) {
            return Err("tier minimums must be finite and not negative".into());
        }
        if mins.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "tier minimums must increase from bronze to platinum, got {mins:?}"
            ));
        }
        Ok(())
    }

    pub fn tier_of(&self, f: &CustomerFacts) -> Option<Tier> {
        if f.number_of_orders == 0 {
            return None;
        }
        let v = match self.basis {
            TierBasis::AmountSpent => f.amount_spent,
            TierBasis::PredictedClv => f.predicted_clv,
        };
        let mins = [
            (Tier::Platinum, self.platinum_min),
            (Tier::Gold, self.gold_min),
            (Tier::Silver, self.silver_min),
            (Tier::Bronze, self.bronze_min),
        ];
        // NaN compares false everywhere, so bad data lands in no tier.
        mins.into_iter().find(|(_, m)| v >= *m).map(|(t, _)| t)
    }
}
