//! The records a simulated shop holds. Money is integer minor units in the shop currency; an
//! order also carries the rate to its presentment currency.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CustomerState {
    Disabled,
    Invited,
    Enabled,
    Declined,
}

impl CustomerState {
    pub fn rest(self) -> &'static str {
        match self {
            CustomerState::Disabled => "disabled",
            CustomerState::Invited => "invited",
            CustomerState::Enabled => "enabled",
            CustomerState::Declined => "declined",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Address {
    pub address1: String,
    pub city: String,
    pub province: Option<String>,
    pub country_code: String,
    pub zip: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub id: u64,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub tags: BTreeSet<String>,
    pub state: CustomerState,
    pub note: Option<String>,
    pub verified_email: bool,
    pub locale: Option<String>,
    pub address: Option<Address>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Cached from the customer's orders (all orders, as Shopify's `numberOfOrders`).
    pub orders_count: u64,
    /// Cached: totals of non-cancelled orders less refunds, shop currency minor units.
    pub spent_minor: i64,
}

impl Customer {
    pub fn display_name(&self) -> String {
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .iter()
            .flatten()
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        if !name.is_empty() {
            name
        } else {
            self.email.clone().unwrap_or_default()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LineItem {
    pub id: u64,
    /// Borrowed from the catalogue for seeded and generated items: a large shop holds millions.
    pub title: Cow<'static, str>,
    pub sku: Cow<'static, str>,
    pub product_id: u64,
    pub variant_id: u64,
    pub quantity: u32,
    /// Unit price, shop currency minor units.
    pub price_minor: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    pub id: u64,
    pub created_at: DateTime<Utc>,
    pub amount_minor: i64,
    pub note: Option<String>,
    pub transaction_id: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub id: u64,
    pub number: u64,
    pub customer_id: Option<u64>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub test: bool,
    pub presentment_currency: String,
    /// Presentment amount = shop amount × rate (1.0 when the currencies match).
    pub presentment_rate: f64,
    pub line_items: Vec<LineItem>,
    pub discount_codes: Vec<String>,
    pub total_discounts_minor: i64,
    pub total_tax_minor: i64,
    pub refunds: Vec<Refund>,
    pub token: String,
    pub checkout_token: Option<String>,
}

impl Order {
    pub fn name(&self) -> String {
        format!("#{}", self.number)
    }
    /// Shopify's `subtotal_price`: line items less discounts, before tax.
    pub fn subtotal_minor(&self) -> i64 {
        self.line_items_minor() - self.total_discounts_minor
    }
    pub fn line_items_minor(&self) -> i64 {
        self.line_items
            .iter()
            .map(|l| l.price_minor * i64::from(l.quantity))
            .sum()
    }
    pub fn total_minor(&self) -> i64 {
        self.subtotal_minor() + self.total_tax_minor
    }
    pub fn refunded_minor(&self) -> i64 {
        self.refunds.iter().map(|r| r.amount_minor).sum()
    }
    pub fn current_total_minor(&self) -> i64 {
        (self.total_minor() - self.refunded_minor()).max(0)
    }
    /// What counts toward the customer's `amountSpent`.
    pub fn net_spent_minor(&self) -> i64 {
        if self.cancelled_at.is_some() {
            0
        } else {
            (self.total_minor() - self.refunded_minor()).max(0)
        }
    }
    pub fn presentment(&self, shop_minor: i64, shop_currency: &str) -> i64 {
        if self.presentment_currency == shop_currency {
            return shop_minor;
        }
        let shift = currency_exponent(&self.presentment_currency) as i32
            - currency_exponent(shop_currency) as i32;
        (shop_minor as f64 * self.presentment_rate * 10f64.powi(shift)).round() as i64
    }
    /// REST `financial_status`; the GraphQL enum is the uppercase form.
    pub fn financial_status(&self) -> &'static str {
        let refunded = self.refunded_minor();
        if self.cancelled_at.is_some() && refunded == 0 {
            "voided"
        } else if refunded == 0 {
            "paid"
        } else if refunded >= self.total_minor() {
            "refunded"
        } else {
            "partially_refunded"
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Checkout {
    pub id: u64,
    pub token: String,
    pub customer_id: Option<u64>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub currency: String,
    pub line_items: Vec<LineItem>,
}

impl Checkout {
    pub fn total_minor(&self) -> i64 {
        self.line_items
            .iter()
            .map(|l| l.price_minor * i64::from(l.quantity))
            .sum()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountValue {
    /// 0.0–1.0 as Shopify's input.
    Percentage(f64),
    /// Fixed amount, shop currency minor units.
    Amount {
        amount_minor: i64,
        applies_on_each_item: bool,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct DiscountCode {
    pub id: u64,
    pub title: String,
    pub code: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    /// Empty = all buyers.
    pub customer_ids: Vec<u64>,
    pub value: DiscountValue,
    pub usage_limit: Option<u32>,
    pub applies_once_per_customer: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metafield {
    pub id: u64,
    pub owner_id: u64,
    pub namespace: String,
    pub key: String,
    pub value: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookSubscription {
    pub id: u64,
    pub topic: String,
    pub callback_url: String,
    pub format: String,
    pub api_version: String,
    pub created_at: DateTime<Utc>,
}

/// Decimal places of a currency's minor unit: the app's own ISO 4217 table, so the simulated
/// platforms and Lifecycle never disagree about a currency.
pub use lifecycle_core::money::exponent as currency_exponent;

/// Minor units -> Shopify's decimal string ("12.30", "-0.05", "1200").
pub fn format_minor(minor: i64, currency: &str) -> String {
    let exp = currency_exponent(currency);
    if exp == 0 {
        return minor.to_string();
    }
    let div = 10i64.pow(exp);
    let sign = if minor < 0 { "-" } else { "" };
    let a = minor.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        a / div as u64,
        a % div as u64,
        width = exp as usize
    )
}

/// Shopify's decimal string -> minor units. Rejects more decimals than the currency allows.
pub fn parse_decimal(s: &str, currency: &str) -> Result<i64, String> {
    let exp = currency_exponent(currency) as usize;
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(format!("'{s}' is not a decimal amount"));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > exp {
        return Err(format!("'{s}' has more than {exp} decimal places"));
    }
    let int_v: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| format!("'{s}' is too large"))?
    };
    let frac_v: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<exp$}").parse().unwrap_or(0)
    };
    let v = int_v
        .checked_mul(10i64.pow(exp as u32))
        .and_then(|x| x.checked_add(frac_v))
        .ok_or_else(|| format!("'{s}' is too large"))?;
    Ok(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_strings() {
        assert_eq!(format_minor(1230, "USD"), "12.30");
        assert_eq!(format_minor(-5, "EUR"), "-0.05");
        assert_eq!(format_minor(1200, "JPY"), "1200");
        assert_eq!(parse_decimal("12.3", "USD"), Ok(1230));
        assert_eq!(parse_decimal("10", "USD"), Ok(1000));
        assert_eq!(parse_decimal("0.50", "USD"), Ok(50));
        assert!(parse_decimal("1.234", "USD").is_err());
        assert!(parse_decimal("abc", "USD").is_err());
        assert_eq!(parse_decimal("1200", "JPY"), Ok(1200));
    }

    /// The sandbox formats amounts with the app's table: codes its old copy missed (UYI) or
    /// spelt in lower case agree with `lifecycle_core::money`.
    #[test]
    fn amounts_follow_the_apps_currency_table() {
        assert_eq!(format_minor(1200, "UYI"), "1200");
        assert_eq!(format_minor(1200, "jpy"), "1200");
        assert_eq!(format_minor(1234, "kwd"), "1.234");
        assert_eq!(parse_decimal("1200", "UYI"), Ok(1200));
        for code in ["USD", "UYI", "jpy", "Kwd", "CLP", "BHD", "XPF"] {
            assert_eq!(
                currency_exponent(code),
                lifecycle_core::money::exponent(code),
                "{code}"
            );
        }
    }
}
