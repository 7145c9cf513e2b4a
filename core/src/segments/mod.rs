//! Segments: who a customer is, as a set of named groups. Built-in segments come from the
//! analytics output with merchant-tunable thresholds ([`builtin`]); custom segments are rules
//! in a small language close to Shopify's ([`rule`]). A [`SegmentCatalog`] validates a shop's
//! settings once; its [`Evaluator`] computes each customer's [`Membership`] for a run.
//! Everything here is pure: `now` is always passed in.

pub mod builtin;
pub mod catalog;
pub mod facts;
pub mod rule;
pub mod text;
pub mod tiers;

pub use builtin::{
    BuiltinSegment, BuiltinThresholds, LifecycleStage, ShopContext, lifecycle_stage,
};
pub use catalog::{
    CatalogError, CustomSegmentDef, Evaluator, Membership, SegmentCatalog, SegmentId,
    SegmentSettings,
};
pub use facts::CustomerFacts;
pub use rule::{BoundSegment, RuleError, Segment};
pub use tiers::{Tier, TierBasis, TierConfig};
