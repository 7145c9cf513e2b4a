//! Loyalty: turns segment memberships into writes for the shop. [`tags`] plans the tag
//! difference, [`offers`] the personal discount codes, [`code`] derives those codes
//! deterministically; both name an offer by its [`offer_kind`]. Tiers live with the segments
//! ([`crate::segments::tiers`]) since a tier is a built-in segment; they are re-exported here.

pub mod code;
pub mod experiment;
mod keyed;
pub mod offer_kind;
pub mod offers;
pub mod tags;

pub use crate::segments::tiers::{Tier, TierBasis, TierConfig};
pub use code::{CODE_PREFIX, CodeSeed, derive_code};
pub use offer_kind::OfferKind;
pub use offers::{
    ControlAssignment, CustomerField, FieldKind, IssuedCode, OfferConfig, OfferConfigError,
    OfferPlan, OfferPlanner, OfferSettings, OfferValue, PlannedCode, minor_units_to_decimal,
};
pub use tags::{CustomerTags, TagAction, TagChange, TagPlanner, TagPrefix, TagReason};
