//! The command line's subcommands that do more than start the server.

pub mod analyze;
pub mod demo;
pub mod sync;
pub mod uninstall;

use indicatif::{ProgressBar, ProgressStyle};

use crate::state::AppState;
use crate::store::{entities::shop, shops};

/// The stored shop a command names, on the given platform or the default one.
pub async fn stored_shop(
    state: &AppState,
    platform: Option<&str>,
    key: &str,
) -> anyhow::Result<shop::Model> {
    let platform = platform.unwrap_or(state.platforms.default_name());
    shops::find(&state.db, platform, key)
        .await?
        .ok_or_else(|| anyhow::anyhow!("shop {key} is not installed here"))
}

/// A progress bar for `done of total` counts; a spinner while the total is unknown.
pub fn progress_bar(message: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:12} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}
