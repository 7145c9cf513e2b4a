//! A simulated shop platform for the demo and the tests, in flavours (Shopify, Ecwid: listed in
//! `flavours`) that share the shop model (`store`), the data generator (`generate`), live
//! traffic and webhook delivery; a flavour supplies its routes, payloads, signing and retry
//! policy. The app reaches it over HTTP only, and a JSON control API under `/_sandbox/` drives
//! it.

#![recursion_limit = "512"]
pub mod auth_state;
pub mod cli;
pub mod config;
pub mod control;
pub mod convert;
pub mod digest;
pub mod ecwid;
pub mod faults;
pub mod flavours;
pub mod forms;
pub mod generate;
pub mod live;
pub mod seed;
pub mod server;
pub mod shopify;
pub mod state;
pub mod store;
pub mod throttle;
pub mod webhooks;

pub use cli::{SandboxArgs, run_cli};
pub use config::SandboxConfig;
pub use server::{Sandbox, sandbox_shop};
pub use store::Plan;

/// Midnight UTC today: generated history ends here unless configured, so runs on one day agree.
pub fn default_history_end() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
}
