//! Per-customer features from orders, net of cancellations and refunds.
//!
//! Rules (the issue leaves these open; chosen here and relied on everywhere else):
//! - An order counts if it is neither cancelled nor fully refunded (`OrderFact::counts`;
//!   zero-value orders count). Orders and checkouts after `now` are ignored (not yet happened).
//! - Purchases on the same UTC calendar day count once (as in the BTYD literature): x is the
//!   number of distinct purchase days minus one; t_x and T are whole days between the first
//!   purchase day and the last purchase day / the day of `now`, divided by the unit's length.
//! - `monetary_value` is the mean net value of the repeat purchase days (the first day
//!   excluded), as the Gamma-Gamma model and lifetimes define it; 0 when x = 0.
//! - `refunded_share` is refunded amount / gross amount over non-cancelled orders;
//!   `discount_share` is the share of counted orders with a discount code.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use super::input::{CheckoutFact, OrderFact, ShopInput, TimeUnit};
use super::parallel::fill_blocks;

/// Everything the models and the segment rules know about one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerFeatures {
    pub customer: u32,
    /// Counted orders.
    pub orders: u32,
    pub first_order_at: Option<DateTime<Utc>>,
    pub last_order_at: Option<DateTime<Utc>>,
    /// x: repeat purchase days.
    pub frequency: u32,
    /// t_x in the time unit.
    pub recency: f64,
    /// T in the time unit.
    #[serde(rename = "T")]
    pub age: f64,
    /// Mean value of the repeat purchase days (0 when x = 0).
    pub monetary_value: f64,
    /// Net value of all counted orders.
    pub total_value: f64,
    pub average_order_value: f64,
    pub discount_share: f64,
    pub refunded_share: f64,
    /// Whole days between the last counted order's day and `now`'s day; None without orders.
    pub days_since_last_order: Option<f64>,
    pub abandoned_checkouts_since_last_order: u32,
}

impl CustomerFeatures {
    /// A customer with no counted orders (a PROSPECT).
    pub fn prospect(customer: u32) -> CustomerFeatures {
        CustomerFeatures {
            customer,
            orders: 0,
            first_order_at: None,
            last_order_at: None,
            frequency: 0,
            recency: 0.0,
            age: 0.0,
            monetary_value: 0.0,
            total_value: 0.0,
            average_order_value: 0.0,
            discount_share: 0.0,
            refunded_share: 0.0,
            days_since_last_order: None,
            abandoned_checkouts_since_last_order: 0,
        }
    }

    pub fn has_orders(&self) -> bool {
        self.orders > 0
    }
}

impl AsRef<CustomerFeatures> for CustomerFeatures {
    fn as_ref(&self) -> &CustomerFeatures {
        self
    }
}

/// Day number of a timestamp's UTC calendar day.
pub fn day_number(at: DateTime<Utc>) -> i64 {
    // naive_utc() reads the stored UTC value; date_naive() goes through a (zero) offset
    // addition, which is measurable over ten million orders.
    i64::from(at.naive_utc().date().num_days_from_ce())
}

/// A customer's counted orders folded in time order: distinct purchase days and value, from
/// which the fit's frequency, recency, age and monetary value follow. Shared by the features
/// and the backtest's calibration split, so both use the same formulas.
pub(crate) struct PurchaseDays {
    first_day: i64,
    last_day: i64,
    days: u32,
    first_day_value: f64,
}

impl PurchaseDays {
    pub(crate) fn new() -> PurchaseDays {
        PurchaseDays {
            first_day: i64::MIN,
            last_day: i64::MIN,
            days: 0,
            first_day_value: 0.0,
        }
    }

    /// Adds one counted order, placed on `day` (its `day_number`), to `f`.
    pub(crate) fn add(&mut self, f: &mut CustomerFeatures, o: &OrderFact, day: i64) {
        if f.orders == 0 {
            self.first_day = day;
            f.first_order_at = Some(o.at);
        }
        if day != self.last_day {
            self.days += 1;
            self.last_day = day;
        }
        if day == self.first_day {
            self.first_day_value += o.net();
        }
        f.orders += 1;
        f.total_value += o.net();
        f.last_order_at = Some(o.at);
    }

    /// The summary fields as of `now_day`, for a customer with at least one order.
    pub(crate) fn finish(&self, f: &mut CustomerFeatures, now_day: i64, unit: TimeUnit) {
        f.frequency = self.days - 1;
        f.recency = (self.last_day - self.first_day) as f64 / unit.days();
        f.age = (now_day - self.first_day) as f64 / unit.days();
        if f.frequency > 0 {
            f.monetary_value = (f.total_value - self.first_day_value) / f64::from(f.frequency);
        }
        f.average_order_value = f.total_value / f64::from(f.orders);
        f.days_since_last_order = Some((now_day - self.last_day) as f64);
    }
}

/// Features of one customer from their orders and abandoned checkouts, each sorted by time.
pub fn customer_features(
    customer: u32,
    orders: &[OrderFact],
    abandoned: &[CheckoutFact],
    now: DateTime<Utc>,
    unit: TimeUnit,
) -> CustomerFeatures {
    let mut f = CustomerFeatures::prospect(customer);
    let (mut gross, mut refunded, mut discounted) = (0.0, 0.0, 0u32);
    let mut purchases = PurchaseDays::new();
    for o in orders.iter().take_while(|o| o.at <= now) {
        if o.cancelled {
            continue;
        }
        gross += o.amount;
        refunded += o.refunded.min(o.amount);
        if !o.counts() {
            continue;
        }
        purchases.add(&mut f, o, day_number(o.at));
        discounted += u32::from(o.discounted);
    }
    if gross > 0.0 {
        f.refunded_share = refunded / gross;
    }
    let Some(last_at) = f.last_order_at else {
        f.abandoned_checkouts_since_last_order = count_abandoned(abandoned, None, now);
        return f;
    };
    purchases.finish(&mut f, day_number(now), unit);
    f.discount_share = f64::from(discounted) / f64::from(f.orders);
    f.abandoned_checkouts_since_last_order = count_abandoned(abandoned, Some(last_at), now);
    f
}

fn count_abandoned(
    abandoned: &[CheckoutFact],
    after: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> u32 {
    abandoned
        .iter()
        .filter(|c| c.at <= now && after.is_none_or(|a| c.at > a))
        .count() as u32
}

/// Features of every customer of the shop (index = customer). The input must be valid
/// (`ShopInput::validate`): sorted by customer, so each customer is one contiguous slice.
/// Customers are independent, so blocks of them are computed on all cores.
pub fn compute_features(
    input: &ShopInput,
    now: DateTime<Utc>,
    unit: TimeUnit,
) -> Vec<CustomerFeatures> {
    let mut out = vec![CustomerFeatures::prospect(0); input.customers as usize];
    fill_blocks(&mut out, |offset, block| {
        let first = offset as u32;
        let mut oi = input.orders.partition_point(|o| o.customer < first);
        let mut ci = input
            .abandoned_checkouts
            .partition_point(|c| c.customer < first);
        for (customer, slot) in (first..).zip(block.iter_mut()) {
            let o_end = oi
                + input.orders[oi..]
                    .iter()
                    .take_while(|o| o.customer == customer)
                    .count();
            let c_end = ci
                + input.abandoned_checkouts[ci..]
                    .iter()
                    .take_while(|c| c.customer == customer)
                    .count();
            *slot = customer_features(
                customer,
                &input.orders[oi..o_end],
                &input.abandoned_checkouts[ci..c_end],
                now,
                unit,
            );
            oi = o_end;
            ci = c_end;
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn order(day: u32, hour: u32, amount: f64) -> OrderFact {
        OrderFact {
            customer: 0,
            at: at(2024, 1, day, hour),
            amount,
            refunded: 0.0,
            cancelled: false,
            discounted: false,
        }
    }

    #[test]
    fn same_day_purchases_count_once_and_cancellations_and_refunds_are_netted() {
        let mut refunded = order(10, 9, 50.0);
        refunded.refunded = 50.0;
        let mut cancelled = order(12, 9, 70.0);
        cancelled.cancelled = true;
        let mut partly = order(15, 9, 40.0);
        partly.refunded = 10.0;
        partly.discounted = true;
        let orders = [
            order(1, 9, 20.0),
            order(1, 18, 10.0),
            refunded,
            cancelled,
            partly,
            order(29, 9, 60.0),
            order(30, 9, 999.0), // after now
        ];
        let checkouts = [
            CheckoutFact {
                customer: 0,
                at: at(2024, 1, 20, 0),
            },
            CheckoutFact {
                customer: 0,
                at: at(2024, 1, 29, 12),
            },
        ];
        let f = customer_features(0, &orders, &checkouts, at(2024, 1, 29, 23), TimeUnit::Days);
        assert_eq!(f.orders, 4);
        assert_eq!(f.frequency, 2); // days 1, 15, 29
        assert_eq!(f.recency, 28.0);
        assert_eq!(f.age, 28.0);
        assert_eq!(f.total_value, 20.0 + 10.0 + 30.0 + 60.0);
        assert_eq!(f.monetary_value, (30.0 + 60.0) / 2.0);
        assert_eq!(f.average_order_value, 120.0 / 4.0);
        assert_eq!(f.discount_share, 0.25);
        assert!((f.refunded_share - 60.0 / 180.0).abs() < 1e-12);
        assert_eq!(f.days_since_last_order, Some(0.0));
        assert_eq!(f.abandoned_checkouts_since_last_order, 1);
    }

    #[test]
    fn weeks_divide_day_counts_by_seven() {
        let orders = [order(1, 9, 20.0), order(8, 9, 20.0)];
        let f = customer_features(0, &orders, &[], at(2024, 1, 15, 0), TimeUnit::Weeks);
        assert_eq!((f.frequency, f.recency, f.age), (1, 1.0, 2.0));
    }

    #[test]
    fn customers_without_counted_orders_are_prospects() {
        let mut c = order(1, 9, 20.0);
        c.cancelled = true;
        let checkouts = [CheckoutFact {
            customer: 0,
            at: at(2024, 1, 2, 0),
        }];
        let f = customer_features(0, &[c], &checkouts, at(2024, 2, 1, 0), TimeUnit::Days);
        assert!(!f.has_orders());
        assert_eq!(f.days_since_last_order, None);
        assert_eq!(f.abandoned_checkouts_since_last_order, 1);
    }

    #[test]
    fn parallel_blocks_give_each_customer_their_own_orders() {
        // More customers than one block, some without orders, at block edges too.
        let customers = crate::analytics::parallel::BLOCK as u32 * 2 + 7;
        let mut orders = Vec::new();
        for c in 0..customers {
            for k in 0..(c % 4) {
                let mut o = order(1 + k * 3, 9, 10.0 + f64::from(c % 13));
                o.customer = c;
                orders.push(o);
            }
        }
        let input = ShopInput {
            customers,
            orders,
            abandoned_checkouts: vec![],
        };
        let now = at(2024, 2, 1, 0);
        let fs = compute_features(&input, now, TimeUnit::Days);
        assert_eq!(fs.len(), customers as usize);
        let mut start = 0;
        for (c, f) in fs.iter().enumerate() {
            let n = c % 4;
            let own = &input.orders[start..start + n];
            start += n;
            assert_eq!(
                *f,
                customer_features(c as u32, own, &[], now, TimeUnit::Days)
            );
        }
    }

    #[test]
    fn compute_features_splits_the_flat_vectors_by_customer() {
        let mut o1 = order(3, 9, 5.0);
        o1.customer = 2;
        let input = ShopInput {
            customers: 3,
            orders: vec![order(1, 9, 20.0), o1],
            abandoned_checkouts: vec![],
        };
        let fs = compute_features(&input, at(2024, 2, 1, 0), TimeUnit::Days);
        assert_eq!(fs.len(), 3);
        assert_eq!(fs.iter().map(|f| f.orders).collect::<Vec<_>>(), [1, 0, 1]);
        assert_eq!(fs[2].customer, 2);
    }
}
