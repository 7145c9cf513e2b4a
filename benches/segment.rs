//! The segment job end to end against the analytics core alone, on the same shop.
//!
//! A shop of N customers with about ten orders each (refunds, cancellations, discount codes and
//! abandoned checkouts sprinkled in) is written through the one write path into a fresh SQLite
//! file, and into a fresh PostgreSQL database when `LIFECYCLE_TEST_POSTGRES` names a server.
//! Then, per database:
//!
//! - core: `analyze_shop` on the shop's input as the job loads it (best of three), the floor;
//!   then, on each analysis, the model card's backtest and the customers' CLV ranges
//!   (`analysis::model_card::assess`), printed as the analysis plus backtest against the
//!   analysis alone, and the ranges' cost;
//! - job: `run_for_shop` in dry-run mode (load, analyse, segment, store every score and
//!   membership, plan tags and codes, audit the plan; no platform), best of two; the peak
//!   resident set of the job alone (VmHWM reset through /proc/self/clear_refs before it).
//!
//! It prints both times, their ratio (aim: within 10x), the job's phases and its peak memory.
//! Timings are printed, never asserted.
//!
//! The shop's load is also held against the generic reader (rows through the pool) on the same
//! shop, on PostgreSQL, where the job reads with `COPY ... TO STDOUT`.
//!
//! `LIFECYCLE_BENCH_SEGMENT_CUSTOMERS` (default 100000; 1000000 for the full size),
//! `LIFECYCLE_BENCH_BACKENDS` (`sqlite`, `postgres` or both, the default).

use std::time::{Duration, Instant};

use chrono::Utc;
use lifecycle::analysis::model_card::{CLV_RANGE_DRAWS, assess, verdict_key};
use lifecycle::config::Config;
use lifecycle::core::analytics::{AnalysisOptions, analyze_shop};

#[path = "common/memory.rs"]
mod memory;
#[path = "common/shop.rs"]
mod shop;

use memory::{peak_mib, reset_peak};

fn customers() -> usize {
    std::env::var("LIFECYCLE_BENCH_SEGMENT_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

async fn bench(url: &str, name: &str, n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::local(dir.path().to_path_buf());
    config.database_url = Some(url.to_string());
    config.encryption_key = Some(lifecycle::secrets::Cipher::generate_key());
    config.session_key = Some(lifecycle::secrets::Cipher::generate_key());
    config.platforms.shopify.client_secret = Some("bench-secret".into());
    let state = lifecycle::app::build_state(config, Default::default()).await?;
    let t = Instant::now();
    let (shop_id, orders) = shop::write(&state.db, "bench-shop", n, 7).await?;
    println!(
        "\n{name}: {n} customers, {orders} orders written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let data = lifecycle::analysis::load::load_shop(&state.db, shop_id).await?;
    if name == "PostgreSQL" {
        // After the read above warmed the server's cache: the two readers alternately, the
        // best of two each.
        use lifecycle::analysis::load::{load_shop, load_shop_through_pool};
        let (mut copy, mut pool) = (Duration::MAX, Duration::MAX);
        for _ in 0..2 {
            let t = Instant::now();
            let pooled = load_shop_through_pool(&state.db, shop_id).await?;
            pool = pool.min(t.elapsed());
            drop(pooled);
            let t = Instant::now();
            let copied = load_shop(&state.db, shop_id).await?;
            copy = copy.min(t.elapsed());
            anyhow::ensure!(
                copied.input.orders.len() == data.input.orders.len(),
                "the two readers disagree"
            );
        }
        println!(
            "  load (COPY)         {:>8.0} ms; through the pool's rows {:.0} ms: {:.1}x faster (best of 2 each, alternating)",
            copy.as_secs_f64() * 1e3,
            pool.as_secs_f64() * 1e3,
            pool.as_secs_f64() / copy.as_secs_f64()
        );
    }
    let now = Utc::now();
    let opts = AnalysisOptions::default();
    // The analysis alone, then the model card and the CLV ranges on its output, in the same
    // run (each the best of three).
    let (mut core, mut backtest, mut ranges) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let mut verdict = String::new();
    for _ in 0..3 {
        let t = Instant::now();
        let a = analyze_shop(&data.input, &opts, now)?;
        core = core.min(t.elapsed());
        let card = assess(&data.input, &a, &opts)?;
        backtest = backtest.min(card.backtest_time);
        ranges = ranges.min(card.ranges_time);
        verdict = verdict_key(&card.backtest);
        drop((a, card));
    }
    drop(data);
    let mut job = Duration::MAX;
    let mut best = None;
    let mut peak = f64::NAN;
    for _ in 0..2 {
        let reset = reset_peak();
        let t = Instant::now();
        let summary =
            lifecycle::writeback::segment::run_for_shop(&state, shop_id, "bench", true).await?;
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
        "  + backtest          {:>8.0} ms: analysis + backtest {:.0} ms, ratio {:.2}x the analysis alone (card: {verdict})",
        backtest.as_secs_f64() * 1e3,
        (core + backtest).as_secs_f64() * 1e3,
        (core + backtest).as_secs_f64() / core.as_secs_f64()
    );
    println!(
        "  + CLV ranges        {:>8.0} ms ({CLV_RANGE_DRAWS} parameter draws), {:.2}x the analysis alone",
        ranges.as_secs_f64() * 1e3,
        ranges.as_secs_f64() / core.as_secs_f64()
    );
    println!(
        "  segment job         {:>8.0} ms (best of 2, dry run)   ratio {:.1}x the core",
        job.as_secs_f64() * 1e3,
        job.as_secs_f64() / core.as_secs_f64()
    );
    let t = s.timings;
    println!(
        "    load {} ms, analyse {} ms (of which backtest {} ms, CLV ranges {} ms), store {} ms, plan {} ms; {} tag changes planned",
        t.load_ms,
        t.analyse_ms,
        t.backtest_ms,
        t.clv_ranges_ms,
        t.store_ms,
        t.plan_ms,
        s.tag_changes
    );
    let total = t.load_ms + t.analyse_ms + t.store_ms + t.plan_ms + t.push_ms;
    println!(
        "    backtest + CLV ranges: {:.1} % of the job's {} ms",
        100.0 * (t.backtest_ms + t.clv_ranges_ms) as f64 / total.max(1) as f64,
        total
    );
    println!("  job peak RSS        {peak:>8.0} MiB (VmHWM of the job alone)");
    state.db.clone().close().await.ok();
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let n = customers();
    let rt = tokio::runtime::Runtime::new()?;
    let backends = std::env::var("LIFECYCLE_BENCH_BACKENDS").unwrap_or_default();
    let wants = |b: &str| backends.is_empty() || backends.split(',').any(|x| x.trim() == b);
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("segment.db");
        if wants("sqlite") {
            bench(
                &format!("sqlite://{}?mode=rwc", file.display()),
                "SQLite",
                n,
            )
            .await?;
        }
        if let Some(server) = std::env::var("LIFECYCLE_TEST_POSTGRES")
            .ok()
            .filter(|s| !s.is_empty() && wants("postgres"))
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
