//! `lifecycle demo`: the first five minutes. A sandbox shop with a few thousand customers and
//! live traffic, the app installed into it through the real OAuth flow, the backfill with a
//! progress bar, the analysis, a short report, and then webhooks from live traffic, one line
//! each, until Ctrl-C or SIGTERM.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use sea_orm::ConnectionTrait;

use super::progress_bar;
use crate::config::Config;
use crate::server::{self, Launch};
use crate::store::{self, shops};
use crate::triggers::kinds;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The platform the sandbox shop simulates (one of the registered platforms; the first
    /// when unset).
    #[arg(long)]
    platform: Option<String>,
    /// Customers in the sandbox shop.
    #[arg(long, default_value_t = 3000)]
    customers: usize,
    /// Live events per second in the sandbox shop.
    #[arg(long, default_value_t = 1.0)]
    live: f64,
    /// Sandbox seed (the same seed gives the same shop).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Use a sandbox already running in its own process (`lifecycle sandbox`) at this URL
    /// instead of starting one in this process, so the app's own memory and descriptors can be
    /// measured apart. Both must share the platform's client secret (e.g.
    /// `LIFECYCLE_SHOPIFY_CLIENT_SECRET`); `--customers`, `--live` and `--seed` are then the
    /// sandbox's own options.
    #[arg(long)]
    sandbox: Option<String>,
    #[command(flatten)]
    config: Config,
}

/// The app-store install, as a merchant's browser does it on any platform: from the install
/// URL the platform gives, redirects are followed while they lead to the platform or to the
/// app's `/auth/` routes (the authorize page, the callback). Returns the last response: the
/// callback's redirect into the admin, or whatever refused the install.
pub async fn install_via_app_store(
    platform: &str,
    shop: &str,
) -> anyhow::Result<reqwest::Response> {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let kickoff: serde_json::Value = browser
        .get(format!("{platform}/_sandbox/shops/{shop}/install_url"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut url: url::Url = kickoff["install_url"]
        .as_str()
        .context("the platform gave no install URL")?
        .parse()?;
    let platform_origin = url::Url::parse(platform)?.origin();
    for _ in 0..8 {
        let response = browser.get(url.clone()).send().await?;
        let Some(next) = redirect_target(&response).and_then(|to| url.join(&to).ok()) else {
            return Ok(response);
        };
        if next.origin() != platform_origin && !next.path().starts_with("/auth/") {
            return Ok(response);
        }
        url = next;
    }
    bail!("the install went round in redirects")
}

fn redirect_target(r: &reqwest::Response) -> Option<String> {
    if !r.status().is_redirection() {
        return None;
    }
    r.headers()
        .get("location")?
        .to_str()
        .ok()
        .map(str::to_string)
}

/// What the demo has started, so a stop at any moment shuts down what exists.
#[derive(Default)]
struct Started {
    sandbox: Option<lifecycle_sandbox::Sandbox>,
    app: Option<server::Running>,
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (`kill`, a service manager). Both
/// handlers are installed by this call, so a signal that comes before the future is polled is
/// kept rather than killing the process uncleanly.
fn stop_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // One stop for every phase (sandbox start, install, backfill, report, live traffic): the
    // phases are dropped at their next await and whatever was started is shut down.
    let stop = stop_signal()?;
    let mut started = Started::default();
    let outcome = tokio::select! {
        r = phases(args, &mut started) => r,
        () = stop => {
            println!("stopping");
            Ok(())
        }
    };
    if let Some(app) = started.app.take() {
        app.shutdown().await;
    }
    if let Some(sandbox) = started.sandbox.take() {
        sandbox.shutdown().await;
    }
    outcome
}

/// The demo from start to the live log, which runs until `run` stops it.
async fn phases(args: DemoArgs, started: &mut Started) -> anyhow::Result<()> {
    let mut config = args.config;
    std::fs::create_dir_all(&config.data_dir)?;
    if config.database_url.is_none() {
        // The demo keeps its own database so it never mixes with a real one.
        let file = config.data_dir.join("demo.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
        config.database_url = Some(format!("sqlite://{}?mode=rwc", file.display()));
    }
    // The demo's database is its own and starts empty each run, so its keys may too.
    config
        .encryption_key
        .get_or_insert_with(crate::secrets::Cipher::generate_key);
    config
        .session_key
        .get_or_insert_with(crate::secrets::Cipher::generate_key);
    config.app_url = Some(format!("http://{}", config.bind));

    let name = args
        .platform
        .as_deref()
        .unwrap_or(crate::platforms::PlatformsConfig::NAMES[0])
        .to_ascii_lowercase();
    let Some(app) = config.platforms.credentials_of(&name) else {
        bail!(
            "unknown platform `{name}` (one of {})",
            crate::platforms::PlatformsConfig::NAMES.join(", ")
        );
    };
    let client_id = app.client_id.to_string();
    let platform = match &args.sandbox {
        Some(url) => {
            if app.client_secret.is_none() {
                bail!(
                    "--sandbox needs LIFECYCLE_{}_CLIENT_SECRET, the same the sandbox was started with",
                    name.to_ascii_uppercase()
                );
            }
            let platform = url.trim_end_matches('/').to_string();
            reqwest::Client::new()
                .post(format!("{platform}/_sandbox/app"))
                .json(&serde_json::json!({ "app_url": config.app_url }))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .with_context(|| format!("the sandbox at {platform} does not answer"))?;
            platform
        }
        None => {
            let client_secret = crate::secrets::random_secret(16);
            *app.client_secret = Some(client_secret.clone());
            println!(
                "Starting a sandbox shop with {} customers...",
                args.customers
            );
            // The sandbox simulates the platform of the same name, with the app's credentials.
            let sandbox_config = lifecycle_sandbox::SandboxConfig {
                customers: args.customers,
                seed: args.seed,
                platform: name.clone(),
                app_url: config.app_url.clone(),
                live_rate: (args.live > 0.0).then_some(args.live),
                time_scale: 60.0,
                ..Default::default()
            }
            .with_app(&name, client_id, client_secret)?;
            let sandbox = started
                .sandbox
                .insert(lifecycle_sandbox::Sandbox::start(sandbox_config).await?);
            sandbox.base_url()
        }
    };
    let shop = match &started.sandbox {
        Some(s) => s.shop_domains().first().cloned(),
        None => first_shop(&platform).await?,
    }
    .context("the sandbox has no shop")?;
    if let Some(app) = config.platforms.credentials_of(&name) {
        *app.api_origin = Some(platform.clone());
    }

    let app = started
        .app
        .insert(server::start(Launch::new(config)).await?);
    let state = app.state.clone();
    println!("Installing Lifecycle into {shop} through OAuth...");
    let done = install_via_app_store(&platform, &shop).await?;
    if !done.status().is_redirection() {
        bail!(
            "install failed: {} {}",
            done.status(),
            done.text().await.unwrap_or_default()
        );
    }
    let shop_row = shops::find(&state.db, &name, &shop)
        .await?
        .context("the shop was not recorded")?;

    let bar = progress_bar("backfill");
    loop {
        let row = state
            .db
            .query_one_raw(store::stmt(
                state.db.get_database_backend(),
                "SELECT state, progress_done, progress_total, last_error FROM jobs WHERE shop_id = ? AND kind = ? ORDER BY id DESC",
                vec![shop_row.id.into(), kinds::BACKFILL.into()],
            ))
            .await?
            .context("no backfill job")?;
        let job_state: String = row.try_get("", "state")?;
        let done: i64 = row.try_get("", "progress_done")?;
        if let Some(total) = row.try_get::<Option<i64>>("", "progress_total")? {
            bar.set_length(total.max(0) as u64);
        }
        bar.set_position(done.max(0) as u64);
        match job_state.as_str() {
            "done" => break,
            "dead" => bail!(
                "backfill failed: {}",
                row.try_get::<Option<String>>("", "last_error")?
                    .unwrap_or_default()
            ),
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
    bar.finish();

    report(&state, shop_row.id).await?;
    let summary = crate::writeback::segment::run_segment(&state, &name, &shop, true).await?;
    println!("\nSegment run (dry run, nothing pushed yet):\n{summary}");
    let login = crate::admin::login::fresh_link(&state, shop_row.id).await?;
    println!("\nOpen:");
    println!("  admin          {login}");
    println!(
        "                 (signs you in to {shop}; works once, for {} minutes)",
        crate::admin::login::LINK_TTL_MINUTES
    );
    println!("  app            {}", app.url());
    println!("  metrics        {}/metrics", app.url());
    println!("  sandbox shops  {platform}/_sandbox/shops");
    println!("\nWebhooks from live traffic (Ctrl-C to stop):");

    let mut last_id = 0i64;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // A busy moment (a flood of webhooks, a run writing its results) is not a reason to
        // stop the demo: say so and look again.
        match live_log(&state, shop_row.id, last_id).await {
            Ok(next) => last_id = next,
            Err(e) => println!("  (could not read the inbox this time: {e})"),
        }
    }
}

/// Webhooks stored since `after`, one line each, or one line per topic when a flood arrives
/// (a push to N customers echoes N `customers/update`). Returns the last id seen.
async fn live_log(state: &crate::state::AppState, shop_id: i64, after: i64) -> anyhow::Result<i64> {
    const LINES: usize = 20;
    let rows = state
        .db
        .query_all_raw(store::stmt(
            state.db.get_database_backend(),
            "SELECT id, topic, state, created_at FROM webhook_inbox WHERE shop_id = ? AND id > ? \
             ORDER BY id LIMIT 10000",
            vec![shop_id.into(), after.into()],
        ))
        .await?;
    let mut last = after;
    if rows.len() <= LINES {
        for r in rows {
            last = r.try_get("", "id")?;
            let at: chrono::DateTime<chrono::Utc> = r.try_get("", "created_at")?;
            println!(
                "  {}  {:<22} {}",
                at.format("%H:%M:%S"),
                r.try_get::<String>("", "topic")?,
                r.try_get::<String>("", "state")?
            );
        }
        return Ok(last);
    }
    let mut topics = std::collections::BTreeMap::<String, usize>::new();
    for r in &rows {
        last = r.try_get("", "id")?;
        *topics.entry(r.try_get("", "topic")?).or_default() += 1;
    }
    let counts: Vec<String> = topics.iter().map(|(t, n)| format!("{t} {n}")).collect();
    println!(
        "  {}  {} webhooks: {}",
        chrono::Utc::now().format("%H:%M:%S"),
        rows.len(),
        counts.join(", ")
    );
    Ok(last)
}

/// The first shop of a sandbox running elsewhere.
async fn first_shop(platform: &str) -> anyhow::Result<Option<String>> {
    let shops: serde_json::Value = reqwest::get(format!("{platform}/_sandbox/shops"))
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(shops
        .as_array()
        .and_then(|a| a.first())
        .and_then(|s| s["domain"].as_str())
        .map(str::to_string))
}

/// The short table: customers, orders, RFM groups, retention, maturity, top customers by CLV.
async fn report(state: &crate::state::AppState, shop_id: i64) -> anyhow::Result<()> {
    use lifecycle_core::segments::{SegmentCatalog, SegmentSettings};
    let catalog =
        SegmentCatalog::new(&SegmentSettings::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = chrono::Utc::now();
    let a = crate::analysis::analyse(&state.db, shop_id, &catalog, now).await?;
    let an = &a.analysis;
    println!(
        "\nCustomers {:>8}   with orders {:>8}",
        a.data.customers.len(),
        an.metrics.customers_with_orders
    );
    println!("Orders    {:>8}", a.data.input.orders.len());
    let mut groups = std::collections::BTreeMap::new();
    for c in &an.customers {
        *groups.entry(c.score.rfm.group.as_str()).or_insert(0usize) += 1;
    }
    println!("\nRFM group            customers");
    for (g, n) in &groups {
        println!("  {g:<18} {n:>8}");
    }
    if let Some(p) = &an.metrics.period {
        let pct = |v: Option<f64>| {
            v.map(|x| format!("{x:.1} %"))
                .unwrap_or_else(|| "n/a".into())
        };
        // Named with their period: the admin's charts show the same names by month.
        let days = (p.end - p.start).num_days();
        println!(
            "\nOver the last {days} days: retention rate {}   churn {}   repeat rate {}",
            pct(p.customer_retention_rate_pct),
            pct(p.churn_rate_pct),
            pct(p.repeat_purchase_rate_pct)
        );
    }
    if let Some(m) = &an.maturity {
        println!(
            "Maturity: {:?}, spend about {} % of effort on retention",
            m.stage, m.retention_share_pct
        );
    }
    let mut top: Vec<(f64, usize)> = an
        .customers
        .iter()
        .filter_map(|c| {
            c.score
                .prediction
                .as_ref()
                .map(|p| (p.clv, c.features.customer as usize))
        })
        .collect();
    top.sort_by(|x, y| y.0.total_cmp(&x.0));
    println!(
        "\nTop customers by predicted 12-month CLV ({})",
        a.data.currency
    );
    for (clv, i) in top.into_iter().take(5) {
        let c = &a.data.customers[i];
        println!(
            "  {:<40} {:>16}",
            c.email.as_deref().unwrap_or(&c.platform_id),
            crate::admin::data::format_major(clv, &a.data.currency)
        );
    }
    Ok(())
}
