//! The generated records: customers, orders, refunds, checkouts. Money is integer minor units of
//! the shop currency; an order in the second currency also records its presentment currency and
//! exchange rate, so the server can render Shopify's `*_set` (shop + presentment) amounts.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use lifecycle_core::money::exponent;
use serde::{Deserialize, Serialize};

use super::GenError;

/// Shopify's customer account state (REST `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomerState {
    Enabled,
    Disabled,
    Invited,
    Declined,
}

impl CustomerState {
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerState::Enabled => "enabled",
            CustomerState::Disabled => "disabled",
            CustomerState::Invited => "invited",
            CustomerState::Declined => "declined",
        }
    }
}

impl fmt::Display for CustomerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenCustomer {
    /// Numeric Shopify-like id; the GID is `gid://shopify/Customer/{id}`.
    pub id: u64,
    /// May hold non-ASCII characters ("Zoë", "Łukasz", "伟").
    pub first_name: String,
    pub last_name: String,
    /// ASCII-folded local part at example.com / example.org / example.net; unique per shop.
    pub email: String,
    /// E.164, for some customers only.
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Merchant tags such as "vip" or "wholesale", on some customers.
    pub tags: Vec<String>,
    pub state: CustomerState,
    /// The customer's presentment currency (shop or second currency).
    pub currency: String,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    pub country: String,
    pub city: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenLineItem {
    pub id: u64,
    pub product_id: u64,
    /// The catalogue's title (borrowed: a large shop has millions of line items).
    pub title: Cow<'static, str>,
    pub quantity: u32,
    /// Unit price in shop-currency minor units.
    pub price_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenRefund {
    pub id: u64,
    pub created_at: DateTime<Utc>,
    /// Shop-currency minor units, > 0.
    pub amount_minor: i64,
    pub note: String,
}

/// Shopify's order `financial_status` values the generator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinancialStatus {
    Paid,
    PartiallyRefunded,
    Refunded,
    Voided,
}

impl FinancialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FinancialStatus::Paid => "paid",
            FinancialStatus::PartiallyRefunded => "partially_refunded",
            FinancialStatus::Refunded => "refunded",
            FinancialStatus::Voided => "voided",
        }
    }
}

impl fmt::Display for FinancialStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenOrder {
    pub id: u64,
    /// None for a guest order.
    pub customer_id: Option<u64>,
    /// Shopify `order_number` (1001, 1002, ... in creation order).
    pub number: u64,
    /// "#1001".
    pub name: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
    /// Shop currency: every `*_minor` amount of the order is in it.
    pub currency: String,
    /// The currency the buyer saw; equal to `currency` unless a second-currency order.
    pub presentment_currency: String,
    /// presentment amount = shop amount × exchange_rate (1.0 for shop-currency orders).
    pub exchange_rate: f64,
    pub line_items: Vec<GenLineItem>,
    /// Σ quantity × price_minor over the line items.
    pub subtotal_minor: i64,
    pub total_discounts_minor: i64,
    pub total_tax_minor: i64,
    /// subtotal − discounts + tax.
    pub total_price_minor: i64,
    pub discount_codes: Vec<String>,
    pub financial_status: FinancialStatus,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// "customer", "fraud", "inventory", "declined" or "other" when cancelled.
    pub cancel_reason: Option<String>,
    pub refunds: Vec<GenRefund>,
    /// Token of the abandoned checkout this order recovered, if any.
    pub checkout_token: Option<String>,
    pub test: bool,
}

impl GenOrder {
    /// Sum of all refunds, in shop-currency minor units.
    pub fn refunded_minor(&self) -> i64 {
        self.refunds.iter().map(|r| r.amount_minor).sum()
    }

    /// What the customer finally paid: total minus refunds (0 for a cancelled order).
    pub fn net_minor(&self) -> i64 {
        if self.cancelled_at.is_some() {
            0
        } else {
            self.total_price_minor - self.refunded_minor()
        }
    }

    /// Converts a shop-currency amount of this order into its presentment currency.
    pub fn presentment_minor(&self, shop_minor: i64) -> i64 {
        if self.presentment_currency == self.currency {
            return shop_minor;
        }
        let shift = exponent(&self.presentment_currency) as i32 - exponent(&self.currency) as i32;
        (shop_minor as f64 * self.exchange_rate * 10f64.powi(shift)).round() as i64
    }

    /// Records a refund and updates `financial_status` and `updated_at`, as Shopify does.
    pub fn apply_refund(&mut self, refund: GenRefund) -> Result<(), GenError> {
        let left = self.total_price_minor - self.refunded_minor();
        if refund.amount_minor <= 0 || refund.amount_minor > left {
            return Err(GenError::Rejected(format!(
                "refund of {} on order {} with {} left to refund",
                refund.amount_minor, self.id, left
            )));
        }
        if self.financial_status == FinancialStatus::Voided {
            return Err(GenError::Rejected(format!("order {} is voided", self.id)));
        }
        self.financial_status = if refund.amount_minor == left {
            FinancialStatus::Refunded
        } else {
            FinancialStatus::PartiallyRefunded
        };
        self.updated_at = self.updated_at.max(refund.created_at);
        self.refunds.push(refund);
        Ok(())
    }

    /// Cancels the order at `at` with `reason`. Reason "declined" voids it (no payment was
    /// captured); otherwise what is left to refund is refunded in full with `refund_id`.
    pub fn apply_cancel(
        &mut self,
        at: DateTime<Utc>,
        reason: &str,
        refund_id: u64,
    ) -> Result<(), GenError> {
        if self.cancelled_at.is_some() {
            return Err(GenError::Rejected(format!(
                "order {} is already cancelled",
                self.id
            )));
        }
        let left = self.total_price_minor - self.refunded_minor();
        if reason == "declined" {
            // The payment was never captured, so there is nothing to refund.
            self.financial_status = FinancialStatus::Voided;
        } else if left > 0 {
            self.apply_refund(GenRefund {
                id: refund_id,
                created_at: at,
                amount_minor: left,
                note: "Order cancelled".to_string(),
            })?;
        }
        self.cancelled_at = Some(at);
        self.cancel_reason = Some(reason.to_string());
        self.updated_at = self.updated_at.max(at);
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenCheckout {
    pub id: u64,
    /// 32 lowercase hex characters.
    pub token: String,
    pub customer_id: Option<u64>,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// None = abandoned; Some = recovered by the order that carries this token.
    pub completed_at: Option<DateTime<Utc>>,
    /// Shop-currency minor units.
    pub total_price_minor: i64,
    /// The buyer's presentment currency.
    pub currency: String,
    pub line_items: Vec<GenLineItem>,
}

/// A change to an existing customer, produced by live mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerChanges {
    pub at: DateTime<Utc>,
    pub add_tags: Vec<String>,
    pub remove_tags: Vec<String>,
    pub state: Option<CustomerState>,
    pub phone: Option<String>,
    pub city: Option<String>,
}

impl CustomerChanges {
    /// Applies the change; tags stay unique and keep their order.
    pub fn apply(&self, customer: &mut GenCustomer) {
        customer.tags.retain(|t| !self.remove_tags.contains(t));
        for tag in &self.add_tags {
            if !customer.tags.contains(tag) {
                customer.tags.push(tag.clone());
            }
        }
        if let Some(state) = self.state {
            customer.state = state;
        }
        if let Some(phone) = &self.phone {
            customer.phone = Some(phone.clone());
        }
        if let Some(city) = &self.city {
            customer.city = city.clone();
        }
        customer.updated_at = customer.updated_at.max(self.at);
    }
}

/// One piece of live activity. The server applies it to its store and sends the webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LiveEvent {
    NewCustomer(GenCustomer),
    NewOrder(GenOrder),
    /// Apply with [`GenOrder::apply_refund`].
    Refund {
        order_id: u64,
        refund: GenRefund,
    },
    /// Apply with [`GenOrder::apply_cancel`] using [`LIVE_CANCEL_REASON`] and `refund_id`.
    Cancel {
        order_id: u64,
        at: DateTime<Utc>,
        refund_id: u64,
    },
    /// Apply with [`CustomerChanges::apply`].
    CustomerUpdate {
        customer_id: u64,
        changes: CustomerChanges,
    },
    Checkout(GenCheckout),
}

/// The cancel reason of live-mode cancellations (a customer asking to cancel).
pub const LIVE_CANCEL_REASON: &str = "customer";
