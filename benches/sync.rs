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
//! - bulk (threshold 1) on the large shop (100,000 customers and about 1,000,000 orders by
//!   default): wall time next to the floor a paged backfill of the same shop would need. That
//!   floor is priced exactly from the same data: after the timed run, every query of the paged
//!   path (the count queries, then each resource's pages as the app writes them) is answered
//!   in-process by the sandbox (`graphql::price`, no bucket) and its actual cost summed; hours
//!   of throttled paging are not needed to know what they would cost.
//!
//! The bulk run is also held against a bare floor measured in the same run: the very JSONL
//! files the sandbox exported, parsed to their keys and inserted into a fresh SQLite table
//! in one transaction (`jsonl_floor`). The export's own time (the platform's, not ours) is
//! printed beside it.
//!
//! Memory: the peak resident set (VmHWM) of this process, which holds the sandbox, the app and
//! SQLite, is reset (via /proc/self/clear_refs) after setup, so the backfill's own peak is
//! reported beside the resident set it started from and the size of the JSONL it streamed.
//!
//! A third run backfills an Ecwid store through its REST API at Ecwid's 600 requests a minute
//! per token, against the floor that limit sets: every record arrives in pages of at most 100,
//! so no backfill can beat `records / (600/min × 100 per page)`, i.e. 1,000 records/s. The
//! request floor (the pages and counts the backfill actually needed, one every 100 ms) and the
//! sandbox's 429s are printed beside it.
//!
//! Timings are printed, never asserted; a run fails only when the backfill does.
//!
//! Environment: `LIFECYCLE_BENCH_SYNC_CUSTOMERS` (paged shop, default 300),
//! `LIFECYCLE_BENCH_BULK_CUSTOMERS` (bulk shop, default 100000; the generator gives about ten
//! orders per customer over `LIFECYCLE_BENCH_HISTORY_DAYS`, default 730); 0 skips that run.
//! `LIFECYCLE_BENCH_PRICE_PAGED=0` skips pricing the paged floor of the bulk shop.
//! `LIFECYCLE_BENCH_ECWID_CUSTOMERS` (Ecwid store, default 2000; 0 skips).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lifecycle::config::Config;
use lifecycle::platforms::shopify::resources::Gql;
use lifecycle::server::{self, Launch};
use lifecycle::sync::{self, Mode};
use lifecycle_sandbox::{Plan, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const CLIENT_ID: &str = "bench-client-id";
const CLIENT_SECRET: &str = "bench-client-secret";

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
    /// Resident set when the timed backfill started, and its peak during the backfill (MiB).
    rss_start: Option<f64>,
    rss_peak: Option<f64>,
    /// Peak before the reset: seeding the sandbox and setting up.
    setup_peak: Option<f64>,
    /// Bulk results the sandbox wrote: (objects, bytes) per operation.
    bulk_results: Vec<(u64, u64)>,
    /// Actual cost of the paged path over the same shop, when priced.
    paged_cost: Option<u64>,
    /// Longest time the sandbox took to produce one export (created to completed).
    export: Duration,
    /// The bare floor on the same JSONL, when measured: (objects, time).
    jsonl_floor: Option<(u64, Duration)>,
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

/// A figure of this process's memory (app and sandbox together) from /proc, in MiB:
/// `VmHWM` is the peak resident set, `VmRSS` the current one.
fn proc_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn peak_rss_mib() -> Option<f64> {
    proc_mib("VmHWM")
}

/// Resets the peak resident set to the current one (Linux: "5" to clear_refs), so a later
/// VmHWM is the peak of what ran in between. False when the kernel refuses.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn env_flag(name: &str, default: bool) -> bool {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => !matches!(v.trim(), "0" | "false" | "no" | "off"),
        _ => default,
    }
}

/// Sums the actual cost of every query the paged backfill sends for this shop (see
/// `sync::choose_path`, `sync::totals` and `sync::pages`), answered in-process by the sandbox.
async fn price_paged_backfill(sandbox: &Sandbox, shop: &str) -> anyhow::Result<u64> {
    use lifecycle::platforms::shopify::resources::Resource;
    let state = sandbox.state();
    let shop = state.shop(shop).context("the shop exists")?;
    let ask = |q: String, vars: Value| {
        let (state, shop) = (state.clone(), shop.clone());
        async move {
            lifecycle_sandbox::shopify::graphql::price(&state, &shop, &q, vars)
                .await
                .map_err(|e| anyhow::anyhow!("pricing `{q}`: {e}"))
        }
    };
    // The path choice reads the order count, then the backfill reads all three counts.
    let mut total = ask(Resource::Orders.count_query(), json!({})).await?.1;
    for r in Resource::ALL {
        total += ask(r.count_query(), json!({})).await?.1;
    }
    for r in Resource::ALL {
        let query = r.page_query();
        let mut after: Option<String> = None;
        loop {
            let (data, cost) = ask(query.clone(), json!({ "after": after, "query": null })).await?;
            total += cost;
            let page = r.page_of(&data).context("a page")?;
            let empty = page
                .get("nodes")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
            let has_next = page
                .pointer("/pageInfo/hasNextPage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !has_next || empty {
                break;
            }
            after = page
                .pointer("/pageInfo/endCursor")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
    }
    Ok(total)
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

/// One object of a bulk result, as little of it as a store needs to key it.
#[derive(serde::Deserialize)]
struct BareObject<'a> {
    #[serde(borrow)]
    id: Option<&'a str>,
    #[serde(rename = "__parentId", borrow)]
    parent: Option<&'a str>,
    #[serde(rename = "updatedAt", borrow)]
    updated_at: Option<&'a str>,
}

/// The floor the bulk path is held against: read the same JSONL files, parse each line into
/// its keys and insert (id, parent, updatedAt, line) into a fresh SQLite table, one prepared
/// statement in one transaction, with the app's journal settings. No mapping, no upsert rule,
/// no checkpoints: what a backfill could not go below on this disk.
fn jsonl_floor(
    files: &[std::path::PathBuf],
    db: &std::path::Path,
) -> anyhow::Result<(u64, Duration)> {
    use std::io::BufRead;
    let mut conn = rusqlite::Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute(
        "CREATE TABLE bare (id TEXT, parent TEXT, updated_at TEXT, line TEXT NOT NULL)",
        [],
    )?;
    let started = Instant::now();
    let tx = conn.transaction()?;
    let mut n = 0u64;
    {
        let mut insert = tx.prepare("INSERT INTO bare VALUES (?1, ?2, ?3, ?4)")?;
        for file in files {
            for line in std::io::BufReader::new(std::fs::File::open(file)?).lines() {
                let line = line?;
                let o: BareObject = serde_json::from_str(&line)?;
                insert.execute(rusqlite::params![o.id, o.parent, o.updated_at, line])?;
                n += 1;
            }
        }
    }
    tx.commit()?;
    Ok((n, started.elapsed()))
}

/// The app's settings for a bench: a fresh SQLite file in `dir`, a free port known before it
/// binds (the platform must know the app's URL), no logs.
fn app_config(dir: &std::path::Path) -> anyhow::Result<Config> {
    let mut config = Config::local(dir.to_path_buf());
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    config.bind = format!("127.0.0.1:{port}").parse()?;
    config.app_url = Some(format!("http://127.0.0.1:{port}"));
    config.database_url = Some(format!(
        "sqlite://{}?mode=rwc",
        dir.join("bench.db").display()
    ));
    config.encryption_key = Some(lifecycle::secrets::Cipher::generate_key());
    config.session_key = Some(lifecycle::secrets::Cipher::generate_key());
    config.log = "off".into();
    Ok(config)
}

/// Starts the app with no workers (the install's backfill job stays queued; the bench runs
/// the backfill itself) and installs it into `shop` through the platform's install flow.
async fn start_installed(
    config: Config,
    sandbox: &Sandbox,
    shop: &str,
) -> anyhow::Result<(server::Running, lifecycle::state::AppState)> {
    let mut launch = Launch::new(config);
    launch.workers.workers = 0;
    launch.schedules.clear();
    let app = server::start(launch).await?;
    reqwest::Client::new()
        .post(format!("{}/_sandbox/app", sandbox.base_url()))
        .json(&json!({ "app_url": app.url() }))
        .send()
        .await?
        .error_for_status()?;
    let r = lifecycle::cli::demo::install_via_app_store(&sandbox.base_url(), shop).await?;
    if !(r.status().is_success() || r.status().is_redirection()) {
        bail!("install failed: {}", r.status());
    }
    let state = app.state.clone();
    Ok((app, state))
}

/// Starts a sandbox shop of `customers` and the app, installs, and times one backfill.
async fn backfill(
    customers: usize,
    history_days: u32,
    bulk_threshold: i64,
    price_paged: bool,
) -> anyhow::Result<Measured> {
    let setup_started = Instant::now();
    let sandbox = Sandbox::start(
        SandboxConfig {
            customers,
            history_days,
            plan: Plan::Standard,
            ..Default::default()
        }
        .with_app("shopify", CLIENT_ID, CLIENT_SECRET)?,
    )
    .await?;
    let shop = sandbox
        .shop_domains()
        .first()
        .cloned()
        .context("the sandbox has a shop")?;
    let dir = tempfile::tempdir()?;
    let mut config = app_config(dir.path())?;
    config.platforms.shopify.client_id = CLIENT_ID.into();
    config.platforms.shopify.client_secret = Some(CLIENT_SECRET.into());
    config.platforms.shopify.api_origin = Some(sandbox.base_url());
    config.bulk_threshold = bulk_threshold;
    let (app, state) = start_installed(config, &sandbox, &shop).await?;
    let shop_row = lifecycle::store::shops::find(&state.db, "shopify", &shop)
        .await?
        .context("the shop is installed")?;
    let http = reqwest::Client::new();
    let setup = setup_started.elapsed();

    // Start from a full bucket, so the head start is the whole bucket: the sandbox shop's plan.
    let (bucket, restore) = (Plan::Standard.bucket_size(), Plan::Standard.restore_rate());
    tokio::time::sleep(Duration::from_secs_f64(bucket / restore + 1.0)).await;

    let log_before = requests(&http, &sandbox, &shop).await?.len();
    let setup_peak = peak_rss_mib();
    let rss_start = proc_mib("VmRSS");
    let peak_reset = reset_peak_rss();
    let started = Instant::now();
    let report = sync::run(&state, shop_row.id, Mode::Backfill, &|_, _| {}).await?;
    let elapsed = started.elapsed();
    let rss_peak = if peak_reset { peak_rss_mib() } else { None };
    let ops = sandbox
        .state()
        .shop(&shop)
        .map(|s| {
            lifecycle_sandbox::shopify::ShopifyShop::of(&s)
                .bulk
                .lock()
                .clone()
        })
        .unwrap_or_default();
    let bulk_results: Vec<(u64, u64)> = ops
        .iter()
        .map(|o| (o.object_count, o.file_size.unwrap_or(0)))
        .collect();
    let export = ops
        .iter()
        .filter_map(|o| {
            Some(
                (o.completed_at? - o.created_at)
                    .to_std()
                    .unwrap_or_default(),
            )
        })
        .max()
        .unwrap_or_default();
    let files: Vec<std::path::PathBuf> = ops
        .iter()
        .filter_map(|o| Some(o.result.as_ref()?.path().to_path_buf()))
        .collect();
    let jsonl_floor = if files.is_empty() {
        None
    } else {
        let path = dir.path().join("floor.db");
        Some(tokio::task::spawn_blocking(move || jsonl_floor(&files, &path)).await??)
    };
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
        rss_start,
        rss_peak,
        setup_peak,
        bulk_results,
        paged_cost: None,
        export,
        jsonl_floor,
    };
    let measured = if price_paged {
        let priced = Instant::now();
        let paged_cost = price_paged_backfill(&sandbox, &shop).await?;
        println!(
            "  (priced the paged path of the {customers}-customer shop in {:.1} s)",
            priced.elapsed().as_secs_f64()
        );
        Measured {
            paged_cost: Some(paged_cost),
            ..measured
        }
    } else {
        measured
    };
    app.shutdown().await;
    sandbox.shutdown().await;
    Ok(measured)
}

/// What the Ecwid backfill measured.
struct EcwidMeasured {
    customers: usize,
    fetched: u64,
    requests: usize,
    throttled: usize,
    elapsed: Duration,
}

/// Starts an Ecwid store of `customers` in the sandbox (600 requests a minute per token, as
/// on the platform) and the app, installs through the App Market redirect, and times one
/// backfill.
async fn ecwid_backfill(customers: usize, history_days: u32) -> anyhow::Result<EcwidMeasured> {
    let sandbox = Sandbox::start(
        SandboxConfig {
            customers,
            history_days,
            platform: "ecwid".into(),
            ..Default::default()
        }
        .with_app("ecwid", CLIENT_ID, CLIENT_SECRET)?,
    )
    .await?;
    let store = sandbox
        .shop_domains()
        .first()
        .cloned()
        .context("the sandbox has a store")?;
    let dir = tempfile::tempdir()?;
    let mut config = app_config(dir.path())?;
    config.platforms.ecwid.client_id = CLIENT_ID.into();
    config.platforms.ecwid.client_secret = Some(CLIENT_SECRET.into());
    config.platforms.ecwid.api_origin = Some(sandbox.base_url());
    let (app, state) = start_installed(config, &sandbox, &store).await?;
    let shop_row = lifecycle::store::shops::find(&state.db, "ecwid", &store)
        .await?
        .context("the store is installed")?;
    let http = reqwest::Client::new();
    let log_before = requests(&http, &sandbox, &store).await?.len();
    let started = Instant::now();
    let report = sync::run(&state, shop_row.id, Mode::Backfill, &|_, _| {}).await?;
    let elapsed = started.elapsed();
    let log = requests(&http, &sandbox, &store).await?;
    let new = log.get(log_before..).unwrap_or_default();
    let measured = EcwidMeasured {
        customers,
        fetched: report.fetched,
        requests: new.len(),
        throttled: new.iter().filter(|r| is_throttled(r)).count(),
        elapsed,
    };
    app.shutdown().await;
    sandbox.shutdown().await;
    Ok(measured)
}

fn print_ecwid(m: &EcwidMeasured) {
    use lifecycle::platforms::ecwid::client::{PAGE_LIMIT, REQUESTS_PER_MINUTE};
    let per_request = 60.0 / f64::from(REQUESTS_PER_MINUTE);
    let floor = m.fetched as f64 / PAGE_LIMIT as f64 * per_request;
    let request_floor = m.requests.saturating_sub(1) as f64 * per_request;
    let wall = m.elapsed.as_secs_f64();
    println!(
        "ecwid backfill (REST, {REQUESTS_PER_MINUTE} requests/min per token): {} customers",
        m.customers
    );
    println!(
        "  records fetched: {}   wall: {wall:.2} s   records/s: {:.0}",
        m.fetched,
        m.fetched as f64 / wall.max(1e-9)
    );
    println!(
        "  floor (records / ({REQUESTS_PER_MINUTE}/min x {PAGE_LIMIT} per page)): {floor:.2} s   wall / floor: {:.3}",
        wall / floor.max(1e-9)
    );
    println!(
        "  requests: {}   answered 429: {}   request floor (one per {:.0} ms): {request_floor:.2} s   wall / request floor: {:.3}",
        m.requests,
        m.throttled,
        per_request * 1000.0,
        wall / request_floor.max(1e-9)
    );
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

fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "unavailable".into(), |m| format!("{m:.0} MiB"))
}

fn print_rss(m: &Measured) {
    println!(
        "  memory (app + sandbox + SQLite, one process): RSS at start {}   peak during the backfill {}   peak while seeding/setting up {}",
        mib(m.rss_start),
        mib(m.rss_peak),
        mib(m.setup_peak)
    );
}

fn main() -> anyhow::Result<()> {
    let paged_n = env_count("LIFECYCLE_BENCH_SYNC_CUSTOMERS", 300)?;
    let bulk_n = env_count("LIFECYCLE_BENCH_BULK_CUSTOMERS", 100_000)?;
    let history_days = u32::try_from(env_count("LIFECYCLE_BENCH_HISTORY_DAYS", 730)?)
        .context("LIFECYCLE_BENCH_HISTORY_DAYS is too large")?;
    let price_paged = env_flag("LIFECYCLE_BENCH_PRICE_PAGED", true);
    let ecwid_n = env_count("LIFECYCLE_BENCH_ECWID_CUSTOMERS", 2000)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        if paged_n > 0 {
            let m = backfill(paged_n, history_days, i64::MAX, false).await?;
            print_common("paged backfill", &m);
            let fl = m.floor();
            let ratio = if fl.is_zero() {
                "n/a (the cost fits the bucket)".to_string()
            } else {
                format!("{:.3}", m.elapsed.as_secs_f64() / fl.as_secs_f64())
            };
            println!("  floor: {:.2} s   wall / floor: {ratio}", fl.as_secs_f64());
            print_rss(&m);
        }
        if bulk_n > 0 {
            let m = backfill(bulk_n, history_days, 1, price_paged).await?;
            print_common("bulk backfill", &m);
            println!("  floor of the bulk path's own cost: {:.2} s", m.floor().as_secs_f64());
            let (objects, bytes) = m
                .bulk_results
                .iter()
                .fold((0, 0), |(o, b), (o2, b2)| (o + o2, b + b2));
            println!(
                "  bulk results streamed: {} operations, {objects} objects, {:.0} MiB of JSONL",
                m.bulk_results.len(),
                bytes as f64 / (1024.0 * 1024.0)
            );
            println!(
                "  the platform's export (longest of the concurrent operations): {:.2} s; backfill after it: {:.2} s",
                m.export.as_secs_f64(),
                m.elapsed.saturating_sub(m.export).as_secs_f64()
            );
            if let Some((n, t)) = m.jsonl_floor {
                let floor_rate = n as f64 / t.as_secs_f64().max(1e-9);
                println!(
                    "  bare JSONL parse + insert of the same files (SQLite, one transaction): {n} objects in {:.2} s = {floor_rate:.0} records/s",
                    t.as_secs_f64()
                );
                println!(
                    "  backfill records/s / bare floor: {:.3}   (excluding the export: {:.3})",
                    m.records_per_sec() / floor_rate,
                    m.fetched as f64
                        / m.elapsed.saturating_sub(m.export).as_secs_f64().max(1e-9)
                        / floor_rate
                );
            }
            match m.paged_cost {
                Some(cost) => {
                    let paged_floor = floor(cost as f64, m.bucket, m.restore);
                    let wall = m.elapsed.as_secs_f64();
                    println!(
                        "  paged floor for this shop ({cost} points, priced from the same data): {:.0} s ({:.1} h)",
                        paged_floor.as_secs_f64(),
                        paged_floor.as_secs_f64() / 3600.0
                    );
                    println!(
                        "  bulk wall / paged floor: {:.4}   ({:.1}x faster than the paged floor)",
                        wall / paged_floor.as_secs_f64().max(1e-9),
                        paged_floor.as_secs_f64() / wall.max(1e-9)
                    );
                }
                None => println!("  paged floor: not priced (LIFECYCLE_BENCH_PRICE_PAGED=0)"),
            }
            print_rss(&m);
        }
        if ecwid_n > 0 {
            print_ecwid(&ecwid_backfill(ecwid_n, history_days).await?);
        }
        Ok(())
    })
}
