//! Webhooks: signed delivery with retries, shared by the flavours.

pub mod delivery;
