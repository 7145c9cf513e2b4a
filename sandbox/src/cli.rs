//! `lifecycle sandbox`: run the simulated platform on its own until Ctrl-C.

use crate::config::SandboxConfig;
use crate::flavours::{self, FlavourArgs};
use crate::server::Sandbox;
use crate::store::Plan;
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub bind: String,
    /// Number of shops (demo-1 … demo-N).
    #[arg(long, default_value_t = 1)]
    pub shops: usize,
    /// Customers per shop.
    #[arg(long, default_value_t = 1000)]
    pub customers: usize,
    /// Seed of the data generator (same seed, same data).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Live events per second per shop.
    #[arg(long)]
    pub live: Option<f64>,
    /// Treatment effect of personal discount codes in live traffic: a customer holding a
    /// valid, unused code issued to them (e.g. a Lifecycle offer) buys at (1 + UPLIFT) times
    /// their natural rate and uses the code on that order. 0.3 = +30 %; 0 (default) = codes
    /// change nothing but the price. Ecwid coupons name no customer, so only personal codes
    /// count. Also settable per shop: POST /_sandbox/shops/{shop}/live {"rate", "uplift"}.
    #[arg(long, default_value_t = 0.0)]
    pub uplift: f64,
    /// Webhook retry time runs this many times faster than real time.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Webhook deliveries in flight at once per shop.
    #[arg(long, default_value_t = crate::config::DEFAULT_DELIVERY_CONCURRENCY)]
    pub delivery_concurrency: usize,
    /// The app's public URL (install, redirect and webhook URLs hang off it).
    #[arg(long)]
    pub app_url: Option<String>,
    /// API plan of the shops: standard, advanced, plus, enterprise.
    #[arg(long, default_value = "standard")]
    pub plan: String,
    /// Show the consent page instead of approving installs straight away.
    #[arg(long)]
    pub no_auto_approve: bool,
    /// Platform the shops simulate: shopify or ecwid (Ecwid stores get ids 1001, 1002, …).
    #[arg(long, default_value = flavours::DEFAULT)]
    pub platform: String,
    #[command(flatten)]
    pub flavours: FlavourArgs,
}

impl SandboxArgs {
    pub fn config(&self) -> anyhow::Result<SandboxConfig> {
        let platform = self.platform.to_ascii_lowercase();
        anyhow::ensure!(flavours::known(&platform), flavours::unknown(&platform));
        Ok(SandboxConfig {
            bind: self.bind.clone(),
            shops: self.shops,
            customers: self.customers,
            seed: self.seed,
            app_url: self.app_url.clone(),
            live_rate: self.live,
            live_uplift: self.uplift,
            time_scale: self.time_scale,
            delivery_concurrency: self.delivery_concurrency,
            auto_approve: !self.no_auto_approve,
            plan: self.plan.parse::<Plan>().map_err(anyhow::Error::msg)?,
            platform: self.platform.to_ascii_lowercase(),
            apps: self
                .flavours
                .apps()
                .into_iter()
                .map(|(n, a)| (n.to_string(), a))
                .collect(),
            settings: self
                .flavours
                .settings()
                .map_err(anyhow::Error::msg)?
                .into_iter()
                .map(|(n, s)| (n.to_string(), s))
                .collect(),
            ..SandboxConfig::default()
        })
    }
}

pub async fn run_cli(args: SandboxArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let platform = cfg.platform.to_ascii_uppercase();
    let started = std::time::Instant::now();
    let sandbox = Sandbox::start(cfg).await?;
    let base = sandbox.base_url();
    println!(
        "Sandbox listening on {base} (seeded in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!("Set LIFECYCLE_{platform}_API_ORIGIN={base} in the app.");
    for shop in sandbox.state().shops.read().values() {
        let data = shop.data.read();
        println!(
            "\n{}  customers={} orders={} checkouts={} currency={}",
            shop.info.domain,
            data.customers.len(),
            data.orders.len(),
            data.checkouts.len(),
            shop.info.currency
        );
        match shop.flavour.install_url(sandbox.state(), shop) {
            Some(u) => println!("  install: {u}"),
            None => println!("  install: (set --app-url or POST {base}/_sandbox/app)"),
        }
        if let Some(t) = &shop.true_params {
            println!("  true generator parameters: {t}");
        }
    }
    println!("\nControl API: {base}/_sandbox/shops  — Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    sandbox.shutdown().await;
    Ok(())
}
