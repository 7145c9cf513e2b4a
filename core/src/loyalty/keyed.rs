//! The HMAC key every keyed hash of the loyalty module takes from a shop's secret (the
//! discount codes in [`crate::loyalty::code`], the control-group draws in
//! [`crate::loyalty::experiment`]).

use sha2::{Digest, Sha256};

/// The HMAC block-sized key exactly as RFC 2104 forms it (zero-padded, or hashed when longer
/// than a block), which makes construction infallible.
pub(crate) fn hmac_key(secret: &[u8]) -> [u8; 64] {
    let mut key = [0u8; 64];
    if secret.len() <= key.len() {
        key[..secret.len()].copy_from_slice(secret);
    } else {
        key[..32].copy_from_slice(&Sha256::digest(secret));
    }
    key
}
