//! In-memory shop data: records, indexed tables, search syntax and the shop's changes.

pub mod info;
pub mod model;
pub mod payloads;
pub mod search;
pub mod shop;
pub mod table;

pub use info::{Plan, ShopInfo};
pub use model::*;
pub use shop::{Change, CustomerPatch, NewOrder, ShopData, StoreError};
