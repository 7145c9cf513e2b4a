//! Webhooks: REST-shaped payloads and signed delivery with retries.

pub mod delivery;
pub mod payloads;
