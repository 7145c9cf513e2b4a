//! The `lifecycle` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lifecycle::cli;
use lifecycle::config::Config;
use lifecycle::server::{self, Launch};
use lifecycle::{store, telemetry};

#[derive(Parser)]
#[command(
    name = "lifecycle",
    version,
    about = "Customer lifecycle analytics and loyalty for shop platforms"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the app: HTTP server, job workers and scheduler.
    Serve {
        #[command(flatten)]
        config: Config,
    },
    /// A sandbox shop, the app installed into it, backfill, analysis and live traffic.
    Demo(cli::demo::DemoArgs),
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        config: Config,
    },
    /// Sync one shop in the foreground (backfill, incremental or reconcile).
    Sync(cli::sync::SyncArgs),
    /// Analyse, segment and push (or plan, with --dry-run) for one shop in the foreground.
    Segment(cli::sync::SegmentArgs),
    /// Remove the app from one shop: through the platform where it allows, and here.
    Uninstall(cli::uninstall::UninstallArgs),
    /// Lifecycle analytics on a file: RFM, predicted CLV, churn risk, retention figures.
    Analyze(cli::analyze::AnalyzeArgs),
    /// Run the simulated Shopify platform on its own.
    Sandbox(lifecycle_sandbox::SandboxArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lifecycle: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line naming the problem, not a panic trace.
            eprintln!("lifecycle: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ")
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { config } => {
            telemetry::init(&config.log, config.log_format);
            let running = server::start(Launch::new(config)).await?;
            running.wait().await?;
            Ok(())
        }
        Command::Demo(args) => {
            telemetry::init("warn", lifecycle::config::LogFormat::Text);
            cli::demo::run(args).await
        }
        Command::Migrate { config } => {
            telemetry::init(&config.log, config.log_format);
            let url = config.database_url();
            if url.starts_with("sqlite:") {
                std::fs::create_dir_all(&config.data_dir)?;
            }
            let db = store::connect(&url).await?;
            store::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Sync(args) => {
            telemetry::init("warn", lifecycle::config::LogFormat::Text);
            cli::sync::run_sync(args).await
        }
        Command::Segment(args) => {
            telemetry::init("warn", lifecycle::config::LogFormat::Text);
            cli::sync::run_segment(args).await
        }
        Command::Uninstall(args) => {
            telemetry::init("warn", lifecycle::config::LogFormat::Text);
            cli::uninstall::run(args).await
        }
        Command::Analyze(args) => cli::analyze::run(args),
        Command::Sandbox(args) => {
            telemetry::init("info", lifecycle::config::LogFormat::Text);
            lifecycle_sandbox::run_cli(args).await
        }
    }
}
