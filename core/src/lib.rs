//! Lifecycle's pure core: plain data in, plain data out. No database, no HTTP, no clock
//! (time is always passed in), so everything here is unit-tested with exact expectations.

pub mod analytics;
pub mod loyalty;
pub mod money;
pub mod random;
pub mod segments;
pub mod stats;
pub mod types;
