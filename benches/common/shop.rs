//! A shop for the benchmarks: the sandbox's own generator (the shop the demo and the tests
//! serve: BTYD-like buyers over two years, refunds, cancellations, discount codes, abandoned
//! checkouts), converted to canonical events and written through the one write path.
//! Deterministic for a seed. The generator holds a whole shop in memory (about 2 GiB per
//! 100,000 customers), so a larger shop is generated in slices of 100,000 customers, each with
//! its own seed and id range, written one after the other into the one shop.

use anyhow::Context;
use lifecycle::model::{Checkout, Currency, Customer, DataEvent, Money, Order, Refund};
use lifecycle::store::{self, Db, shops};
use lifecycle_sandbox::seed::{ShopSpec, build_shop};

/// Customers per generated slice.
const SLICE: usize = 100_000;

/// Installs `name`.myshopify.com and writes its data; returns the shop's id and its orders.
pub async fn write(
    db: &Db,
    name: &str,
    customers: usize,
    seed: u64,
) -> anyhow::Result<(i64, usize)> {
    let shop = shops::upsert_installed(
        db,
        "shopify",
        &format!("{name}.myshopify.com"),
        shops::TokenGrant {
            credentials: "bench".into(),
            expires_at: None,
            scopes: String::new(),
        },
    )
    .await?;
    let mut orders = 0;
    let mut slice = 0u64;
    let mut left = customers;
    while left > 0 {
        let n = left.min(SLICE);
        orders += write_slice(db, shop.id, name, n, seed.wrapping_add(slice), slice).await?;
        left -= n;
        slice += 1;
    }
    Ok((shop.id, orders))
}

async fn write_slice(
    db: &Db,
    shop_id: i64,
    name: &str,
    customers: usize,
    seed: u64,
    slice: u64,
) -> anyhow::Result<usize> {
    // Slices' ids never meet: the generator's ids stay far below 10^14.
    let gid =
        |kind: &str, id: u64| format!("gid://shopify/{kind}/{}", slice * 100_000_000_000_000 + id);
    let (generated, _, _) = build_shop(&ShopSpec {
        name: name.to_string(),
        customers,
        seed,
        plan: lifecycle_sandbox::Plan::Standard,
        history_days: 730,
        end: lifecycle_sandbox::default_history_end(),
        index: 0,
    })?;
    let currency = Currency::parse(&generated.info.currency).context("the shop's currency")?;
    let money = |minor: i64| Money::new(minor, currency);
    let data = generated.data.into_inner();
    let mut batch = Vec::with_capacity(6_000);
    let flushed = std::cell::Cell::new(0usize);
    let flush = async |batch: &mut Vec<DataEvent>| -> anyhow::Result<()> {
        let tx = store::write_tx(db).await?;
        lifecycle::ingest::apply::apply(&tx, shop_id, batch).await?;
        tx.commit().await?;
        batch.clear();
        // Planner statistics as the tables grow, as a backfill keeps them.
        flushed.set(flushed.get() + 1);
        if flushed.get().is_multiple_of(10) {
            store::analyze_shop_tables(db).await?;
        }
        Ok(())
    };
    for c in data.customers.values() {
        batch.push(DataEvent::CustomerUpserted(Customer {
            platform_id: gid("Customer", c.id),
            email: c.email.clone(),
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            tags: Some(c.tags.iter().cloned().collect()),
            state: Some(c.state.rest().to_string()),
            created_at: Some(c.created_at),
            updated_at: c.updated_at,
        }));
        if batch.len() >= 5_000 {
            flush(&mut batch).await?;
        }
    }
    for o in data.orders.values() {
        let id = gid("Order", o.id);
        for r in &o.refunds {
            batch.push(DataEvent::RefundCreated(Refund {
                platform_id: gid("Refund", r.id),
                order_platform_id: id.clone(),
                amount: money(r.amount_minor),
                created_at: r.created_at,
            }));
        }
        batch.push(DataEvent::OrderUpserted(Order {
            platform_id: id,
            customer_platform_id: o.customer_id.map(|c| gid("Customer", c)),
            name: Some(o.name()),
            email: o.email.clone(),
            subtotal: money(o.subtotal_minor()),
            total: money(o.total_minor()),
            discounts: money(o.total_discounts_minor),
            refunded: money(o.refunded_minor()),
            discount_codes: o.discount_codes.clone(),
            financial_status: Some(o.financial_status().to_string()),
            cancelled_at: o.cancelled_at,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }));
        if batch.len() >= 5_000 {
            flush(&mut batch).await?;
        }
    }
    for k in data.checkouts.values() {
        batch.push(DataEvent::CheckoutUpserted(Checkout {
            platform_id: gid("Checkout", k.id),
            customer_platform_id: k.customer_id.map(|c| gid("Customer", c)),
            email: k.email.clone(),
            total: Money::new(
                k.total_minor(),
                Currency::parse(&k.currency).context("a checkout's currency")?,
            ),
            completed_at: k.completed_at,
            created_at: k.created_at,
            updated_at: k.updated_at,
        }));
        if batch.len() >= 5_000 {
            flush(&mut batch).await?;
        }
    }
    if !batch.is_empty() {
        flush(&mut batch).await?;
    }
    store::analyze_shop_tables(db).await?;
    Ok(data.orders.len())
}
