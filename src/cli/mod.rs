//! The command line's subcommands that do more than start the server.

pub mod analyze;
pub mod demo;
pub mod sync;
pub mod uninstall;

use indicatif::{ProgressBar, ProgressStyle};

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
