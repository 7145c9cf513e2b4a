//! The segment job end to end against the analytics core alone, on the same shop.
//!
//! A shop of N customers with about ten orders each (refunds, cancellations, discount codes and
//! abandoned checkouts sprinkled in) is written through the one write path into a fresh SQLite
//! file, and into a fresh PostgreSQL database when `LIFECYCLE_TEST_POSTGRES` names a server.
//! Then, per database:
//!
//! - core: `analyze_shop` on the shop's input as the job loads it (best of three), the floor;
//! - job: `run_for_shop` in dry-run mode (load, analyse, segment, store every score and
//!   membership, plan tags and codes, audit the plan; no platform), best of two; the peak
//!   resident set of the job alone (VmHWM reset through /proc/self/clear_refs before it).
//!
//! It prints both times, their ratio (aim: within 10x), the job's phases and its peak memory.
//! Timings are printed, never asserted.
//!
//! `LIFECYCLE_BENCH_SEGMENT_CUSTOMERS` (default 100000; 1000000 for the full size).

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use lifecycle::config::Config;
use lifecycle::core::analytics::{AnalysisOptions, analyze_shop};
use lifecycle::model::{Checkout, Customer, Event, Minor, Order, Refund};
use lifecycle::store::{self, shops};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn customers() -> usize {
    std::env::var("LIFECYCLE_BENCH_SEGMENT_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Resets the peak resident set to the current one (Linux).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The shop's events, customer by customer, in batches for `apply`.
fn shop_events(n: usize, mut each_batch: impl FnMut(Vec<Event>)) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(7);
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
            tags: Some(if c % 10 == 0 { vec!["vip".into()] } else { vec![] }),
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
            let at = joined + TimeDelta::seconds(rng.random_range(0..=(end - joined).num_seconds().max(1)));
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
    (n, orders)
}

async fn bench(url: &str, name: &str, n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::local(dir.path().to_path_buf());
    config.database_url = Some(url.to_string());
    config.encryption_key = Some(lifecycle::secrets::Cipher::generate_key());
    config.shopify_client_secret = Some("bench-secret".into());
    let state = lifecycle::server::build_state(config, Default::default()).await?;
    let shop = shops::upsert_installed(
        &state.db,
        "shopify",
        "bench-shop.myshopify.com",
        shops::TokenGrant {
            access_token: "bench".into(),
            refresh_token: None,
            expires_at: None,
            scopes: String::new(),
        },
    )
    .await?;

    let t = Instant::now();
    let mut batches = Vec::new();
    let (_, orders) = shop_events(n, |b| batches.push(b));
    for b in batches {
        let tx = store::write_tx(&state.db).await?;
        lifecycle::ingest::apply::apply(&tx, shop.id, &b).await?;
        tx.commit().await?;
    }
    println!(
        "\n{name}: {n} customers, {orders} orders written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let data = lifecycle::analysis::load::load_shop(&state.db, shop.id).await?;
    let now = Utc::now();
    let mut core = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let a = analyze_shop(&data.input, &AnalysisOptions::default(), now)?;
        core = core.min(t.elapsed());
        drop(a);
    }
    drop(data);

    let mut job = Duration::MAX;
    let mut best = None;
    let mut peak = f64::NAN;
    for _ in 0..2 {
        let reset = reset_peak();
        let t = Instant::now();
        let summary =
            lifecycle::writeback::segment::run_for_shop(&state, shop.id, "bench", true).await?;
        let took = t.elapsed();
        if reset {
            peak = peak_mib();
        }
        if took < job {
            job = took;
            best = Some(summary);
        }
    }
    let s = best.expect("two runs");
    println!(
        "  core analyze_shop   {:>8.0} ms (best of 3)",
        core.as_secs_f64() * 1e3
    );
    println!(
        "  segment job         {:>8.0} ms (best of 2, dry run)   ratio {:.1}x the core",
        job.as_secs_f64() * 1e3,
        job.as_secs_f64() / core.as_secs_f64()
    );
    let t = s.timings;
    println!(
        "    load {} ms, analyse {} ms, store {} ms, plan {} ms; {} tag changes planned",
        t.load_ms, t.analyse_ms, t.store_ms, t.plan_ms, s.tag_changes
    );
    println!("  job peak RSS        {peak:>8.0} MiB (VmHWM of the job alone)");
    state.db.clone().close().await.ok();
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let n = customers();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("segment.db");
        bench(
            &format!("sqlite://{}?mode=rwc", file.display()),
            "SQLite",
            n,
        )
        .await?;
        if let Some(server) = std::env::var("LIFECYCLE_TEST_POSTGRES")
            .ok()
            .filter(|s| !s.is_empty())
        {
            use sea_orm::{ConnectionTrait, Database, Statement};
            let name = format!("lifecycle_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&server).await?;
            admin
                .execute_raw(Statement::from_string(
                    admin.get_database_backend(),
                    format!("CREATE DATABASE {name}"),
                ))
                .await?;
            let mut url = url::Url::parse(&server)?;
            url.set_path(&format!("/{name}"));
            let result = bench(url.as_str(), "PostgreSQL", n).await;
            admin
                .execute_raw(Statement::from_string(
                    admin.get_database_backend(),
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ))
                .await?;
            result?;
        }
        Ok(())
    })
}
