//! Shop platforms. Each turns its own auth, webhooks and API into Lifecycle's canonical model;
//! Shopify is the first.

pub mod shopify;
