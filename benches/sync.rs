//! Backfill wall time against the floor the standard plan's bucket allows.
//!
//! Each run starts its own sandbox (standard plan: a 2,000-point bucket restoring 100 points/s)
//! and the real app on a fresh SQLite file with its workers off, installs the app through the
//! OAuth flow, waits for a full bucket, then times `sync::run(.., Mode::Backfill, ..)`. The
//! sandbox's request log gives the cost the backfill spent (the sum of `actual_cost` over the
//! answered requests), so the floor is
//!
//! ```text
//!     floor = max(0, cost − bucket) / restore rate
//! ```
//!
//! (the bucket's head start is spent at once; the rest arrives at the restore rate). Two runs:
//!
//! - paged (bulk threshold out of reach): wall time / floor is the efficiency of the throttle
//!   model (aim: within 10 % of the floor);
//! - bulk (threshold 1) on the large shop: wall time next to the floor a paged backfill of the
//!   same shop would have needed, estimated from the paged run's cost per record.
//!
//! Timings are printed, never asserted; a run fails only when the backfill does.
//!
//! Environment: `LIFECYCLE_BENCH_SYNC_CUSTOMERS` (paged shop, default 300),
//! `LIFECYCLE_BENCH_BULK_CUSTOMERS` (bulk shop, default 100000); 0 skips that run.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lifecycle::config::Config;
use lifecycle::server::{self, Launch};
use lifecycle::sync::{self, Mode};
use lifecycle_sandbox::{Plan, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const CLIENT_ID: &str = "bench-client-id";
const CLIENT_SECRET: &str = "bench-client-secret";
/// The standard plan's bucket, used when the app has not yet seen a `throttleStatus`.
const STANDARD_BUCKET: f64 = 2000.0;
const STANDARD_RESTORE: f64 = 100.0;

/// What one backfill measured.
struct Measured {
    customers: usize,
    fetched: u64,
    changed: u64,
    requests: usize,
    throttled: usize,
    cost: u64,
    bucket: f64,
    restore: f64,
    elapsed: Duration,
    setup: Duration,
}

impl Measured {
    fn floor(&self) -> Duration {
        floor(self.cost as f64, self.bucket, self.restore)
    }

    fn records_per_sec(&self) -> f64 {
        self.fetched as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn floor(cost: f64, bucket: f64, restore: f64) -> Duration {
    Duration::from_secs_f64((cost - bucket).max(0.0) / restore)
}

fn env_count(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("{name} must be a count, got `{v}`")),
        _ => Ok(default),
    }
}

/// Peak resident set of this process (app and sandbox together), from /proc.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn requests(
    http: &reqwest::Client,
    sandbox: &Sandbox,
    shop: &str,
) -> anyhow::Result<Vec<Value>> {
    let v: Value = http
        .get(format!(
            "{}/_sandbox/shops/{shop}/requests",
            sandbox.base_url()
        ))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

fn is_throttled(r: &Value) -> bool {
    r["throttled"].as_bool().unwrap_or(false) || r["status"].as_u64() == Some(429)
}

/// Starts a sandbox shop of `customers` and the app, installs, and times one backfill.
async fn backfill(customers: usize, bulk_threshold: i64) -> anyhow::Result<Measured> {
    let setup_started = Instant::now();
    let sandbox = Sandbox::start(SandboxConfig {
        customers,
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        plan: Plan::Standard,
        ..Default::default()
    })
    .await?;
    let shop = sandbox
        .shop_domains()
        .first()
        .cloned()
        .context("the sandbox has a shop")?;
    let dir = tempfile::tempdir()?;
    let mut config = Config::local(dir.path().to_path_buf());
    // The app's public URL must be known before it binds; take a free port first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    config.bind = format!("127.0.0.1:{port}").parse()?;
    config.app_url = Some(format!("http://127.0.0.1:{port}"));
    config.database_url = Some(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    ));
    config.encryption_key = Some(lifecycle::secrets::Cipher::generate_key());
    config.shopify_client_id = CLIENT_ID.into();
    config.shopify_client_secret = Some(CLIENT_SECRET.into());
    config.shopify_api_origin = Some(sandbox.base_url());
    config.log = "off".into();
    config.bulk_threshold = bulk_threshold;
    let mut launch = Launch::new(config);
    // No workers: the install's backfill job stays queued; the bench runs the backfill itself.
    launch.workers.workers = 0;
    launch.schedules.clear();
    let app = server::start(launch).await?;
    let http = reqwest::Client::new();
    http.post(format!("{}/_sandbox/app", sandbox.base_url()))
        .json(&json!({ "app_url": app.url() }))
        .send()
        .await?
        .error_for_status()?;
    let r = lifecycle::cli::demo::install_via_app_store(&sandbox.base_url(), &shop).await?;
    if !(r.status().is_success() || r.status().is_redirection()) {
        bail!("install failed: {}", r.status());
    }
    let state = app.state.clone();
    let shop_row = lifecycle::store::shops::find(&state.db, "shopify", &shop)
        .await?
        .context("the shop is installed")?;
    let setup = setup_started.elapsed();

    // Start from a full bucket, so the head start is the whole bucket.
    let (max, _, rate) = state.buckets.get(&shop).snapshot();
    let (bucket, restore) = if max > 0.0 && rate > 0.0 {
        (max, rate)
    } else {
        (STANDARD_BUCKET, STANDARD_RESTORE)
    };
    tokio::time::sleep(Duration::from_secs_f64(bucket / restore + 1.0)).await;

    let log_before = requests(&http, &sandbox, &shop).await?.len();
    let started = Instant::now();
    let report = sync::run(&state, shop_row.id, Mode::Backfill, &|_, _| {}).await?;
    let elapsed = started.elapsed();
    let log = requests(&http, &sandbox, &shop).await?;
    let new = log.get(log_before..).unwrap_or_default();
    let answered = new
        .iter()
        .filter(|r| r["status"].as_u64() == Some(200) && !is_throttled(r));
    let cost = answered
        .clone()
        .filter_map(|r| r["actual_cost"].as_u64())
        .sum();
    let measured = Measured {
        customers,
        fetched: report.fetched,
        changed: report.changed.total(),
        requests: new.len(),
        throttled: new.iter().filter(|r| is_throttled(r)).count(),
        cost,
        bucket,
        restore,
        elapsed,
        setup,
    };
    app.shutdown().await;
    sandbox.shutdown().await;
    Ok(measured)
}

fn print_common(label: &str, m: &Measured) {
    println!("{label}: {} customers", m.customers);
    println!(
        "  setup (sandbox + app + install): {:.1} s",
        m.setup.as_secs_f64()
    );
    println!(
        "  records fetched: {}   written: {}   wall: {:.2} s   records/s: {:.0}",
        m.fetched,
        m.changed,
        m.elapsed.as_secs_f64(),
        m.records_per_sec()
    );
    println!(
        "  requests: {}   throttled: {}   cost: {} points   bucket: {} points at {}/s",
        m.requests, m.throttled, m.cost, m.bucket, m.restore
    );
}

fn print_rss() {
    match peak_rss_mib() {
        Some(mib) => println!("  peak RSS so far (app + sandbox): {mib:.0} MiB"),
        None => println!("  peak RSS: unavailable"),
    }
}

fn main() -> anyhow::Result<()> {
    let paged_n = env_count("LIFECYCLE_BENCH_SYNC_CUSTOMERS", 300)?;
    let bulk_n = env_count("LIFECYCLE_BENCH_BULK_CUSTOMERS", 100_000)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut cost_per_record = None;
        if paged_n > 0 {
            let m = backfill(paged_n, i64::MAX).await?;
            print_common("paged backfill", &m);
            let fl = m.floor();
            let ratio = if fl.is_zero() {
                "n/a (the cost fits the bucket)".to_string()
            } else {
                format!("{:.3}", m.elapsed.as_secs_f64() / fl.as_secs_f64())
            };
            println!("  floor: {:.2} s   wall / floor: {ratio}", fl.as_secs_f64());
            print_rss();
            if m.fetched > 0 {
                cost_per_record = Some(m.cost as f64 / m.fetched as f64);
            }
        }
        if bulk_n > 0 {
            let m = backfill(bulk_n, 1).await?;
            print_common("bulk backfill", &m);
            println!("  floor of the bulk path's own cost: {:.2} s", m.floor().as_secs_f64());
            match cost_per_record {
                Some(per) => {
                    let paged_cost = per * m.fetched as f64;
                    let paged_floor = floor(paged_cost, m.bucket, m.restore);
                    println!(
                        "  paged floor for this shop (est. {per:.2} points/record × {} records = {paged_cost:.0} points): {:.0} s",
                        m.fetched,
                        paged_floor.as_secs_f64()
                    );
                    println!(
                        "  paged floor / bulk wall: {:.1}× faster",
                        paged_floor.as_secs_f64() / m.elapsed.as_secs_f64().max(1e-9)
                    );
                }
                None => println!("  paged floor estimate: n/a (no paged run)"),
            }
            print_rss();
        }
        Ok(())
    })
}
