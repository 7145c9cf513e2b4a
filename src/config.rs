//! Typed settings from the environment (`LIFECYCLE_*`), each with a local default. Secrets have
//! no default: the app's own keys are generated once into the data directory for local use and
//! required with PostgreSQL (see `keys`); an unset platform secret is generated for this process
//! with a loud warning.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address the HTTP server binds.
    #[arg(long, env = "LIFECYCLE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Directory for local state; the default SQLite database lives here.
    #[arg(long, env = "LIFECYCLE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL (`postgres://...` or `sqlite://...`); defaults to a SQLite file in the data dir.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Public URL of this app, which platforms call back (OAuth redirect, webhooks).
    #[arg(long, env = "LIFECYCLE_APP_URL")]
    pub app_url: Option<String>,

    /// Token encryption keys: base64 of 32 bytes; several comma-separated for rotation (the
    /// first encrypts, all decrypt). Unset with SQLite: generated once into the data directory
    /// (`encryption.key`, mode 0600). Required with PostgreSQL.
    #[arg(long, env = "LIFECYCLE_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,

    /// Key that signs the admin's session cookie (at least 32 characters); several
    /// comma-separated for rotation (the first signs, all verify). Unset with SQLite: generated
    /// once into the data directory (`session.key`, mode 0600). Required with PostgreSQL.
    #[arg(long, env = "LIFECYCLE_SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<String>,

    /// Each platform's own settings.
    #[command(flatten)]
    pub platforms: crate::platforms::PlatformsConfig,

    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "LIFECYCLE_LOG", default_value = "info")]
    pub log: String,

    /// Log format: text or json.
    #[arg(long, env = "LIFECYCLE_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Number of job workers in this instance.
    #[arg(long, env = "LIFECYCLE_WORKERS", default_value_t = 4)]
    pub workers: usize,

    /// Largest webhook body accepted, in bytes (413 above it).
    #[arg(long, env = "LIFECYCLE_WEBHOOK_MAX_BYTES", default_value_t = 1_048_576)]
    pub webhook_max_bytes: usize,

    /// Backfills of shops with at least this many orders use a bulk operation instead of paging.
    /// A page of orders costs about 10 query points an order and a standard Shopify shop
    /// restores 100 points a second, so paging reads about 10 orders a second: past a thousand
    /// orders a bulk export is done sooner.
    #[arg(long, env = "LIFECYCLE_BULK_THRESHOLD", default_value_t = 1_000)]
    pub bulk_threshold: i64,

    /// Cron (six fields, seconds first) for the nightly per-shop analysis and push.
    #[arg(
        long,
        env = "LIFECYCLE_SEGMENT_SCHEDULE",
        default_value = "0 0 3 * * *"
    )]
    pub segment_schedule: String,

    /// Cron for the nightly reconciliation sync.
    #[arg(
        long,
        env = "LIFECYCLE_RECONCILE_SCHEDULE",
        default_value = "0 30 2 * * *"
    )]
    pub reconcile_schedule: String,

    /// Days settled webhooks, finished jobs and push audit rows are kept before the retention
    /// job prunes them (webhooks still waiting are never pruned).
    #[arg(long, env = "LIFECYCLE_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,

    /// Cron for the retention job (hourly: each run deletes in small batches).
    #[arg(
        long,
        env = "LIFECYCLE_RETENTION_SCHEDULE",
        default_value = "0 45 * * * *"
    )]
    pub retention_schedule: String,

    /// Scheduled per-shop runs of one tick are spread over this many seconds (each shop at its
    /// own fixed offset), so 1,000 shops do not all start at 03:00:00.
    #[arg(long, env = "LIFECYCLE_SCHEDULE_SPREAD_SECS", default_value_t = 3600)]
    pub schedule_spread_secs: u32,

    /// Most HTTP connections open at once (across the server's workers). Beyond it the server
    /// stops accepting until one closes, so a webhook flood cannot exhaust descriptors.
    #[arg(long, env = "LIFECYCLE_MAX_CONNECTIONS", default_value_t = 2048)]
    pub max_connections: usize,

    /// When set, `/metrics` answers only requests with `Authorization: Bearer <this token>`
    /// (401 otherwise); unset, it is open.
    #[arg(long, env = "LIFECYCLE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Seconds a stopping instance lets running jobs finish; past it they are stopped and
    /// released (queued again, lease cleared) for another instance to take at once.
    #[arg(long, env = "LIFECYCLE_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// Defaults for tests and the demo, without reading the environment.
    pub fn local(data_dir: PathBuf) -> Config {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            config: Config,
        }
        let mut config = Wrap::parse_from(["lifecycle"]).config;
        config.data_dir = data_dir;
        config
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("lifecycle.db").display()
            ),
        }
    }

    pub fn app_url(&self) -> String {
        self.app_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind))
            .trim_end_matches('/')
            .to_string()
    }
}
