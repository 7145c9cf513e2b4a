//! `spawn_app`: the real server on port 0 with a fresh database, a new SQLite file, or a new
//! database on the PostgreSQL server named by `LIFECYCLE_TEST_POSTGRES`.

use std::path::PathBuf;

use lifecycle::config::Config;
use lifecycle::queue::Registry;
use lifecycle::queue::worker::WorkerOptions;
use lifecycle::server::{self, Launch, Running};
use sea_orm::{ConnectionTrait, Database, Statement};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database for one test.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pub sqlite_file: Option<PathBuf>,
}

/// Obviously fake credentials for tests.
pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret";
pub const ECWID_CLIENT_ID: &str = "test-ecwid-client-id";
pub const ECWID_CLIENT_SECRET: &str = "test-ecwid-client-secret";

pub fn postgres_server() -> Option<String> {
    std::env::var("LIFECYCLE_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Returns None (and says so) when the backend is not available here.
pub async fn fresh_db(backend: Backend) -> Option<TestDb> {
    let dir = tempfile::tempdir().expect("tempdir");
    match backend {
        Backend::Sqlite => {
            let file = dir.path().join("lifecycle.db");
            Some(TestDb {
                url: format!("sqlite://{}?mode=rwc", file.display()),
                sqlite_file: Some(file),
                dir,
            })
        }
        Backend::Postgres => {
            let Some(server) = postgres_server() else {
                eprintln!("LIFECYCLE_TEST_POSTGRES is not set: skipping the PostgreSQL variant");
                return None;
            };
            let name = format!("lifecycle_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&server)
                .await
                .expect("connect to LIFECYCLE_TEST_POSTGRES");
            admin
                .execute_raw(Statement::from_string(
                    admin.get_database_backend(),
                    format!("CREATE DATABASE {name}"),
                ))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let mut url = url::Url::parse(&server).expect("LIFECYCLE_TEST_POSTGRES is a URL");
            url.set_path(&format!("/{name}"));
            Some(TestDb {
                url: url.to_string(),
                sqlite_file: None,
                dir,
            })
        }
    }
}

pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::local(db.dir.path().to_path_buf());
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.database_url = Some(db.url.clone());
    config.encryption_key = Some(lifecycle::secrets::Cipher::generate_key());
    config.session_key = Some(lifecycle::secrets::Cipher::generate_key());
    config.platforms.shopify.client_id = CLIENT_ID.to_string();
    config.platforms.shopify.client_secret = Some(CLIENT_SECRET.to_string());
    config.platforms.ecwid.client_id = ECWID_CLIENT_ID.to_string();
    config.platforms.ecwid.client_secret = Some(ECWID_CLIENT_SECRET.to_string());
    config.log = std::env::var("LIFECYCLE_TEST_LOG").unwrap_or_else(|_| "warn".into());
    config
}

/// Worker settings that make retries and lease expiry observable within a test.
pub fn fast_workers() -> WorkerOptions {
    WorkerOptions {
        workers: 2,
        lease: chrono::Duration::seconds(2),
        poll: std::time::Duration::from_millis(50),
        retry_base: chrono::Duration::milliseconds(50),
        retry_cap: chrono::Duration::milliseconds(500),
    }
}

pub fn launch(config: Config) -> Launch {
    let mut l = Launch::new(config);
    l.workers = fast_workers();
    l.schedules.clear();
    l
}

pub async fn spawn_app(db: &TestDb) -> Running {
    spawn_with(launch(test_config(db))).await
}

pub async fn spawn_with(launch: Launch) -> Running {
    lifecycle::telemetry::init(&launch.config.log, launch.config.log_format);
    server::start(launch).await.expect("app starts")
}

/// Adds a handler to a launch's registry.
pub fn with_handler<F, Fut>(mut launch: Launch, kind: &str, f: F) -> Launch
where
    F: Fn(lifecycle::state::AppState, lifecycle::store::entities::job::Model) -> Fut
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = lifecycle::queue::JobResult> + Send + 'static,
{
    let mut registry: Registry<lifecycle::state::AppState> = std::mem::take(&mut launch.registry);
    registry.register(kind, f);
    launch.registry = registry;
    launch
}

/// Polls `check` until it returns Some, up to `secs` seconds (a wait, not a timing assertion).
pub async fn eventually<T, F, Fut>(secs: u64, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Declares a test once per backend.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    };
}

/// Declares a test once per platform and backend: the scenario takes both.
#[macro_export]
macro_rules! every_platform {
    ($name:ident) => {
        mod $name {
            use $crate::common::{Backend, Platform};
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn shopify_sqlite() {
                super::$name(Backend::Sqlite, Platform::Shopify).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn shopify_postgres() {
                super::$name(Backend::Postgres, Platform::Shopify).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn ecwid_sqlite() {
                super::$name(Backend::Sqlite, Platform::Ecwid).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn ecwid_postgres() {
                super::$name(Backend::Postgres, Platform::Ecwid).await
            }
        }
    };
}

/// The app and the sandbox platform, wired together as in production: the app reaches the
/// sandbox only through `LIFECYCLE_SHOPIFY_API_ORIGIN`.
pub struct Env {
    /// The platform the sandbox shop simulates ("shopify" or "ecwid").
    pub platform: &'static str,
    pub sandbox: lifecycle_sandbox::Sandbox,
    pub app: Running,
    #[allow(dead_code)] // keeps the temporary database alive for the test
    pub db: TestDb,
    pub shop: String,
    /// A browser: keeps cookies, does not follow redirects (tests follow them step by step).
    pub browser: reqwest::Client,
    pub http: reqwest::Client,
    /// The app's configuration, to start another instance on the same database.
    pub config: Config,
}

pub use lifecycle_sandbox::ecwid::EcwidPlan;

/// The platform a sandbox shop simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Platform {
    #[default]
    Shopify,
    Ecwid,
}

impl Platform {
    /// The platform's (and the sandbox flavour's) name.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Shopify => "shopify",
            Platform::Ecwid => "ecwid",
        }
    }
}

pub struct EnvOptions {
    pub platform: Platform,
    /// Sandbox shops (all alike but for their seed); `Env::shop` is the first.
    pub shops: usize,
    pub customers: usize,
    pub plan: lifecycle_sandbox::Plan,
    pub ecwid_plan: EcwidPlan,
    pub bulk_threshold: i64,
    pub workers: WorkerOptions,
    pub webhook_max_bytes: usize,
    /// No keys in the configuration: the app keeps its own in the data directory, as in
    /// local use (SQLite only; PostgreSQL refuses to start without them).
    pub local_keys: bool,
}

impl Default for EnvOptions {
    fn default() -> Self {
        EnvOptions {
            platform: Platform::Shopify,
            shops: 1,
            customers: 40,
            plan: lifecycle_sandbox::Plan::Standard,
            ecwid_plan: EcwidPlan::Business,
            bulk_threshold: 10_000,
            workers: fast_workers(),
            webhook_max_bytes: 1_048_576,
            local_keys: false,
        }
    }
}

pub async fn env(backend: Backend) -> Option<Env> {
    env_with(backend, EnvOptions::default()).await
}

/// The default environment with a shop of `platform`.
pub async fn env_on(backend: Backend, platform: Platform) -> Option<Env> {
    env_with(
        backend,
        EnvOptions {
            platform,
            ..Default::default()
        },
    )
    .await
}

pub async fn env_with(backend: Backend, opts: EnvOptions) -> Option<Env> {
    let db = fresh_db(backend).await?;
    let sandbox_config = lifecycle_sandbox::SandboxConfig {
        shops: opts.shops,
        customers: opts.customers,
        platform: opts.platform.name().into(),
        time_scale: 3600.0,
        plan: opts.plan,
        ..Default::default()
    }
    .with_app("shopify", CLIENT_ID, CLIENT_SECRET)
    .and_then(|c| c.with_app("ecwid", ECWID_CLIENT_ID, ECWID_CLIENT_SECRET))
    .expect("shopify and ecwid are flavours")
    .with_settings(
        "ecwid",
        lifecycle_sandbox::ecwid::Settings {
            plan: opts.ecwid_plan,
            ..Default::default()
        },
    );
    let sandbox = lifecycle_sandbox::Sandbox::start(sandbox_config)
        .await
        .expect("sandbox starts");
    let mut config = test_config(&db);
    config.platforms.shopify.api_origin = Some(sandbox.base_url());
    config.platforms.ecwid.api_origin = Some(sandbox.base_url());
    // The app's public URL must be known before it binds; take a free port first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.bind = format!("127.0.0.1:{port}").parse().unwrap();
    config.app_url = Some(format!("http://127.0.0.1:{port}"));
    config.webhook_max_bytes = opts.webhook_max_bytes;
    config.bulk_threshold = opts.bulk_threshold;
    if opts.local_keys {
        config.encryption_key = None;
        config.session_key = None;
    }
    let mut l = launch(config.clone());
    l.workers = opts.workers;
    let app = spawn_with(l).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/_sandbox/app", sandbox.base_url()))
        .json(&serde_json::json!({ "app_url": app.url() }))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "sandbox accepts the app url: {}",
        r.text().await.unwrap()
    );
    let shop = sandbox.shop_domains()[0].clone();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Some(Env {
        platform: opts.platform.name(),
        sandbox,
        app,
        db,
        shop,
        browser,
        http,
        config,
    })
}

impl Env {
    pub fn sandbox_url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    pub async fn sandbox_get(&self, path: &str) -> serde_json::Value {
        let r = self.http.get(self.sandbox_url(path)).send().await.unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn sandbox_post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let r = self
            .http
            .post(self.sandbox_url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "POST {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// The app-store install, as the demo does it. Returns the callback's response.
    pub async fn install(&self) -> reqwest::Response {
        lifecycle::cli::demo::install_via_app_store(&self.sandbox.base_url(), &self.shop)
            .await
            .expect("install flow")
    }

    pub async fn installed_shop(&self) -> lifecycle::store::entities::shop::Model {
        lifecycle::store::shops::find(&self.app.state.db, self.platform, &self.shop)
            .await
            .unwrap()
            .expect("shop row")
    }

    /// A sandbox customer's id as the app stores it (Shopify: the GID; Ecwid: the number).
    pub fn customer_key(&self, id: u64) -> String {
        match self.platform {
            "ecwid" => id.to_string(),
            _ => format!("gid://shopify/Customer/{id}"),
        }
    }

    /// A sandbox order's id (from the orders dump) as the app stores it.
    pub fn order_key(&self, row: &serde_json::Value) -> String {
        match self.platform {
            "ecwid" => row["id"].as_str().expect("an Ecwid order id").to_string(),
            _ => row["admin_graphql_api_id"].as_str().unwrap().to_string(),
        }
    }

    /// Waits until the sandbox has no delivery of `shop` pending or being retried.
    pub async fn wait_deliveries_settled(&self, shop: &str, secs: u64) {
        eventually(secs, || async {
            let d = self
                .sandbox_get(&format!("/_sandbox/shops/{shop}/deliveries"))
                .await;
            let pending = d
                .as_array()?
                .iter()
                .any(|x| matches!(x["status"].as_str(), Some("pending" | "retrying")));
            (!pending).then_some(())
        })
        .await
        .expect("the sandbox's deliveries settle");
    }

    pub async fn shutdown(self) {
        self.app.shutdown().await;
        self.sandbox.shutdown().await;
    }
}

/// Posts a Shopify webhook signed with the app's secret, with `extra` headers.
pub async fn post_shopify_webhook(
    env: &Env,
    topic: &str,
    header_shop: &str,
    body: &[u8],
    id: &str,
    extra: &[(&str, String)],
) -> (u16, String) {
    let mut req = env
        .http
        .post(format!("{}/webhooks/shopify", env.app.url()))
        .header("X-Shopify-Topic", topic)
        .header("X-Shopify-Shop-Domain", header_shop)
        .header("X-Shopify-Webhook-Id", id)
        .header("X-Shopify-API-Version", "2026-07")
        .header(
            "X-Shopify-Hmac-Sha256",
            lifecycle::platforms::shopify::signature::sign_body(CLIENT_SECRET, body),
        )
        .header("Content-Type", "application/json");
    for (k, v) in extra {
        req = req.header(*k, v);
    }
    let r = req.body(body.to_vec()).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Subscribes `topic` (the Admin API's enum name) to `url` through the sandbox shop's Admin API
/// with `token`, as an app calling `webhookSubscriptionCreate` would. The app's own backfill and
/// push share the shop's cost bucket, so a throttled call waits for it to refill and tries
/// again, as Shopify asks of a client.
pub async fn subscribe_via_api(env: &Env, token: &str, topic: &str, url: &str) {
    let mut r = serde_json::Value::Null;
    for _ in 0..120 {
        r = env
            .http
            .post(env.sandbox_url(&format!("/{}/admin/api/2026-07/graphql.json", env.shop)))
            .header("X-Shopify-Access-Token", token)
            .json(&serde_json::json!({
                "query": "mutation($topic: WebhookSubscriptionTopic!, $url: URL!) { webhookSubscriptionCreate(topic: $topic, webhookSubscription: { callbackUrl: $url, format: JSON }) { webhookSubscription { id } userErrors { field message } } }",
                "variables": { "topic": topic, "url": url },
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let throttled = r["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["extensions"]["code"] == "THROTTLED"));
        if !throttled {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(
        r["data"]["webhookSubscriptionCreate"]["userErrors"],
        serde_json::json!([]),
        "{r}"
    );
}

/// Every row of a raw statement.
pub async fn query_all(
    db: &lifecycle::store::Db,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Vec<sea_orm::QueryResult> {
    use sea_orm::ConnectionTrait;
    db.query_all_raw(lifecycle::store::stmt(
        db.get_database_backend(),
        sql,
        values,
    ))
    .await
    .unwrap()
}

/// Waits for the shop's latest job of `kind` to be done; a dead one fails the test at once.
pub async fn wait_job_done(db: &lifecycle::store::Db, shop_id: i64, kind: &str) {
    let ok = eventually(240, || async {
        let rows = query_all(
            db,
            "SELECT state, last_error FROM jobs WHERE shop_id = ? AND kind = ? ORDER BY id DESC",
            vec![shop_id.into(), kind.into()],
        )
        .await;
        let r = rows.first()?;
        let state: String = r.try_get("", "state").ok()?;
        match state.as_str() {
            "done" => Some(()),
            "dead" => panic!(
                "{kind} job died: {:?}",
                r.try_get::<Option<String>>("", "last_error")
            ),
            _ => None,
        }
    })
    .await;
    assert!(ok.is_some(), "{kind} job finished");
}

/// The admin session cookie an install callback sets.
pub fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("lifecycle_session="))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
        .expect("the install callback sets the session cookie")
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location header")
        .to_string()
}

/// Counts rows of a table for a shop.
pub async fn count(db: &lifecycle::store::Db, table: &str, shop_id: i64) -> i64 {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(lifecycle::store::stmt(
            backend,
            &format!("SELECT COUNT(*) AS n FROM {table} WHERE shop_id = ?"),
            vec![shop_id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Waits until the inbox is drained and the shop has no queued or running job.
pub async fn wait_work_done(db: &lifecycle::store::Db, shop_id: i64) {
    let idle = eventually(180, || async {
        (pending_work(db, shop_id).await? == 0).then_some(())
    })
    .await;
    assert!(idle.is_some(), "the shop's background work settles");
}

/// Inbox rows and the shop's jobs still queued or running; None when the query fails.
/// What is still pending, by queue, kind and state, for a failure message.
pub async fn pending_work_report(db: &lifecycle::store::Db, shop_id: i64) -> String {
    let rows = query_all(
        db,
        "SELECT 'inbox' AS q, topic AS kind, state, COUNT(*) AS n FROM webhook_inbox \
         WHERE state IN ('queued', 'running') GROUP BY topic, state \
         UNION ALL SELECT 'jobs', kind, state, COUNT(*) FROM jobs \
         WHERE shop_id = ? AND state IN ('queued', 'running') GROUP BY kind, state",
        vec![shop_id.into()],
    )
    .await;
    let running = query_all(
        db,
        "SELECT COUNT(*) AS n FROM segment_runs WHERE shop_id = ? AND status = 'running'",
        vec![shop_id.into()],
    )
    .await;
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {}: {}",
                r.try_get::<String>("", "q").unwrap_or_default(),
                r.try_get::<String>("", "kind").unwrap_or_default(),
                r.try_get::<String>("", "state").unwrap_or_default(),
                r.try_get::<i64>("", "n").unwrap_or_default()
            )
        })
        .collect();
    out.push(format!(
        "segment runs marked running: {}",
        running[0].try_get::<i64>("", "n").unwrap_or_default()
    ));
    out.join("; ")
}

pub async fn pending_work(db: &lifecycle::store::Db, shop_id: i64) -> Option<i64> {
    let r = db
        .query_one_raw(lifecycle::store::stmt(
            db.get_database_backend(),
            "SELECT (SELECT COUNT(*) FROM webhook_inbox WHERE state IN ('queued', 'running')) + \
             (SELECT COUNT(*) FROM jobs WHERE shop_id = ? AND state IN ('queued', 'running')) AS n",
            vec![shop_id.into()],
        ))
        .await
        .ok()??;
    r.try_get::<i64>("", "n").ok()
}

/// GET an admin path signed in by a session cookie: the status and the body.
pub async fn admin_get(env: &Env, cookie: &str, path: &str) -> (reqwest::StatusCode, String) {
    let r = env
        .http
        .get(format!("{}{path}", env.app.url()))
        .header("Cookie", format!("lifecycle_session={cookie}"))
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}
