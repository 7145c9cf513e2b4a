//! `lifecycle sandbox`: run the simulated platform on its own until Ctrl-C.

use crate::config::SandboxConfig;
use crate::oauth::install_url;
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
    #[arg(
        long,
        env = "LIFECYCLE_SHOPIFY_CLIENT_ID",
        default_value = "sandbox-client-id"
    )]
    pub client_id: String,
    #[arg(
        long,
        env = "LIFECYCLE_SHOPIFY_CLIENT_SECRET",
        default_value = "sandbox-client-secret",
        hide_env_values = true
    )]
    pub client_secret: String,
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
    #[arg(long, default_value = "shopify")]
    pub platform: String,
    /// Plan of Ecwid stores: business (customer groups), free or venture (none).
    #[arg(long, default_value = "business")]
    pub ecwid_plan: String,
    #[arg(
        long,
        env = "LIFECYCLE_ECWID_CLIENT_ID",
        default_value = "sandbox-ecwid-client-id"
    )]
    pub ecwid_client_id: String,
    #[arg(
        long,
        env = "LIFECYCLE_ECWID_CLIENT_SECRET",
        default_value = "sandbox-ecwid-client-secret",
        hide_env_values = true
    )]
    pub ecwid_client_secret: String,
    /// Ecwid REST requests per minute and token before 429.
    #[arg(long, default_value_t = crate::ecwid::REQUESTS_PER_MINUTE)]
    pub ecwid_requests_per_minute: u32,
}

impl SandboxArgs {
    pub fn config(&self) -> anyhow::Result<SandboxConfig> {
        Ok(SandboxConfig {
            bind: self.bind.clone(),
            shops: self.shops,
            customers: self.customers,
            seed: self.seed,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            app_url: self.app_url.clone(),
            live_rate: self.live,
            live_uplift: self.uplift,
            time_scale: self.time_scale,
            delivery_concurrency: self.delivery_concurrency,
            auto_approve: !self.no_auto_approve,
            plan: self.plan.parse::<Plan>().map_err(anyhow::Error::msg)?,
            platform: self.platform.parse().map_err(anyhow::Error::msg)?,
            ecwid_plan: self.ecwid_plan.parse().map_err(anyhow::Error::msg)?,
            ecwid_client_id: self.ecwid_client_id.clone(),
            ecwid_client_secret: self.ecwid_client_secret.clone(),
            ecwid_requests_per_minute: self.ecwid_requests_per_minute,
            ..SandboxConfig::default()
        })
    }
}

pub async fn run_cli(args: SandboxArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let started = std::time::Instant::now();
    let sandbox = Sandbox::start(cfg).await?;
    let base = sandbox.base_url();
    println!(
        "Sandbox listening on {base} (seeded in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    if sandbox
        .state()
        .shops
        .read()
        .values()
        .any(|s| s.ecwid.is_some())
    {
        println!("Set LIFECYCLE_ECWID_API_ORIGIN={base} in the app.");
    } else {
        println!("Set LIFECYCLE_SHOPIFY_API_ORIGIN={base} in the app.");
    }
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
        let url = if shop.ecwid.is_some() {
            crate::ecwid::oauth::install_url(sandbox.state(), shop)
        } else {
            install_url(sandbox.state(), shop)
        };
        match url {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: SandboxArgs,
    }

    #[test]
    fn platform_flag_seeds_ecwid_stores() {
        use clap::CommandFactory;
        Wrapper::command().debug_assert();
        let w =
            Wrapper::try_parse_from(["x", "--platform", "ecwid", "--ecwid-plan", "free"]).unwrap();
        let cfg = w.args.config().unwrap();
        assert_eq!(cfg.platform, crate::ecwid::Platform::Ecwid);
        assert_eq!(cfg.ecwid_plan, crate::ecwid::EcwidPlan::Free);
        let w = Wrapper::try_parse_from(["x"]).unwrap();
        assert_eq!(
            w.args.config().unwrap().platform,
            crate::ecwid::Platform::Shopify
        );
        let w = Wrapper::try_parse_from(["x", "--platform", "woo"]).unwrap();
        assert!(w.args.config().is_err());
    }
}
