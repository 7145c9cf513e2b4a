//! Builds the application: connects and migrates the database, resolves secrets, starts the
//! HTTP server, the job workers and the scheduler, and stops them in order.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::{ServerHandle, Service};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_cron_scheduler::JobScheduler;
use tracing_actix_web::TracingLogger;

use crate::config::Config;
use crate::jobs::worker::{self, WorkerOptions};
use crate::jobs::{Registry, Schedule, scheduler};
use crate::metrics::Metrics;
use crate::secrets::{Cipher, random_secret};
use crate::state::{AppState, Inner, ShopifyApp};
use crate::{routes, store};

/// Everything needed to start an instance; tests adjust the parts they exercise.
pub struct Launch {
    pub config: Config,
    pub workers: WorkerOptions,
    pub schedules: Vec<Schedule>,
    pub registry: Registry,
}

impl Launch {
    pub fn new(config: Config) -> Launch {
        let workers = WorkerOptions {
            workers: config.workers,
            ..Default::default()
        };
        let schedules = crate::jobs::default_schedules(&config);
        Launch {
            config,
            workers,
            schedules,
            registry: crate::jobs::default_registry(),
        }
    }
}

/// A running instance.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    server: ServerHandle,
    server_task: JoinHandle<std::io::Result<()>>,
    workers: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    scheduler: Option<JobScheduler>,
    /// The inbox writer; stopped after the server, so in-flight webhooks are still committed.
    intake: Option<crate::ingest::intake::Writer>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful stop: no new requests or claims; running jobs finish; then the server stops.
    pub async fn shutdown(mut self) {
        if let Some(mut s) = self.scheduler.take() {
            let _ = s.shutdown().await;
        }
        let _ = self.stop.send(true);
        for w in self.workers.drain(..) {
            let _ = w.await;
        }
        self.server.stop(true).await;
        let _ = self.server_task.await;
        if let Some(w) = self.intake.take() {
            w.stop().await;
        }
    }

    /// Abrupt stop, as if the process died: workers are dropped mid-job and keep their leases.
    pub async fn kill(mut self) {
        if let Some(mut s) = self.scheduler.take() {
            let _ = s.shutdown().await;
        }
        for w in self.workers.drain(..) {
            w.abort();
        }
        if let Some(w) = self.intake.take() {
            w.abort();
        }
        self.server.stop(false).await;
        self.server_task.abort();
    }

    /// Resolves when the server stops (e.g. on SIGTERM/Ctrl-C, which actix handles).
    pub async fn wait(mut self) -> std::io::Result<()> {
        let result = (&mut self.server_task).await.unwrap_or(Ok(()));
        self.shutdown_rest().await;
        result
    }

    async fn shutdown_rest(mut self) {
        tracing::info!("stopping workers");
        if let Some(mut s) = self.scheduler.take() {
            let _ = s.shutdown().await;
        }
        let _ = self.stop.send(true);
        for w in self.workers.drain(..) {
            let _ = w.await;
        }
        if let Some(w) = self.intake.take() {
            w.stop().await;
        }
    }
}

/// Connects, migrates and builds the shared state.
pub async fn build_state(config: Config, registry: Registry) -> anyhow::Result<AppState> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
    }
    let db = store::connect(&url).await.map_err(|e| {
        anyhow::anyhow!("cannot connect to the database ({}): {e}", redact_url(&url))
    })?;
    store::migrate(&db)
        .await
        .context("database migration failed")?;

    let key = match &config.encryption_key {
        Some(k) => k.clone(),
        None => {
            tracing::warn!(
                "LIFECYCLE_ENCRYPTION_KEY is not set: generated a key for this process only; stored tokens will not decrypt after a restart"
            );
            Cipher::generate_key()
        }
    };
    let cipher = Cipher::from_config(&key).context("LIFECYCLE_ENCRYPTION_KEY is invalid")?;
    let secret = match &config.shopify_client_secret {
        Some(s) => s.clone(),
        None => {
            tracing::warn!(
                "LIFECYCLE_SHOPIFY_CLIENT_SECRET is not set: generated one for this process; Shopify signatures will not verify"
            );
            random_secret(32)
        }
    };
    let mut secrets = vec![secret];
    secrets.extend(config.shopify_previous_client_secret.clone());
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .connect_timeout(std::time::Duration::from_secs(5))
        .user_agent(concat!("lifecycle/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    Ok(AppState::new(Inner {
        shopify: ShopifyApp {
            client_id: config.shopify_client_id.clone(),
            secrets,
        },
        config,
        db,
        cipher,
        http,
        registry,
        metrics: Metrics::default(),
        instance_id: format!("{}-{}", std::process::id(), &random_secret(3)),
        buckets: Default::default(),
        refresh_locks: Default::default(),
        manifest: crate::platforms::shopify::manifest::Manifest::load(),
        intake: Default::default(),
    }))
}

/// Starts an instance.
pub async fn start(launch: Launch) -> anyhow::Result<Running> {
    let state = build_state(launch.config.clone(), launch.registry).await?;
    start_with_state(state, launch.workers, launch.schedules).await
}

pub async fn start_with_state(
    state: AppState,
    workers: WorkerOptions,
    schedules: Vec<Schedule>,
) -> anyhow::Result<Running> {
    raise_descriptor_limit();
    let listener =
        bind(state.config.bind).with_context(|| format!("cannot bind {}", state.config.bind))?;
    let addr = listener.local_addr()?;
    // The writer runs before the server accepts its first webhook.
    let intake = state.intake.start(state.db.clone());
    let data = web::Data::new(state.clone());
    let max_body = state.config.webhook_max_bytes;
    // Connections are bounded per server worker; beyond the bound the server stops accepting
    // (the kernel's backlog holds the rest), so a flood costs waiting, not descriptors.
    let http_workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let max_connections = state.config.max_connections.div_ceil(http_workers).max(1);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .wrap_fn(|req, srv| {
                let state = req.app_data::<web::Data<AppState>>().cloned();
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    if let Some(state) = state {
                        state.metrics.record_status(res.status().as_u16());
                    }
                    Ok(res)
                }
            })
            .wrap(TracingLogger::default())
            .configure(routes::configure)
    })
    .workers(http_workers)
    .max_connections(max_connections)
    .listen(listener)?
    .shutdown_timeout(10)
    .run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);

    let (stop, stop_rx) = watch::channel(false);
    let mut worker_tasks = worker::spawn(state.clone(), workers, stop_rx.clone());
    worker_tasks.extend(store::spawn_checkpointer(state.db.clone(), stop_rx.clone()));
    worker_tasks.extend(store::maintenance::spawn(state.db.clone(), stop_rx));
    let scheduler = if schedules.is_empty() {
        None
    } else {
        Some(scheduler::start(state.clone(), schedules).await?)
    };
    tracing::info!(%addr, "lifecycle is listening");
    Ok(Running {
        addr,
        state,
        server: handle,
        server_task,
        workers: worker_tasks,
        stop,
        scheduler,
        intake,
    })
}

/// Pending connections the kernel holds while the server is at its connection bound.
const BACKLOG: i32 = 1024;

/// The listening socket, with an explicit backlog (actix's own applies only to addresses it
/// binds itself) and address reuse so a restart does not wait out TIME_WAIT.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Raises the soft limit on open descriptors to the hard limit. The soft limit is often far
/// below it (1,024 by default), and every webhook, database connection and API call holds one.
fn raise_descriptor_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the descriptor limit"),
    }
}

/// The URL without its password, for error messages.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
