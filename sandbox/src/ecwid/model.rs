//! What the Ecwid flavour keeps: its settings and store ids app-wide, and per store its id,
//! plan and Ecwid-only state.

use crate::state::{Shop, State};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub const NAME: &str = "ecwid";

/// The scopes an Ecwid store grants unless told otherwise (what Lifecycle asks for).
pub const FULL_SCOPES: &str = "read_store_profile read_customers update_customers create_customers read_orders create_discount_coupons read_discount_coupons";
/// "up to 600 requests per minute per token".
pub const REQUESTS_PER_MINUTE: u32 = 600;
/// Store ids are handed out from here: 1001, 1002, …
pub const FIRST_STORE_ID: u64 = 1001;

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
    /// The Ecwid part of `shop`, if it is an Ecwid store.
    pub fn of(shop: &Shop) -> Option<&EcwidShop> {
        shop.flavour_as::<EcwidShop>()
    }

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

/// The Ecwid flavour's settings of a run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Plan of seeded stores (business has customer groups; free and venture do not).
    pub plan: EcwidPlan,
    /// REST requests per minute and token before 429 (600 on the platform); tests lower it.
    pub requests_per_minute: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            plan: EcwidPlan::Business,
            requests_per_minute: REQUESTS_PER_MINUTE,
        }
    }
}

/// The Ecwid flavour, app-wide: its settings and the next store id (1001, 1002, …).
pub struct Ecwid {
    pub settings: Settings,
    next_store_id: AtomicU64,
}

impl Ecwid {
    pub fn new(settings: Settings) -> Result<Ecwid, String> {
        if settings.requests_per_minute == 0 {
            return Err("ecwid_requests_per_minute must be at least 1".into());
        }
        Ok(Ecwid {
            settings,
            next_store_id: AtomicU64::new(FIRST_STORE_ID),
        })
    }

    /// The flavour of `state` (always present: every run knows every flavour).
    pub fn of(state: &State) -> &Ecwid {
        state
            .flavour_as::<Ecwid>(NAME)
            .expect("the Ecwid flavour is registered")
    }

    /// The next Ecwid store id of this sandbox.
    pub fn next_store_id(&self) -> u64 {
        self.next_store_id.fetch_add(1, Ordering::SeqCst)
    }
}
