//! Webhook ingest throughput, per platform.
//!
//! Starts the real server in this process (port 0, fresh database), sends signed webhooks over
//! HTTP with many concurrent keep-alive connections (Shopify: `customers/update` with the
//! record, about 1 KB, signed over the body; Ecwid: `customer.updated` naming the record,
//! signed over `eventCreated.eventId`, each applied as a queued fetch), and
//! measures `GET /healthz` on the same server with the same client and concurrency as the
//! ceiling, alternating the two in five rounds. Each backend runs twice: with no job workers (pure ingest) and with the default
//! workers draining the inbox while webhooks arrive. After each run the inbox must hold exactly
//! one row per 200 answered; a mismatch fails the bench. Timings are printed, never asserted.
//!
//! Environment: `LIFECYCLE_BENCH_WEBHOOKS` (default 20000), `LIFECYCLE_BENCH_CONCURRENCY`
//! (default 64), `LIFECYCLE_BENCH_WARMUP` (default 1000 per endpoint),
//! `LIFECYCLE_BENCH_WORKERS` (worker counts to run, e.g. `0,4`; default 0 and the default),
//! `LIFECYCLE_BENCH_BACKENDS` (`sqlite`, `postgres` or both, the default),
//! `LIFECYCLE_BENCH_PLATFORMS` (`shopify`, `ecwid` or both, the default), and
//! `LIFECYCLE_TEST_POSTGRES` (a PostgreSQL server URL; its backend is skipped when unset).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{TimeZone, Utc};
use lifecycle::config::Config;
use lifecycle::platforms::shopify::signature::sign_body;
use lifecycle::server::{self, Launch};
use lifecycle::store::shops::{self, TokenGrant};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

const SHOP: &str = "bench.myshopify.com";
const SECRET: &str = "bench-client-secret";
const ECWID_STORE: u64 = 1001;
const ECWID_SECRET: &str = "bench-ecwid-client-secret";

/// Which platform's webhooks a run sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Shopify,
    Ecwid,
}

impl Flavor {
    fn label(self) -> &'static str {
        match self {
            Flavor::Shopify => "shopify",
            Flavor::Ecwid => "ecwid",
        }
    }

    fn shop_key(self) -> String {
        match self {
            Flavor::Shopify => SHOP.to_string(),
            Flavor::Ecwid => ECWID_STORE.to_string(),
        }
    }
}
const TOPIC: &str = "customers/update";
/// Distinct customers the webhooks cycle through, so applied updates hit existing rows.
const CUSTOMERS: usize = 5_000;

struct Settings {
    webhooks: usize,
    concurrency: usize,
    warmup: usize,
    postgres: Option<String>,
    /// Worker counts to run with; default: none, then the default number.
    workers: Option<Vec<usize>>,
    /// Backends to run, by label; default: both.
    backends: Option<String>,
    /// Platforms to run, by label; default: both.
    platforms: Option<String>,
}

impl Settings {
    fn runs(&self, backend: &str) -> bool {
        self.backends
            .as_deref()
            .is_none_or(|list| list.split(',').any(|b| b.trim() == backend))
    }

    fn runs_platform(&self, flavor: Flavor) -> bool {
        self.platforms
            .as_deref()
            .is_none_or(|list| list.split(',').any(|p| p.trim() == flavor.label()))
    }

    fn from_env() -> anyhow::Result<Settings> {
        let settings = Settings {
            webhooks: env_count("LIFECYCLE_BENCH_WEBHOOKS", 20_000)?,
            concurrency: env_count("LIFECYCLE_BENCH_CONCURRENCY", 64)?,
            warmup: env_count("LIFECYCLE_BENCH_WARMUP", 1_000)?,
            platforms: std::env::var("LIFECYCLE_BENCH_PLATFORMS").ok(),
            postgres: std::env::var("LIFECYCLE_TEST_POSTGRES")
                .ok()
                .filter(|s| !s.trim().is_empty()),
            workers: match std::env::var("LIFECYCLE_BENCH_WORKERS") {
                Ok(v) if !v.trim().is_empty() => Some(
                    v.split(',')
                        .map(|w| w.trim().parse())
                        .collect::<Result<_, _>>()
                        .with_context(|| {
                            format!("LIFECYCLE_BENCH_WORKERS must be counts like `0,4`, got `{v}`")
                        })?,
                ),
                _ => None,
            },
            backends: std::env::var("LIFECYCLE_BENCH_BACKENDS")
                .ok()
                .filter(|s| !s.trim().is_empty()),
        };
        if settings.webhooks < ROUNDS || settings.concurrency == 0 {
            bail!(
                "LIFECYCLE_BENCH_WEBHOOKS must be at least {ROUNDS} and LIFECYCLE_BENCH_CONCURRENCY at least 1"
            );
        }
        Ok(settings)
    }
}

fn env_count(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("{name} must be a non-negative integer, got `{v}`")),
        _ => Ok(default),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A database created for one run and removed afterwards.
struct BenchDb {
    url: String,
    dir: tempfile::TempDir,
    /// PostgreSQL server URL and database name, to drop it at the end.
    postgres: Option<(String, String)>,
}

impl BenchDb {
    async fn create(backend: Backend, server: Option<&str>) -> anyhow::Result<BenchDb> {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        match (backend, server) {
            (Backend::Sqlite, _) => Ok(BenchDb {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("lifecycle.db").display()
                ),
                dir,
                postgres: None,
            }),
            (Backend::Postgres, Some(server)) => {
                let name = format!("lifecycle_bench_{}", uuid::Uuid::new_v4().simple());
                admin_execute(server, &format!("CREATE DATABASE {name}")).await?;
                let mut url = url::Url::parse(server)
                    .context("LIFECYCLE_TEST_POSTGRES is not a valid URL")?;
                url.set_path(&format!("/{name}"));
                Ok(BenchDb {
                    url: url.to_string(),
                    dir,
                    postgres: Some((server.to_string(), name)),
                })
            }
            (Backend::Postgres, None) => bail!("LIFECYCLE_TEST_POSTGRES is not set"),
        }
    }

    async fn remove(self) -> anyhow::Result<()> {
        if let Some((server, name)) = &self.postgres {
            admin_execute(
                server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await?;
        }
        Ok(())
    }
}

async fn admin_execute(server: &str, sql: &str) -> anyhow::Result<()> {
    let admin = Database::connect(server)
        .await
        .context("cannot connect to LIFECYCLE_TEST_POSTGRES")?;
    admin
        .execute_raw(Statement::from_string(
            admin.get_database_backend(),
            sql.to_string(),
        ))
        .await
        .with_context(|| format!("`{sql}` failed"))?;
    admin.close().await.ok();
    Ok(())
}

/// What one request targets.
#[derive(Clone)]
enum Target {
    Healthz {
        url: String,
    },
    Webhook {
        url: String,
        flavor: Flavor,
        deliveries: Arc<Vec<Delivery>>,
    },
}

/// One webhook as Shopify would send it, prepared before the clock starts: building the JSON,
/// signing it and minting ids is the sender's work, and on a two-core machine it would take
/// CPU from the server being measured (the ceiling's requests cost the client nothing alike).
struct Delivery {
    body: actix_web::web::Bytes,
    hmac: String,
    webhook_id: String,
    event_id: String,
    triggered_at: String,
}

impl Delivery {
    /// The `seq`-th delivery: a unique id (else it is deduplicated), a body that varies like
    /// real traffic, and a signature over exactly the bytes sent.
    fn new(seq: usize, flavor: Flavor) -> Delivery {
        if flavor == Flavor::Ecwid {
            return Delivery::ecwid(seq);
        }
        let body = customer_update_body(seq);
        Delivery {
            hmac: sign_body(SECRET, body.as_bytes()),
            body: actix_web::web::Bytes::from(body),
            webhook_id: uuid::Uuid::new_v4().hyphenated().to_string(),
            event_id: uuid::Uuid::new_v4().hyphenated().to_string(),
            triggered_at: Utc::now().to_rfc3339(),
        }
    }
}

impl Delivery {
    /// An Ecwid `customer.updated`: ids only, signed over `eventCreated.eventId`.
    fn ecwid(seq: usize) -> Delivery {
        use base64::Engine;
        use hmac::{Hmac, KeyInit, Mac};
        let event_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let created = Utc::now().timestamp();
        let body = serde_json::json!({
            "eventId": event_id,
            "eventCreated": created,
            "storeId": ECWID_STORE,
            "entityId": 70_000 + seq % CUSTOMERS,
            "eventType": "customer.updated",
            "data": {"customerEmail": format!("bob.{}@biller.example", seq % CUSTOMERS)},
        })
        .to_string();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(ECWID_SECRET.as_bytes()).unwrap();
        mac.update(format!("{created}.{event_id}").as_bytes());
        Delivery {
            hmac: base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
            body: actix_web::web::Bytes::from(body),
            webhook_id: event_id.clone(),
            event_id,
            triggered_at: String::new(),
        }
    }
}

impl Target {
    /// The `seq`-th request.
    fn request(&self, client: &reqwest::Client, seq: usize) -> reqwest::RequestBuilder {
        match self {
            Target::Healthz { url } => client.get(url),
            Target::Webhook {
                url,
                flavor: Flavor::Ecwid,
                deliveries,
            } => {
                let d = &deliveries[seq];
                client
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("X-Ecwid-Webhook-Signature", &d.hmac)
                    .body(d.body.clone())
            }
            Target::Webhook {
                url, deliveries, ..
            } => {
                let d = &deliveries[seq];
                client
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("X-Shopify-Topic", TOPIC)
                    .header("X-Shopify-Shop-Domain", SHOP)
                    .header("X-Shopify-Webhook-Id", &d.webhook_id)
                    .header("X-Shopify-Event-Id", &d.event_id)
                    .header("X-Shopify-API-Version", "2026-07")
                    .header("X-Shopify-Triggered-At", &d.triggered_at)
                    .header("X-Shopify-Hmac-Sha256", &d.hmac)
                    .body(d.body.clone())
            }
        }
    }
}

/// A `customers/update` payload in the 2026-07 shape, about 1 KB.
fn customer_update_body(seq: usize) -> String {
    let id = 7_064_055_069_303_700_000u64 + (seq % CUSTOMERS) as u64;
    let created = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let updated = created + chrono::Duration::seconds(seq as i64);
    serde_json::json!({
        "id": id,
        "created_at": created.to_rfc3339(),
        "updated_at": updated.to_rfc3339(),
        "first_name": "Bob",
        "last_name": format!("Biller {}", seq % CUSTOMERS),
        "state": "enabled",
        "note": "This customer loves ice cream",
        "verified_email": true,
        "multipass_identifier": null,
        "tax_exempt": false,
        "email": format!("bob.{}@biller.example", seq % CUSTOMERS),
        "phone": null,
        "currency": "USD",
        "addresses": [],
        "tax_exemptions": [],
        "admin_graphql_api_id": format!("gid://shopify/Customer/{id}"),
        "default_address": {
            "id": 12_321 + seq % CUSTOMERS,
            "customer_id": id,
            "first_name": "Bob",
            "last_name": "Biller",
            "company": null,
            "address1": "151 O'Connor Street",
            "address2": null,
            "city": "Ottawa",
            "province": "ON",
            "country": "CA",
            "zip": "K2P 2L8",
            "phone": "555-555-5555",
            "name": "Bob Biller",
            "province_code": "ON",
            "country_code": "CA",
            "country_name": "CA",
            "default": true
        }
    })
    .to_string()
}

/// Rounds each endpoint is measured in, alternating.
const ROUNDS: usize = 5;

/// The outcome of sending a batch of requests.
#[derive(Default)]
struct Sample {
    ok: usize,
    other_status: usize,
    errors: usize,
    elapsed: Duration,
    /// Per-request latency in microseconds, sorted.
    latencies_us: Vec<u64>,
}

impl Sample {
    /// Adds another round's requests (time adds up; latencies stay sorted).
    fn absorb(&mut self, other: Sample) {
        self.ok += other.ok;
        self.other_status += other.other_status;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
    }

    fn requests(&self) -> usize {
        self.latencies_us.len()
    }

    fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// Nearest-rank percentile, in milliseconds.
    fn percentile_ms(&self, p: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.latencies_us[rank.clamp(1, n) - 1] as f64 / 1000.0
    }
}

/// Sends `total` requests over `concurrency` concurrent connections of one pooled client;
/// each task takes the next sequence number until all are sent.
async fn drive(
    client: &reqwest::Client,
    target: &Target,
    first_seq: usize,
    total: usize,
    concurrency: usize,
) -> Sample {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency.min(total.max(1)))
        .map(|_| {
            let (client, target, next) = (client.clone(), target.clone(), next.clone());
            tokio::spawn(async move {
                let mut part = Sample {
                    ok: 0,
                    other_status: 0,
                    errors: 0,
                    elapsed: Duration::ZERO,
                    latencies_us: Vec::with_capacity(total / concurrency + 1),
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let request = target.request(&client, first_seq + i);
                    let sent = Instant::now();
                    // The body is read so the connection goes back to the pool.
                    match request.send().await {
                        Ok(resp) => {
                            let status = resp.status();
                            let read = resp.bytes().await;
                            if status == reqwest::StatusCode::OK && read.is_ok() {
                                part.ok += 1;
                            } else {
                                part.other_status += 1;
                            }
                        }
                        Err(_) => part.errors += 1,
                    }
                    part.latencies_us.push(sent.elapsed().as_micros() as u64);
                }
                part
            })
        })
        .collect();
    let mut all = Sample {
        ok: 0,
        other_status: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::with_capacity(total),
    };
    for task in tasks {
        match task.await {
            Ok(part) => {
                all.ok += part.ok;
                all.other_status += part.other_status;
                all.errors += part.errors;
                all.latencies_us.extend(part.latencies_us);
            }
            Err(e) => eprintln!("a client task failed: {e}"),
        }
    }
    all.elapsed = started.elapsed();
    all.latencies_us.sort_unstable();
    all
}

/// One server run: a fresh database, a ceiling and a webhook measurement, a durability check.
struct Run {
    backend: Backend,
    flavor: Flavor,
    workers: usize,
    ceiling: Sample,
    webhooks: Sample,
    /// Webhook rate ÷ ceiling rate in each round, sorted.
    round_ratios: Vec<f64>,
    peak_rss_kib: Option<u64>,
    accepted: usize,
    inbox_rows: i64,
    drained: i64,
}

async fn run(
    settings: &Settings,
    backend: Backend,
    flavor: Flavor,
    workers: usize,
) -> anyhow::Result<Run> {
    let db = BenchDb::create(backend, settings.postgres.as_deref()).await?;
    let result = measure(settings, backend, flavor, workers, &db).await;
    let removed = db.remove().await;
    let run = result?;
    removed?;
    Ok(run)
}

async fn measure(
    settings: &Settings,
    backend: Backend,
    flavor: Flavor,
    workers: usize,
    db: &BenchDb,
) -> anyhow::Result<Run> {
    let mut config = Config::local(db.dir.path().to_path_buf());
    config.bind = "127.0.0.1:0".parse()?;
    config.database_url = Some(db.url.clone());
    config.encryption_key = Some(lifecycle::secrets::Cipher::generate_key());
    config.session_key = Some(lifecycle::secrets::Cipher::generate_key());
    config.platforms.shopify.client_secret = Some(SECRET.into());
    config.platforms.shopify.previous_client_secret = None;
    config.platforms.ecwid.client_secret = Some(ECWID_SECRET.into());
    // Ecwid's deliveries become fetches through the API; nothing listens here, so the fetch
    // jobs fail and retry later, after the measurement.
    config.platforms.ecwid.api_origin = Some("http://127.0.0.1:9".into());
    config.log = "off".into();
    config.workers = workers;
    let mut launch = Launch::new(config);
    launch.workers.workers = workers;
    // The nightly schedules never fire during a bench; leave them out.
    launch.schedules.clear();
    let running = server::start(launch)
        .await
        .context("the app did not start")?;
    let state = running.state.clone();
    let key = flavor.shop_key();
    shops::upsert_installed(
        &state.db,
        flavor.label(),
        &key,
        TokenGrant {
            credentials: lifecycle::platforms::Credentials::token("x").seal(&state.cipher, &key),
            expires_at: None,
            scopes: "read_customers".into(),
        },
    )
    .await
    .context("cannot install the bench shop")?;

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(settings.concurrency)
        .timeout(Duration::from_secs(60))
        .build()
        .context("cannot build the HTTP client")?;
    let healthz = Target::Healthz {
        url: format!("{}/healthz", running.url()),
    };
    let webhook = Target::Webhook {
        url: format!("{}/webhooks/{}", running.url(), flavor.label()),
        flavor,
        deliveries: Arc::new(
            (0..settings.warmup + settings.webhooks)
                .map(|seq| Delivery::new(seq, flavor))
                .collect(),
        ),
    };

    let c = settings.concurrency;
    let mut accepted = 0;
    if settings.warmup > 0 {
        drive(&client, &healthz, 0, settings.warmup, c).await;
        accepted += drive(&client, &webhook, 0, settings.warmup, c).await.ok;
    }
    let tracked_rss = reset_peak_rss();
    // The two endpoints alternate in rounds, so a change in the machine's load (it is shared)
    // hits both alike instead of skewing whichever happened to run second.
    let mut ceiling = Sample::default();
    let mut webhooks = Sample::default();
    let mut round_ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (start, end) = (
            settings.webhooks * round / ROUNDS,
            settings.webhooks * (round + 1) / ROUNDS,
        );
        let h = drive(&client, &healthz, 0, end - start, c).await;
        let w = drive(&client, &webhook, settings.warmup + start, end - start, c).await;
        round_ratios.push(w.per_second() / h.per_second());
        ceiling.absorb(h);
        webhooks.absorb(w);
    }
    round_ratios.sort_by(f64::total_cmp);
    accepted += webhooks.ok;
    let peak_rss_kib = if tracked_rss { peak_rss_kib() } else { None };

    let inbox_rows = count(&state.db, "SELECT COUNT(*) AS n FROM webhook_inbox").await?;
    let drained = count(
        &state.db,
        "SELECT COUNT(*) AS n FROM webhook_inbox WHERE state = 'done'",
    )
    .await?;
    drop(client);
    let pool: DatabaseConnection = state.db.clone();
    drop(state);
    running.shutdown().await;
    pool.close().await.ok();
    Ok(Run {
        backend,
        flavor,
        workers,
        ceiling,
        webhooks,
        round_ratios,
        peak_rss_kib,
        accepted,
        inbox_rows,
        drained,
    })
}

async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_string(),
        ))
        .await?
        .context("COUNT returned no row")?;
    Ok(row.try_get::<i64>("", "n")?)
}

/// Resets the process's peak RSS so VmHWM covers only what follows; false if the kernel
/// does not allow it (then no per-run peak is reported).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn print_report(settings: &Settings, runs: &[Run]) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "webhook ingest: {} requests per endpoint, {} concurrent connections, {} warm-up requests per endpoint, {} CPUs, server in-process",
        settings.webhooks, settings.concurrency, settings.warmup, cpus
    );
    println!();
    println!(
        "| backend  | workers | endpoint               | requests | non-200 | seconds |    req/s | p50 ms | p90 ms | p99 ms | max ms | ÷ ceiling |"
    );
    println!(
        "|----------|---------|------------------------|----------|---------|---------|----------|--------|--------|--------|--------|-----------|"
    );
    let endpoints: Vec<String> = runs
        .iter()
        .map(|r| format!("POST /webhooks/{}", r.flavor.label()))
        .collect();
    for (r, endpoint) in runs.iter().zip(&endpoints) {
        let ratio = format!("{:.2}", r.webhooks.per_second() / r.ceiling.per_second());
        for (sample, target, ratio) in [
            (&r.ceiling, "GET /healthz", "ceiling".to_string()),
            (&r.webhooks, endpoint.as_str(), ratio),
        ] {
            println!(
                "| {:<8} | {:>7} | {:<22} | {:>8} | {:>7} | {:>7.2} | {:>8.0} | {:>6.2} | {:>6.2} | {:>6.2} | {:>6.1} | {:>9} |",
                r.backend.label(),
                r.workers,
                target,
                sample.requests(),
                sample.other_status + sample.errors,
                sample.elapsed.as_secs_f64(),
                sample.per_second(),
                sample.percentile_ms(50.0),
                sample.percentile_ms(90.0),
                sample.percentile_ms(99.0),
                sample.percentile_ms(100.0),
                ratio,
            );
        }
    }
    println!();
    for r in runs {
        let rss = r
            .peak_rss_kib
            .map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        let verdict = if r.inbox_rows == r.accepted as i64 {
            "durable"
        } else {
            "MISMATCH"
        };
        let ratios: Vec<String> = r.round_ratios.iter().map(|x| format!("{x:.2}")).collect();
        println!(
            "{} {} / {} workers: ÷ ceiling per round (sorted) {}, median {:.2}",
            r.flavor.label(),
            r.backend.label(),
            r.workers,
            ratios.join(" "),
            r.round_ratios[r.round_ratios.len() / 2],
        );
        println!(
            "{} {} / {} workers: peak RSS {rss} (server and client in one process); webhook_inbox rows {} vs 200s answered {} (warm-up included): {verdict}; applied by workers during the run: {}; non-200: {} status, {} transport errors",
            r.flavor.label(),
            r.backend.label(),
            r.workers,
            r.inbox_rows,
            r.accepted,
            r.drained,
            r.webhooks.other_status,
            r.webhooks.errors,
        );
    }
}

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    runtime.block_on(async {
        let mut backends = Vec::new();
        if settings.runs("sqlite") {
            backends.push(Backend::Sqlite);
        }
        if settings.postgres.is_none() {
            eprintln!("LIFECYCLE_TEST_POSTGRES is not set: PostgreSQL is skipped");
        } else if settings.runs("postgres") {
            backends.push(Backend::Postgres);
        }
        let default_workers = Config::local(std::env::temp_dir()).workers.max(1);
        let mut runs = Vec::new();
        let flavors: Vec<Flavor> = [Flavor::Shopify, Flavor::Ecwid]
            .into_iter()
            .filter(|f| settings.runs_platform(*f))
            .collect();
        for backend in backends {
            for &flavor in &flavors {
                for &workers in settings.workers.as_deref().unwrap_or(&[0, default_workers]) {
                    eprintln!(
                        "running {} {} with {workers} workers ...",
                        flavor.label(),
                        backend.label()
                    );
                    runs.push(run(&settings, backend, flavor, workers).await?);
                }
            }
        }
        print_report(&settings, &runs);
        let lost: Vec<_> = runs
            .iter()
            .filter(|r| r.inbox_rows != r.accepted as i64)
            .map(|r| {
                format!(
                    "{} {} / {} workers",
                    r.flavor.label(),
                    r.backend.label(),
                    r.workers
                )
            })
            .collect();
        if !lost.is_empty() {
            bail!(
                "webhook_inbox does not hold one row per 200 answered in: {}",
                lost.join(", ")
            );
        }
        Ok(())
    })
}
