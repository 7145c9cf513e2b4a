//! One instance's nightly run over 1,000 installed shops of mixed sizes.
//!
//! The shops are written through the one write path into a fresh SQLite file (sizes are heavy
//! tailed, as app-store installs are: most shops small, a few large). The real server then
//! starts with its job workers, and every shop's `segment` job is enqueued at once (the worst
//! case: the schedule normally spreads them over an hour), in dry-run mode since there is no
//! platform to push to. Printed:
//!
//! - the largest shop's job alone: wall time and peak resident set (the floor for memory);
//! - all 1,000 jobs through the queue: total wall time, jobs per second, peak resident set, and
//!   its ratio to the largest shop's (memory should follow the largest shop in flight, not the
//!   number of shops).
//!
//! `LIFECYCLE_BENCH_NIGHTLY_SCALE` (default 0.25) multiplies every shop's size; at 1.0 the
//! shops hold about 420,000 customers and 4,000,000 orders, the largest 30,000 customers.

use std::time::{Duration, Instant};

use lifecycle::config::Config;
use lifecycle::server::{self, Launch};
use lifecycle::store::jobs::{NewJob, enqueue};
use sea_orm::ConnectionTrait;

#[path = "common/memory.rs"]
mod memory;
#[path = "common/shop.rs"]
mod shop;

use memory::{peak_mib, reset_peak};

/// Customers of the shops: 900 small, 90 medium, 9 large and one largest.
fn sizes(scale: f64) -> Vec<usize> {
    let mut out = Vec::with_capacity(1000);
    let at = |base: f64| ((base * scale).round() as usize).max(5);
    for i in 0..900 {
        out.push(at(20.0 + (i as f64 * 7.0) % 280.0));
    }
    for i in 0..90 {
        out.push(at(500.0 + (i as f64 * 113.0) % 2500.0));
    }
    for i in 0..9 {
        out.push(at(5_000.0 + i as f64 * 1_100.0));
    }
    out.push(at(30_000.0));
    out
}

async fn count(db: &lifecycle::store::Db, sql: &str) -> anyhow::Result<i64> {
    let r = db
        .query_one_raw(lifecycle::store::stmt(
            db.get_database_backend(),
            sql,
            vec![],
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no row"))?;
    Ok(r.try_get_by_index(0)?)
}

async fn wait_done(db: &lifecycle::store::Db, total: i64) -> anyhow::Result<()> {
    loop {
        let done = count(
            db,
            "SELECT COUNT(*) FROM jobs WHERE kind = 'segment' AND state IN ('done', 'dead')",
        )
        .await?;
        if done >= total {
            let dead = count(db, "SELECT COUNT(*) FROM jobs WHERE state = 'dead'").await?;
            anyhow::ensure!(dead == 0, "{dead} jobs died");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn main() -> anyhow::Result<()> {
    let scale: f64 = std::env::var("LIFECYCLE_BENCH_NIGHTLY_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.25);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let mut config = Config::local(dir.path().to_path_buf());
        config.bind = "127.0.0.1:0".parse()?;
        config.database_url = Some(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("nightly.db").display()
        ));
        config.encryption_key = Some(lifecycle::secrets::Cipher::generate_key());
        config.session_key = Some(lifecycle::secrets::Cipher::generate_key());
        config.platforms.shopify.client_secret = Some("bench-secret".into());
        config.log = "warn".into();
        let mut launch = Launch::new(config);
        launch.schedules.clear();
        let app = server::start(launch).await?;
        let db = app.state.db.clone();

        let t = Instant::now();
        let sizes = sizes(scale);
        let (mut ids, mut customers, mut orders) = (Vec::new(), 0, 0);
        for (i, n) in sizes.iter().enumerate() {
            let (id, o) = shop::write(&db, &format!("shop-{i}"), *n, i as u64).await?;
            ids.push(id);
            customers += n;
            orders += o;
        }
        println!(
            "\n1,000 shops: {customers} customers, {orders} orders (largest {}), written in {:.1} s",
            sizes.iter().max().unwrap_or(&0),
            t.elapsed().as_secs_f64()
        );
        let job = |id: i64, tag: &str| {
            NewJob::new("segment")
                .shop(id)
                .payload(serde_json::json!({ "dry_run": true }))
                .dedupe(format!("bench:{tag}:{id}"))
        };

        let largest = ids[sizes
            .iter()
            .enumerate()
            .max_by_key(|(_, n)| **n)
            .map_or(0, |(i, _)| i)];
        reset_peak();
        let t = Instant::now();
        enqueue(&db, job(largest, "alone")).await?;
        wait_done(&db, 1).await?;
        let (alone, alone_peak) = (t.elapsed(), peak_mib());

        reset_peak();
        let t = Instant::now();
        for id in &ids {
            enqueue(&db, job(*id, "all")).await?;
        }
        wait_done(&db, 1 + ids.len() as i64).await?;
        let (all, all_peak) = (t.elapsed(), peak_mib());
        println!(
            "  largest shop alone   {:>8.1} s   peak RSS {alone_peak:>6.0} MiB",
            alone.as_secs_f64()
        );
        println!(
            "  all 1,000 shops      {:>8.1} s   peak RSS {all_peak:>6.0} MiB ({:.2}x the largest alone); {:.1} shops/s, {:.0} customers/s",
            all.as_secs_f64(),
            all_peak / alone_peak,
            ids.len() as f64 / all.as_secs_f64(),
            customers as f64 / all.as_secs_f64()
        );
        app.shutdown().await;
        Ok(())
    })
}
