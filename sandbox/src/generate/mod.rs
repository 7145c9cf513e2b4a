//! Seeded, reproducible shop data: customers whose purchases follow a buy-till-you-die process
//! (BG/NBD counts, Gamma-Gamma values), with discount codes, refunds, cancellations, abandoned
//! checkouts, guest orders, a second currency and non-ASCII names; then a live mode that keeps
//! producing activity.
//!
//! ```no_run
//! use lifecycle_sandbox::generate::{generate, GenConfig, LiveGenerator};
//! let config = GenConfig { customers: 1_000, ..GenConfig::default() };
//! let shop = generate(&config).expect("valid config");
//! println!("true parameters: {}", shop.truth);
//! let mut live = LiveGenerator::for_shop(7, &config, &shop);
//! let event = live.next_event(config.end, &shop);
//! ```
//!
//! Everything depends only on the configuration (including `seed` and `end`); there is no clock
//! and no global random state, so the same configuration gives byte-identical data.

mod config;
mod error;
mod history;
mod ids;
mod live;
mod model;
mod names;
mod orders;
mod params;
mod people;
mod process;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use config::{GenConfig, MAX_CUSTOMERS};
pub use error::GenError;
pub use ids::NextIds;
pub use live::{LiveContext, LiveGenerator, LiveSlices};
pub use model::{
    CustomerChanges, CustomerState, FinancialStatus, GenCheckout, GenCustomer, GenLineItem,
    GenOrder, GenRefund, LIVE_CANCEL_REASON, LiveEvent,
};
pub use params::TrueParams;

/// Line items name products of one catalogue: ids `PRODUCT_ID_BASE..PRODUCT_ID_BASE + PRODUCT_COUNT`.
pub use names::PRODUCT_ID_BASE;
pub const PRODUCT_COUNT: usize = names::PRODUCTS.len();

/// The generated data. Every vector is sorted by creation time, and ids increase with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratedShop {
    pub customers: Vec<GenCustomer>,
    pub orders: Vec<GenOrder>,
    pub checkouts: Vec<GenCheckout>,
    /// The parameters the purchase process was drawn from.
    pub truth: TrueParams,
}

/// Counts from one generation run (for benchmarks and reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenStats {
    /// Orders of the BG/NBD process (customer orders that are not cancelled attempts).
    pub process_orders: u64,
    pub guest_orders: u64,
    pub cancelled_orders: u64,
    /// 32-bit random words drawn in total, so a benchmark can time drawing as many alone.
    pub random_words: u64,
}

/// Generates a shop; rejects an invalid configuration with a message naming the setting.
pub fn generate(config: &GenConfig) -> Result<GeneratedShop, GenError> {
    history::generate(config).map(|(shop, _)| shop)
}

/// [`generate`], also returning counts about the run.
pub fn generate_with_stats(config: &GenConfig) -> Result<(GeneratedShop, GenStats), GenError> {
    history::generate(config)
}

/// What live mode continues from once the history has gone into a store: the ids after it,
/// every customer and the latest orders (refunds and cancellations target only those).
#[derive(Debug, Clone)]
pub struct LiveSeed {
    pub next: NextIds,
    pub customers: Vec<GenCustomer>,
    pub recent: Vec<GenOrder>,
}

impl LiveSeed {
    /// Orders kept for live mode.
    pub const RECENT_ORDERS: usize = 1000;
}

impl GeneratedShop {
    /// The purchase process as the analytics see it: `(customer_id, created_at, net minor units)`
    /// of every non-cancelled order that has a customer, in time order. Net is the total minus
    /// refunds (a fully refunded order still counts as a purchase, with net 0).
    pub fn transactions(&self) -> impl Iterator<Item = (u64, DateTime<Utc>, i64)> + '_ {
        self.orders
            .iter()
            .filter_map(|o| match (o.customer_id, o.cancelled_at) {
                (Some(customer), None) => Some((customer, o.created_at, o.net_minor())),
                _ => None,
            })
    }

    /// The ids live mode should continue from.
    pub fn next_ids(&self, shop_name: &str) -> NextIds {
        NextIds::after(shop_name, &self.customers, &self.orders, &self.checkouts)
    }
}
