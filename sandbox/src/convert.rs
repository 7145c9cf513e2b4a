//! Turns the generator's records into the store's.

use crate::generate::{
    self, CustomerState as GenState, GenCheckout, GenCustomer, GenLineItem, GenOrder,
};
use crate::store::model::*;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::OnceLock;

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
