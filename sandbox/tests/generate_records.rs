//! The historic data set: reproducibility, ids, money arithmetic, shares and bad input.

use std::collections::{HashMap, HashSet};

use lifecycle_sandbox::generate::{
    FinancialStatus, GenConfig, GenError, GeneratedShop, MAX_CUSTOMERS, TrueParams, generate,
};
use sha2::{Digest, Sha256};

fn config(customers: usize, seed: u64) -> GenConfig {
    GenConfig {
        customers,
        seed,
        ..GenConfig::default()
    }
}

fn digest(shop: &GeneratedShop) -> String {
    let bytes = serde_json::to_vec(shop).expect("serialisable");
    hex::encode(Sha256::digest(&bytes))
}

fn shop() -> (GenConfig, GeneratedShop) {
    let config = config(3_000, 5);
    let shop = generate(&config).expect("valid config");
    (config, shop)
}

#[test]
fn same_seed_gives_identical_data_and_another_seed_does_not() {
    let first = generate(&config(1_500, 99)).unwrap();
    let again = generate(&config(1_500, 99)).unwrap();
    assert_eq!(digest(&first), digest(&again));
    assert_eq!(first, again);
    let other = generate(&config(1_500, 100)).unwrap();
    assert_ne!(digest(&first), digest(&other));
}

#[test]
fn a_customer_does_not_depend_on_how_many_customers_follow() {
    // Each customer has its own random stream, so a larger shop extends a smaller one.
    let small = generate(&config(200, 3)).unwrap();
    let large = generate(&config(400, 3)).unwrap();
    let emails: HashSet<&str> = large.customers.iter().map(|c| c.email.as_str()).collect();
    assert!(
        small
            .customers
            .iter()
            .all(|c| emails.contains(c.email.as_str()))
    );
}

#[test]
fn ids_are_unique_and_increase_with_time() {
    let (_, shop) = shop();
    fn increasing<T>(items: &[T], key: impl Fn(&T) -> (i64, u64)) {
        for pair in items.windows(2) {
            let (t0, id0) = key(&pair[0]);
            let (t1, id1) = key(&pair[1]);
            assert!(t0 <= t1, "records are in time order");
            assert!(id0 < id1, "ids increase with time: {id0} then {id1}");
        }
    }
    increasing(&shop.customers, |c| (c.created_at.timestamp_millis(), c.id));
    increasing(&shop.orders, |o| (o.created_at.timestamp_millis(), o.id));
    increasing(&shop.checkouts, |c| (c.created_at.timestamp_millis(), c.id));

    for (i, order) in shop.orders.iter().enumerate() {
        assert_eq!(order.number, 1001 + i as u64);
        assert_eq!(order.name, format!("#{}", order.number));
    }
    let mut refunds: Vec<_> = shop
        .orders
        .iter()
        .flat_map(|o| o.refunds.iter().map(|r| (r.created_at, r.id)))
        .collect();
    assert!(!refunds.is_empty());
    refunds.sort();
    assert!(refunds.windows(2).all(|w| w[0].1 < w[1].1));

    let mut line_items = HashSet::new();
    for item in shop
        .orders
        .iter()
        .flat_map(|o| &o.line_items)
        .chain(shop.checkouts.iter().flat_map(|c| &c.line_items))
    {
        assert!(
            line_items.insert(item.id),
            "line item id {} reused",
            item.id
        );
    }
    let tokens: HashSet<&str> = shop.checkouts.iter().map(|c| c.token.as_str()).collect();
    assert_eq!(tokens.len(), shop.checkouts.len());
}

#[test]
fn order_money_adds_up_and_statuses_match_refunds() {
    let (config, shop) = shop();
    let start = config.start();
    for o in &shop.orders {
        let items: i64 = o
            .line_items
            .iter()
            .map(|l| l.price_minor * i64::from(l.quantity))
            .sum();
        assert!(!o.line_items.is_empty());
        assert!(
            o.line_items
                .iter()
                .all(|l| l.price_minor > 0 && l.quantity > 0)
        );
        assert_eq!(items, o.subtotal_minor, "order {}", o.id);
        assert_eq!(
            o.subtotal_minor - o.total_discounts_minor + o.total_tax_minor,
            o.total_price_minor
        );
        assert!(o.total_price_minor > 0 && o.total_tax_minor >= 0);
        assert_eq!(o.total_discounts_minor > 0, !o.discount_codes.is_empty());
        assert!(o.created_at >= start && o.created_at <= config.end);
        assert!(o.updated_at >= o.created_at && o.updated_at <= config.end);
        assert_eq!(o.currency, "USD");
        assert!(!o.test);

        let refunded = o.refunded_minor();
        assert!(refunded <= o.total_price_minor);
        assert!(o.refunds.iter().all(|r| r.amount_minor > 0
            && r.created_at >= o.created_at
            && r.created_at <= config.end));
        let expected = if o.financial_status == FinancialStatus::Voided {
            assert!(o.refunds.is_empty() && o.cancelled_at.is_some());
            FinancialStatus::Voided
        } else if refunded == 0 {
            FinancialStatus::Paid
        } else if refunded == o.total_price_minor {
            FinancialStatus::Refunded
        } else {
            FinancialStatus::PartiallyRefunded
        };
        assert_eq!(o.financial_status, expected, "order {}", o.id);
        if let Some(at) = o.cancelled_at {
            assert!(at >= o.created_at && at <= config.end);
            assert!(o.cancel_reason.is_some());
            assert_eq!(o.net_minor(), 0);
        } else {
            assert!(o.cancel_reason.is_none());
        }
    }
}

#[test]
fn orders_belong_to_existing_customers_after_they_signed_up() {
    let (_, shop) = shop();
    let customers: HashMap<u64, _> = shop.customers.iter().map(|c| (c.id, c)).collect();
    assert_eq!(
        customers.len(),
        shop.customers.len(),
        "customer ids are unique"
    );
    for o in &shop.orders {
        if let Some(id) = o.customer_id {
            let c = customers.get(&id).expect("order of a known customer");
            assert_eq!(o.email, c.email);
            assert!(o.created_at >= c.created_at);
            assert!(c.updated_at >= o.created_at || o.cancelled_at.is_some());
        }
    }
    for ch in &shop.checkouts {
        if let Some(id) = ch.customer_id {
            assert!(customers.contains_key(&id));
        }
    }
}

#[test]
fn names_are_international_and_emails_ascii_unique_and_on_example_domains() {
    let (_, shop) = shop();
    let mut emails = HashSet::new();
    for c in &shop.customers {
        let (local, domain) = c.email.split_once('@').expect("an @");
        assert!(["example.com", "example.org", "example.net"].contains(&domain));
        assert!(local.is_ascii() && !local.is_empty(), "{}", c.email);
        assert!(
            emails.insert(c.email.clone()),
            "duplicate email {}",
            c.email
        );
        assert!(!c.first_name.is_empty() && !c.last_name.is_empty());
        if let Some(phone) = &c.phone {
            assert!(phone.starts_with('+') && phone[1..].bytes().all(|b| b.is_ascii_digit()));
        }
    }
    let non_ascii = shop
        .customers
        .iter()
        .filter(|c| !c.first_name.is_ascii() || !c.last_name.is_ascii())
        .count();
    assert!(
        non_ascii * 5 > shop.customers.len(),
        "{non_ascii} non-ASCII names"
    );
    assert!(
        shop.customers
            .iter()
            .any(|c| c.last_name == "李" || c.last_name == "王")
    );
    assert!(
        shop.customers
            .iter()
            .any(|c| c.tags.iter().any(|t| t == "vip"))
    );
    assert!(shop.customers.iter().any(|c| c.tags.is_empty()));
}

fn share(part: usize, whole: usize) -> f64 {
    part as f64 / whole as f64
}

#[test]
fn special_cases_appear_at_their_configured_shares() {
    let (config, shop) = shop();
    let orders = &shop.orders;
    let live: Vec<_> = orders.iter().filter(|o| o.cancelled_at.is_none()).collect();

    let guests = live.iter().filter(|o| o.customer_id.is_none()).count();
    let guest_share = share(guests, live.len());
    assert!(
        (guest_share - config.guest_order_share).abs() < 0.01,
        "guests {guest_share}"
    );

    let discounted = orders
        .iter()
        .filter(|o| !o.discount_codes.is_empty())
        .count();
    let discount_share = share(discounted, orders.len());
    assert!(
        (discount_share - config.discount_share).abs() < 0.02,
        "discounts {discount_share}"
    );

    let second = orders
        .iter()
        .filter(|o| o.presentment_currency == config.second_currency)
        .count();
    let second_share = share(second, orders.len());
    // Per customer, so heavy buyers make the order share noisier than the customer share.
    assert!(
        (second_share - config.second_currency_share).abs() < 0.05,
        "EUR {second_share}"
    );
    for o in orders.iter().filter(|o| o.presentment_currency == "EUR") {
        assert_eq!(o.exchange_rate, config.second_currency_rate);
        let expected = (o.total_price_minor as f64 * config.second_currency_rate).round() as i64;
        assert_eq!(o.presentment_minor(o.total_price_minor), expected);
    }

    let cancelled = orders.len() - live.len();
    let customer_live = live.len() - guests;
    let cancel_share = share(cancelled, customer_live + guests);
    assert!(
        (cancel_share - config.cancel_share).abs() < 0.01,
        "cancels {cancel_share}"
    );

    // Refunds are kept only when they fall before the end, so slightly below the share.
    let refunded = live.iter().filter(|o| !o.refunds.is_empty()).count();
    let refund_share = share(refunded, live.len());
    assert!(
        refund_share <= config.refund_share + 0.01 && refund_share > config.refund_share * 0.7,
        "refunds {refund_share}"
    );
    assert!(
        live.iter()
            .any(|o| o.financial_status == FinancialStatus::Refunded)
    );
    assert!(
        live.iter()
            .any(|o| o.financial_status == FinancialStatus::PartiallyRefunded)
    );

    let abandoned = shop
        .checkouts
        .iter()
        .filter(|c| c.completed_at.is_none())
        .count();
    assert!(abandoned > 0);
    let per_order = share(shop.checkouts.len(), live.len());
    assert!(
        (per_order - config.abandon_rate).abs() < 0.05,
        "checkouts/order {per_order}"
    );

    // Recovered checkouts complete exactly when their order is placed.
    let by_token: HashMap<&str, _> = orders
        .iter()
        .filter_map(|o| o.checkout_token.as_deref().map(|t| (t, o)))
        .collect();
    let recovered: Vec<_> = shop
        .checkouts
        .iter()
        .filter(|c| c.completed_at.is_some())
        .collect();
    assert!(!recovered.is_empty());
    assert_eq!(recovered.len(), by_token.len());
    for c in recovered {
        let order = by_token[c.token.as_str()];
        assert_eq!(c.completed_at, Some(order.created_at));
        assert!(c.created_at <= order.created_at);
        assert_eq!(c.customer_id, order.customer_id);
    }

    let prospects = {
        let buyers: HashSet<u64> = orders.iter().filter_map(|o| o.customer_id).collect();
        shop.customers
            .iter()
            .filter(|c| !buyers.contains(&c.id))
            .count()
    };
    let prospect_share = share(prospects, shop.customers.len());
    assert!(
        (prospect_share - config.prospect_share).abs() < 0.015,
        "prospects {prospect_share}"
    );
}

#[test]
fn transactions_are_the_non_cancelled_customer_orders_net_of_refunds() {
    let (_, shop) = shop();
    let tx: Vec<_> = shop.transactions().collect();
    let expected: Vec<_> = shop
        .orders
        .iter()
        .filter(|o| o.customer_id.is_some() && o.cancelled_at.is_none())
        .map(|o| {
            let refunded: i64 = o.refunds.iter().map(|r| r.amount_minor).sum();
            (
                o.customer_id.unwrap(),
                o.created_at,
                o.total_price_minor - refunded,
            )
        })
        .collect();
    assert_eq!(tx, expected);
    assert!(tx.windows(2).all(|w| w[0].1 <= w[1].1));
    assert!(
        tx.iter().any(|t| t.2 == 0),
        "a fully refunded order still counts, with net 0"
    );
}

#[test]
fn default_parameters_give_about_ten_orders_per_ordering_customer() {
    let shop = generate(&config(5_000, 8)).unwrap();
    let buyers: HashSet<u64> = shop.transactions().map(|t| t.0).collect();
    let per_buyer = shop.transactions().count() as f64 / buyers.len() as f64;
    assert!(
        (8.0..12.0).contains(&per_buyer),
        "{per_buyer} orders per buyer"
    );
}

#[test]
fn an_empty_shop_and_a_one_day_history_work() {
    let empty = generate(&config(0, 1)).unwrap();
    assert!(empty.customers.is_empty() && empty.orders.is_empty());
    let short = generate(&GenConfig {
        history_days: 1,
        ..config(50, 1)
    })
    .unwrap();
    assert_eq!(short.customers.len(), 50);
}

#[test]
fn bad_settings_are_rejected_with_the_setting_named() {
    let cases: Vec<(GenConfig, &str)> = vec![
        (
            GenConfig {
                history_days: 0,
                ..GenConfig::default()
            },
            "history_days",
        ),
        (
            GenConfig {
                customers: MAX_CUSTOMERS + 1,
                ..GenConfig::default()
            },
            "customers",
        ),
        (
            GenConfig {
                discount_share: 1.5,
                ..GenConfig::default()
            },
            "discount_share",
        ),
        (
            GenConfig {
                refund_share: f64::NAN,
                ..GenConfig::default()
            },
            "refund_share",
        ),
        (
            GenConfig {
                guest_order_share: 1.0,
                ..GenConfig::default()
            },
            "guest_order_share",
        ),
        (
            GenConfig {
                shop_currency: "usd".into(),
                ..GenConfig::default()
            },
            "shop_currency",
        ),
        (
            GenConfig {
                shop_name: " ".into(),
                ..GenConfig::default()
            },
            "shop_name",
        ),
        (
            GenConfig {
                params: TrueParams {
                    alpha: 0.0,
                    ..TrueParams::default()
                },
                ..GenConfig::default()
            },
            "alpha",
        ),
        (
            GenConfig {
                params: TrueParams {
                    q: 1.0,
                    ..TrueParams::default()
                },
                ..GenConfig::default()
            },
            "q",
        ),
        (
            GenConfig {
                params: TrueParams {
                    r: f64::INFINITY,
                    ..TrueParams::default()
                },
                ..GenConfig::default()
            },
            "r",
        ),
    ];
    for (config, name) in cases {
        let err = generate(&config).expect_err(name);
        let named = match &err {
            GenError::InvalidParam { name, .. } | GenError::InvalidSetting { name, .. } => *name,
            GenError::Rejected(_) => "",
        };
        assert_eq!(named, name, "{err}");
        assert!(err.to_string().contains(name));
    }
}

#[test]
fn true_parameters_print_and_serialise() {
    let params = TrueParams::default();
    let text = params.to_string();
    assert!(
        text.contains("r=0.9") && text.contains("gamma=30"),
        "{text}"
    );
    let json = serde_json::to_string(&params).unwrap();
    let back: TrueParams = serde_json::from_str(&json).unwrap();
    assert_eq!(back, params);
}
