//! Control groups for offers, and the measured effect of an offer ([`effect`]).
//!
//! A customer is in the control group of (offer, period) when a keyed hash of
//! (shop secret, customer, offer, period) falls below the control share: HMAC-SHA-256 over
//! length-prefixed fields, its first 53 bits read as a uniform number in [0, 1). The split is
//! random (the hash of distinct inputs behaves as independent uniforms, so different offers
//! and periods split independently), stable across retries and instances (no state), and
//! unguessable without the secret (a customer cannot work out which group they are in, or
//! arrange to be in one). [`observe`] turns assignments and orders into the outcomes
//! [`estimate_effect`] compares.

pub mod effect;
pub mod observe;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::keyed::hmac_key;

pub use effect::{
    ArmSummary, EffectEstimate, ExperimentVerdict, Interval, IntervalMethod, Outcome,
    estimate_effect,
};
pub use observe::{Arm, Assignment, CustomerOrder, Observed, observe};

/// Largest control share a merchant may set: beyond half, the offer itself is the exception.
pub const MAX_CONTROL_PERCENT: u8 = 50;
/// The default control share.
pub const DEFAULT_CONTROL_PERCENT: u8 = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExperimentError {
    #[error("control share {0} % is outside 0-{MAX_CONTROL_PERCENT} %")]
    ControlShareOutOfRange(u8),
}

/// The customer's uniform draw in [0, 1) for (offer, period).
pub fn control_draw(shop_secret: &[u8], customer: &str, offer: &str, period: &str) -> f64 {
    let mut mac = Hmac::<Sha256>::new(&hmac_key(shop_secret).into());
    // Its own domain, so a draw can never equal a code's bits.
    mac.update(b"lifecycle-control-group-v1");
    for field in [customer, offer, period] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
    }
    let digest = mac.finalize().into_bytes();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(head) >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether the customer is held out of the offer in this period (gets no code).
pub fn in_control(
    shop_secret: &[u8],
    customer: &str,
    offer: &str,
    period: &str,
    share_percent: u8,
) -> Result<bool, ExperimentError> {
    if share_percent > MAX_CONTROL_PERCENT {
        return Err(ExperimentError::ControlShareOutOfRange(share_percent));
    }
    Ok(control_draw(shop_secret, customer, offer, period) < f64::from(share_percent) / 100.0)
}
