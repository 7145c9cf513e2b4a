//! Shopify-like numeric ids. Each kind has its own range; the shop name shifts the ranges so two
//! generated shops do not share ids. Within a kind, ids increase with creation time.

use serde::{Deserialize, Serialize};

use super::model::{GenCheckout, GenCustomer, GenOrder};

const CUSTOMER_BASE: u64 = 7_000_000_000_000;
const ORDER_BASE: u64 = 5_500_000_000_000;
const LINE_ITEM_BASE: u64 = 14_000_000_000_000;
const REFUND_BASE: u64 = 900_000_000_000;
const CHECKOUT_BASE: u64 = 30_000_000_000_000;
/// Room per shop and kind; far above any shop the sandbox generates.
const SHOP_STRIDE: u64 = 1_000_000_000;
/// Shopify order numbers start at 1001.
pub(crate) const FIRST_ORDER_NUMBER: u64 = 1001;

/// The next free id of every kind; live mode continues from here so ids keep increasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextIds {
    pub customer: u64,
    pub order: u64,
    /// Next `order_number` (the "#1234" name).
    pub order_number: u64,
    pub line_item: u64,
    pub refund: u64,
    pub checkout: u64,
}

impl NextIds {
    /// The first ids of an empty shop called `shop_name`.
    pub fn first(shop_name: &str) -> Self {
        let offset = (fnv1a(shop_name.as_bytes()) % 997) * SHOP_STRIDE;
        NextIds {
            customer: CUSTOMER_BASE + offset,
            order: ORDER_BASE + offset,
            order_number: FIRST_ORDER_NUMBER,
            line_item: LINE_ITEM_BASE + offset,
            refund: REFUND_BASE + offset,
            checkout: CHECKOUT_BASE + offset,
        }
    }

    /// The ids after everything in the given records (for a store that holds more than was
    /// generated, e.g. after live traffic). Kinds with no records start at [`NextIds::first`].
    pub fn after(
        shop_name: &str,
        customers: &[GenCustomer],
        orders: &[GenOrder],
        checkouts: &[GenCheckout],
    ) -> Self {
        let first = Self::first(shop_name);
        let next = |start: u64, ids: &mut dyn Iterator<Item = u64>| {
            ids.max().map_or(start, |m| (m + 1).max(start))
        };
        NextIds {
            customer: next(first.customer, &mut customers.iter().map(|c| c.id)),
            order: next(first.order, &mut orders.iter().map(|o| o.id)),
            order_number: next(first.order_number, &mut orders.iter().map(|o| o.number)),
            line_item: next(
                first.line_item,
                &mut orders
                    .iter()
                    .flat_map(|o| o.line_items.iter())
                    .chain(checkouts.iter().flat_map(|c| c.line_items.iter()))
                    .map(|l| l.id),
            ),
            refund: next(
                first.refund,
                &mut orders.iter().flat_map(|o| o.refunds.iter()).map(|r| r.id),
            ),
            checkout: next(first.checkout, &mut checkouts.iter().map(|c| c.id)),
        }
    }

    pub(crate) fn take_customer(&mut self) -> u64 {
        take(&mut self.customer)
    }
    pub(crate) fn take_order(&mut self) -> (u64, u64) {
        (take(&mut self.order), take(&mut self.order_number))
    }
    pub(crate) fn take_line_item(&mut self) -> u64 {
        take(&mut self.line_item)
    }
    pub(crate) fn take_refund(&mut self) -> u64 {
        take(&mut self.refund)
    }
    pub(crate) fn take_checkout(&mut self) -> u64 {
        take(&mut self.checkout)
    }
}

fn take(counter: &mut u64) -> u64 {
    let id = *counter;
    *counter += 1;
    id
}

/// FNV-1a: a fixed, platform-independent hash (std's hasher may change between releases).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Gives every order, line item and checkout-line-item of a freshly built order its ids.
pub(crate) fn number_order(order: &mut GenOrder, next: &mut NextIds) {
    let (id, number) = next.take_order();
    order.id = id;
    order.number = number;
    order.name = format!("#{number}");
    for item in &mut order.line_items {
        item.id = next.take_line_item();
    }
}
