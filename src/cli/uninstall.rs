//! `lifecycle uninstall`: removes the app from one shop, as an operator does when a merchant
//! asks support to: the platform is asked to remove the app where it lets an app do so, and the
//! shop's credentials are erased and its work cancelled here either way.

use anyhow::Context;
use clap::Args;

use crate::app::build_state;
use crate::config::Config;
use crate::platforms::{CallError, Removal};
use crate::state::AppState;
use crate::store::{self, shops};

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// The shop's key on its platform, e.g. demo-1.myshopify.com.
    #[arg(long)]
    shop: String,
    /// The shop's platform; the first registered one when unset.
    #[arg(long)]
    platform: Option<String>,
    #[command(flatten)]
    config: Config,
}

/// What removing the app from a shop came to.
#[derive(Debug, PartialEq, Eq)]
pub struct Uninstalled {
    /// None when the platform had already revoked the app's access.
    pub removal: Option<Removal>,
    pub cancelled_jobs: u64,
}

/// Asks the platform to remove the app, then erases the shop's credentials and cancels its
/// jobs. A platform that cannot be reached changes nothing here: erasing the token of an app
/// the platform still runs would leave the merchant with a broken app.
pub async fn uninstall(state: &AppState, shop_id: i64) -> anyhow::Result<Uninstalled> {
    let removal = {
        let api = state
            .platforms
            .api(&state.db, shop_id)
            .await
            .context("the shop has no usable credentials")?;
        match api.uninstall().await {
            Ok(r) => Some(r),
            // Already revoked on the platform's side: only our copy is left to erase.
            Err(CallError::Unauthorized) => None,
            Err(e) => return Err(e).context("the platform did not remove the app"),
        }
    };
    let tx = store::write_tx(&state.db).await?;
    let cancelled_jobs = shops::uninstall(&tx, shop_id).await?;
    tx.commit().await?;
    Ok(Uninstalled {
        removal,
        cancelled_jobs,
    })
}

pub async fn run(args: UninstallArgs) -> anyhow::Result<()> {
    let state = build_state(args.config, crate::app::registry()).await?;
    let shop = super::stored_shop(&state, args.platform.as_deref(), &args.shop).await?;
    let platform = shop.platform.as_str();
    let done = uninstall(&state, shop.id).await?;
    match done.removal {
        Some(Removal::Removed) => println!("{platform} removed Lifecycle from {}", args.shop),
        Some(Removal::ByMerchant(how)) => println!("{how}"),
        None => println!(
            "{platform} had already revoked Lifecycle's access to {}",
            args.shop
        ),
    }
    println!(
        "credentials erased, {} queued job(s) cancelled",
        done.cancelled_jobs
    );
    Ok(())
}
