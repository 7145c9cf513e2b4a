//! Builds the application: connects and migrates the database, resolves secrets, starts the
//! HTTP server, the job workers and the scheduler, and stops them in order.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::{ServerHandle, Service};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing_actix_web::TracingLogger;

use crate::app::build_state;
use crate::config::Config;
use crate::queue::worker::{self, WorkerOptions};
use crate::queue::{Registry, Schedule, scheduler};
use crate::state::AppState;
use crate::store::jobs::Queue;
use crate::{admin, routes, store};

/// Everything needed to start an instance; tests adjust the parts they exercise.
pub struct Launch {
    pub config: Config,
    pub workers: WorkerOptions,
    pub schedules: Vec<Schedule>,
    pub registry: Registry<AppState>,
}

impl Launch {
    pub fn new(config: Config) -> Launch {
        let workers = WorkerOptions {
            workers: config.workers,
            ..Default::default()
        };
        let schedules = crate::app::schedules(&config);
        Launch {
            config,
            workers,
            schedules,
            registry: crate::app::registry(),
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
    scheduler: Option<scheduler::Scheduler>,
    /// The inbox writer; stopped after the server, so in-flight webhooks are still committed.
    intake: Option<crate::ingest::intake::Writer>,
    /// How long running jobs may take to finish at shutdown.
    grace: Duration,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful stop, as on SIGTERM: see `wait`.
    pub async fn shutdown(self) {
        // Sends the stop at once; `wait` sees the server end.
        drop(self.server.stop(true));
        let _ = self.wait().await;
    }

    /// Abrupt stop, as if the process died: workers are dropped mid-job and keep their leases.
    pub async fn kill(mut self) {
        if let Some(s) = self.scheduler.take() {
            s.shutdown().await;
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

    /// Resolves when the server has stopped (on SIGTERM or Ctrl-C, which actix handles, or
    /// `shutdown`) and the rest after it. The server stops accepting and finishes the requests
    /// it holds (a webhook is answered only once committed, so every 200 is stored); the
    /// scheduler and the workers stop taking work, and running jobs get `shutdown_grace_secs`
    /// to finish; those still running then are stopped and released (queued again, lease
    /// cleared, attempt refunded) for another instance to take at once; last, the webhook
    /// writer writes what is queued and ends. Each stage is bounded, so the process ends.
    pub async fn wait(mut self) -> std::io::Result<()> {
        let result = (&mut self.server_task).await.unwrap_or(Ok(()));
        self.stop_rest().await;
        result
    }

    async fn stop_rest(mut self) {
        tracing::info!("stopping the scheduler and the workers");
        let _ = self.stop.send(true);
        if let Some(s) = self.scheduler.take()
            && tokio::time::timeout(STAGE_LIMIT, s.shutdown())
                .await
                .is_err()
        {
            tracing::warn!("the scheduler did not stop in time; left behind");
        }
        let deadline = tokio::time::Instant::now() + self.grace;
        let mut cut_short = false;
        for mut w in std::mem::take(&mut self.workers) {
            if tokio::time::timeout_at(deadline, &mut w).await.is_err() {
                w.abort();
                let _ = w.await;
                cut_short = true;
            }
        }
        if cut_short {
            self.release_jobs().await;
        }
        if let Some(w) = self.intake.take()
            && tokio::time::timeout(STAGE_LIMIT, w.stop()).await.is_err()
        {
            tracing::error!("the webhook writer did not finish in time");
        }
    }

    /// Puts the rows this instance's (stopped) workers still held back in their queues.
    async fn release_jobs(&self) {
        // Workers are named `{instance_id}-{n}` (`queue::worker::spawn`).
        let prefix = format!("{}-", self.state.instance_id);
        for queue in [Queue::Jobs, Queue::Inbox] {
            match store::jobs::release_held(&self.state.db, queue, &prefix).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    released = n,
                    queue = queue.table(),
                    "running work did not finish within the shutdown grace; released for another instance"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    queue = queue.table(),
                    "could not release running work; it is taken over when its lease expires"
                ),
            }
        }
    }
}

/// Longest wait for the scheduler, and for the webhook writer's last batches, at shutdown.
const STAGE_LIMIT: Duration = Duration::from_secs(10);

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
    let routes_state = state.clone();
    let server = HttpServer::new(move || {
        let routes_state = routes_state.clone();
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
            .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
            .configure(move |cfg| {
                routes::configure(cfg, &routes_state);
                admin::configure(cfg);
            })
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
        Some(
            scheduler::start(
                state.db.clone(),
                state.config.schedule_spread_secs,
                schedules,
            )
            .await?,
        )
    };
    let grace = Duration::from_secs(state.config.shutdown_grace_secs);
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
        grace,
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
