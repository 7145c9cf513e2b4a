//! Turning an order total into a consistent order: line items, discount, tax, refunds.
//! Ids are left at 0 here; the caller numbers them (historic data by time, live data at once).

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use super::GenConfig;
use super::model::{FinancialStatus, GenCheckout, GenLineItem, GenOrder, GenRefund};
use super::names::{self, DISCOUNT_CODES, PRODUCT_ID_BASE, PRODUCTS, REFUND_NOTES};

/// Who buys, as far as an order needs to know.
pub(crate) struct Buyer<'a> {
    pub customer_id: Option<u64>,
    pub email: &'a str,
    /// Presentment currency code.
    pub currency: &'a str,
    pub tax_rate: f64,
}

/// The order-shaping settings taken from [`GenConfig`].
pub(crate) struct OrderShape {
    pub shop_currency: String,
    pub second_currency: String,
    pub exchange_rate: f64,
    /// 10^exponent of the shop currency: minor units per unit.
    pub minor_per_unit: f64,
    pub discount_share: f64,
    pub refund_share: f64,
}

impl OrderShape {
    pub fn new(config: &GenConfig) -> Self {
        OrderShape {
            shop_currency: config.shop_currency.clone(),
            second_currency: config.second_currency.clone(),
            exchange_rate: config.second_currency_rate,
            minor_per_unit: 10f64
                .powi(lifecycle_core::money::exponent(&config.shop_currency) as i32),
            discount_share: config.discount_share,
            refund_share: config.refund_share,
        }
    }

    /// Shop-currency units to minor units; every order is worth at least one minor unit.
    pub fn to_minor(&self, units: f64) -> i64 {
        ((units * self.minor_per_unit).round() as i64).max(1)
    }

    /// An order whose `total_price_minor` is exactly `total_minor`, split into line items,
    /// an optional discount code and tax.
    pub fn order(
        &self,
        rng: &mut impl Rng,
        buyer: &Buyer<'_>,
        created_at: DateTime<Utc>,
        total_minor: i64,
    ) -> GenOrder {
        // Work backwards from the total: total = taxable + tax, taxable = subtotal − discount.
        let taxable =
            ((total_minor as f64 / (1.0 + buyer.tax_rate)).round() as i64).clamp(1, total_minor);
        let tax = total_minor - taxable;
        let mut discount_codes = Vec::new();
        let mut subtotal = taxable;
        if rng.random::<f64>() < self.discount_share {
            let (code, pct) = *names::pick(rng, DISCOUNT_CODES);
            subtotal = (taxable as f64 / (1.0 - pct)).round() as i64;
            discount_codes.push(code.to_string());
        }
        let (presentment_currency, exchange_rate) = if buyer.currency == self.second_currency
            && self.second_currency != self.shop_currency
        {
            (self.second_currency.clone(), self.exchange_rate)
        } else {
            (self.shop_currency.clone(), 1.0)
        };
        GenOrder {
            id: 0,
            customer_id: buyer.customer_id,
            number: 0,
            name: String::new(),
            email: buyer.email.to_string(),
            created_at,
            updated_at: created_at,
            processed_at: created_at,
            currency: self.shop_currency.clone(),
            presentment_currency,
            exchange_rate,
            line_items: line_items(rng, subtotal),
            subtotal_minor: subtotal,
            total_discounts_minor: subtotal - taxable,
            total_tax_minor: tax,
            total_price_minor: total_minor,
            discount_codes,
            financial_status: FinancialStatus::Paid,
            cancelled_at: None,
            cancel_reason: None,
            refunds: Vec::new(),
            checkout_token: None,
            test: false,
        }
    }

    /// With probability `refund_share`, a refund (a third full, the rest partial) at a time
    /// drawn in `[order time + 1 h, order time + 30 d]`, kept only if it is not after `end`.
    pub fn maybe_refund(&self, rng: &mut impl Rng, order: &mut GenOrder, end: DateTime<Utc>) {
        if rng.random::<f64>() >= self.refund_share {
            return;
        }
        let delay = Duration::minutes(rng.random_range(60..30 * 24 * 60));
        let at = order.created_at + delay;
        if at > end {
            return;
        }
        let refund = refund(rng, order, at);
        // A fresh order always has the full total left, so this cannot be rejected.
        let _ = order.apply_refund(refund);
    }

    /// An abandoned checkout of `total_minor` by `buyer` at `created_at`.
    pub fn checkout(
        &self,
        rng: &mut impl Rng,
        buyer: &Buyer<'_>,
        created_at: DateTime<Utc>,
        total_minor: i64,
    ) -> GenCheckout {
        let taxable =
            ((total_minor as f64 / (1.0 + buyer.tax_rate)).round() as i64).clamp(1, total_minor);
        GenCheckout {
            id: 0,
            token: token(rng),
            customer_id: buyer.customer_id,
            email: buyer.email.to_string(),
            created_at,
            updated_at: created_at,
            completed_at: None,
            total_price_minor: total_minor,
            currency: buyer.currency.to_string(),
            line_items: line_items(rng, taxable),
        }
    }
}

/// A refund of what is left on `order` (full a third of the time, else 10–60 % of it) at `at`.
/// Returns an amount ≥ 1; call only when something is left to refund.
pub(crate) fn refund(rng: &mut impl Rng, order: &GenOrder, at: DateTime<Utc>) -> GenRefund {
    let left = order.total_price_minor - order.refunded_minor();
    let amount = if rng.random::<f64>() < 1.0 / 3.0 {
        left
    } else {
        ((left as f64 * rng.random_range(0.1..0.6)).round() as i64).clamp(1, left)
    };
    GenRefund {
        id: 0,
        created_at: at,
        amount_minor: amount,
        note: names::pick(rng, REFUND_NOTES).to_string(),
    }
}

/// A random checkout token: 32 lowercase hex characters.
pub(crate) fn token(rng: &mut impl Rng) -> String {
    format!("{:032x}", rng.random::<u128>())
}

/// Line items whose Σ quantity × price is exactly `subtotal` (≥ 1).
fn line_items(rng: &mut impl Rng, subtotal: i64) -> Vec<GenLineItem> {
    // 1 to 4 products; tiny subtotals get a single item so every price stays ≥ 1.
    let wanted = match rng.random_range(0..20) {
        0..10 => 1,
        10..16 => 2,
        16..19 => 3,
        _ => 4,
    };
    let count = if subtotal < 100 * wanted as i64 {
        1
    } else {
        wanted
    };
    let mut weights = [0.0f64; 4];
    for w in weights.iter_mut().take(count) {
        *w = rng.random_range(0.5..1.5);
    }
    let weight_sum: f64 = weights.iter().sum();
    let mut items = Vec::with_capacity(count);
    let mut left = subtotal;
    for (i, weight) in weights.iter().take(count).enumerate() {
        let product = rng.random_range(0..PRODUCTS.len());
        let (quantity, price) = if i + 1 == count {
            // The last item takes the rounding remainder, so the sum is exact.
            (1, left)
        } else {
            let quantity = match rng.random_range(0..20) {
                0..16 => 1,
                16..19 => 2,
                _ => 3,
            };
            let share = (subtotal as f64 * weight / weight_sum) as i64;
            (quantity, (share / quantity as i64).max(1))
        };
        left -= price * quantity as i64;
        items.push(GenLineItem {
            id: 0,
            product_id: PRODUCT_ID_BASE + product as u64,
            title: PRODUCTS[product].into(),
            quantity,
            price_minor: price,
        });
    }
    items
}
