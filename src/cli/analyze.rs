//! `lifecycle analyze`: the analytics on a file, with no install (a transactions CSV, a summary,
//! the CDNOW file or a platform's orders export).

use std::fs::File;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use lifecycle_core::analytics::cli::{AnalyzeOptions, parse_end, run_analyze};
use lifecycle_core::analytics::readers::InputFormat;
use lifecycle_core::analytics::{CohortPeriod, TimeUnit, writers};

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Input file.
    #[arg(long)]
    input: PathBuf,
    /// transactions (customer_id,date,amount[,order_id,product_id,quantity]: with product_id,
    /// one line item a row, its amount the line's), summary (ID,frequency,recency,T[,monetary_value]),
    /// cdnow (the CDNOW master file) or a platform's orders export (shopify-orders).
    #[arg(long, value_parser = input_format)]
    format: InputFormat,
    /// End of the observation window (YYYY-MM-DD or an RFC 3339 time); default: the last order.
    #[arg(long, value_parser = parse_end)]
    end: Option<chrono::DateTime<chrono::Utc>>,
    /// Time unit of recency and age: days or weeks.
    #[arg(long, default_value = "days")]
    time_unit: TimeUnit,
    /// CLV horizon in months.
    #[arg(long, default_value_t = 12)]
    horizon: u32,
    /// Monthly discount rate of the CLV.
    #[arg(long, default_value_t = 0.01)]
    monthly_discount: f64,
    /// Customer acquisition cost, for CLV:CAC.
    #[arg(long)]
    cac: Option<f64>,
    /// Per-customer output CSV.
    #[arg(long)]
    out: PathBuf,
    /// Shop-level summary JSON.
    #[arg(long)]
    summary: PathBuf,
    /// Backtest: end of the calibration period (YYYY-MM-DD or an RFC 3339 time); `--end` is
    /// then the end of the holdout. Default: the last 26 weeks held out (a quarter of the
    /// history for a young shop). The card goes in the summary under "backtest".
    #[arg(long, value_parser = parse_end)]
    calibration_end: Option<chrono::DateTime<chrono::Utc>>,
    /// Backtest per customer: CSV customer_id,frequency_cal,recency_cal,T_cal,
    /// frequency_holdout,predicted_holdout (the header alone when the shop has no card).
    #[arg(long)]
    holdout: Option<PathBuf>,
    /// Cohorts by first-order month: CSV cohort,period,customers,active_customers,orders,
    /// net_revenue,cumulative_revenue_per_customer (cohort = YYYY-MM, period = whole calendar
    /// months since it; observed periods only).
    #[arg(long)]
    cohorts: Option<PathBuf>,
    /// Time between orders: CSV customer_id,order_number,days_since_previous, one row per
    /// order after a customer's first (whole calendar days).
    #[arg(long)]
    between_orders: Option<PathBuf>,
    /// Product pair affinity: CSV scope,product_a,product_b,together,support,
    /// confidence_a_to_b,confidence_b_to_a,lift,transactions, scope `basket` (same order) then
    /// `history` (ever bought both), highest lift first, support at least 0.1 %. Needs a
    /// transactions file with a product_id column.
    #[arg(long)]
    affinity: Option<PathBuf>,
}

/// The core's own formats, or a platform's orders export by its name.
fn input_format(name: &str) -> Result<InputFormat, String> {
    if let Some((_, columns)) = crate::platforms::order_exports().find(|(n, _)| *n == name) {
        return Ok(InputFormat::OrdersExport(columns));
    }
    name.parse::<InputFormat>().map_err(|e| {
        let exports: Vec<&str> = crate::platforms::order_exports().map(|e| e.0).collect();
        format!("{e}, {}", exports.join(", "))
    })
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let input =
        File::open(&args.input).with_context(|| format!("cannot open {}", args.input.display()))?;
    let opts = AnalyzeOptions {
        format: args.format,
        end: args.end,
        time_unit: args.time_unit,
        horizon_months: args.horizon,
        monthly_discount: args.monthly_discount,
        cac: args.cac,
        calibration_end: args.calibration_end,
    };
    if args.holdout.is_some() && args.format == InputFormat::Summary {
        anyhow::bail!("--holdout needs order dates: a summary file cannot be backtested");
    }
    for (given, flag) in [
        (args.cohorts.is_some(), "--cohorts"),
        (args.between_orders.is_some(), "--between-orders"),
        (args.affinity.is_some(), "--affinity"),
    ] {
        if given && args.format == InputFormat::Summary {
            anyhow::bail!("{flag} needs order dates: a summary file has none");
        }
    }
    let out = run_analyze(input, &opts).with_context(|| format!("{}", args.input.display()))?;
    let csv =
        File::create(&args.out).with_context(|| format!("cannot write {}", args.out.display()))?;
    writers::write_customers_csv(&out, csv)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let json = File::create(&args.summary)
        .with_context(|| format!("cannot write {}", args.summary.display()))?;
    writers::write_summary_json(&out, json)
        .with_context(|| format!("cannot write {}", args.summary.display()))?;
    if let Some(path) = &args.holdout {
        let file =
            File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        writers::write_holdout_csv(&out, file)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.cohorts {
        let cohorts = out.cohorts(CohortPeriod::Month)?;
        let file =
            File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        writers::write_cohorts_csv(&cohorts, file)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.between_orders {
        let orders = out.orders("between-orders")?;
        let file =
            File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        writers::write_between_orders_csv(&out.ids, orders, out.analysis.now, file)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.affinity {
        let lines = out.products.as_ref();
        let affinity = out.affinity("--affinity")?;
        let product_ids = lines.map_or(&[][..], |l| &l.product_ids[..]);
        let file =
            File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        writers::write_affinity_csv(product_ids, &affinity, file)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "analysed {}: wrote {} and {}",
        args.input.display(),
        args.out.display(),
        args.summary.display()
    );
    Ok(())
}
