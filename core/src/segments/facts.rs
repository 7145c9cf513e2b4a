//! The per-customer view that segments are evaluated against. The app fills it from the
//! analytics output and the stored customer; it is deliberately plain data.

use crate::types::{ChurnRisk, RfmGroup};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Everything a built-in segment or a custom rule can look at for one customer.
///
/// Money is in the shop currency as `f64` major units (the analytics already work in `f64`);
/// it never leaves the pure core in this form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerFacts {
    /// Platform id as the platform gives it (e.g. a Shopify GID).
    pub customer_id: String,
    pub number_of_orders: u32,
    pub amount_spent: f64,
    /// `amount_spent / number_of_orders`, 0 when there are no orders.
    pub average_order_value: f64,
    pub first_order_date: Option<DateTime<Utc>>,
    pub last_order_date: Option<DateTime<Utc>>,
    /// The most recent abandoned checkout.
    pub abandoned_checkout_date: Option<DateTime<Utc>>,
    pub customer_added_date: Option<DateTime<Utc>>,
    /// All tags currently on the customer: the merchant's and ours.
    pub customer_tags: Vec<String>,
    /// Lower-case domain of the e-mail address, `None` when there is no address.
    pub email_domain: Option<String>,
    pub rfm_group: RfmGroup,
    pub churn_risk: ChurnRisk,
    /// Predicted lifetime value over the analytics horizon, shop currency.
    pub predicted_clv: f64,
    /// Probability that the customer is still active (BG/NBD), 0..=1.
    pub p_alive: f64,
    /// Share of orders that used a discount code, 0..=1 (0 when there are no orders).
    pub discount_order_share: f64,
    /// Lifetime count of refunded or cancelled orders.
    pub refunds_or_cancellations: u32,
    /// When the most recent refund or cancellation happened.
    pub last_refund_or_cancellation_date: Option<DateTime<Utc>>,
}

impl CustomerFacts {
    /// A customer with no orders and no model output: the starting point for tests and for
    /// customers the analytics have not seen yet.
    pub fn prospect(customer_id: impl Into<String>) -> Self {
        CustomerFacts {
            customer_id: customer_id.into(),
            number_of_orders: 0,
            amount_spent: 0.0,
            average_order_value: 0.0,
            first_order_date: None,
            last_order_date: None,
            abandoned_checkout_date: None,
            customer_added_date: None,
            customer_tags: Vec::new(),
            email_domain: None,
            rfm_group: RfmGroup::Prospects,
            churn_risk: ChurnRisk::Low,
            predicted_clv: 0.0,
            p_alive: 0.0,
            discount_order_share: 0.0,
            refunds_or_cancellations: 0,
            last_refund_or_cancellation_date: None,
        }
    }
}

/// Days since the Unix epoch of a UTC instant: the granularity at which dates are compared,
/// as in Shopify's segment language.
pub(crate) fn day_number(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(86_400)
}

/// Whole days from `t` to `now`, clamped at 0 for instants in the future.
pub(crate) fn days_since(t: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now.timestamp() - t.timestamp()).max(0) / 86_400
}
