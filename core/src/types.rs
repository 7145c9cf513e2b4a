//! Small shared vocabulary of the core: names that the analytics produce and the segment
//! language and the tag plan consume. Defined once here so the lists cannot drift apart.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Shopify's `CustomerRfmGroup` values (`Customer.statistics.rfmGroup`, segment `rfm_group`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RfmGroup {
    Champions,
    Loyal,
    Active,
    NeedsAttention,
    New,
    Promising,
    AtRisk,
    PreviouslyLoyal,
    AlmostLost,
    Dormant,
    Prospects,
}

impl RfmGroup {
    pub const ALL: [RfmGroup; 11] = [
        RfmGroup::Champions,
        RfmGroup::Loyal,
        RfmGroup::Active,
        RfmGroup::NeedsAttention,
        RfmGroup::New,
        RfmGroup::Promising,
        RfmGroup::AtRisk,
        RfmGroup::PreviouslyLoyal,
        RfmGroup::AlmostLost,
        RfmGroup::Dormant,
        RfmGroup::Prospects,
    ];

    /// The platform's spelling, e.g. `AT_RISK`.
    pub fn as_str(self) -> &'static str {
        match self {
            RfmGroup::Champions => "CHAMPIONS",
            RfmGroup::Loyal => "LOYAL",
            RfmGroup::Active => "ACTIVE",
            RfmGroup::NeedsAttention => "NEEDS_ATTENTION",
            RfmGroup::New => "NEW",
            RfmGroup::Promising => "PROMISING",
            RfmGroup::AtRisk => "AT_RISK",
            RfmGroup::PreviouslyLoyal => "PREVIOUSLY_LOYAL",
            RfmGroup::AlmostLost => "ALMOST_LOST",
            RfmGroup::Dormant => "DORMANT",
            RfmGroup::Prospects => "PROSPECTS",
        }
    }

    /// Tag-friendly slug, e.g. `at-risk`.
    pub fn slug(self) -> String {
        self.as_str().to_ascii_lowercase().replace('_', "-")
    }
}

impl fmt::Display for RfmGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value `{value}`; expected one of {expected}")]
pub struct UnknownValue {
    pub value: String,
    pub expected: String,
}

impl FromStr for RfmGroup {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RfmGroup::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownValue {
                value: s.to_string(),
                expected: RfmGroup::ALL.map(|g| g.as_str()).join(", "),
            })
    }
}

/// Churn risk band from 1 − P(alive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChurnRisk {
    Low,
    Medium,
    High,
}

impl ChurnRisk {
    pub const ALL: [ChurnRisk; 3] = [ChurnRisk::Low, ChurnRisk::Medium, ChurnRisk::High];

    pub fn as_str(self) -> &'static str {
        match self {
            ChurnRisk::Low => "LOW",
            ChurnRisk::Medium => "MEDIUM",
            ChurnRisk::High => "HIGH",
        }
    }
}

impl fmt::Display for ChurnRisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChurnRisk {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChurnRisk::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownValue {
                value: s.to_string(),
                expected: "LOW, MEDIUM, HIGH".to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfm_group_round_trips_through_its_name() {
        for g in RfmGroup::ALL {
            assert_eq!(g.as_str().parse::<RfmGroup>().unwrap(), g);
        }
        assert_eq!(RfmGroup::AtRisk.slug(), "at-risk");
        assert!("AT RISK".parse::<RfmGroup>().is_err());
    }
}
