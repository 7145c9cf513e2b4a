//! Deterministic personal discount codes.
//!
//! A code is `LC-` followed by 12 characters of Crockford base32 (digits and upper-case
//! letters without I, L, O, U, so nothing reads ambiguously): the first 60 bits of
//! HMAC-SHA-256 keyed by the shop's secret over (shop, customer, offer, period). The same
//! inputs always give the same code, so a retry after a crash between the API call and the
//! database write meets Shopify's `TAKEN` and confirms instead of creating a second code. The
//! secret keeps codes unguessable to someone who knows a customer id (the code is also bound
//! to that customer by `context.customers`).

use crate::loyalty::keyed::hmac_key;
use crate::loyalty::offer_kind::OfferKind;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const CODE_PREFIX: &str = "LC-";
const CODE_CHARS: usize = 12;
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The shop-level inputs of every code.
#[derive(Debug, Clone, Copy)]
pub struct CodeSeed<'a> {
    /// The shop's stable identity, e.g. its myshopify domain.
    pub shop: &'a str,
    /// A per-shop random secret kept by the app (any length; HMAC accepts all).
    pub secret: &'a [u8],
}

/// The code for (shop, customer, offer, period); see the module docs.
pub fn derive_code(seed: CodeSeed<'_>, customer_id: &str, offer: OfferKind, period: u32) -> String {
    // Length-prefixed fields, so ("ab", "c") and ("a", "bc") cannot collide.
    let mut mac = Hmac::<Sha256>::new(&hmac_key(seed.secret).into());
    mac.update(b"lifecycle-offer-code-v1");
    for field in [
        seed.shop.as_bytes(),
        customer_id.as_bytes(),
        offer.key().as_bytes(),
    ] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field);
    }
    mac.update(&period.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let bits = u64::from_be_bytes(head);

    let mut code = String::with_capacity(CODE_PREFIX.len() + CODE_CHARS);
    code.push_str(CODE_PREFIX);
    for i in 0..CODE_CHARS {
        let idx = (bits >> (64 - 5 * (i + 1))) & 31;
        code.push(char::from(CROCKFORD[idx as usize]));
    }
    code
}
