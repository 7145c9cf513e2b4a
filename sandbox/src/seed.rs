//! Builds a seeded shop from the generator's records (converted by `convert`).

pub use crate::convert::{checkout, customer, order, refund, state};
use crate::generate::{self, GenConfig, GeneratedShop, LiveSeed};
use crate::state::Shop;
use crate::store::{Plan, ShopData, ShopInfo};
use chrono::{DateTime, Utc};

/// Ids minted by the sandbox itself start here, above every generator id range.
const OWN_ID_BASE: u64 = 40_000_000_000_000;
const OWN_ID_STRIDE: u64 = 100_000_000_000;
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
    // The flavour that adopts the shop gives it its key and address.
    let info = ShopInfo {
        id: 60_000_000_000 + generate_shop_id(&spec.name),
        name: spec.name.clone(),
        domain: spec.name.clone(),
        email: format!("owner@{}", spec.name),
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
