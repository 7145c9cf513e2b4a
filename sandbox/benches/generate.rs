//! Data generator benchmark: historic generation of a 100k-customer shop, against a baseline of
//! drawing the same number of random words, and live-mode event latency.
//!
//! `cargo bench -p lifecycle-sandbox --bench generate`
//! Environment: `GEN_BENCH_CUSTOMERS` (default 100000), `GEN_BENCH_LIVE_EVENTS` (default 100000).

use std::hint::black_box;
use std::time::{Duration, Instant};

use lifecycle_sandbox::generate::{GenConfig, LiveGenerator, generate_with_stats};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set size in MiB (VmHWM), if the platform reports it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn main() {
    let customers = env_usize("GEN_BENCH_CUSTOMERS", 100_000);
    let live_events = env_usize("GEN_BENCH_LIVE_EVENTS", 100_000);
    let config = GenConfig {
        shop_name: "bench-shop".to_string(),
        customers,
        seed: 2026,
        ..GenConfig::default()
    };
    println!(
        "generate: {customers} customers, {} days of history",
        config.history_days
    );
    println!("true parameters: {}", config.params);

    // Generation reports how many random words it drew, for the baseline below.
    let started = Instant::now();
    let (shop, stats) = generate_with_stats(&config).expect("valid config");
    let elapsed = started.elapsed();
    let peak = peak_rss_mib();

    // Baseline: the same number of 32-bit words from one ChaCha8 stream.
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut sink = 0u32;
    for _ in 0..stats.random_words {
        sink ^= rng.next_u32();
    }
    black_box(sink);
    let baseline = started.elapsed();

    let orders = shop.orders.len();
    let customer_orders = shop
        .orders
        .iter()
        .filter(|o| o.customer_id.is_some())
        .count();
    let ordering_customers = {
        let mut ids: Vec<u64> = shop.transactions().map(|(c, _, _)| c).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    let secs = elapsed.as_secs_f64();
    println!(
        "customers {} | orders {} (process {}, guest {}, cancelled {}) | checkouts {}",
        shop.customers.len(),
        orders,
        stats.process_orders,
        stats.guest_orders,
        stats.cancelled_orders,
        shop.checkouts.len()
    );
    println!(
        "orders per ordering customer {:.2} ({} ordering customers, {} customer orders)",
        stats.process_orders as f64 / ordering_customers.max(1) as f64,
        ordering_customers,
        customer_orders
    );
    println!(
        "historic generation: {secs:.3} s, {:.0} orders/s, {:.0} customers/s",
        orders as f64 / secs,
        customers as f64 / secs
    );
    println!(
        "baseline (draw {} random words): {:.3} s; generation / baseline = {:.1}x",
        stats.random_words,
        baseline.as_secs_f64(),
        secs / baseline.as_secs_f64()
    );
    match peak {
        Some(mib) => println!("peak memory (VmHWM) after generation: {mib:.0} MiB"),
        None => println!("peak memory: not available on this platform"),
    }

    // Live mode: latency of next_event against the generated shop.
    let mut live = LiveGenerator::for_shop(7, &config, &shop);
    let mut latencies = Vec::with_capacity(live_events);
    let mut now = config.end;
    for _ in 0..live_events {
        now += chrono::Duration::seconds(1);
        let t = Instant::now();
        let event = live.next_event(now, &shop);
        latencies.push(t.elapsed());
        black_box(event);
    }
    latencies.sort_unstable();
    let total: Duration = latencies.iter().sum();
    println!(
        "live next_event: {} events, {:.0} events/s, p50 {:?}, p99 {:?}, max {:?}",
        live_events,
        live_events as f64 / total.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
}
