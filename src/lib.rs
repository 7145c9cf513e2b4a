//! Lifecycle: a customer-retention app for shop platforms. See DESIGN.md for the map.

pub mod admin;
pub mod analysis;
pub mod app;
pub mod cli;
pub mod config;
pub mod experiments;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod platforms;
pub mod queue;
pub mod routes;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod signed;
pub mod state;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod triggers;
pub mod writeback;

pub use lifecycle_core as core;
