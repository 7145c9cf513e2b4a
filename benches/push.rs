//! Tag push throughput against the sandbox's standard rate limits.
//!
//! Starts the sandbox (standard plan: a 2,000-point bucket restoring 100 points/s) and the real
//! app on a fresh SQLite file, installs the app through the OAuth flow, then pushes one
//! `tagsAdd` per customer for N customers through `writeback::tags::push_aliased` (the segment
//! job's path for a small difference: aliased mutations, 25 per request, confirmed state written
//! after each batch). The same N writes are also sent one per request as the baseline. A third
//! row pushes one `tagsAdd` for each of M customers through `writeback::bulk::push` (the path for
//! a large difference: one staged bulk mutation, confirmed per result line) and compares it
//! with the floor the aliased path would have for the same M writes. Each run starts with a full
//! bucket, so the floor the bucket allows is
//!
//! ```text
//!     floor = max(0, N × 10 − bucket) / restore rate
//! ```
//!
//! and the report prints elapsed time, writes per second, requests, THROTTLED answers and
//! the ratio to the floor. Timings are printed, never asserted; the bench fails only if the
//! shop does not end with every tag.
//!
//! Environment: `LIFECYCLE_BENCH_PUSH_CUSTOMERS` (N, default 500) and
//! `LIFECYCLE_BENCH_PUSH_BULK_CUSTOMERS` (M, default 5,000).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use lifecycle::config::Config;
use lifecycle::core::loyalty::{TagAction, TagChange, TagReason};
use lifecycle::server::{self, Launch};
use lifecycle::writeback::bulk;
use lifecycle::writeback::store::Pushed;
use lifecycle::writeback::tags::{self, TagWork};
use lifecycle_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

const CLIENT_ID: &str = "bench-client-id";
const CLIENT_SECRET: &str = "bench-client-secret";

struct Run {
    label: &'static str,
    writes: usize,
    requests: usize,
    throttled: usize,
    /// Points the shop charged (actual costs in its request log).
    points: f64,
    elapsed: Duration,
    floor: Duration,
}

fn location(r: &reqwest::Response) -> anyhow::Result<String> {
    Ok(r.headers()
        .get("location")
        .context("redirect without Location")?
        .to_str()?
        .to_string())
}

async fn install(sandbox: &Sandbox, shop: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let url: Value = http
        .get(format!(
            "{}/_sandbox/shops/{shop}/install_url",
            sandbox.base_url()
        ))
        .send()
        .await?
        .json()
        .await?;
    let url = url["install_url"].as_str().context("install_url")?;
    let r = browser.get(url).send().await?;
    let r = browser.get(location(&r)?).send().await?;
    let r = browser.get(location(&r)?).send().await?;
    if !(r.status().is_success() || r.status().is_redirection()) {
        bail!("install failed: {}", r.status());
    }
    Ok(())
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
        .json()
        .await?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

fn works(customers: &[String], tag: &str) -> Vec<TagWork> {
    customers
        .iter()
        .map(|c| TagWork {
            change: TagChange {
                customer_id: c.clone(),
                add: vec![tag.to_string()],
                remove: vec![],
                reasons: vec![TagReason {
                    tag: tag.to_string(),
                    action: TagAction::Add,
                    segment_key: Some("bench".into()),
                }],
            },
            desired: vec![tag.to_string()],
            previous: Pushed::default(),
        })
        .collect()
}

/// A count from the environment, at least 1.
fn count(var: &str, default: usize) -> anyhow::Result<usize> {
    let n = match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("{var} must be a count, got `{v}`"))?,
        _ => default,
    };
    if n == 0 {
        bail!("{var} must be at least 1");
    }
    Ok(n)
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Batched,
    OnePerRequest,
    Bulk,
}

fn main() -> anyhow::Result<()> {
    let n = count("LIFECYCLE_BENCH_PUSH_CUSTOMERS", 500)?;
    let m = count("LIFECYCLE_BENCH_PUSH_BULK_CUSTOMERS", 5000)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let sandbox = Sandbox::start(
            SandboxConfig {
                customers: n.max(m),
                ..Default::default()
            }
            .with_app("shopify", CLIENT_ID, CLIENT_SECRET)?,
        )
        .await?;
        let shop = sandbox.shop_domains()[0].clone();
        let dir = tempfile::tempdir()?;
        let mut config = Config::local(dir.path().to_path_buf());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        config.bind = format!("127.0.0.1:{port}").parse()?;
        config.app_url = Some(format!("http://127.0.0.1:{port}"));
        config.database_url = Some(format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()));
        config.encryption_key = Some(lifecycle::secrets::Cipher::generate_key());
        config.session_key = Some(lifecycle::secrets::Cipher::generate_key());
        config.platforms.shopify.client_id = CLIENT_ID.into();
        config.platforms.shopify.client_secret = Some(CLIENT_SECRET.into());
        config.platforms.shopify.api_origin = Some(sandbox.base_url());
        config.log = "error".into();
        lifecycle::telemetry::init(&config.log, config.log_format);
        let mut launch = Launch::new(config);
        // No workers: nothing but the push talks to the shop during the measurement.
        launch.workers.workers = 0;
        launch.schedules.clear();
        let app = server::start(launch).await?;
        let http = reqwest::Client::new();
        http.post(format!("{}/_sandbox/app", sandbox.base_url()))
            .json(&json!({ "app_url": app.url() }))
            .send()
            .await?
            .error_for_status()?;
        install(&sandbox, &shop).await?;
        let state = app.state.clone();
        let shop_row = lifecycle::store::shops::find(&state.db, "shopify", &shop)
            .await?
            .context("the shop is installed")?;
        let customers: Vec<String> = http
            .get(format!("{}/_sandbox/shops/{shop}/customers", sandbox.base_url()))
            .send()
            .await?
            .json::<Value>()
            .await?
            .as_array()
            .context("customers")?
            .iter()
            .filter_map(|c| c["admin_graphql_api_id"].as_str().map(str::to_string))
            .collect();

        let mut runs = Vec::new();
        for (label, mode) in [
            ("batched (25 per request)", Mode::Batched),
            ("one per request (baseline)", Mode::OnePerRequest),
            ("bulk mutation", Mode::Bulk),
        ] {
            let targets = &customers[..if mode == Mode::Bulk { m } else { n }.min(customers.len())];
            // Start from a full bucket, so every run has the same head start.
            let (max, _, rate) = state.platforms.find::<lifecycle::platforms::shopify::Shopify>().expect("shopify is registered").buckets.get(&shop).snapshot();
            tokio::time::sleep(Duration::from_secs_f64(max / rate + 1.0)).await;
            let tag = format!("lifecycle:bench-{}", runs.len());
            let work = works(targets, &tag);
            let log_before = requests(&http, &sandbox, &shop).await?.len();
            let started = Instant::now();
            match mode {
                Mode::Batched => {
                    tags::push_aliased(&state, shop_row.id, None, &work, Utc::now()).await?;
                }
                Mode::OnePerRequest => {
                    for w in &work {
                        tags::push_aliased(&state, shop_row.id, None, std::slice::from_ref(w), Utc::now()).await?;
                    }
                }
                Mode::Bulk => {
                    let (stats, _) = bulk::push(&state, shop_row.id, None, &work, Utc::now()).await?;
                    if stats.bulk_operations == 0 || stats.customers != targets.len() {
                        bail!("{label}: the bulk push confirmed {stats:?}");
                    }
                }
            }
            let elapsed = started.elapsed();
            let log = requests(&http, &sandbox, &shop).await?;
            let new = &log[log_before..];
            // The floor of the aliased path for the same writes.
            let cost = targets.len() as f64 * 10.0;
            runs.push(Run {
                label,
                writes: targets.len(),
                requests: new.iter().filter(|r| !r["throttled"].as_bool().unwrap_or(false)).count(),
                throttled: new.iter().filter(|r| r["throttled"].as_bool().unwrap_or(false)).count(),
                points: new.iter().filter_map(|r| r["actual_cost"].as_f64()).sum(),
                elapsed,
                floor: Duration::from_secs_f64(((cost - max).max(0.0)) / rate),
            });
            let tagged = http
                .get(format!("{}/_sandbox/shops/{shop}/customers", sandbox.base_url()))
                .send()
                .await?
                .json::<Value>()
                .await?
                .as_array()
                .context("customers")?
                .iter()
                .filter(|c| c["tags"].as_array().is_some_and(|t| t.iter().any(|x| x == tag.as_str())))
                .count();
            if tagged != targets.len() {
                bail!("{label}: {tagged} of {} customers carry {tag}", targets.len());
            }
        }
        let (max, _, rate) = state.platforms.find::<lifecycle::platforms::shopify::Shopify>().expect("shopify is registered").buckets.get(&shop).snapshot();
        println!("push throughput: tagsAdd writes (10 points each when aliased), bucket {max:.0} points, restore {rate:.0} points/s");
        println!(
            "{:<28} {:>7} {:>9} {:>10} {:>8} {:>10} {:>10} {:>9} {:>9}",
            "mode", "writes", "requests", "throttled", "points", "elapsed s", "writes/s", "floor s", "/ floor"
        );
        for r in &runs {
            let ratio = if r.floor.is_zero() { f64::NAN } else { r.elapsed.as_secs_f64() / r.floor.as_secs_f64() };
            println!(
                "{:<28} {:>7} {:>9} {:>10} {:>8.0} {:>10.2} {:>10.1} {:>9.2} {:>9.4}",
                r.label,
                r.writes,
                r.requests,
                r.throttled,
                r.points,
                r.elapsed.as_secs_f64(),
                r.writes as f64 / r.elapsed.as_secs_f64(),
                r.floor.as_secs_f64(),
                ratio
            );
        }
        println!(
            "floor = max(0, writes × 10 − bucket) / restore rate: the aliased path's floor for that row's writes; the aliased steady-state ceiling is {:.0} writes/s",
            rate / 10.0
        );
        app.shutdown().await;
        sandbox.shutdown().await;
        Ok(())
    })
}
