//! Live mode: one event at a time, at a time the server chooses, against the server's own state.
//!
//! The server owns the timing (its rate and time scale) and the store; the generator only
//! decides what happens next and allocates the ids, continuing from the historic data:
//!
//! ```text
//! let mut live = LiveGenerator::for_shop(seed, &config, &shop);   // once
//! loop {                                                          // at the live rate
//!     let event = live.next_event(now, &store);                   // store: impl LiveContext
//!     store.apply(event)   // push new records; Refund -> GenOrder::apply_refund,
//!                          // Cancel -> GenOrder::apply_cancel, CustomerUpdate -> changes.apply
//! }
//! ```

use chrono::{DateTime, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::history::{STREAM_LIVE, stream};
use super::ids::{NextIds, number_order};
use super::model::{
    CustomerChanges, CustomerState, FinancialStatus, GenCheckout, GenCustomer, GenOrder, LiveEvent,
};
use super::names::{self, MERCHANT_TAGS};
use super::orders::{self, Buyer, OrderShape};
use super::people::{self, Currencies, Identity};
use super::process::Process;
use super::{GenConfig, GeneratedShop};

/// Read access to the server's current records, so live events refer to what exists.
/// Indexes are positions, `0..count`; orders should be in creation order (newest last),
/// because refunds and cancellations pick among the most recent ones.
pub trait LiveContext {
    fn customer_count(&self) -> usize;
    fn customer(&self, index: usize) -> Option<&GenCustomer>;
    fn order_count(&self) -> usize;
    fn order(&self, index: usize) -> Option<&GenOrder>;
}

/// A [`LiveContext`] over plain slices.
#[derive(Debug, Clone, Copy)]
pub struct LiveSlices<'a> {
    pub customers: &'a [GenCustomer],
    pub orders: &'a [GenOrder],
}

impl LiveContext for LiveSlices<'_> {
    fn customer_count(&self) -> usize {
        self.customers.len()
    }
    fn customer(&self, index: usize) -> Option<&GenCustomer> {
        self.customers.get(index)
    }
    fn order_count(&self) -> usize {
        self.orders.len()
    }
    fn order(&self, index: usize) -> Option<&GenOrder> {
        self.orders.get(index)
    }
}

impl LiveContext for GeneratedShop {
    fn customer_count(&self) -> usize {
        self.customers.len()
    }
    fn customer(&self, index: usize) -> Option<&GenCustomer> {
        self.customers.get(index)
    }
    fn order_count(&self) -> usize {
        self.orders.len()
    }
    fn order(&self, index: usize) -> Option<&GenOrder> {
        self.orders.get(index)
    }
}

/// Refunds and cancellations target one of this many most recent orders.
const REFUND_WINDOW: usize = 500;
const CANCEL_WINDOW: usize = 100;
/// Attempts to find an order that can take a refund or a cancellation before giving up.
const ATTEMPTS: usize = 8;

/// Produces live activity, deterministically for a seed and a sequence of calls.
pub struct LiveGenerator {
    rng: ChaCha8Rng,
    process: Process,
    shape: OrderShape,
    shop_currency: String,
    second_currency: String,
    second_share: f64,
    next: NextIds,
}

impl LiveGenerator {
    /// A generator whose ids start at `next`. `config` must be valid (as accepted by
    /// [`super::generate`]); its shares, currencies and true parameters shape the events.
    pub fn new(seed: u64, config: &GenConfig, next: NextIds) -> Self {
        LiveGenerator {
            rng: stream(seed, STREAM_LIVE),
            process: Process::new(&config.params),
            shape: OrderShape::new(config),
            shop_currency: config.shop_currency.clone(),
            second_currency: config.second_currency.clone(),
            second_share: config.second_currency_share,
            next,
        }
    }

    /// A generator that continues after the historic data of `shop`.
    pub fn for_shop(seed: u64, config: &GenConfig, shop: &GeneratedShop) -> Self {
        Self::new(seed, config, shop.next_ids(&config.shop_name))
    }

    /// The ids the next records will get.
    pub fn next_ids(&self) -> NextIds {
        self.next
    }

    /// The next event at `now`. `now` should not be earlier than the records in `ctx`.
    /// Mix: 40 % orders of existing customers, 5 % guest orders, 10 % new customers, 15 %
    /// abandoned checkouts, 12 % customer updates, 10 % refunds, 8 % cancellations; a kind
    /// that has nothing to act on (no customers yet, no refundable order) becomes a new
    /// customer or an order instead.
    pub fn next_event(&mut self, now: DateTime<Utc>, ctx: &impl LiveContext) -> LiveEvent {
        let roll = self.rng.random_range(0..100);
        let event = match roll {
            0..40 => self.customer_order(now, ctx),
            40..45 => Some(self.guest_order(now)),
            45..55 => None,
            55..70 => Some(self.checkout(now, ctx)),
            70..82 => self.customer_update(now, ctx),
            82..92 => self.refund(now, ctx),
            _ => self.cancel(now, ctx),
        };
        match event {
            Some(event) => event,
            // An update, refund or cancellation with nothing to act on becomes an order.
            None if roll >= 70 => self
                .customer_order(now, ctx)
                .unwrap_or_else(|| self.new_customer(now)),
            None => self.new_customer(now),
        }
    }

    fn new_identity(&mut self, n: u64) -> Identity {
        let currencies = Currencies {
            shop: &self.shop_currency,
            second: &self.second_currency,
            second_share: self.second_share,
        };
        people::identity(&mut self.rng, n, &currencies)
    }

    fn new_customer(&mut self, now: DateTime<Utc>) -> LiveEvent {
        let id = self.next.take_customer();
        // The id is unique and far above the historic email numbers, so the email is unique.
        let who = self.new_identity(id);
        let state = if self.rng.random::<bool>() {
            CustomerState::Enabled
        } else {
            CustomerState::Invited
        };
        LiveEvent::NewCustomer(who.customer(&mut self.rng, id, now, state))
    }

    fn random_customer<'c>(&mut self, ctx: &'c impl LiveContext) -> Option<&'c GenCustomer> {
        let count = ctx.customer_count();
        if count == 0 {
            return None;
        }
        ctx.customer(self.rng.random_range(0..count))
    }

    fn customer_buyer(customer: &GenCustomer) -> Buyer<'_> {
        Buyer {
            customer_id: Some(customer.id),
            email: &customer.email,
            currency: &customer.currency,
            tax_rate: people::locale_of(&customer.country_code).tax_rate,
        }
    }

    /// An order value for a buyer whose spend rate is unknown: ν drawn from the population.
    fn population_value(&mut self) -> i64 {
        let nu = self.process.traits(&mut self.rng).nu;
        let value = self.process.order_value(&mut self.rng, nu);
        self.shape.to_minor(value)
    }

    fn finish_order(&mut self, mut order: GenOrder) -> LiveEvent {
        number_order(&mut order, &mut self.next);
        LiveEvent::NewOrder(order)
    }

    fn customer_order(&mut self, now: DateTime<Utc>, ctx: &impl LiveContext) -> Option<LiveEvent> {
        let customer = self.random_customer(ctx)?;
        let total = self.population_value();
        let order = self
            .shape
            .order(&mut self.rng, &Self::customer_buyer(customer), now, total);
        Some(self.finish_order(order))
    }

    /// An order of `customer` at `now`, drawn from `rng` rather than the generator's own
    /// stream, so an extra order (the treatment-effect knob) leaves the natural sequence of
    /// events as it would have been; it still takes the next ids.
    pub fn order_for(
        &mut self,
        now: DateTime<Utc>,
        customer: &GenCustomer,
        rng: &mut impl Rng,
    ) -> LiveEvent {
        let nu = self.process.traits(rng).nu;
        let total = self.shape.to_minor(self.process.order_value(rng, nu));
        let order = self
            .shape
            .order(rng, &Self::customer_buyer(customer), now, total);
        self.finish_order(order)
    }

    fn guest_order(&mut self, now: DateTime<Utc>) -> LiveEvent {
        let n = self.next.order;
        let who = self.new_identity(n);
        let total = self.population_value();
        let order = self
            .shape
            .order(&mut self.rng, &who.buyer(None), now, total);
        self.finish_order(order)
    }

    fn checkout(&mut self, now: DateTime<Utc>, ctx: &impl LiveContext) -> LiveEvent {
        let total = self.population_value();
        let guest = self.rng.random::<f64>() < 0.3;
        let mut checkout: GenCheckout = match self.random_customer(ctx).filter(|_| !guest) {
            Some(customer) => {
                self.shape
                    .checkout(&mut self.rng, &Self::customer_buyer(customer), now, total)
            }
            None => {
                let n = self.next.checkout;
                let who = self.new_identity(n);
                self.shape
                    .checkout(&mut self.rng, &who.buyer(None), now, total)
            }
        };
        checkout.id = self.next.take_checkout();
        for item in &mut checkout.line_items {
            item.id = self.next.take_line_item();
        }
        LiveEvent::Checkout(checkout)
    }

    fn customer_update(&mut self, now: DateTime<Utc>, ctx: &impl LiveContext) -> Option<LiveEvent> {
        let customer = self.random_customer(ctx)?;
        let mut changes = CustomerChanges {
            at: now,
            add_tags: Vec::new(),
            remove_tags: Vec::new(),
            state: None,
            phone: None,
            city: None,
        };
        let locale = people::locale_of(&customer.country_code);
        match self.rng.random_range(0..4) {
            0 => {
                let (tag, _) = names::pick(&mut self.rng, MERCHANT_TAGS);
                changes.add_tags.push(tag.to_string());
            }
            1 if !customer.tags.is_empty() => {
                let tag = names::pick(&mut self.rng, &customer.tags);
                changes.remove_tags.push(tag.clone());
            }
            2 => {
                changes.state = Some(match customer.state {
                    CustomerState::Enabled => CustomerState::Disabled,
                    _ => CustomerState::Enabled,
                });
            }
            3 => changes.phone = Some(names::phone(&mut self.rng, locale)),
            _ => changes.city = Some(names::pick(&mut self.rng, locale.cities).to_string()),
        }
        Some(LiveEvent::CustomerUpdate {
            customer_id: customer.id,
            changes,
        })
    }

    /// A recent order accepted by `fits`, or None after a few misses.
    fn recent_order<'c>(
        &mut self,
        ctx: &'c impl LiveContext,
        window: usize,
        fits: impl Fn(&GenOrder) -> bool,
    ) -> Option<&'c GenOrder> {
        let count = ctx.order_count();
        if count == 0 {
            return None;
        }
        let from = count.saturating_sub(window);
        (0..ATTEMPTS)
            .filter_map(|_| ctx.order(self.rng.random_range(from..count)))
            .find(|o| fits(o))
    }

    fn refund(&mut self, now: DateTime<Utc>, ctx: &impl LiveContext) -> Option<LiveEvent> {
        let order = self.recent_order(ctx, REFUND_WINDOW, |o| {
            o.cancelled_at.is_none()
                && o.financial_status != FinancialStatus::Voided
                && o.refunded_minor() < o.total_price_minor
                && o.updated_at <= now
        })?;
        let mut refund = orders::refund(&mut self.rng, order, now);
        refund.id = self.next.take_refund();
        Some(LiveEvent::Refund {
            order_id: order.id,
            refund,
        })
    }

    fn cancel(&mut self, now: DateTime<Utc>, ctx: &impl LiveContext) -> Option<LiveEvent> {
        let order = self.recent_order(ctx, CANCEL_WINDOW, |o| {
            o.cancelled_at.is_none()
                && o.financial_status == FinancialStatus::Paid
                && o.updated_at <= now
        })?;
        Some(LiveEvent::Cancel {
            order_id: order.id,
            at: now,
            refund_id: self.next.take_refund(),
        })
    }
}
