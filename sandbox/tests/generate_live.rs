//! Live mode: events refer to existing records, apply cleanly, continue the ids, and repeat for
//! a seed.

use std::collections::HashSet;

use chrono::Duration;
use lifecycle_sandbox::generate::{
    FinancialStatus, GenConfig, GenCustomer, GenOrder, GenRefund, GeneratedShop,
    LIVE_CANCEL_REASON, LiveEvent, LiveGenerator, LiveSlices, generate,
};

/// A minimal store that applies events the way the sandbox server is meant to.
struct Store {
    customers: Vec<GenCustomer>,
    orders: Vec<GenOrder>,
    checkouts: usize,
}

impl Store {
    fn from(shop: &GeneratedShop) -> Self {
        Store {
            customers: shop.customers.clone(),
            orders: shop.orders.clone(),
            checkouts: shop.checkouts.len(),
        }
    }

    fn order_mut(&mut self, id: u64) -> &mut GenOrder {
        self.orders
            .iter_mut()
            .find(|o| o.id == id)
            .expect("event targets an existing order")
    }

    fn apply(&mut self, event: LiveEvent) {
        match event {
            LiveEvent::NewCustomer(c) => self.customers.push(c),
            LiveEvent::NewOrder(o) => self.orders.push(o),
            LiveEvent::Refund { order_id, refund } => self
                .order_mut(order_id)
                .apply_refund(refund)
                .expect("valid refund"),
            LiveEvent::Cancel {
                order_id,
                at,
                refund_id,
            } => self
                .order_mut(order_id)
                .apply_cancel(at, LIVE_CANCEL_REASON, refund_id)
                .expect("cancellable"),
            LiveEvent::CustomerUpdate {
                customer_id,
                changes,
            } => {
                let c = self
                    .customers
                    .iter_mut()
                    .find(|c| c.id == customer_id)
                    .expect("event targets an existing customer");
                changes.apply(c);
            }
            LiveEvent::Checkout(_) => self.checkouts += 1,
        }
    }
}

fn kind(event: &LiveEvent) -> &'static str {
    match event {
        LiveEvent::NewCustomer(_) => "customer",
        LiveEvent::NewOrder(o) if o.customer_id.is_none() => "guest order",
        LiveEvent::NewOrder(_) => "order",
        LiveEvent::Refund { .. } => "refund",
        LiveEvent::Cancel { .. } => "cancel",
        LiveEvent::CustomerUpdate { .. } => "update",
        LiveEvent::Checkout(_) => "checkout",
    }
}

fn small_shop() -> (GenConfig, GeneratedShop) {
    let config = GenConfig {
        customers: 300,
        seed: 21,
        ..GenConfig::default()
    };
    let shop = generate(&config).unwrap();
    (config, shop)
}

#[test]
fn events_apply_cleanly_and_continue_the_ids() {
    let (config, shop) = small_shop();
    let mut store = Store::from(&shop);
    let max_customer = shop.customers.iter().map(|c| c.id).max().unwrap();
    let max_order = shop.orders.iter().map(|o| o.id).max().unwrap();
    let last_number = shop.orders.last().unwrap().number;
    let mut live = LiveGenerator::for_shop(1, &config, &shop);

    let mut kinds = HashSet::new();
    let mut now = config.end;
    for _ in 0..3_000 {
        now += Duration::seconds(30);
        let ctx = LiveSlices {
            customers: &store.customers,
            orders: &store.orders,
        };
        let event = live.next_event(now, &ctx);
        kinds.insert(kind(&event));
        match &event {
            LiveEvent::NewCustomer(c) => {
                assert!(c.id > max_customer);
                assert_eq!(c.created_at, now);
                assert!(store.customers.iter().all(|o| o.email != c.email));
            }
            LiveEvent::NewOrder(o) => {
                assert!(o.id > max_order && o.id > store.orders.last().unwrap().id);
                assert_eq!(o.number, store.orders.last().unwrap().number + 1);
                assert!(o.number > last_number);
                assert_eq!(o.created_at, now);
                if let Some(cid) = o.customer_id {
                    let c = store.customers.iter().find(|c| c.id == cid).unwrap();
                    assert_eq!(o.email, c.email);
                }
            }
            LiveEvent::Checkout(c) => assert!(c.completed_at.is_none()),
            _ => {}
        }
        store.apply(event);
    }
    for expected in [
        "customer",
        "order",
        "guest order",
        "refund",
        "cancel",
        "update",
        "checkout",
    ] {
        assert!(kinds.contains(expected), "no {expected} event in 3000");
    }
    assert!(store.checkouts > shop.checkouts.len());
    let ids: HashSet<u64> = store.orders.iter().map(|o| o.id).collect();
    assert_eq!(ids.len(), store.orders.len());
    let refunds: HashSet<u64> = store
        .orders
        .iter()
        .flat_map(|o| o.refunds.iter().map(|r| r.id))
        .collect();
    let refund_count: usize = store.orders.iter().map(|o| o.refunds.len()).sum();
    assert_eq!(refunds.len(), refund_count, "refund ids are unique");
    assert!(
        store
            .orders
            .iter()
            .all(|o| o.refunded_minor() <= o.total_price_minor)
    );
}

#[test]
fn the_same_seed_and_calls_give_the_same_events() {
    let (config, shop) = small_shop();
    let run = |seed: u64| {
        let mut live = LiveGenerator::for_shop(seed, &config, &shop);
        (0..200)
            .map(|i| live.next_event(config.end + Duration::minutes(i), &shop))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(4), run(4));
    assert_ne!(run(4), run(5));
}

#[test]
fn an_empty_shop_starts_with_customers_guests_and_checkouts() {
    let config = GenConfig {
        customers: 0,
        ..GenConfig::default()
    };
    let shop = generate(&config).unwrap();
    let mut store = Store::from(&shop);
    let mut live = LiveGenerator::for_shop(2, &config, &shop);
    for i in 0..50 {
        let ctx = LiveSlices {
            customers: &store.customers,
            orders: &store.orders,
        };
        let event = live.next_event(config.end + Duration::minutes(i), &ctx);
        store.apply(event);
    }
    assert!(!store.customers.is_empty());
    assert_eq!(store.orders.first().map(|o| o.number), Some(1001));
}

#[test]
fn refunds_and_cancellations_are_checked_when_applied() {
    let (config, shop) = small_shop();
    let mut order = shop
        .orders
        .iter()
        .find(|o| o.financial_status == FinancialStatus::Paid && o.cancelled_at.is_none())
        .unwrap()
        .clone();
    let at = config.end;
    let too_much = GenRefund {
        id: 1,
        created_at: at,
        amount_minor: order.total_price_minor + 1,
        note: String::new(),
    };
    assert!(order.apply_refund(too_much).is_err());
    let zero = GenRefund {
        id: 1,
        created_at: at,
        amount_minor: 0,
        note: String::new(),
    };
    assert!(order.apply_refund(zero).is_err());
    let part = GenRefund {
        id: 2,
        created_at: at,
        amount_minor: 1,
        note: "goodwill".into(),
    };
    order.apply_refund(part).unwrap();
    assert_eq!(order.financial_status, FinancialStatus::PartiallyRefunded);
    assert_eq!(order.updated_at, at);

    order.apply_cancel(at, "customer", 3).unwrap();
    assert_eq!(order.financial_status, FinancialStatus::Refunded);
    assert_eq!(order.refunded_minor(), order.total_price_minor);
    assert_eq!(order.net_minor(), 0);
    assert!(order.apply_cancel(at, "customer", 4).is_err());

    let mut declined = shop
        .orders
        .iter()
        .find(|o| o.financial_status == FinancialStatus::Paid && o.cancelled_at.is_none())
        .unwrap()
        .clone();
    declined.apply_cancel(at, "declined", 5).unwrap();
    assert_eq!(declined.financial_status, FinancialStatus::Voided);
    assert!(declined.refunds.is_empty());
}
