//! A shop's loyalty settings, read from the `settings` JSON of its row:
//!
//! ```json
//! { "segments": { ... SegmentSettings ... }, "offers": { ... OfferSettings ... },
//!   "tag_prefix": "lifecycle:", "dry_run": false, "schedule": "30 4 * * *",
//!   "group_label": "tier" }
//! ```
//!
//! Every key is optional (defaults: the built-in segments, every offer off, prefix
//! `lifecycle:`, pushes on, the app's segment schedule). `schedule` is the shop's own time for
//! the analyse → segments → push run: a five-field cron in UTC. Other keys belong to other features and are ignored here.
//! [`LoyaltySettings::validate`] is what saving settings should call, so a bad rule is refused
//! when saved; a job that meets invalid stored settings fails permanently with the same message.

use serde::Deserialize;

use crate::core::loyalty::{OfferPlanner, OfferSettings, TagPrefix};
use crate::core::segments::{SegmentCatalog, SegmentSettings};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LoyaltySettings {
    pub segments: SegmentSettings,
    pub offers: OfferSettings,
    pub tag_prefix: TagPrefix,
    /// Plan and record, send nothing.
    pub dry_run: bool,
    /// The shop's own segment schedule (five-field cron, UTC); none means the app's default.
    pub schedule: Option<String>,
    /// On platforms that hold one label per customer (a customer group): which of
    /// Lifecycle's labels it is.
    pub group_label: GroupLabel,
}

/// The label that becomes a customer's group where a customer has only one.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum GroupLabel {
    /// The loyalty tier (bronze, silver, gold, platinum).
    #[default]
    Tier,
    /// The lifecycle stage (new, active, at risk, ...).
    Stage,
}

impl GroupLabel {
    /// Every label, as the settings spell them.
    pub const ALL: [GroupLabel; 2] = [GroupLabel::Tier, GroupLabel::Stage];

    /// The settings' spelling ("tier", "stage").
    pub fn key(self) -> &'static str {
        match self {
            GroupLabel::Tier => "tier",
            GroupLabel::Stage => "stage",
        }
    }

    /// What it is, in the merchant's words.
    pub fn noun(self) -> &'static str {
        match self {
            GroupLabel::Tier => "loyalty tier",
            GroupLabel::Stage => "lifecycle stage",
        }
    }

    /// The same with its values, for a choice.
    pub fn describe(self) -> &'static str {
        match self {
            GroupLabel::Tier => "loyalty tier (bronze, silver, gold, platinum)",
            GroupLabel::Stage => "lifecycle stage (new, active, at risk, ...)",
        }
    }

    /// The label a settings value names, if any.
    pub fn parse(key: &str) -> Option<GroupLabel> {
        GroupLabel::ALL.into_iter().find(|l| l.key() == key)
    }

    /// Whether a segment is one of this label's.
    pub fn drives(self, id: crate::core::segments::SegmentId) -> bool {
        use crate::core::segments::{BuiltinSegment, SegmentId};
        matches!(
            (self, id),
            (
                GroupLabel::Tier,
                SegmentId::Builtin(BuiltinSegment::Tier(_))
            ) | (
                GroupLabel::Stage,
                SegmentId::Builtin(BuiltinSegment::Stage(_))
            )
        )
    }
}

/// The settings key of the shop's own segment schedule.
pub const SCHEDULE_KEY: &str = "schedule";

#[derive(Debug, thiserror::Error)]
#[error("invalid loyalty settings: {0}")]
pub struct SettingsError(pub String);

impl LoyaltySettings {
    /// Parses the shop's settings JSON (an empty or missing object gives the defaults).
    pub fn from_shop_json(settings: &str) -> Result<LoyaltySettings, SettingsError> {
        let text = if settings.trim().is_empty() {
            "{}"
        } else {
            settings
        };
        serde_json::from_str(text).map_err(|e| SettingsError(e.to_string()))
    }

    /// The validated segment catalog; also checks the offers against it.
    pub fn validate(&self) -> Result<SegmentCatalog, SettingsError> {
        let catalog =
            SegmentCatalog::new(&self.segments).map_err(|e| SettingsError(e.to_string()))?;
        OfferPlanner::new(&self.offers, &catalog).map_err(|e| SettingsError(e.to_string()))?;
        if let Some(expr) = self.schedule.as_deref().filter(|s| !s.trim().is_empty()) {
            crate::queue::scheduler::parse_shop_cron(expr.trim()).map_err(SettingsError)?;
        }
        Ok(catalog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_labels_are_spelt_as_the_settings_store_them() {
        for l in GroupLabel::ALL {
            assert_eq!(serde_json::to_value(l).unwrap(), l.key());
            assert_eq!(GroupLabel::parse(l.key()), Some(l));
            let s =
                LoyaltySettings::from_shop_json(&format!(r#"{{"group_label": "{}"}}"#, l.key()))
                    .unwrap();
            assert_eq!(s.group_label, l);
        }
        assert_eq!(GroupLabel::parse("Stage"), None);
        assert_eq!(LoyaltySettings::default().group_label, GroupLabel::Tier);
    }

    #[test]
    fn defaults_and_foreign_keys() {
        let s = LoyaltySettings::from_shop_json(r#"{"other_feature": 1}"#).unwrap();
        assert_eq!(s.tag_prefix.as_str(), "lifecycle:");
        assert!(!s.dry_run && !s.offers.win_back.enabled);
        assert!(s.validate().is_ok());
        assert!(LoyaltySettings::from_shop_json("").is_ok());
    }

    #[test]
    fn bad_settings_are_named() {
        let e = LoyaltySettings::from_shop_json(r#"{"tag_prefix": "a,b"}"#).unwrap_err();
        assert!(e.to_string().contains("comma"), "{e}");
        let s = LoyaltySettings::from_shop_json(
            r#"{"segments": {"custom": [{"key": "vip", "rule": "number_of_orders >="}]}}"#,
        )
        .unwrap();
        let e = s.validate().unwrap_err();
        assert!(e.to_string().contains("vip"), "{e}");
        let s = LoyaltySettings::from_shop_json(
            r#"{"offers": {"reward": {"enabled": true, "segments": ["nope"]}}}"#,
        )
        .unwrap();
        assert!(s.validate().unwrap_err().to_string().contains("nope"));
        let s = LoyaltySettings::from_shop_json(r#"{"schedule": "every night"}"#).unwrap();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("five fields")
        );
        let s = LoyaltySettings::from_shop_json(r#"{"schedule": "30 4 * * *"}"#).unwrap();
        assert!(s.validate().is_ok());
    }
}
