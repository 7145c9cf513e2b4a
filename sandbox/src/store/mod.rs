//! In-memory shop data: records, indexed tables, search syntax and the shop's changes.

pub mod model;
pub mod search;
pub mod shop;
pub mod table;

pub use model::*;
pub use shop::{Change, CustomerPatch, NewOrder, Plan, ShopData, ShopInfo, StoreError};
