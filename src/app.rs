//! The composition root: builds the shared state, and wires each feature's jobs and schedules
//! to the queue. The only module that knows every feature; `triggers` names the kinds.

use anyhow::Context;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::platforms::{Env, Platforms};
use crate::queue::{Registry, Schedule};
use crate::secrets::random_secret;
use crate::state::{AppState, Inner};
use crate::store;
use crate::sync::{self, Mode};
use crate::triggers::{NoPayload, kinds};
use crate::writeback::{rescore, segment};

/// The app's job kinds and their handlers, and the inbox drain every worker does first.
pub fn registry() -> Registry<AppState> {
    let mut r = Registry::default();
    for (kind, mode) in [
        (kinds::BACKFILL, Mode::Backfill),
        (kinds::INCREMENTAL, Mode::Incremental),
        (kinds::RECONCILE, Mode::Reconcile),
    ] {
        r.register_typed(kind, move |state, job, _: NoPayload| {
            sync::job(state, job, mode)
        });
    }
    r.register_typed(kinds::FETCH, sync::fetch_job);
    r.register_typed(kinds::SEGMENT, segment::job);
    r.register_typed(kinds::RESCORE, rescore::job);
    r.register_typed(
        kinds::RETENTION,
        |state: AppState, _, _: NoPayload| async move {
            let now = chrono::Utc::now();
            let before = now - chrono::TimeDelta::days(state.config.retention_days.into());
            let pruned = store::retention::prune(&state.db, before, now)
                .await
                .map_err(crate::queue::JobError::retry)?;
            tracing::info!(?pruned, "retention pass");
            Ok(())
        },
    );
    r.first_step(|state: AppState, opts, name| async move {
        crate::ingest::inbox::drain(&state.db, &state.platforms, &opts, &name).await
    });
    r
}

/// The app's schedules, from configuration.
pub fn schedules(config: &Config) -> Vec<Schedule> {
    vec![
        Schedule {
            cron: config.reconcile_schedule.clone(),
            kind: kinds::RECONCILE.into(),
            per_shop: true,
            shop_setting: None,
        },
        // Retention: once for the whole database, not per shop.
        Schedule {
            cron: config.retention_schedule.clone(),
            kind: kinds::RETENTION.into(),
            per_shop: false,
            shop_setting: None,
        },
        // The nightly analyse → segments → plan → push, per installed shop.
        Schedule {
            cron: config.segment_schedule.clone(),
            kind: kinds::SEGMENT.into(),
            per_shop: true,
            shop_setting: Some(crate::settings::SCHEDULE_KEY),
        },
    ]
}

/// Connects, migrates and builds the shared state.
pub async fn build_state(config: Config, registry: Registry<AppState>) -> anyhow::Result<AppState> {
    if config
        .metrics_token
        .as_deref()
        .is_some_and(|t| t.trim().is_empty())
    {
        anyhow::bail!("LIFECYCLE_METRICS_TOKEN is set but empty: unset it to leave /metrics open");
    }
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
    }
    // Before connecting: a missing production key is the operator's to fix, whatever the
    // database says.
    let keys = crate::keys::resolve(&config)?;
    let db = store::connect(&url).await.map_err(|e| {
        anyhow::anyhow!("cannot connect to the database ({}): {e}", redact_url(&url))
    })?;
    store::migrate(&db)
        .await
        .context("database migration failed")?;
    let cipher = keys.cipher;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .connect_timeout(std::time::Duration::from_secs(5))
        .user_agent(concat!("lifecycle/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    crate::platforms::seal_legacy(&db, &cipher)
        .await
        .context("sealing stored credentials")?;
    let env = Env {
        db,
        cipher,
        http,
        app_url: config.app_url(),
        session_keys: keys.session.into(),
    };
    let platforms = platforms(&env, &config);
    Ok(AppState::new(Inner {
        config,
        env,
        platforms,
        registry,
        metrics: Metrics::default(),
        instance_id: format!("{}-{}", std::process::id(), &random_secret(3)),
        intake: Default::default(),
        background: tokio::runtime::Handle::current(),
        whole_shop_reads: tokio::sync::Semaphore::new(1),
    }))
}

/// The registered platforms (the list is in `platforms`), built from their settings.
pub fn platforms(env: &Env, config: &Config) -> Platforms {
    config.platforms.build(env)
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
