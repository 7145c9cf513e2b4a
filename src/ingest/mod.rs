//! The single write path: platform data becomes canonical events, and only `apply` writes
//! customers, orders, refunds and checkouts.

pub mod apply;
pub mod echo;
pub mod inbox;
pub mod intake;
pub mod writer_health;
