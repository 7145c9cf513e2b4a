//! The Ecwid flavour of the sandbox: the same shop model and generator as the Shopify flavour,
//! served the way Ecwid (Lightspeed E-Series) serves a store: OAuth at `/api/oauth/*`, REST at
//! `/api/v3/{storeId}/*` with a per-token rate limit, and ids-only webhooks signed over
//! `"{eventCreated}.{eventId}"` with Ecwid's retry schedule.
//!
//! An Ecwid shop is a `Shop` whose `ecwid` is set; its key in the control API (and
//! `ShopInfo::domain`) is the store id as text.

pub mod oauth;
pub mod payloads;
pub mod rest;
pub mod webhooks;

use crate::state::Shop;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

/// The scopes an Ecwid store grants unless told otherwise (what Lifecycle asks for).
pub const FULL_SCOPES: &str = "read_store_profile read_customers update_customers create_customers read_orders create_discount_coupons read_discount_coupons";
/// "up to 600 requests per minute per token".
pub const REQUESTS_PER_MINUTE: u32 = 600;
/// Store ids are handed out from here: 1001, 1002, …
pub const FIRST_STORE_ID: u64 = 1001;

/// Which platform a shop simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    #[default]
    Shopify,
    Ecwid,
}

impl std::str::FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "shopify" => Ok(Platform::Shopify),
            "ecwid" => Ok(Platform::Ecwid),
            other => Err(format!("unknown platform '{other}' (shopify, ecwid)")),
        }
    }
}

/// Ecwid plans, as far as the sandbox cares: customer groups need Business or higher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EcwidPlan {
    Free,
    Venture,
    #[default]
    Business,
    Unlimited,
}

impl EcwidPlan {
    /// "available on Business plan and higher"; without them group endpoints answer 402.
    pub fn has_customer_groups(self) -> bool {
        matches!(self, EcwidPlan::Business | EcwidPlan::Unlimited)
    }
}

impl std::str::FromStr for EcwidPlan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "free" => Ok(EcwidPlan::Free),
            "venture" => Ok(EcwidPlan::Venture),
            "business" => Ok(EcwidPlan::Business),
            "unlimited" => Ok(EcwidPlan::Unlimited),
            other => Err(format!(
                "unknown Ecwid plan '{other}' (free, venture, business, unlimited)"
            )),
        }
    }
}

/// What makes a shop an Ecwid store.
pub struct EcwidShop {
    pub store_id: u64,
    /// The store's plan; a merchant may change it while the app is installed.
    pub plan: Mutex<EcwidPlan>,
    pub state: Mutex<EcwidState>,
}

impl EcwidShop {
    pub fn plan(&self) -> EcwidPlan {
        *self.plan.lock()
    }
}

/// Ecwid-only state beside the shared shop model. Lock order: `Shop::data` before this.
#[derive(Debug, Default)]
pub struct EcwidState {
    /// Exchanged codes and the token each exchange issued (a replay disables that token).
    pub used_codes: HashMap<String, String>,
    /// Customer groups by id (0 = "General" is implicit).
    pub groups: BTreeMap<u64, String>,
    pub next_group_id: u64,
    /// Customer id -> group id; absent = General.
    pub membership: HashMap<u64, u64>,
    /// Coupon id -> status other than ACTIVE (e.g. PAUSED).
    pub coupon_status: HashMap<u64, String>,
    /// Coupon id -> orders that used it (live traffic honours `usesLimit: SINGLE`).
    pub coupon_uses: HashMap<u64, u32>,
    /// Request times per token in the last minute (the rate limit's sliding window).
    pub windows: HashMap<String, VecDeque<Instant>>,
}

impl EcwidState {
    pub fn group_of(&self, customer: u64) -> (u64, String) {
        match self.membership.get(&customer) {
            Some(&g) if g != 0 => (
                g,
                self.groups
                    .get(&g)
                    .cloned()
                    .unwrap_or_else(|| "General".into()),
            ),
            _ => (0, "General".into()),
        }
    }
}

/// Live traffic in an Ecwid store: a generated order that uses a discount code uses one of
/// the store's own coupons instead, when one is active and not used up (the amounts stay the
/// generator's, so the shop's totals do not change).
pub fn use_store_coupon(
    eco: &EcwidShop,
    data: &crate::store::ShopData,
    order: &mut crate::store::model::Order,
    now: chrono::DateTime<chrono::Utc>,
) {
    if order.discount_codes.is_empty() || data.discounts.is_empty() {
        return;
    }
    let mut st = eco.state.lock();
    let usable: Vec<&crate::store::model::DiscountCode> = data
        .discounts
        .values()
        .filter(|d| {
            d.starts_at <= now
                && d.ends_at.is_none_or(|e| e > now)
                && !st.coupon_status.contains_key(&d.id)
                && d.usage_limit
                    .is_none_or(|l| st.coupon_uses.get(&d.id).copied().unwrap_or(0) < l)
        })
        .collect();
    if usable.is_empty() {
        return;
    }
    let d = usable[(order.id % usable.len() as u64) as usize];
    order.discount_codes = vec![d.code.clone()];
    *st.coupon_uses.entry(d.id).or_default() += 1;
}

/// Turns a freshly built shop into Ecwid store `store_id`: its key becomes the store id.
pub fn make_ecwid(shop: &mut Shop, store_id: u64, plan: EcwidPlan) {
    shop.info.id = store_id;
    shop.info.domain = store_id.to_string();
    shop.info.email = format!("owner@{}.ecwid.example", shop.info.name);
    shop.ecwid = Some(EcwidShop {
        store_id,
        plan: Mutex::new(plan),
        state: Mutex::new(EcwidState {
            next_group_id: 1,
            ..Default::default()
        }),
    });
}

/// The next Ecwid store id of this sandbox.
pub fn next_store_id(state: &crate::state::State) -> u64 {
    state
        .next_store_id
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}
