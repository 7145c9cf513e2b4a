//! `lifecycle sync` and `lifecycle segment`: one shop's sync or segment run in the foreground.

use clap::{Args, ValueEnum};

use super::progress_bar;
use crate::app::build_state;
use crate::config::Config;
use crate::sync::{self, Mode};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SyncMode {
    Backfill,
    Incremental,
    Reconcile,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The shop's key on its platform, e.g. demo-1.myshopify.com.
    #[arg(long)]
    shop: String,
    /// The shop's platform; the first registered one when unset.
    #[arg(long)]
    platform: Option<String>,
    #[arg(long, value_enum, default_value = "incremental")]
    mode: SyncMode,
    #[command(flatten)]
    config: Config,
}

pub async fn run_sync(args: SyncArgs) -> anyhow::Result<()> {
    let state = build_state(args.config, crate::app::registry()).await?;
    let shop = super::stored_shop(&state, args.platform.as_deref(), &args.shop).await?;
    let mode = match args.mode {
        SyncMode::Backfill => {
            // A new backfill starts from the beginning of every resource.
            for r in crate::platforms::Resource::ALL {
                crate::store::sync_state::save(&state.db, shop.id, r.name(), &Default::default())
                    .await?;
            }
            Mode::Backfill
        }
        SyncMode::Incremental => Mode::Incremental,
        SyncMode::Reconcile => Mode::Reconcile,
    };
    let bar = progress_bar(mode.name());
    let progress = |done: u64, total: Option<u64>| {
        if let Some(t) = total {
            bar.set_length(t);
        }
        bar.set_position(done);
    };
    let report = sync::run(&state, shop.id, mode, &progress).await?;
    bar.finish();
    println!(
        "{} {}: fetched {} record(s); changed {} customer(s), {} order(s), {} checkout(s)",
        mode.name(),
        args.shop,
        report.fetched,
        report.changed.customers,
        report.changed.orders,
        report.changed.checkouts
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct SegmentArgs {
    #[arg(long)]
    shop: String,
    /// The shop's platform; the first registered one when unset.
    #[arg(long)]
    platform: Option<String>,
    /// Compute and record the plan, send nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    config: Config,
}

pub async fn run_segment(args: SegmentArgs) -> anyhow::Result<()> {
    let state = build_state(args.config, crate::app::registry()).await?;
    let platform = args
        .platform
        .as_deref()
        .unwrap_or(state.platforms.default_name());
    let summary =
        crate::writeback::segment::run_segment(&state, platform, &args.shop, args.dry_run).await?;
    println!("{summary}");
    Ok(())
}
