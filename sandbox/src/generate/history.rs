//! The historic data set: customers drawn one by one from their own random stream, then every
//! kind of record sorted by time and numbered, so ids increase with time.

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};

use super::ids::{NextIds, number_order};
use super::model::{CustomerState, GenCheckout, GenCustomer, GenOrder};
use super::names::{self, CANCEL_REASONS};
use super::orders::{Buyer, OrderShape};
use super::people::{self, Currencies};
use super::process::Process;
use super::{GenConfig, GenError, GenStats, GeneratedShop};

const MS_PER_DAY: f64 = 86_400_000.0;

/// Random streams: one per customer and one per guest, so a record depends only on the seed
/// and its own index (not on how many numbers earlier records consumed).
const STREAM_CUSTOMER: u64 = 0;
const STREAM_GUEST: u64 = 1 << 60;
const STREAM_SHOP: u64 = 2 << 60;
pub(crate) const STREAM_LIVE: u64 = 3 << 60;

pub(crate) fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Builds the whole shop. `config` must be valid.
pub(crate) fn generate(config: &GenConfig) -> Result<(GeneratedShop, GenStats), GenError> {
    config.validate()?;
    let mut history = History::new(config);
    for index in 0..config.customers {
        history.customer(index);
    }
    history.guests();
    Ok(history.finish())
}

struct History<'a> {
    config: &'a GenConfig,
    process: Process,
    shape: OrderShape,
    start: DateTime<Utc>,
    horizon_days: f64,
    customers: Vec<GenCustomer>,
    /// Customer orders carry the customer's index in `customer_id` until `finish` maps it.
    orders: Vec<GenOrder>,
    checkouts: Vec<GenCheckout>,
    /// Orders of the purchase process (not the extra cancelled attempts), for the guest count.
    process_orders: usize,
    stats: GenStats,
    times: Vec<f64>,
}

impl<'a> History<'a> {
    fn new(config: &'a GenConfig) -> Self {
        // ~10 orders per customer; reserving avoids regrowth copies of the big vector.
        let expected = config.customers.saturating_mul(11);
        History {
            config,
            process: Process::new(&config.params),
            shape: OrderShape::new(config),
            start: config.start(),
            horizon_days: f64::from(config.history_days),
            customers: Vec::with_capacity(config.customers),
            orders: Vec::with_capacity(expected),
            checkouts: Vec::with_capacity(expected / 3),
            process_orders: 0,
            stats: GenStats::default(),
            times: Vec::new(),
        }
    }

    fn at(&self, days: f64) -> DateTime<Utc> {
        self.start + Duration::milliseconds((days * MS_PER_DAY) as i64)
    }

    fn customer(&mut self, index: usize) {
        let config = self.config;
        let mut rng = stream(config.seed, STREAM_CUSTOMER + index as u64);
        let who = people::identity(&mut rng, index as u64, &self.currencies());
        let prospect = rng.random::<f64>() < config.prospect_share;
        let customer_ref = Some(index as u64);

        let (created_days, state, last_activity) = if prospect {
            let created = rng.random_range(0.0..self.horizon_days);
            let state = match rng.random_range(0..10) {
                0..5 => CustomerState::Enabled,
                5..8 => CustomerState::Invited,
                8 => CustomerState::Declined,
                _ => CustomerState::Disabled,
            };
            // Prospects abandon checkouts at half the rate of buyers.
            for _ in 0..checkout_count(&mut rng, config.abandon_rate / 2.0) {
                self.abandoned(&mut rng, &who.buyer(customer_ref), created, None);
            }
            (created, state, created)
        } else {
            let traits = self.process.traits(&mut rng);
            let first_purchase = rng.random_range(0.0..self.horizon_days);
            let mut times = std::mem::take(&mut self.times);
            times.clear();
            self.process.purchase_times(
                &mut rng,
                &traits,
                first_purchase,
                self.horizon_days,
                &mut times,
            );
            // Half sign up in the checkout of their first order, the others a little before.
            let lead = if rng.random::<bool>() {
                0.0
            } else {
                2.0 * Distribution::<f64>::sample(&Exp1, &mut rng)
            };
            let created = (first_purchase - lead).max(0.0);
            let buyer = who.buyer(customer_ref);
            for &t in &times {
                let value = self.process.order_value(&mut rng, traits.nu);
                self.purchase(&mut rng, &buyer, created, t, value);
            }
            let state = match rng.random_range(0..20) {
                0..12 => CustomerState::Enabled,
                12..19 => CustomerState::Disabled,
                _ => CustomerState::Invited,
            };
            let last = *times.last().unwrap_or(&created);
            self.times = times;
            (created, state, last)
        };

        let created_at = self.at(created_days);
        let mut customer = who.customer(&mut rng, 0, created_at, state);
        customer.updated_at = self.at(last_activity).max(created_at);
        self.customers.push(customer);
        self.stats.random_words += words_used(&rng);
    }

    /// One purchase of the process at day `t` worth `value` shop-currency units, with its
    /// side records: a possible refund, a cancelled attempt before it, abandoned checkouts.
    fn purchase(
        &mut self,
        rng: &mut ChaCha8Rng,
        buyer: &Buyer<'_>,
        earliest: f64,
        t: f64,
        value: f64,
    ) {
        let config = self.config;
        let created_at = self.at(t);
        let mut order = self
            .shape
            .order(rng, buyer, created_at, self.shape.to_minor(value));
        self.shape.maybe_refund(rng, &mut order, config.end);

        if rng.random::<f64>() < config.cancel_share {
            // A cancelled attempt shortly before the real purchase (re-ordered after cancelling).
            let placed = (t - rng.random_range(0.02..2.0)).max(earliest);
            let cancelled = rng.random_range(placed..=t);
            let total = self.shape.to_minor(value * rng.random_range(0.8..1.2));
            let mut attempt = self.shape.order(rng, buyer, self.at(placed), total);
            let reason = names::pick(rng, CANCEL_REASONS);
            // A fresh order can always be cancelled.
            let _ = attempt.apply_cancel(self.at(cancelled).max(attempt.created_at), reason, 0);
            self.orders.push(attempt);
        }

        for _ in 0..checkout_count(rng, config.abandon_rate) {
            let recovered = order.checkout_token.is_none()
                && rng.random::<f64>() < config.abandon_recovered_share;
            if recovered {
                let begun = (t - rng.random_range(0.04..3.0)).max(earliest);
                let mut checkout =
                    self.shape
                        .checkout(rng, buyer, self.at(begun), order.total_price_minor);
                checkout.completed_at = Some(created_at);
                checkout.updated_at = created_at;
                order.checkout_token = Some(checkout.token.clone());
                self.checkouts.push(checkout);
            } else {
                self.abandoned(rng, buyer, earliest, Some(value));
            }
        }
        self.orders.push(order);
        self.process_orders += 1;
    }

    /// An abandoned checkout at a uniform time between `earliest` (days) and the end.
    fn abandoned(
        &mut self,
        rng: &mut ChaCha8Rng,
        buyer: &Buyer<'_>,
        earliest: f64,
        value: Option<f64>,
    ) {
        let day = rng.random_range(earliest..=self.horizon_days);
        let value = value.unwrap_or_else(|| {
            let nu = self.process.traits(rng).nu;
            self.process.order_value(rng, nu)
        }) * rng.random_range(0.6..1.4);
        let total = self.shape.to_minor(value);
        let at = self.at(day).min(self.config.end);
        let checkout = self.shape.checkout(rng, buyer, at, total);
        self.checkouts.push(checkout);
    }

    fn currencies(&self) -> Currencies<'a> {
        Currencies {
            shop: &self.config.shop_currency,
            second: &self.config.second_currency,
            second_share: self.config.second_currency_share,
        }
    }

    /// Guest orders: a share of all non-cancelled orders, spread uniformly over the history.
    fn guests(&mut self) {
        let config = self.config;
        let share = config.guest_order_share;
        let mut shop_rng = stream(config.seed, STREAM_SHOP);
        let expected = self.process_orders as f64 * share / (1.0 - share);
        // Round stochastically so small shops still get guests on average.
        let count =
            expected.floor() as u64 + u64::from(shop_rng.random::<f64>() < expected.fract());
        for guest in 0..count {
            let mut rng = stream(config.seed, STREAM_GUEST + guest);
            let who = people::identity(
                &mut rng,
                config.customers as u64 + guest,
                &self.currencies(),
            );
            let buyer = who.buyer(None);
            let t = rng.random_range(0.0..self.horizon_days);
            let nu = self.process.traits(&mut rng).nu;
            let value = self.process.order_value(&mut rng, nu);
            let before = self.process_orders;
            self.purchase(&mut rng, &buyer, t, t, value);
            // Guest orders are not part of the purchase process.
            self.process_orders = before;
            self.stats.random_words += words_used(&rng);
            self.stats.guest_orders += 1;
        }
    }

    /// Sorts every kind by time, gives ids in that order and maps customer indexes to ids.
    fn finish(mut self) -> (GeneratedShop, GenStats) {
        let config = self.config;
        let mut next = NextIds::first(&config.shop_name);

        let mut customers = self.customers;
        let origin = sort_by_time(&mut customers, |c| c.created_at);
        let mut customer_ids = vec![0u64; customers.len()];
        for (customer, index) in customers.iter_mut().zip(origin) {
            customer.id = next.take_customer();
            customer_ids[index as usize] = customer.id;
        }
        let map_customer = |id: &mut Option<u64>| {
            if let Some(index) = id {
                *index = customer_ids[*index as usize];
            }
        };

        let mut orders = self.orders;
        sort_by_time(&mut orders, |o| o.created_at);
        for order in &mut orders {
            number_order(order, &mut next);
            map_customer(&mut order.customer_id);
        }
        // Refund ids follow refund time across all orders.
        let mut refunds: Vec<(DateTime<Utc>, u32, u32)> = Vec::new();
        for (o, order) in orders.iter().enumerate() {
            for (r, refund) in order.refunds.iter().enumerate() {
                refunds.push((refund.created_at, o as u32, r as u32));
            }
        }
        refunds.sort_unstable();
        for (_, o, r) in refunds {
            orders[o as usize].refunds[r as usize].id = next.take_refund();
        }

        let mut checkouts = self.checkouts;
        sort_by_time(&mut checkouts, |c| c.created_at);
        for checkout in &mut checkouts {
            checkout.id = next.take_checkout();
            map_customer(&mut checkout.customer_id);
            for item in &mut checkout.line_items {
                item.id = next.take_line_item();
            }
        }

        self.stats.process_orders = self.process_orders as u64;
        self.stats.cancelled_orders =
            orders.iter().filter(|o| o.cancelled_at.is_some()).count() as u64;
        let shop = GeneratedShop {
            customers,
            orders,
            checkouts,
            truth: config.params,
        };
        (shop, self.stats)
    }
}

/// 32-bit words a stream has produced (ChaCha counts them exactly).
fn words_used(rng: &ChaCha8Rng) -> u64 {
    rng.get_word_pos() as u64
}

/// Sorts `records` by `key` in place (ties keep their original order) and returns, for each
/// new position, the record's original position.
fn sort_by_time<T>(records: &mut [T], key: impl Fn(&T) -> DateTime<Utc>) -> Vec<u32> {
    // Sort small (key, index) pairs, then move each large record along its permutation cycle:
    // no second copy of the records, which matters at a million orders.
    let mut order: Vec<(DateTime<Utc>, u32)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (key(r), i as u32))
        .collect();
    order.sort_unstable();
    let origin: Vec<u32> = order.iter().map(|&(_, i)| i).collect();
    let mut source = origin.clone();
    for start in 0..source.len() {
        // Position `current` must receive the record now at `source[current]`; a position
        // whose source is itself is done (and marks finished cycles).
        let mut current = start;
        loop {
            let next = source[current] as usize;
            source[current] = current as u32;
            if next == start {
                break;
            }
            records.swap(current, next);
            current = next;
        }
    }
    origin
}

/// How many abandoned checkouts go with one order: ⌊rate⌋ plus one more with probability
/// equal to the fractional part, so the mean is exactly `rate`.
fn checkout_count(rng: &mut ChaCha8Rng, rate: f64) -> u32 {
    rate.floor() as u32 + u32::from(rng.random::<f64>() < rate.fract())
}
