//! A simulated Shopify (and, as a second flavour, Ecwid: see `ecwid`) for the demo and the tests. The app reaches it over HTTP only: every
//! shop-scoped URL `https://{shop}/X` is served at `{base}/{shop}/X`, and a JSON control API
//! under `/_sandbox/` drives it.

#![recursion_limit = "512"]
pub mod auth_state;
pub mod bulk;
pub mod cli;
pub mod config;
pub mod control;
pub mod digest;
pub mod ecwid;
pub mod faults;
pub mod generate;
pub mod graphql;
pub mod live;
pub mod oauth;
pub mod seed;
pub mod server;
pub mod signing;
pub mod staged;
pub mod state;
pub mod store;
pub mod throttle;
pub mod webhooks;

pub use cli::{SandboxArgs, run_cli};
pub use config::SandboxConfig;
pub use server::{Sandbox, sandbox_shop};
pub use store::Plan;

/// The API version the sandbox reports for app-level (TOML) webhook subscriptions.
pub const API_VERSION: &str = "2026-07";

/// Midnight UTC today: generated history ends here unless configured, so runs on one day agree.
pub fn default_history_end() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
}
