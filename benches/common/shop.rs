//! A synthetic shop for the benchmarks, written through the one write path: N customers with
//! about ten orders each over two years, with refunds, cancellations, discount codes and
//! abandoned checkouts sprinkled in. Deterministic for a seed.

use chrono::{TimeDelta, Utc};
use lifecycle::model::{Checkout, Customer, Event, Minor, Order, Refund};
use lifecycle::store::{self, Db, shops};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
            access_token: "bench".into(),
            refresh_token: None,
            expires_at: None,
            scopes: String::new(),
        },
    )
    .await?;
    let mut batches = Vec::new();
    let orders = events(customers, seed, |b| batches.push(b));
    for b in batches {
        let tx = store::write_tx(db).await?;
        lifecycle::ingest::apply::apply(&tx, shop.id, &b).await?;
        tx.commit().await?;
    }
    Ok((shop.id, orders))
}

/// The shop's events, customer by customer, in batches for `apply`.
fn events(n: usize, seed: u64, mut each_batch: impl FnMut(Vec<Event>)) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let end = Utc::now() - TimeDelta::days(1);
    let span = 730 * 86_400;
    let (mut orders, mut batch) = (0usize, Vec::with_capacity(6000));
    for c in 0..n {
        let id = format!("gid://shopify/Customer/{}", 1_000_000 + c);
        let joined = end - TimeDelta::seconds(rng.random_range(0..span));
        batch.push(Event::CustomerUpserted(Customer {
            platform_id: id.clone(),
            email: Some(format!("customer{c}@example.test")),
            first_name: None,
            last_name: None,
            tags: Some(if c % 10 == 0 {
                vec!["vip".into()]
            } else {
                vec![]
            }),
            state: Some("enabled".into()),
            created_at: Some(joined),
            updated_at: joined,
        }));
        // Geometric-ish order counts averaging about ten; some customers never buy.
        let k = if rng.random_bool(0.05) {
            0
        } else {
            rng.random_range(1..=19)
        };
        for _ in 0..k {
            let at = joined
                + TimeDelta::seconds(rng.random_range(0..=(end - joined).num_seconds().max(1)));
            let total = rng.random_range(1_000..40_000i64);
            let oid = format!("gid://shopify/Order/{}", 5_000_000 + orders);
            let refunded = if rng.random_bool(0.04) { total / 2 } else { 0 };
            let codes = if rng.random_bool(0.15) {
                vec![format!("SAVE{}", rng.random_range(5..30))]
            } else {
                vec![]
            };
            batch.push(Event::OrderUpserted(Order {
                platform_id: oid.clone(),
                customer_platform_id: Some(id.clone()),
                name: None,
                email: None,
                currency: "USD".into(),
                subtotal: Minor(total),
                total: Minor(total),
                discounts: Minor(0),
                refunded: Minor(refunded),
                discount_codes: codes,
                financial_status: None,
                cancelled_at: rng.random_bool(0.02).then_some(at + TimeDelta::hours(1)),
                created_at: at,
                updated_at: at + TimeDelta::hours(2),
            }));
            if refunded > 0 {
                batch.push(Event::RefundCreated(Refund {
                    platform_id: format!("gid://shopify/Refund/{orders}"),
                    order_platform_id: oid,
                    amount: Minor(refunded),
                    created_at: at + TimeDelta::days(3),
                }));
            }
            orders += 1;
        }
        if rng.random_bool(0.1) {
            let at = end - TimeDelta::seconds(rng.random_range(0..span / 4));
            batch.push(Event::CheckoutUpserted(Checkout {
                platform_id: format!("gid://shopify/Checkout/{c}"),
                customer_platform_id: Some(id),
                email: None,
                currency: "USD".into(),
                total: Minor(5_000),
                completed_at: None,
                created_at: at,
                updated_at: at,
            }));
        }
        if batch.len() >= 5_000 {
            each_batch(std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        each_batch(batch);
    }
    orders
}
