//! The whole loop at size, as a merchant's store lives it: `lifecycle sandbox` and `lifecycle
//! serve` as two processes (so the app's own memory and descriptors are measured apart), the
//! app-store install, the bulk backfill, the first analysis and push, the platform's echo of
//! one `customers/update` per customer tagged, live traffic, and a second run.
//!
//! It ends with the app's data equal to the sandbox's (counts and order-independent digests of
//! every customer and order), every delivery stored once and applied, no pending inbox row, no
//! dead job and no ERROR in the app's log; and it prints wall time per phase, the app's peak
//! resident set and descriptors, webhook answer times during the echo and the inbox's drain
//! rate. Figures are printed, never asserted.
//!
//! CI runs it at a reduced size. At full size (release build; PostgreSQL through
//! `LIFECYCLE_TEST_POSTGRES`):
//!
//! ```sh
//! cargo build --release
//! LIFECYCLE_SCALE_BIN=target/release/lifecycle LIFECYCLE_SCALE_CUSTOMERS=100000 \
//!   cargo test --test app scale::whole_loop::sqlite -- --nocapture
//! ```
//!
//! (`LIFECYCLE_SCALE_BIN` runs the release app and sandbox; without it the test runs the
//! binary built with the tests.) Other knobs: `LIFECYCLE_SCALE_LIVE_SECS` (default 10) and `LIFECYCLE_SCALE_LIVE_RATE`
//! (events per second, default 20).

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lifecycle::store::{self, Db};
use lifecycle_sandbox::digest::{Accumulator, Digest, customer_line, order_line};
use sea_orm::{ConnectionTrait, QueryResult, StreamTrait};
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped, so a failing test leaves nothing running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The app's peak descriptors, sampled while the test runs.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak_fds: Arc<AtomicUsize>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_fds = Arc::new(AtomicUsize::new(0));
        let (s, p) = (stop.clone(), peak_fds.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                    p.fetch_max(dir.count(), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Sampler { stop, peak_fds }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// VmHWM of a process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn one(db: &Db, sql: &str, values: Vec<sea_orm::Value>) -> QueryResult {
    db.query_one_raw(store::stmt(db.get_database_backend(), sql, values))
        .await
        .unwrap()
        .expect("one row")
}

async fn count_where(db: &Db, sql: &str) -> i64 {
    one(db, sql, vec![]).await.try_get_by_index(0).unwrap()
}

/// Waits for `check` up to `secs`, panicking with `what` if it never holds.
async fn wait_for<T, F, Fut>(secs: u64, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually(secs, check)
        .await
        .unwrap_or_else(|| panic!("timed out after {secs} s waiting for {what}"))
}

/// Waits until the `SELECT COUNT(*)` query `sql` counts nothing.
async fn wait_for_none(db: &Db, secs: u64, what: &str, sql: &str) {
    wait_for(secs, what, || async {
        (count_where(db, sql).await == 0).then_some(())
    })
    .await
}

/// The app's mirror, digested as the sandbox digests the shop.
async fn our_digest(db: &Db, shop_id: i64) -> Digest {
    // Rows are streamed: a million-customer shop's ten million orders are never held at once.
    let rows = |sql: &'static str| async move {
        db.stream_raw(store::stmt(
            db.get_database_backend(),
            sql,
            vec![shop_id.into()],
        ))
        .await
        .unwrap()
    };
    let mut customers = Accumulator::default();
    let mut stream =
        rows("SELECT platform_id FROM customers WHERE shop_id = ? AND deleted_at IS NULL").await;
    while let Some(r) = stream.next().await {
        customers.add(&customer_line(
            &r.unwrap().try_get_by_index::<String>(0).unwrap(),
        ));
    }
    drop(stream);
    let mut orders = Accumulator::default();
    let mut stream = rows(
        "SELECT platform_id, customer_platform_id, total_minor, refunded_minor, \
         cancelled_at IS NOT NULL FROM orders WHERE shop_id = ? AND deleted_at IS NULL",
    )
    .await;
    while let Some(r) = stream.next().await {
        let r = r.unwrap();
        let id: String = r.try_get_by_index(0).unwrap();
        let customer: Option<String> = r.try_get_by_index(1).unwrap();
        orders.add(&order_line(
            &id,
            customer.as_deref(),
            r.try_get_by_index(2).unwrap(),
            r.try_get_by_index(3).unwrap(),
            r.try_get_by_index::<bool>(4).unwrap(),
        ));
    }
    Digest::from(customers, orders)
}

/// A finished segment run after `after_id` that sent writes: (id, status, summary).
async fn finished_run(db: &Db, shop_id: i64, after_id: i64) -> Option<(i64, String, Value)> {
    let r = db
        .query_one_raw(store::stmt(
            db.get_database_backend(),
            "SELECT id, status, summary FROM segment_runs WHERE shop_id = ? AND id > ? \
             AND dry_run = ? AND status <> 'running' ORDER BY id LIMIT 1",
            vec![shop_id.into(), after_id.into(), false.into()],
        ))
        .await
        .ok()??;
    let summary: String = r.try_get_by_index(2).ok()?;
    Some((
        r.try_get_by_index(0).ok()?,
        r.try_get_by_index(1).ok()?,
        serde_json::from_str(&summary).ok()?,
    ))
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn whole_loop(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let customers = env_or("LIFECYCLE_SCALE_CUSTOMERS", 2000.0) as usize;
    let live_secs = env_or("LIFECYCLE_SCALE_LIVE_SECS", 10.0);
    let live_rate = env_or("LIFECYCLE_SCALE_LIVE_RATE", 20.0);
    // Waits scale with the shop; they bound a hang, they do not time anything.
    let patience = 120 + (customers as u64) / 100;
    // A release binary for full-size runs without building the tests in release too.
    let bin = std::env::var("LIFECYCLE_SCALE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_lifecycle").to_string());
    let bin = bin.as_str();
    let (sandbox_port, app_port) = (free_port(), free_port());
    let sandbox_url = format!("http://127.0.0.1:{sandbox_port}");
    let app_url = format!("http://127.0.0.1:{app_port}");
    let http = reqwest::Client::new();
    let mut phases: Vec<(&str, Duration)> = Vec::new();

    // The platform, in its own process.
    let started = Instant::now();
    let mut sandbox = Proc(
        Command::new(bin)
            .args(["sandbox", "--bind", &format!("127.0.0.1:{sandbox_port}")])
            .args(["--customers", &customers.to_string()])
            .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
            .args(["--app-url", &app_url, "--time-scale", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the sandbox starts"),
    );
    let mut lines = BufReader::new(sandbox.0.stdout.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("the sandbox says where it listens")
            .unwrap();
        if line.contains("listening on") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let shop = "demo-1.myshopify.com".to_string();
    phases.push(("sandbox seeded", started.elapsed()));

    // The app, in its own process, logging JSON to a file the test reads at the end.
    let log_path = db.dir.path().join("app.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let app = Proc(
        Command::new(bin)
            .arg("serve")
            .env("DATABASE_URL", &db.url)
            .env("LIFECYCLE_DATA_DIR", db.dir.path())
            .env("LIFECYCLE_BIND", format!("127.0.0.1:{app_port}"))
            .env("LIFECYCLE_APP_URL", &app_url)
            .env(
                "LIFECYCLE_ENCRYPTION_KEY",
                lifecycle::secrets::Cipher::generate_key(),
            )
            .env(
                "LIFECYCLE_SESSION_KEY",
                lifecycle::secrets::Cipher::generate_key(),
            )
            .env("LIFECYCLE_SHOPIFY_CLIENT_ID", CLIENT_ID)
            .env("LIFECYCLE_SHOPIFY_CLIENT_SECRET", CLIENT_SECRET)
            .env("LIFECYCLE_SHOPIFY_API_ORIGIN", &sandbox_url)
            .env("LIFECYCLE_LOG", "info")
            .env("LIFECYCLE_LOG_FORMAT", "json")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the app starts"),
    );
    let pid = app.0.id();
    let sampler = Sampler::start(pid);
    wait_for(60, "the app to answer /healthz", || async {
        let r = http.get(format!("{app_url}/healthz")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    let conn = store::connect(&db.url).await.unwrap();

    let t = Instant::now();
    let done = lifecycle::cli::demo::install_via_app_store(&sandbox_url, &shop)
        .await
        .expect("install flow");
    assert!(done.status().is_redirection(), "install: {}", done.status());
    let shop_id: i64 = one(
        &conn,
        "SELECT id FROM shops WHERE domain = ?",
        vec![shop.clone().into()],
    )
    .await
    .try_get_by_index(0)
    .unwrap();
    phases.push(("install", t.elapsed()));

    let t = Instant::now();
    let backfill = format!(
        "SELECT COUNT(*) FROM jobs WHERE shop_id = {shop_id} AND kind = 'sync.backfill' AND state = 'done'"
    );
    wait_for(patience * 2, "the backfill", || async {
        (count_where(&conn, &backfill).await > 0).then_some(())
    })
    .await;
    phases.push(("backfill", t.elapsed()));
    let records = count_where(
        &conn,
        &format!(
            "SELECT (SELECT COUNT(*) FROM customers WHERE shop_id = {shop_id}) + \
             (SELECT COUNT(*) FROM orders WHERE shop_id = {shop_id}) + \
             (SELECT COUNT(*) FROM checkouts WHERE shop_id = {shop_id})"
        ),
    )
    .await;

    let t = Instant::now();
    let (first_id, status, first) = wait_for(patience * 2, "the first segment run", || {
        finished_run(&conn, shop_id, 0)
    })
    .await;
    assert_eq!(status, "done", "first run: {first}");
    phases.push(("first analysis and push", t.elapsed()));
    let tagged = first["tags"]["customers"].as_u64().unwrap_or(0);
    assert!(
        tagged as usize >= customers / 2,
        "the first run tags most customers: {first}"
    );

    // The platform's echo: one customers/update per customer tagged.
    let t = Instant::now();
    let deliveries = || async {
        http.get(format!("{sandbox_url}/_sandbox/shops/{shop}/deliveries"))
            .send()
            .await
            .ok()?
            .json::<Vec<Value>>()
            .await
            .ok()
    };
    // Polls read per-topic counts; the whole log (hundreds of megabytes at a million
    // customers) is read once a wait is over.
    let summary = || async {
        http.get(format!(
            "{sandbox_url}/_sandbox/shops/{shop}/deliveries/summary"
        ))
        .send()
        .await
        .ok()?
        .json::<serde_json::Map<String, Value>>()
        .await
        .ok()
    };
    let settled = |s: &serde_json::Map<String, Value>| {
        s.values()
            .all(|t| t["delivered"].as_u64() == t["total"].as_u64())
    };
    wait_for(patience, "the echo to be delivered", || async {
        let s = summary().await?;
        let echo = s.get("customers/update")?;
        (echo["total"].as_u64()? >= tagged && settled(&s)).then_some(())
    })
    .await;
    let echoes: Vec<Value> = deliveries()
        .await
        .expect("the delivery log")
        .into_iter()
        .filter(|d| d["topic"] == "customers/update")
        .collect();
    let pending = format!(
        "SELECT COUNT(*) FROM webhook_inbox WHERE state IN ('queued', 'running') AND shop_id = {shop_id}"
    );
    wait_for_none(&conn, patience, "the inbox to drain", &pending).await;
    phases.push(("echo delivered and applied", t.elapsed()));
    let mut latencies: Vec<u32> = echoes
        .iter()
        .flat_map(|d| {
            d["latencies_ms"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_u64().map(|v| v as u32))
        })
        .collect();
    latencies.sort_unstable();
    let deferred = echoes
        .iter()
        .filter(|d| d["attempts"].as_u64().unwrap_or(0) > 1)
        .count();
    let drain = one(
        &conn,
        "SELECT COUNT(*), MIN(created_at), MAX(finished_at) FROM webhook_inbox \
         WHERE shop_id = ? AND topic = 'customers/update'",
        vec![shop_id.into()],
    )
    .await;
    let drained: i64 = drain.try_get_by_index(0).unwrap();
    let first_in: chrono::DateTime<chrono::Utc> = drain.try_get_by_index(1).unwrap();
    let last_done: chrono::DateTime<chrono::Utc> = drain.try_get_by_index(2).unwrap();
    let drain_secs = (last_done - first_in).as_seconds_f64().max(1e-3);
    let rescores = count_where(
        &conn,
        &format!("SELECT COUNT(*) FROM jobs WHERE shop_id = {shop_id} AND kind = 'rescore'"),
    )
    .await;

    // Live traffic, then a quiet inbox again.
    let t = Instant::now();
    let r = http
        .post(format!("{sandbox_url}/_sandbox/shops/{shop}/live"))
        .json(&json!({ "rate": live_rate }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "live traffic starts");
    tokio::time::sleep(Duration::from_secs_f64(live_secs)).await;
    http.delete(format!("{sandbox_url}/_sandbox/shops/{shop}/live"))
        .send()
        .await
        .unwrap();
    let all_delivered = || async { settled(&summary().await?).then_some(()) };
    wait_for(patience, "live deliveries to settle", all_delivered).await;
    wait_for_none(
        &conn,
        patience,
        "the inbox to drain after live traffic",
        &pending,
    )
    .await;
    phases.push(("live traffic", t.elapsed()));

    // The second run: what changed since the first, and nothing else.
    let t = Instant::now();
    store::jobs::enqueue(
        &conn,
        store::jobs::NewJob::new("segment")
            .shop(shop_id)
            .dedupe(format!("scale-second-run:{shop_id}")),
    )
    .await
    .unwrap();
    let (_, status, second) = wait_for(patience * 2, "the second segment run", || {
        finished_run(&conn, shop_id, first_id)
    })
    .await;
    assert_eq!(status, "done", "second run: {second}");
    phases.push(("second run", t.elapsed()));
    wait_for(patience, "everything to settle", || async {
        all_delivered().await?;
        (count_where(&conn, &pending).await == 0).then_some(())
    })
    .await;
    let queued_jobs = format!(
        "SELECT COUNT(*) FROM jobs WHERE shop_id = {shop_id} AND state IN ('queued', 'running') AND kind <> 'sync.reconcile'"
    );
    wait_for_none(&conn, patience, "the shop's jobs to finish", &queued_jobs).await;

    // The ends: data equal to the platform's, every delivery stored once and applied.
    let theirs: Digest = http
        .get(format!("{sandbox_url}/_sandbox/shops/{shop}/digest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        our_digest(&conn, shop_id).await,
        theirs,
        "the mirror equals the shop"
    );
    all_delivered().await.expect("every delivery delivered");
    let deliveries = deliveries().await.expect("the delivery log");
    let delivered: HashSet<String> = deliveries
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let stored: Vec<(String, String)> = conn
        .query_all_raw(store::stmt(
            conn.get_database_backend(),
            "SELECT webhook_id, state FROM webhook_inbox WHERE shop_id = ?",
            vec![shop_id.into()],
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
            )
        })
        .collect();
    let stored_ids: HashSet<String> = stored.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(stored.len(), stored_ids.len(), "each delivery stored once");
    assert_eq!(stored_ids, delivered, "every delivery stored, nothing else");
    let not_done: Vec<_> = stored.iter().filter(|(_, s)| s != "done").collect();
    assert!(not_done.is_empty(), "every delivery applied: {not_done:?}");
    assert_eq!(
        count_where(&conn, "SELECT COUNT(*) FROM jobs WHERE state = 'dead'").await,
        0,
        "no dead job"
    );

    let peak_fds = sampler.peak_fds.load(Ordering::Relaxed);
    let peak_rss = peak_rss_mib(pid);
    drop(sampler);
    drop(app);
    drop(sandbox);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(errors.is_empty(), "errors in the app's log: {errors:#?}");

    let backfill_secs = phases
        .iter()
        .find(|(n, _)| *n == "backfill")
        .map_or(1.0, |p| p.1.as_secs_f64());
    println!("\nwhole loop, {backend:?}, {customers} customers, {records} records");
    for (name, d) in &phases {
        println!("  {name:<28} {:>9.1} s", d.as_secs_f64());
    }
    println!(
        "  backfill                      {:>9.0} records/s",
        records as f64 / backfill_secs
    );
    println!(
        "  first run                     {} customers tagged, timings {}",
        tagged, first["timings"]
    );
    println!(
        "  second run                    {} tag changes, timings {}",
        second["tag_changes"], second["timings"]
    );
    let echo_secs = phases
        .iter()
        .find(|(n, _)| *n == "echo delivered and applied")
        .map_or(1.0, |p| p.1.as_secs_f64());
    println!(
        "  echo                          {} deliveries in {echo_secs:.1} s = {:.0} answered/s, answered p50 {} ms, p99 {} ms, max {} ms; {} retried after a 503 or timeout",
        echoes.len(),
        echoes.len() as f64 / echo_secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
        deferred
    );
    println!(
        "  inbox drain                   {drained} rows in {drain_secs:.1} s = {:.0} rows/s; {rescores} re-scoring jobs",
        drained as f64 / drain_secs
    );
    println!("  app peak RSS                  {peak_rss:>9.0} MiB");
    println!("  app peak descriptors          {peak_fds:>9}");
}
both_backends!(whole_loop);
