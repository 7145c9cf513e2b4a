//! Live traffic: the generator decides what happens next, the store applies it, and the
//! resulting webhooks go out, at a steady rate per shop.

use crate::generate::{
    GenConfig, GenCustomer, GenOrder, LIVE_CANCEL_REASON, LiveContext, LiveEvent, LiveGenerator,
    LiveSeed,
};
use crate::seed;
use crate::state::{Shop, State};
use crate::store::{Change, CustomerPatch, StoreError};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Refunds and cancellations only target recent orders, so only those are mirrored.
const RECENT_ORDERS: usize = LiveSeed::RECENT_ORDERS;

/// What the generator needs to see of the shop: every customer and the latest orders.
pub struct LiveMirror {
    generator: LiveGenerator,
    customers: Vec<GenCustomer>,
    customer_pos: HashMap<u64, usize>,
    recent: VecDeque<GenOrder>,
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
        }
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
        shop: &Shop,
        event: LiveEvent,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, StoreError> {
        let info = &shop.info;
        let mut data = shop.data.write();
        match event {
            LiveEvent::NewCustomer(c) => {
                let changes = data.insert_customer(info, seed::customer(&c))?;
                self.customer_pos.insert(c.id, self.customers.len());
                self.customers.push(c);
                Ok(changes)
            }
            LiveEvent::NewOrder(o) => {
                let mut order = seed::order(o.clone());
                if let Some(e) = &shop.ecwid {
                    crate::ecwid::use_store_coupon(e, &data, &mut order, now);
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
                Ok(data.upsert_checkout(info, seed::checkout(k, &info.currency)))
            }
        }
    }
}

/// Starts (or restarts) live traffic on `shop` at `rate` events per second.
pub fn start(state: Arc<State>, shop: Arc<Shop>, rate: f64) {
    stop(&shop);
    let period = Duration::from_secs_f64(1.0 / rate);
    let task_shop = shop.clone();
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Utc::now();
            let result = {
                let mut mirror = task_shop.live_mirror.lock();
                let Some(m) = mirror.as_mut() else { break };
                let event = m.next_event(now);
                m.apply(&task_shop, event, now)
            };
            match result {
                Ok(changes) => state.emit(&task_shop, changes),
                // The control API may have changed a record the generator still remembers.
                Err(e) => tracing::debug!(error = %e, "live event skipped"),
            }
        }
    });
    *shop.live.lock() = Some(handle);
}

pub fn stop(shop: &Shop) -> bool {
    match shop.live.lock().take() {
        Some(h) => {
            h.abort();
            true
        }
        None => false,
    }
}
