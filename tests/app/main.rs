//! End-to-end tests: the real server, a real database (SQLite file and PostgreSQL), and the
//! sandbox platform over real HTTP. One test binary keeps link time down.

mod admin;
mod browser;
mod cli;
mod common;
mod demo;
mod ecwid_install;
mod ecwid_webhooks;
mod embedded_pages;
mod erasure;
mod experiments;
mod foundation;
mod home;
mod layout;
mod local_keys;
mod loyalty;
mod managed_install;
mod model;
mod order_history;
mod reliability;
mod scale;
mod secrets_in_logs;
mod shop_domains;
mod shopify_install;
mod shopify_webhooks;
mod sync;
mod token_expiry;
mod uninstall;
