//! What to generate: shop size, time span, shares of the special cases, and the true parameters.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::{GenError, TrueParams};

/// Upper bound on `customers`: keeps every record index within 32 bits and memory sane.
pub const MAX_CUSTOMERS: usize = 20_000_000;

/// Generator settings. `end` is the generation "now": history covers `end - history_days .. end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenConfig {
    pub shop_name: String,
    /// Number of customers with an account (ordering ones plus prospects).
    pub customers: usize,
    pub seed: u64,
    pub history_days: u32,
    pub end: DateTime<Utc>,
    /// ISO code of the shop currency; every total is kept in it.
    pub shop_currency: String,
    /// ISO code of the second presentment currency.
    pub second_currency: String,
    /// Share of customers (and guest orders) that buy in the second currency.
    pub second_currency_share: f64,
    /// Exchange rate: presentment amount = shop-currency amount × rate.
    pub second_currency_rate: f64,
    pub params: TrueParams,
    /// Share of customers who signed up but never ordered (Shopify's PROSPECTS).
    pub prospect_share: f64,
    /// Share of orders that use a discount code.
    pub discount_share: f64,
    /// Share of paid orders that later get a refund (full or partial).
    pub refund_share: f64,
    /// Extra cancelled orders, as a share of the purchase process's orders. They sit beside the
    /// process (a cancelled attempt shortly before a real purchase), so the process stays exact.
    pub cancel_share: f64,
    /// Abandoned checkouts per order.
    pub abandon_rate: f64,
    /// Share of abandoned checkouts that are recovered: the order follows and completes them.
    pub abandon_recovered_share: f64,
    /// Share of all non-cancelled orders placed without a customer account.
    pub guest_order_share: f64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            shop_name: "sandbox-shop".to_string(),
            customers: 1_000,
            seed: 42,
            history_days: 730,
            // A fixed instant so the default is reproducible; callers pass their own "now".
            end: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            shop_currency: "USD".to_string(),
            second_currency: "EUR".to_string(),
            second_currency_share: 0.15,
            second_currency_rate: 0.92,
            params: TrueParams::default(),
            prospect_share: 0.05,
            discount_share: 0.2,
            refund_share: 0.05,
            cancel_share: 0.02,
            abandon_rate: 0.3,
            abandon_recovered_share: 0.2,
            guest_order_share: 0.05,
        }
    }
}

impl GenConfig {
    /// Checks every setting and returns the first problem found.
    pub fn validate(&self) -> Result<(), GenError> {
        self.params.validate()?;
        if self.shop_name.trim().is_empty() {
            return Err(setting("shop_name", "must not be empty"));
        }
        if self.customers > MAX_CUSTOMERS {
            return Err(setting(
                "customers",
                &format!("{} is above the maximum of {MAX_CUSTOMERS}", self.customers),
            ));
        }
        if self.history_days == 0 {
            return Err(setting("history_days", "must be at least 1"));
        }
        for (name, code) in [
            ("shop_currency", &self.shop_currency),
            ("second_currency", &self.second_currency),
        ] {
            if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_uppercase()) {
                return Err(setting(
                    name,
                    &format!("{code:?} is not a three-letter ISO 4217 code"),
                ));
            }
        }
        if !self.second_currency_rate.is_finite() || self.second_currency_rate <= 0.0 {
            return Err(setting(
                "second_currency_rate",
                "must be a finite number > 0",
            ));
        }
        let shares = [
            ("second_currency_share", self.second_currency_share),
            ("prospect_share", self.prospect_share),
            ("discount_share", self.discount_share),
            ("refund_share", self.refund_share),
            ("cancel_share", self.cancel_share),
            ("abandon_recovered_share", self.abandon_recovered_share),
        ];
        for (name, value) in shares {
            if !(0.0..=1.0).contains(&value) {
                return Err(setting(name, &format!("{value} is not in [0, 1]")));
            }
        }
        // A guest share of 1 would leave no room for customer orders.
        if !(0.0..1.0).contains(&self.guest_order_share) {
            return Err(setting(
                "guest_order_share",
                &format!("{} is not in [0, 1)", self.guest_order_share),
            ));
        }
        if !self.abandon_rate.is_finite() || !(0.0..=10.0).contains(&self.abandon_rate) {
            return Err(setting(
                "abandon_rate",
                &format!("{} is not in [0, 10]", self.abandon_rate),
            ));
        }
        let span = chrono::Duration::days(i64::from(self.history_days));
        if self.end.checked_sub_signed(span).is_none() {
            return Err(setting("history_days", "reaches before the earliest date"));
        }
        Ok(())
    }

    /// First instant of the generated history.
    pub fn start(&self) -> DateTime<Utc> {
        self.end - chrono::Duration::days(i64::from(self.history_days))
    }
}

fn setting(name: &'static str, reason: &str) -> GenError {
    GenError::InvalidSetting {
        name,
        reason: reason.to_string(),
    }
}
