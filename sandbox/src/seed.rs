//! Turns the generator's records into the store's, and builds a seeded shop.

use crate::generate::{
    self, CustomerState as GenState, GenCheckout, GenConfig, GenCustomer, GenLineItem, GenOrder,
    GeneratedShop, LiveSeed,
};
use crate::state::Shop;
use crate::store::model::*;
use crate::store::{Plan, ShopData, ShopInfo};
use chrono::{DateTime, Utc};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::OnceLock;

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

/// `SBX-{product id}`, borrowed from a table built once for the catalogue's products.
fn sku(product_id: u64) -> Cow<'static, str> {
    static CATALOGUE: OnceLock<Vec<String>> = OnceLock::new();
    let skus = CATALOGUE.get_or_init(|| {
        (0..generate::PRODUCT_COUNT as u64)
            .map(|i| format!("SBX-{}", generate::PRODUCT_ID_BASE + i))
            .collect()
    });
    product_id
        .checked_sub(generate::PRODUCT_ID_BASE)
        .and_then(|i| skus.get(i as usize))
        .map_or_else(|| format!("SBX-{product_id}").into(), |s| s.as_str().into())
}

fn line_item(l: GenLineItem) -> LineItem {
    LineItem {
        id: l.id,
        title: l.title,
        sku: sku(l.product_id),
        product_id: l.product_id,
        variant_id: l.product_id * 10 + 1,
        quantity: l.quantity,
        price_minor: l.price_minor,
    }
}

pub fn refund(r: generate::GenRefund) -> Refund {
    Refund {
        id: r.id,
        created_at: r.created_at,
        amount_minor: r.amount_minor,
        note: Some(r.note),
        transaction_id: r.id + TRANSACTION_OFFSET,
    }
}

/// Takes the record by value: a seeded shop's strings move into the store instead of being
/// copied, which halves the peak of seeding a large shop.
pub fn order(o: GenOrder) -> Order {
    Order {
        id: o.id,
        number: o.number,
        customer_id: o.customer_id,
        email: Some(o.email),
        created_at: o.created_at,
        updated_at: o.updated_at,
        processed_at: o.processed_at,
        cancelled_at: o.cancelled_at,
        cancel_reason: o.cancel_reason,
        closed_at: o.cancelled_at,
        test: o.test,
        presentment_currency: o.presentment_currency,
        presentment_rate: o.exchange_rate,
        line_items: o.line_items.into_iter().map(line_item).collect(),
        discount_codes: o.discount_codes,
        total_discounts_minor: o.total_discounts_minor,
        total_tax_minor: o.total_tax_minor,
        refunds: o.refunds.into_iter().map(refund).collect(),
        token: format!("{:032x}", u128::from(o.id) * 0x9e37_79b9_7f4a_7c15),
        checkout_token: o.checkout_token,
    }
}

pub fn checkout(k: GenCheckout, shop_currency: &str) -> Checkout {
    Checkout {
        id: k.id,
        token: k.token,
        customer_id: k.customer_id,
        email: Some(k.email),
        created_at: k.created_at,
        updated_at: k.updated_at,
        completed_at: k.completed_at,
        // Amounts are kept in the shop currency.
        currency: shop_currency.to_string(),
        line_items: k.line_items.into_iter().map(line_item).collect(),
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

/// Generates and loads a shop, and returns with it what live mode continues from. CPU-heavy
/// for large shops: run it on a blocking thread.
pub fn build_shop(spec: &ShopSpec) -> Result<(Shop, GenConfig, LiveSeed), SeedError> {
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
    let next = generated.next_ids(&config.shop_name);
    let GeneratedShop {
        customers: gen_customers,
        orders,
        checkouts,
        truth,
    } = generated;
    let recent = orders[orders.len().saturating_sub(LiveSeed::RECENT_ORDERS)..].to_vec();
    let mut data = ShopData::new(OWN_ID_BASE + spec.index * OWN_ID_STRIDE);
    data.load(
        gen_customers.iter().map(customer),
        orders.into_iter().map(order),
        checkouts
            .into_iter()
            .map(|k| checkout(k, &config.shop_currency)),
    );
    let truth = serde_json::to_value(truth).ok();
    Ok((
        Shop::new(info, data, truth),
        config,
        LiveSeed {
            next,
            customers: gen_customers,
            recent,
        },
    ))
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
        let (shop, _, _) = build_shop(&spec).unwrap();
        let generated = generate::generate(&gen_config(&spec)).unwrap();
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
