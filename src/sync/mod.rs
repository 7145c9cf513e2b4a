//! Keeping the shop's customers, orders and abandoned checkouts current through its platform's
//! API (`platforms::ShopApi`): the backfill on install (paged, or through a bulk export for
//! large shops where the platform has one), incremental syncs by update time, and the nightly
//! reconciliation that repairs what webhooks missed. Everything fetched becomes canonical
//! events written by `ingest::apply`.

pub mod bulk;

use chrono::{DateTime, Duration, Utc};

use crate::ingest::apply::{Applied, apply};
use crate::platforms::{BulkError, CallError, Resource, ShopApi, TokenError, mark_needs_reauth};
use crate::queue::{JobError, JobResult};
use crate::state::AppState;
use crate::store::entities::job;
use crate::store::sync_state::{self, Checkpoint};
use crate::store::{self, jobs as q};

/// Incremental windows start this much before the last sync, for clock skew between us and
/// the platform and for records committed in the same second.
const OVERLAP: Duration = Duration::minutes(5);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Client(#[from] CallError),
    #[error(transparent)]
    Bulk(#[from] BulkError),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Data(String),
    /// A 401 for a token that another caller has since refreshed or replaced.
    #[error("the access token was replaced during the sync; retrying with the new one")]
    TokenReplaced,
}

impl From<SyncError> for JobError {
    fn from(e: SyncError) -> Self {
        match &e {
            SyncError::Client(c) | SyncError::Bulk(BulkError::Call(c)) if c.is_transient() => {
                JobError::retry(e)
            }
            SyncError::Db(_)
            | SyncError::Token(TokenError::Refresh(_))
            | SyncError::TokenReplaced => JobError::retry(e),
            _ => JobError::permanent(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Paged,
    Bulk,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::Paged => "paged",
            Path::Bulk => "bulk",
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    pub fetched: u64,
    /// Records written because they were new or newer than ours: for a reconciliation, the
    /// number of records it repaired.
    pub changed: Applied,
}

/// Progress callback: (records done, records expected).
pub type Progress<'a> = &'a (dyn Fn(u64, Option<u64>) + Send + Sync);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Backfill,
    Incremental,
    Reconcile,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Backfill => "backfill",
            Mode::Incremental => "incremental",
            Mode::Reconcile => "reconcile",
        }
    }
}

/// The handler of the three sync job kinds (see `triggers::kinds`).
pub async fn job(state: AppState, job: job::Model, mode: Mode) -> JobResult {
    let shop_id = job
        .shop_id
        .ok_or_else(|| JobError::permanent("sync job without a shop"))?;
    let db = state.db.clone();
    let job_id = job.id;
    let progress = move |done: u64, total: Option<u64>| {
        let db = db.clone();
        tokio::spawn(async move {
            let _ = q::progress(&db, job_id, done as i64, total.map(|t| t as i64)).await;
        });
    };
    let report = run(&state, shop_id, mode, &progress).await?;
    tracing::info!(
        shop_id,
        mode = mode.name(),
        fetched = report.fetched,
        changed = report.changed.total(),
        "sync done"
    );
    if mode != Mode::Reconcile || report.changed.total() > 0 {
        crate::triggers::after_sync(&state.db, shop_id).await?;
    }
    Ok(())
}

/// The handler of `sync.fetch`: reads one record a webhook named, and applies it as the webhook
/// would have (echo recognition and re-scoring included). A record the platform no longer has
/// is applied as deleted.
pub async fn fetch_job(
    state: AppState,
    job: job::Model,
    payload: crate::triggers::FetchPayload,
) -> JobResult {
    use crate::model::{DataEvent, Event};
    let shop_id = job
        .shop_id
        .ok_or_else(|| JobError::permanent("fetch job without a shop"))?;
    let client = match state.platforms.api(&state.db, shop_id).await {
        Ok(c) => c,
        // Uninstalled since the webhook: nothing to read, nothing to do.
        Err(TokenError::NotInstalled(_) | TokenError::NeedsReauth(_)) => return Ok(()),
        Err(e) => return Err(SyncError::from(e).into()),
    };
    let (resource, id) = (payload.resource, payload.platform_id);
    let fetched = match client.fetch(resource, &id).await {
        Err(CallError::Unauthorized)
            if !mark_needs_reauth(&state.env, shop_id, &client.token())
                .await
                .map_err(SyncError::from)? =>
        {
            return Err(SyncError::TokenReplaced.into());
        }
        other => other.map_err(SyncError::from)?,
    };
    let event = match (fetched, resource) {
        (Some(event), _) => event,
        (None, Resource::Customers) => DataEvent::CustomerDeleted { platform_id: id },
        (None, Resource::Orders) => DataEvent::OrderDeleted { platform_id: id },
        (None, Resource::Checkouts) => DataEvent::CheckoutRemoved { platform_id: id },
    };
    let Some(shop) = store::shops::get(&state.db, shop_id).await? else {
        return Ok(());
    };
    let tx = store::write_tx(&state.db).await?;
    crate::ingest::inbox::apply_events(&tx, &shop, vec![Event::Data(event)], None).await?;
    tx.commit().await?;
    Ok(())
}

/// Runs one sync of a shop, recording it in `sync_runs`.
pub async fn run(
    state: &AppState,
    shop_id: i64,
    mode: Mode,
    progress: Progress<'_>,
) -> Result<Report, SyncError> {
    let platform = state.platforms.of_shop(&state.db, shop_id).await?;
    let caps = platform.capabilities();
    let client = platform.api(shop_id).await?;
    let client = client.as_ref();
    let path = match mode {
        Mode::Backfill if caps.bulk_export => {
            choose_path(client, state.config.bulk_threshold).await?
        }
        _ => Path::Paged,
    };
    let run_id = sync_state::start_run(&state.db, shop_id, mode.name(), path.name()).await?;
    let started = Utc::now();
    let result = match mode {
        Mode::Backfill => backfill(state, client, shop_id, path, started, progress).await,
        // Without an "updated since" filter, a window is the whole shop: reads cannot narrow,
        // and the write path keeps only what is newer than ours.
        Mode::Incremental => {
            let since = incremental_since(state, shop_id).await?;
            let since = Some(since).filter(|_| caps.incremental);
            window(state, client, shop_id, since, started, progress).await
        }
        Mode::Reconcile => {
            let since = reconcile_since(state, shop_id).await?;
            let since = Some(since).filter(|_| caps.incremental);
            window(state, client, shop_id, since, started, progress).await
        }
    };
    let unauthorized = matches!(
        result,
        Err(SyncError::Client(CallError::Unauthorized))
            | Err(SyncError::Bulk(BulkError::Call(CallError::Unauthorized)))
    );
    let result = match result {
        Err(_)
            if unauthorized && !mark_needs_reauth(&state.env, shop_id, &client.token()).await? =>
        {
            Err(SyncError::TokenReplaced)
        }
        other => other,
    };
    match &result {
        Ok(r) => {
            sync_state::finish_run(
                &state.db,
                run_id,
                "done",
                r.fetched,
                r.changed.total(),
                None,
            )
            .await?
        }
        Err(e) => {
            sync_state::finish_run(&state.db, run_id, "failed", 0, 0, Some(&e.to_string())).await?
        }
    }
    result
}

/// Bulk or paged, for a platform that has bulk exports.
async fn choose_path(client: &dyn ShopApi, threshold: i64) -> Result<Path, SyncError> {
    let orders = client.count(Resource::Orders).await?.unwrap_or(0);
    Ok(if orders >= threshold.max(0) as u64 {
        Path::Bulk
    } else {
        Path::Paged
    })
}

async fn totals(client: &dyn ShopApi) -> Result<u64, SyncError> {
    let mut total = 0;
    for r in Resource::ALL {
        total += client.count(r).await?.unwrap_or(0);
    }
    Ok(total)
}

async fn backfill(
    state: &AppState,
    client: &dyn ShopApi,
    shop_id: i64,
    path: Path,
    started: DateTime<Utc>,
    progress: Progress<'_>,
) -> Result<Report, SyncError> {
    let total = totals(client).await?;
    let mut report = Report::default();
    let mut done_before = 0u64;
    let mut todo = Vec::new();
    for resource in Resource::ALL {
        let mut cp = sync_state::load(&state.db, shop_id, resource.name()).await?;
        if cp.backfilled {
            done_before += cp.fetched as u64;
            continue;
        }
        // The backfill's start is where incremental syncs take over.
        if cp.synced_until.is_none() {
            cp.synced_until = Some(started);
        }
        todo.push((resource, cp));
    }
    // Each resource's records as fetched so far, for one progress figure across resources.
    let fetched: Vec<std::sync::atomic::AtomicU64> = todo
        .iter()
        .map(|(_, cp)| std::sync::atomic::AtomicU64::new(cp.fetched.max(0) as u64))
        .collect();
    let report_progress = |i: usize, n: u64| {
        fetched[i].store(n, std::sync::atomic::Ordering::Relaxed);
        let sum: u64 = fetched
            .iter()
            .map(|f| f.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        progress(done_before + sum, Some(total));
    };
    let results =
        match path {
            Path::Paged => {
                let mut out = Vec::new();
                for (i, (resource, cp)) in todo.iter_mut().enumerate() {
                    let step = |n: u64| report_progress(i, n);
                    out.push(pages(state, client, shop_id, *resource, None, cp, &step).await?);
                }
                out
            }
            Path::Bulk => {
                let export = client
                    .bulk_export()
                    .ok_or_else(|| SyncError::Data("the platform has no bulk export".into()))?;
                // Every export starts before any is read: the platform prepares them side by side.
                let mut exports = Vec::new();
                for (resource, cp) in &todo {
                    exports.push(bulk::start(export, *resource, cp).await?);
                }
                let exporter = export;
                let runs = todo.iter_mut().zip(exports).enumerate().map(
                    |(i, ((resource, cp), export))| {
                        let report_progress = &report_progress;
                        async move {
                            let step = move |n: u64| report_progress(i, n);
                            bulk::run(state, exporter, shop_id, *resource, export, cp, &step).await
                        }
                    },
                );
                futures_util::future::try_join_all(runs).await?
            }
        };
    for ((resource, mut cp), r) in todo.into_iter().zip(results) {
        cp.backfilled = true;
        cp.cursor = None;
        sync_state::save(&state.db, shop_id, resource.name(), &cp).await?;
        done_before += cp.fetched as u64;
        report.fetched += r.fetched;
        add(&mut report.changed, r.changed);
    }
    progress(done_before, Some(total));
    store::analyze_shop_tables(&state.db).await?;
    Ok(report)
}

pub(crate) fn add(a: &mut Applied, b: Applied) {
    a.customers += b.customers;
    a.orders += b.orders;
    a.refunds += b.refunds;
    a.checkouts += b.checkouts;
    a.deleted += b.deleted;
}

async fn incremental_since(state: &AppState, shop_id: i64) -> Result<DateTime<Utc>, SyncError> {
    let mut since: Option<DateTime<Utc>> = None;
    for r in Resource::ALL {
        let cp = sync_state::load(&state.db, shop_id, r.name()).await?;
        if let Some(t) = cp.synced_until {
            since = Some(since.map_or(t, |s| s.min(t)));
        }
    }
    since
        .map(|s| s - OVERLAP)
        .ok_or_else(|| SyncError::Data("no backfill has completed yet".into()))
}

/// Reconciliation looks again at everything changed since the previous reconciliation (or the
/// backfill), however webhooks fared meanwhile.
async fn reconcile_since(state: &AppState, shop_id: i64) -> Result<DateTime<Utc>, SyncError> {
    let last = sync_state::last_success(&state.db, shop_id, Mode::Reconcile.name()).await?;
    let backfill = sync_state::last_success(&state.db, shop_id, Mode::Backfill.name()).await?;
    let anchor = last
        .or(backfill)
        .ok_or_else(|| SyncError::Data("no backfill has completed yet".into()))?;
    Ok(anchor - Duration::hours(1))
}

async fn window(
    state: &AppState,
    client: &dyn ShopApi,
    shop_id: i64,
    since: Option<DateTime<Utc>>,
    started: DateTime<Utc>,
    progress: Progress<'_>,
) -> Result<Report, SyncError> {
    let mut report = Report::default();
    for resource in Resource::ALL {
        // A window interrupted half-way resumes from its cursor: `since` is unchanged until
        // the window completes.
        let mut cp = sync_state::load(&state.db, shop_id, resource.name()).await?;
        let base = report.fetched;
        let step = |_: u64| {};
        let r = pages(state, client, shop_id, resource, since, &mut cp, &step).await?;
        progress(base + r.fetched, None);
        cp.cursor = None;
        cp.synced_until = Some(started);
        sync_state::save(&state.db, shop_id, resource.name(), &cp).await?;
        report.fetched += r.fetched;
        add(&mut report.changed, r.changed);
    }
    Ok(report)
}

/// Pages through a resource from the checkpoint's cursor; each page and its checkpoint are
/// committed together.
async fn pages(
    state: &AppState,
    client: &dyn ShopApi,
    shop_id: i64,
    resource: Resource,
    since: Option<DateTime<Utc>>,
    cp: &mut Checkpoint,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Report, SyncError> {
    let mut report = Report::default();
    loop {
        let page = client.page(resource, since, cp.cursor.as_deref()).await?;
        let events = page.events;
        let has_next = page.next.is_some();
        tracing::debug!(
            shop_id,
            resource = resource.name(),
            records = events.len(),
            has_next,
            "page"
        );
        let tx = store::write_tx(&state.db).await?;
        let applied = apply(&tx, shop_id, &events).await?;
        cp.fetched += events.len() as i64;
        if has_next {
            cp.cursor = page.next;
        }
        sync_state::save(&tx, shop_id, resource.name(), cp).await?;
        tx.commit().await?;
        report.fetched += events.len() as u64;
        add(&mut report.changed, applied);
        progress(cp.fetched as u64);
        if !has_next || events.is_empty() {
            return Ok(report);
        }
    }
}
