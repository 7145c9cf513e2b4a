//! Converting between the store's integer minor units and the analytics' f64 major units: the
//! core's one ISO 4217 table (`core::money`).

pub use crate::core::money::{exponent, to_major, to_minor};
