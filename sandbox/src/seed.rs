//! Turns the generator's records into the store's, and builds a seeded shop.

use crate::generate::{
    self, CustomerState as GenState, GenCheckout, GenConfig, GenCustomer, GenLineItem, GenOrder,
    GeneratedShop,
};
use crate::state::Shop;
use crate::store::model::*;
use crate::store::{Plan, ShopData, ShopInfo};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// Ids minted by the sandbox itself start here, above every generator id range.
const OWN_ID_BASE: u64 = 40_000_000_000_000;
const OWN_ID_STRIDE: u64 = 100_000_000_000;
/// Transaction ids are derived from refund ids, in a range of their own.
const TRANSACTION_OFFSET: u64 = 1_000_000_000_000_000;

pub fn state(s: GenState) -> CustomerState {
    match s {
        GenState::Enabled => CustomerState::Enabled,
        GenState::Disabled => CustomerState::Disabled,
        GenState::Invited => CustomerState::Invited,
        GenState::Declined => CustomerState::Declined,
    }
}

pub fn customer(c: &GenCustomer) -> Customer {
    Customer {
        id: c.id,
        email: Some(c.email.clone()),
        phone: c.phone.clone(),
        first_name: Some(c.first_name.clone()),
        last_name: Some(c.last_name.clone()),
        tags: c.tags.iter().cloned().collect::<BTreeSet<_>>(),
        state: state(c.state),
        note: None,
        verified_email: true,
        locale: Some("en".into()),
        address: Some(Address {
            address1: String::new(),
            city: c.city.clone(),
            province: None,
            country_code: c.country_code.clone(),
            zip: String::new(),
        }),
        created_at: c.created_at,
        updated_at: c.updated_at,
        orders_count: 0,
        spent_minor: 0,
    }
}

fn line_item(l: &GenLineItem) -> LineItem {
    LineItem {
        id: l.id,
        title: l.title.clone(),
        sku: format!("SBX-{}", l.product_id),
        product_id: l.product_id,
        variant_id: l.product_id * 10 + 1,
        quantity: l.quantity,
        price_minor: l.price_minor,
    }
}

pub fn refund(r: &generate::GenRefund) -> Refund {
    Refund {
        id: r.id,
        created_at: r.created_at,
        amount_minor: r.amount_minor,
        note: Some(r.note.clone()),
        transaction_id: r.id + TRANSACTION_OFFSET,
    }
}

pub fn order(o: &GenOrder) -> Order {
    Order {
        id: o.id,
        number: o.number,
        customer_id: o.customer_id,
        email: Some(o.email.clone()),
        created_at: o.created_at,
        updated_at: o.updated_at,
        processed_at: o.processed_at,
        cancelled_at: o.cancelled_at,
        cancel_reason: o.cancel_reason.clone(),
        closed_at: o.cancelled_at,
        test: o.test,
        presentment_currency: o.presentment_currency.clone(),
        presentment_rate: o.exchange_rate,
        line_items: o.line_items.iter().map(line_item).collect(),
        discount_codes: o.discount_codes.clone(),
        total_discounts_minor: o.total_discounts_minor,
        total_tax_minor: o.total_tax_minor,
        refunds: o.refunds.iter().map(refund).collect(),
        token: format!("{:032x}", u128::from(o.id) * 0x9e37_79b9_7f4a_7c15),
        checkout_token: o.checkout_token.clone(),
    }
}

pub fn checkout(k: &GenCheckout, shop_currency: &str) -> Checkout {
    Checkout {
        id: k.id,
        token: k.token.clone(),
        customer_id: k.customer_id,
        email: Some(k.email.clone()),
        created_at: k.created_at,
        updated_at: k.updated_at,
        completed_at: k.completed_at,
        // Amounts are kept in the shop currency.
        currency: shop_currency.to_string(),
        line_items: k.line_items.iter().map(line_item).collect(),
    }
}

/// Options for one shop.
#[derive(Debug, Clone)]
pub struct ShopSpec {
    pub name: String,
    pub customers: usize,
    pub seed: u64,
    pub plan: Plan,
    pub history_days: u32,
    pub end: DateTime<Utc>,
    pub index: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(
        "shop name '{0}' is invalid: use lowercase letters, digits and '-', starting with a letter or digit"
    )]
    BadName(String),
    #[error(transparent)]
    Generator(#[from] generate::GenError),
}

pub fn valid_shop_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 60
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

pub fn gen_config(spec: &ShopSpec) -> GenConfig {
    GenConfig {
        shop_name: spec.name.clone(),
        customers: spec.customers,
        seed: spec.seed,
        history_days: spec.history_days,
        end: spec.end,
        ..GenConfig::default()
    }
}

/// Generates and loads a shop. CPU-heavy for large shops: run it on a blocking thread.
pub fn build_shop(spec: &ShopSpec) -> Result<(Shop, GenConfig, GeneratedShop), SeedError> {
    if !valid_shop_name(&spec.name) {
        return Err(SeedError::BadName(spec.name.clone()));
    }
    let config = gen_config(spec);
    let generated = generate::generate(&config)?;
    let domain = format!("{}.myshopify.com", spec.name);
    let info = ShopInfo {
        id: 60_000_000_000 + generate_shop_id(&spec.name),
        name: spec.name.clone(),
        domain: domain.clone(),
        email: format!("owner@{domain}"),
        currency: config.shop_currency.clone(),
        plan: spec.plan,
        created_at: config.start(),
    };
    let mut data = ShopData::new(OWN_ID_BASE + spec.index * OWN_ID_STRIDE);
    data.load(
        generated.customers.iter().map(customer).collect(),
        generated.orders.iter().map(order).collect(),
        generated
            .checkouts
            .iter()
            .map(|k| checkout(k, &config.shop_currency))
            .collect(),
    );
    let truth = serde_json::to_value(generated.truth).ok();
    Ok((Shop::new(info, data, truth), config, generated))
}

fn generate_shop_id(name: &str) -> u64 {
    // FNV-1a: stable across runs and platforms.
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) % 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_shop_name("demo-1"));
        assert!(!valid_shop_name("-demo"));
        assert!(!valid_shop_name("Demo"));
        assert!(!valid_shop_name("a.b"));
        assert!(!valid_shop_name(""));
    }

    #[test]
    fn seeded_store_matches_generator_totals() {
        let spec = ShopSpec {
            name: "t".into(),
            customers: 200,
            seed: 3,
            plan: Plan::Standard,
            history_days: 365,
            end: chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, 0, 0, 0).unwrap(),
            index: 0,
        };
        let (shop, _, generated) = build_shop(&spec).unwrap();
        let data = shop.data.read();
        assert_eq!(data.customers.len(), generated.customers.len());
        assert_eq!(data.orders.len(), generated.orders.len());
        for o in &generated.orders {
            let mine = data.orders.get(o.id).unwrap();
            assert_eq!(mine.total_minor(), o.total_price_minor, "order {}", o.id);
            assert_eq!(mine.financial_status(), o.financial_status.as_str());
        }
        for c in &generated.customers {
            let net: i64 = generated
                .orders
                .iter()
                .filter(|o| o.customer_id == Some(c.id))
                .map(|o| o.net_minor())
                .sum();
            assert_eq!(data.customers.get(c.id).unwrap().spent_minor, net);
        }
    }
}
