//! Loyalty: turns segment memberships into writes for the shop. [`tags`] plans the tag
//! difference, [`offers`] the personal discount codes, [`code`] derives those codes
//! deterministically. Tiers live with the segments ([`crate::segments::tiers`]) since a tier is
//! a built-in segment; they are re-exported here.

pub mod code;
pub mod experiment;
pub mod offers;
pub mod tags;

pub use crate::segments::tiers::{Tier, TierBasis, TierConfig};
pub use code::{CODE_PREFIX, CodeSeed, derive_code};
pub use offers::{
    ControlAssignment, CustomerField, FieldKind, IssuedCode, OfferConfig, OfferConfigError,
    OfferKind, OfferPlan, OfferPlanner, OfferSettings, OfferValue, PlannedCode,
    minor_units_to_decimal,
};
pub use tags::{CustomerTags, TagAction, TagChange, TagPlanner, TagPrefix, TagReason};
