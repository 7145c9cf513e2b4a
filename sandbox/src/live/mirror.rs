//! Live traffic: the generator decides what happens next, the store applies it, and the
//! resulting webhooks go out, at a steady rate per shop.
//!
//! **Treatment effect.** A customer holding a personal code (issued to them alone through the
//! platform API, valid and not used up) uses it on their next order, and with an `uplift`
//! of u buys at (1 + u) times their natural rate until then: after each natural order of a
//! customer, u more customers are drawn the same way (the fraction of u as a chance), and
//! each drawn holder places an extra order. Extra orders are drawn from their own random
//! stream, so the natural events stay what they would have been, and are listed by id
//! ([`LiveMirror::uplift_orders`]) so a test knows the true effect. Ecwid coupons name no
//! customer, so there the knob has no holder to act on.

use crate::convert;
use crate::generate::{
    GenConfig, GenCustomer, GenOrder, LIVE_CANCEL_REASON, LiveContext, LiveEvent, LiveGenerator,
    LiveSeed,
};
use crate::store::model::Order;
use crate::store::{Change, CustomerPatch, StoreError};
use crate::store::{ShopData, ShopInfo};
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, VecDeque};

/// Refunds and cancellations only target recent orders, so only those are mirrored.
const RECENT_ORDERS: usize = LiveSeed::RECENT_ORDERS;

/// What live traffic needs of a shop: its info and data, and the flavour's say on an order
/// that used no personal code (e.g. an Ecwid store's own coupon).
pub trait LiveShop {
    fn info(&self) -> &ShopInfo;
    fn data(&self) -> &RwLock<ShopData>;
    fn live_order(&self, _data: &ShopData, _order: &mut Order, _now: DateTime<Utc>) {}
}

/// What the generator needs to see of the shop: every customer and the latest orders.
pub struct LiveMirror {
    generator: LiveGenerator,
    customers: Vec<GenCustomer>,
    customer_pos: HashMap<u64, usize>,
    recent: VecDeque<GenOrder>,
    uplift: f64,
    uplift_rng: ChaCha8Rng,
    uplift_orders: Vec<u64>,
    /// Natural events applied so far.
    events: u64,
}

struct View<'a> {
    customers: &'a [GenCustomer],
    recent: &'a [GenOrder],
}

impl LiveContext for View<'_> {
    fn customer_count(&self) -> usize {
        self.customers.len()
    }
    fn customer(&self, index: usize) -> Option<&GenCustomer> {
        self.customers.get(index)
    }
    fn order_count(&self) -> usize {
        self.recent.len()
    }
    fn order(&self, index: usize) -> Option<&GenOrder> {
        self.recent.get(index)
    }
}

impl LiveMirror {
    pub fn new(seed: u64, config: &GenConfig, from: LiveSeed) -> Self {
        let LiveSeed {
            next,
            customers,
            recent,
        } = from;
        let customer_pos = customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i))
            .collect();
        LiveMirror {
            generator: LiveGenerator::new(seed, config, next),
            customers,
            customer_pos,
            recent: recent.into(),
            uplift: 0.0,
            // Its own stream: extra orders must not shift the natural events.
            uplift_rng: ChaCha8Rng::seed_from_u64(seed ^ 0x7570_6c69_6674),
            uplift_orders: Vec::new(),
            events: 0,
        }
    }

    /// The treatment effect of a personal code: u ≥ 0 (0.3 = +30 %).
    pub fn set_uplift(&mut self, uplift: f64) {
        self.uplift = uplift.max(0.0);
    }

    pub fn uplift(&self) -> f64 {
        self.uplift
    }

    /// Ids of the orders the uplift added (the true effect of the codes).
    pub fn uplift_orders(&self) -> &[u64] {
        &self.uplift_orders
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    /// The extra orders of code holders after a natural order of a customer (see the module
    /// docs): applied to the store here; returns their webhooks.
    fn uplift_after(&mut self, shop: &dyn LiveShop, now: DateTime<Utc>) -> Vec<Change> {
        let mut draws = self.uplift.floor() as u64;
        if self.uplift_rng.random::<f64>() < self.uplift.fract() {
            draws += 1;
        }
        let mut changes = Vec::new();
        for _ in 0..draws {
            if self.customers.is_empty() {
                break;
            }
            let i = self.uplift_rng.random_range(0..self.customers.len());
            let holder = shop
                .data()
                .read()
                .personal_code(self.customers[i].id, now)
                .is_some();
            if !holder {
                continue;
            }
            let customer = self.customers[i].clone();
            let event = self
                .generator
                .order_for(now, &customer, &mut self.uplift_rng);
            if let LiveEvent::NewOrder(o) = &event {
                self.uplift_orders.push(o.id);
            }
            match self.apply(shop, event, now) {
                Ok(c) => changes.extend(c),
                Err(e) => tracing::debug!(error = %e, "uplift order skipped"),
            }
        }
        changes
    }

    /// One tick: the next natural event, then any extra orders it leads to.
    pub fn step(
        &mut self,
        shop: &dyn LiveShop,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, StoreError> {
        let event = self.next_event(now);
        let customer_order = matches!(&event, LiveEvent::NewOrder(o) if o.customer_id.is_some());
        self.events += 1;
        let mut changes = self.apply(shop, event, now)?;
        if customer_order && self.uplift > 0.0 {
            changes.extend(self.uplift_after(shop, now));
        }
        Ok(changes)
    }

    pub fn next_event(&mut self, now: DateTime<Utc>) -> LiveEvent {
        let recent = self.recent.make_contiguous();
        let view = View {
            customers: &self.customers,
            recent,
        };
        self.generator.next_event(now, &view)
    }

    /// Applies an event to the mirror and the store; returns the webhooks it causes.
    pub fn apply(
        &mut self,
        shop: &dyn LiveShop,
        event: LiveEvent,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, StoreError> {
        let info = shop.info();
        let mut data = shop.data().write();
        match event {
            LiveEvent::NewCustomer(c) => {
                let changes = data.insert_customer(info, convert::customer(&c))?;
                self.customer_pos.insert(c.id, self.customers.len());
                self.customers.push(c);
                Ok(changes)
            }
            LiveEvent::NewOrder(mut o) => {
                let personal = use_personal_code(&data, &mut o, now);
                let mut order = convert::order(o.clone());
                if !personal {
                    shop.live_order(&data, &mut order, now);
                }
                let changes = data.insert_order(info, order, now)?;
                if self.recent.len() == RECENT_ORDERS {
                    self.recent.pop_front();
                }
                self.recent.push_back(o);
                Ok(changes)
            }
            LiveEvent::Refund { order_id, refund } => {
                if let Some(o) = self.recent.iter_mut().find(|o| o.id == order_id) {
                    o.apply_refund(refund.clone())
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                }
                data.refund_order(
                    info,
                    order_id,
                    Some(refund.amount_minor),
                    Some(refund.note),
                    Some(refund.id),
                    now,
                )
            }
            LiveEvent::Cancel {
                order_id,
                at,
                refund_id,
            } => {
                if let Some(o) = self.recent.iter_mut().find(|o| o.id == order_id) {
                    o.apply_cancel(at, LIVE_CANCEL_REASON, refund_id)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                }
                data.cancel_order(
                    info,
                    order_id,
                    Some(LIVE_CANCEL_REASON.into()),
                    Some(refund_id),
                    now,
                )
            }
            LiveEvent::CustomerUpdate {
                customer_id,
                changes,
            } => {
                if let Some(&i) = self.customer_pos.get(&customer_id) {
                    changes.apply(&mut self.customers[i]);
                }
                // Apply only this change's adds and removes, keeping tags the app wrote.
                let tags = data.customers.get(customer_id).map(|c| {
                    c.tags
                        .iter()
                        .filter(|x| !changes.remove_tags.contains(x))
                        .chain(changes.add_tags.iter())
                        .cloned()
                        .collect()
                });
                let patch = CustomerPatch {
                    phone: changes.phone.clone(),
                    state: changes.state.map(|s| s.as_str().to_string()),
                    city: changes.city.clone(),
                    tags,
                    ..Default::default()
                };
                data.update_customer(info, customer_id, patch, now)
            }
            LiveEvent::Checkout(k) => {
                Ok(data.upsert_checkout(info, convert::checkout(k, &info.currency)))
            }
        }
    }
}

/// A customer holding a personal code uses it: the order carries the code and its discount
/// (replacing any other), off the subtotal, so its total is what the customer paid. Done on the
/// generator's order, which refunds are later drawn against. Returns whether it did.
fn use_personal_code(data: &crate::store::ShopData, o: &mut GenOrder, now: DateTime<Utc>) -> bool {
    use crate::store::model::DiscountValue;
    let Some(d) = o.customer_id.and_then(|c| data.personal_code(c, now)) else {
        return false;
    };
    let off = match &d.value {
        DiscountValue::Percentage(p) => (o.subtotal_minor as f64 * p).round() as i64,
        DiscountValue::Amount { amount_minor, .. } => *amount_minor,
    }
    .clamp(0, o.subtotal_minor);
    // total = subtotal − discounts + tax
    o.total_price_minor += o.total_discounts_minor - off;
    o.total_discounts_minor = off;
    o.discount_codes = vec![d.code.clone()];
    true
}
