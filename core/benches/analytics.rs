//! Analytics benchmark: a synthetic shop with BTYD-like customers (default 1,000,000 customers,
//! about 10,000,000 orders), time per stage, peak memory, and the same BG/NBD + Gamma-Gamma
//! fit with Python lifetimes on the same summary, with the ratio.
//!
//! The insights next to it: cohorts by month and ISO week, the cohorts' 12-month forecast from
//! the analysis, time between orders overall and by RFM group, and the product analyses
//! (journeys, affinity over baskets and histories, next best product, replenishment) over
//! about 3 line items per order from a 2,000-product catalogue with skewed popularity,
//! planted pairs and staple products bought again (`synthesize_baskets`).
//! `LIFECYCLE_BENCH_ONLY=products` runs the product stages alone (after synthesising).
//!
//! Also the backtest (model report card) on the same orders, timed alone and with the
//! analysis, with the ratio, and the CLV P10-P90 ranges (Laplace, 200 draws). The ratio
//! compares the analysis alone with the analysis followed by `backtest_after` (what the app
//! runs), timed alternately `LIFECYCLE_BENCH_REPEAT` times (default 3), best of each: a
//! single run of each on a shared 2-core machine swung the ratio between 1.2 and 2. The app
//! computes the card of a sample of the largest shops (`CARD_SAMPLE_CUSTOMERS`): that ratio
//! is printed too, with the sampled card's figures next to the whole card's.
//!
//! cargo bench -p lifecycle-core --bench analytics
//! Environment: LIFECYCLE_BENCH_CUSTOMERS (default 1000000), LIFECYCLE_BENCH_SEED (default 7),
//! LIFECYCLE_BENCH_PYTHON=0 to skip the lifetimes comparison, LIFECYCLE_BENCH_RANGES=0 to skip
//! the CLV ranges (the slowest stage, 200 draws), LIFECYCLE_BENCH_REPEAT (default 3).
//!
//! The Rust stages use every core (`parallel::threads()`, printed); lifetimes evaluates its
//! likelihood with element-wise numpy, essentially on one core. Each stage runs once, as does lifetimes, so on a
//! busy machine both sides see the same kind of noise; the BG/NBD ratio counts the
//! compression stage on the Rust side.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Exp, Gamma};

use lifecycle_core::analytics::backtest::{self, BacktestOptions};
use lifecycle_core::analytics::compress::Compressed;
use lifecycle_core::analytics::gamma_gamma::{self, SpendObservation};
use lifecycle_core::analytics::products::{
    AffinityOptions, AffinityScope, Baskets, LineItem, ReplenishmentOptions,
};
use lifecycle_core::analytics::rfm::RfmCuts;
use lifecycle_core::analytics::uncertainty::{UncertaintySettings, clv_ranges, parameter_draws};
use lifecycle_core::analytics::{
    AnalysisOptions, CheckoutFact, CohortPeriod, OrderFact, ShopInput, affinity, analyze_shop,
    bgnbd, cohorts, compute_features, fit_model, journeys, maturity, metrics, next_best_products,
    replenishment, score_all, time_between_orders, time_between_orders_by_segment,
};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory so far (VmHWM), in MiB.
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 30, 23, 0, 0).unwrap()
}

/// BG/NBD-distributed purchases (λ ~ Gamma(1.2, 1/25 per day), dropout after each purchase
/// with p ~ Beta(1, 12)), first purchases spread over two years, Gamma-Gamma spend (mean 30),
/// 2 % cancelled, 3 % refunded, 25 % discounted, 30 % with an abandoned checkout.
fn synthesize(customers: u32, seed: u64) -> ShopInput {
    let mut rng = StdRng::seed_from_u64(seed);
    let rate = Gamma::new(1.2, 1.0 / 25.0).unwrap();
    let dropout = Beta::new(1.0, 12.0).unwrap();
    let nu = Gamma::new(4.0, 1.0 / 15.0).unwrap();
    let now = now();
    let span_s = 730 * 86_400;
    let mut orders = Vec::with_capacity(customers as usize * 10);
    let mut checkouts = Vec::with_capacity(customers as usize / 3);
    for customer in 0..customers {
        let lambda: f64 = rate.sample(&mut rng);
        let p: f64 = dropout.sample(&mut rng);
        let spend = Gamma::new(6.0, 1.0 / nu.sample(&mut rng)).unwrap();
        let gap = Exp::new(lambda.max(1e-6)).unwrap();
        let mut at = now - Duration::seconds(rng.random_range(0..span_s));
        let first = at;
        loop {
            let amount = (spend.sample(&mut rng) * 100.0f64).round() / 100.0;
            let roll: f64 = rng.random();
            orders.push(OrderFact {
                customer,
                at,
                amount,
                refunded: if (0.02..0.05).contains(&roll) {
                    amount
                } else {
                    0.0
                },
                cancelled: roll < 0.02,
                discounted: rng.random::<f64>() < 0.25,
            });
            if rng.random::<f64>() < p {
                break;
            }
            let days: f64 = gap.sample(&mut rng);
            at += Duration::seconds((days * 86_400.0) as i64 + 1);
            if at > now {
                break;
            }
        }
        if rng.random::<f64>() < 0.3 {
            let since = (now - first).num_seconds().max(1);
            checkouts.push(CheckoutFact {
                customer,
                at: first + Duration::seconds(rng.random_range(0..since)),
            });
        }
    }
    ShopInput {
        customers,
        orders,
        abandoned_checkouts: checkouts,
    }
}

/// Products in the synthetic catalogue.
const PRODUCTS: u32 = 2_000;

/// Line items of the counted orders: 1 to 5 lines an order (3 on average); products drawn with
/// popularity ~ u³ (product 0 the best seller); each drawn product brings its partner
/// (p XOR 1) along with probability 0.3 (the planted pairs); each customer has a staple
/// product, in each of their orders with probability 0.5 (the repeats).
fn synthesize_baskets(input: &ShopInput, now: DateTime<Utc>, seed: u64) -> Baskets {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut items = Vec::with_capacity(input.orders.len() * 3);
    let draw = |rng: &mut StdRng| (f64::from(PRODUCTS) * rng.random::<f64>().powi(3)) as u32;
    let mut staple = 0;
    let mut last_customer = u32::MAX;
    let mut lines: Vec<u32> = Vec::with_capacity(8);
    for (id, o) in input.orders.iter().enumerate() {
        if !o.counts_at(now) {
            continue;
        }
        if o.customer != last_customer {
            last_customer = o.customer;
            staple = draw(&mut rng);
        }
        lines.clear();
        if rng.random::<f64>() < 0.5 {
            lines.push(staple);
        }
        let n = rng.random_range(1..=5usize);
        while lines.len() < n {
            let p = draw(&mut rng);
            lines.push(p);
            if lines.len() < n && rng.random::<f64>() < 0.3 {
                lines.push((p ^ 1).min(PRODUCTS - 1));
            }
        }
        for &product in &lines {
            items.push(LineItem {
                customer: o.customer,
                order: id as u32,
                product,
                quantity: rng.random_range(1..=3),
                at: o.at,
                net_minor: rng.random_range(500..5_000),
            });
        }
    }
    Baskets {
        customers: input.customers,
        products: PRODUCTS,
        items,
    }
}

/// The product stages on `baskets`, with a summary line.
fn bench_products(st: &mut Stages, baskets: &Baskets, now: DateTime<Utc>) {
    let j = st.time("products: journeys", || {
        journeys(baskets).expect("valid baskets")
    });
    let opts = AffinityOptions::default();
    let by_basket = st.time("products: affinity over baskets", || {
        affinity(baskets, AffinityScope::Basket, &opts).expect("valid baskets")
    });
    let by_history = st.time("products: affinity over histories", || {
        affinity(baskets, AffinityScope::History, &opts).expect("valid baskets")
    });
    let next = st.time("products: next best product", || {
        next_best_products(baskets, &by_basket).expect("same catalogue")
    });
    let due = st.time("products: replenishment", || {
        replenishment(baskets, now, &ReplenishmentOptions::default()).expect("valid baskets")
    });
    let top = |a: &lifecycle_core::analytics::Affinity| {
        a.pairs
            .iter()
            .take(3)
            .map(|p| format!("({},{}) lift {:.1}", p.a, p.b, p.lift))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "\nproducts: {} line items, {} journey steps; basket affinity: {} orders, {} pairs \
         (top {}), {} capped; history affinity: {} customers, {} pairs (top {}), {} capped; \
         {} customers with a next best product; {} replenishment windows, {} due",
        baskets.items.len(),
        j.steps.len(),
        by_basket.transactions,
        by_basket.pairs.len(),
        top(&by_basket),
        by_basket.capped_transactions,
        by_history.transactions,
        by_history.pairs.len(),
        top(&by_history),
        by_history.capped_transactions,
        next.iter().flatten().count(),
        due.windows.len(),
        due.due.len()
    );
}

fn print_stages(st: &Stages) {
    println!(
        "\nstage                                       time (ms)    cpu (ms)   peak RSS after (MiB)"
    );
    for (name, d, cpu, mib) in &st.0 {
        println!(
            "{name:<42} {:>10.1} {:>11.0} {:>12.0}",
            d.as_secs_f64() * 1e3,
            cpu * 1e3,
            mib
        );
    }
}

/// CPU time of the whole process so far (all threads, user + system), in seconds, at the
/// kernel's 10 ms resolution. A second view beside wall time on a shared machine, not a clean
/// one: it also counts the pool's threads spinning while they wait for work, and page
/// clearing for fresh allocations.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which ends with the last ')'): utime and stime
            // are the 12th and 13th.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// Per stage: name, wall time, CPU seconds, peak RSS after.
struct Stages(Vec<(&'static str, StdDuration, f64, f64)>);

impl Stages {
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let (start, cpu) = (Instant::now(), cpu_seconds());
        let out = f();
        let wall = start.elapsed();
        self.0.push((name, wall, cpu_seconds() - cpu, peak_mib()));
        out
    }
}

fn write_summary(path: &Path, features: &[lifecycle_core::analytics::CustomerFeatures]) {
    let mut w = BufWriter::new(std::fs::File::create(path).expect("summary file"));
    writeln!(w, "ID,frequency,recency,T,monetary_value").unwrap();
    for f in features.iter().filter(|f| f.has_orders()) {
        writeln!(
            w,
            "{},{},{},{},{}",
            f.customer, f.frequency, f.recency, f.age, f.monetary_value
        )
        .unwrap();
    }
    w.flush().unwrap();
}

fn run_lifetimes(summary: &Path) -> Result<serde_json::Value, String> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/python/lifetimes_fit.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(summary)
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(last).map_err(|_| {
        format!(
            "no result from the script (exit {}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )
    })?;
    if v["status"] == "ok" {
        Ok(v)
    } else {
        Err(v["reason"].as_str().unwrap_or("skipped").to_string())
    }
}

/// The calibration summaries of a split's rows, as the BG/NBD fit reads them.
fn calibration_triples(rows: &[backtest::CalHoldoutRow]) -> Compressed {
    Compressed::from_triples(
        rows.iter()
            .map(|r| (r.frequency_cal, r.recency_cal, r.t_cal)),
    )
}

/// The calibration spend of a split's rows, as the Gamma-Gamma fit reads it.
fn calibration_spend(rows: &[backtest::CalHoldoutRow]) -> Vec<SpendObservation> {
    rows.iter()
        .map(|r| SpendObservation {
            x: f64::from(r.frequency_cal),
            m_x: r.monetary_value_cal,
        })
        .collect()
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let customers: u32 = env_or("LIFECYCLE_BENCH_CUSTOMERS", 1_000_000);
    let seed: u64 = env_or("LIFECYCLE_BENCH_SEED", 7);
    let python = env_or("LIFECYCLE_BENCH_PYTHON", 1) != 0;
    let with_ranges = env_or("LIFECYCLE_BENCH_RANGES", 1) != 0;
    let repeat: usize = env_or("LIFECYCLE_BENCH_REPEAT", 3).max(1);
    let opts = AnalysisOptions::default();
    let now = now();

    println!(
        "analytics benchmark: {customers} customers, seed {seed}, {} worker threads",
        lifecycle_core::analytics::parallel::threads()
    );
    let start = Instant::now();
    let input = synthesize(customers, seed);
    println!(
        "synthesised {} orders, {} abandoned checkouts in {:.2} s (not counted); peak {:.0} MiB",
        input.orders.len(),
        input.abandoned_checkouts.len(),
        start.elapsed().as_secs_f64(),
        peak_mib()
    );

    let start = Instant::now();
    let baskets = synthesize_baskets(&input, now, seed);
    println!(
        "synthesised {} line items in {:.2} s (not counted); peak {:.0} MiB",
        baskets.items.len(),
        start.elapsed().as_secs_f64(),
        peak_mib()
    );
    let mut st = Stages(Vec::new());
    if std::env::var("LIFECYCLE_BENCH_ONLY").is_ok_and(|v| v == "products") {
        bench_products(&mut st, &baskets, now);
        print_stages(&st);
        let total: f64 = st.0.iter().map(|s| s.1.as_secs_f64()).sum();
        println!("product stages together {total:.2} s");
        println!("peak memory (VmHWM): {:.0} MiB", peak_mib());
        return;
    }
    let features = st.time("features", || compute_features(&input, now, opts.time_unit));
    st.time("rfm cut points", || RfmCuts::fit(&features));
    let compressed = st.time("compress (x, t_x, T)", || {
        Compressed::from_triples(
            features
                .iter()
                .filter(|f| f.has_orders())
                .map(|f| (f.frequency, f.recency, f.age)),
        )
    });
    let bg = st.time("fit BG/NBD", || bgnbd::fit(&compressed));
    let spend: Vec<SpendObservation> = features
        .iter()
        .map(|f| SpendObservation {
            x: f64::from(f.frequency),
            m_x: f.monetary_value,
        })
        .collect();
    let gg = st.time("fit Gamma-Gamma", || gamma_gamma::fit(&spend));
    drop(spend);
    let (model, compressed) = st.time("fit_model (all of the above but features)", || {
        fit_model(&features, &opts, now).expect("valid options")
    });
    let scores = st.time("predictions + RFM scores", || {
        score_all(&features, &model, &compressed, now)
    });
    st.time("metrics (period + 24 months + maturity)", || {
        let p = metrics::period(&input, now, opts.period_days, opts.active_window_days);
        let m = metrics::monthly(&input, now, opts.active_window_days, 24);
        let mat = maturity::assess(&input, now);
        (p, m, mat)
    });
    drop(scores);
    let whole = st.time("analyze_shop end to end", || {
        analyze_shop(&input, &opts, now).expect("valid input")
    });

    // Insights on the same orders, next to the analysis.
    let by_month = st.time("insights: cohorts by month", || {
        cohorts(&input, now, CohortPeriod::Month).expect("valid input")
    });
    let by_week = st.time("insights: cohorts by ISO week", || {
        cohorts(&input, now, CohortPeriod::Week).expect("valid input")
    });
    let mut forecast = by_month.clone();
    st.time("insights: cohort forecast, 12 months", || {
        cohorts::predict(&mut forecast, &whole, 12).expect("same moment")
    });
    let between = st.time("insights: time between orders", || {
        time_between_orders(&input, now).expect("valid input")
    });
    let groups: Vec<_> = whole.customers.iter().map(|c| c.score.rfm.group).collect();
    let by_group = st.time("insights: time between orders by RFM group", || {
        time_between_orders_by_segment(&input, now, &groups).expect("one label each")
    });
    bench_products(&mut st, &baskets, now);
    drop(baskets);

    // The backtest on the same orders: the last 26 weeks held out (the default rule).
    let bt = st.time("backtest (split + fit + card)", || {
        backtest::backtest(&input, now, None, &opts, &BacktestOptions::default())
            .expect("valid input")
    });
    // Where the backtest's time goes.
    let bto = BacktestOptions::default();
    let cal_end = st.time("bt: calibration end", || {
        backtest::calibration_end_for(&input, now, &bto).expect("long enough")
    });
    let split = st.time("bt: split (features + holdout)", || {
        backtest::calibration_and_holdout(&input, cal_end, now, opts.time_unit)
    });
    let (cal_model, cal_compressed) = st.time("bt: fit_model on calibration", || {
        lifecycle_core::analytics::model::fit_model_with(&split.features, &opts, cal_end, false)
            .expect("valid options")
    });
    if let (
        lifecycle_core::analytics::model::PurchaseModel::BgNbd(cbg),
        lifecycle_core::analytics::model::SpendModel::GammaGamma(cgg),
    ) = (cal_model.purchase, cal_model.spend)
    {
        st.time("bt: predict", || {
            backtest::predict(&split, &cal_compressed, &cbg, &cgg)
        });
        st.time("bt: report_card (compress + predict + figures)", || {
            backtest::report_card(&split, &cbg, &cgg)
        });
    }
    drop((split, cal_model, cal_compressed));
    // The app's path, `backtest_after` an analysis: the split from the analysis' features,
    // the fits started from the analysis' parameters.
    let after = st.time("bt after: split from the analysis", || {
        backtest::calibration_and_holdout_after(
            &input,
            &whole.customers,
            cal_end,
            now,
            opts.time_unit,
        )
    });
    if let (Some(abg), Some(agg)) = (&whole.model.bgnbd, &whole.model.gamma_gamma) {
        st.time("bt after: compress + fit BG/NBD (warm)", || {
            bgnbd::fit_from(&calibration_triples(&after.rows), Some(&abg.params))
        });
        st.time("bt after: fit Gamma-Gamma (warm)", || {
            gamma_gamma::fit_from(&calibration_spend(&after.rows), Some(&agg.params))
        });
    }
    let whole_rows = after.rows.len();
    drop(after);
    let after = st.time("bt after: backtest_after (every customer)", || {
        backtest::backtest_after(&input, &whole, None, &opts, &bto).expect("valid input")
    });
    // What the app runs on every analysis: the card of a sample of the largest shops.
    let app_bto = BacktestOptions {
        max_customers: Some(backtest::CARD_SAMPLE_CUSTOMERS),
        ..bto
    };
    let share = backtest::CARD_SAMPLE_CUSTOMERS as f64 / whole_rows as f64;
    let part = st.time("bt sampled: split", || {
        backtest::calibration_and_holdout_sample(
            &input,
            &whole.customers,
            share.min(1.0),
            cal_end,
            now,
            opts.time_unit,
        )
    });
    if let (Some(abg), Some(agg)) = (&whole.model.bgnbd, &whole.model.gamma_gamma) {
        let (c, fit) = st.time("bt sampled: compress + fit BG/NBD (warm)", || {
            let c = calibration_triples(&part.rows);
            let fit = bgnbd::fit_from(&c, Some(&abg.params));
            (c, fit)
        });
        let gg = st.time("bt sampled: fit Gamma-Gamma (warm)", || {
            gamma_gamma::fit_from(&calibration_spend(&part.rows), Some(&agg.params))
        });
        println!(
            "sampled fits: BG/NBD {} rows, {} evaluations; Gamma-Gamma {} evaluations",
            c.rows.len(),
            fit.evaluations,
            gg.evaluations
        );
        st.time("bt sampled: predict + card", || {
            backtest::report_card(&part, &fit.params, &gg.params)
        });
    }
    drop(part);
    let sampled = st.time("bt after: backtest_after, sampled card", || {
        backtest::backtest_after(&input, &whole, None, &opts, &app_bto).expect("valid input")
    });
    let whole_card = after;
    let with_backtest = st.time("analyze_shop + backtest", || {
        let a = analyze_shop(&input, &opts, now).expect("valid input");
        let b = backtest::backtest_after(&input, &a, None, &opts, &BacktestOptions::default())
            .expect("valid input");
        (a, b)
    });
    drop(with_backtest);
    // The ratio: both alternately, best of each.
    let (mut best_alone, mut best_both) = (f64::INFINITY, f64::INFINITY);
    let (mut cpu_alone, mut cpu_both) = (f64::INFINITY, f64::INFINITY);
    let (mut best_sampled, mut cpu_sampled) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..repeat {
        let (start, cpu) = (Instant::now(), cpu_seconds());
        let a = analyze_shop(&input, &opts, now).expect("valid input");
        best_alone = best_alone.min(start.elapsed().as_secs_f64());
        cpu_alone = cpu_alone.min(cpu_seconds() - cpu);
        drop(a);
        let (start, cpu) = (Instant::now(), cpu_seconds());
        let a = analyze_shop(&input, &opts, now).expect("valid input");
        let b = backtest::backtest_after(&input, &a, None, &opts, &bto).expect("valid input");
        best_both = best_both.min(start.elapsed().as_secs_f64());
        cpu_both = cpu_both.min(cpu_seconds() - cpu);
        drop((a, b));
        let (start, cpu) = (Instant::now(), cpu_seconds());
        let a = analyze_shop(&input, &opts, now).expect("valid input");
        let b = backtest::backtest_after(&input, &a, None, &opts, &app_bto).expect("valid input");
        best_sampled = best_sampled.min(start.elapsed().as_secs_f64());
        cpu_sampled = cpu_sampled.min(cpu_seconds() - cpu);
        drop((a, b));
    }
    let ranges = if with_ranges {
        let draws = st.time("Laplace parameter draws (200)", || {
            parameter_draws(
                &model,
                &features,
                &compressed,
                &UncertaintySettings::default(),
            )
        });
        match &draws {
            Ok(d) => Some(st.time("CLV P10-P90 ranges (200 draws)", || {
                clv_ranges(&features, &model, &compressed, d)
            })),
            Err(e) => {
                println!("no CLV ranges: {e}");
                None
            }
        }
    } else {
        None
    };

    print_stages(&st);
    let end_to_end =
        st.0.iter()
            .find(|s| s.0 == "analyze_shop end to end")
            .map_or(f64::NAN, |s| s.1.as_secs_f64());
    println!(
        "\nend to end: {:.2} s for {} customers / {} orders = {:.0} orders/s",
        end_to_end,
        customers,
        input.orders.len(),
        input.orders.len() as f64 / end_to_end
    );
    println!(
        "BG/NBD: {} customers in {} unique rows, {} evaluations, converged {}: r {:.4} alpha {:.4} a {:.4} b {:.4}, LL {:.1}",
        bg.customers,
        bg.unique_rows,
        bg.evaluations,
        bg.converged,
        bg.params.r,
        bg.params.alpha,
        bg.params.a,
        bg.params.b,
        bg.log_likelihood
    );
    println!(
        "Gamma-Gamma: {} customers, {} evaluations, converged {}: p {:.4} q {:.4} gamma {:.4}",
        gg.customers, gg.evaluations, gg.converged, gg.params.p, gg.params.q, gg.params.gamma
    );
    println!(
        "average predicted 12-month CLV {:.2}; fallbacks {:?}",
        whole.metrics.average_predicted_clv.unwrap_or(f64::NAN),
        whole.model.fallbacks
    );
    let stage = |name: &str| {
        st.0.iter()
            .find(|s| s.0 == name)
            .map_or(f64::NAN, |s| s.1.as_secs_f64())
    };
    let alone = stage("analyze_shop end to end");
    let both = best_both;
    println!(
        "single runs above: analysis {alone:.2} s, analysis + backtest {:.2} s (ratio {:.2})",
        stage("analyze_shop + backtest"),
        stage("analyze_shop + backtest") / alone
    );
    println!(
        "\nbacktest: analysis {best_alone:.2} s, analysis + backtest {both:.2} s in the same run \
         (alternately, best of {repeat} each): ratio {:.2} (the backtest adds {:.0} %); \
         verdict {:?}, holdout {:.0} days, {} customers",
        both / best_alone,
        (both / best_alone - 1.0) * 100.0,
        bt.verdict,
        bt.duration_holdout,
        bt.card.as_ref().map_or(0, |c| c.customers)
    );
    println!(
        "CPU time (all threads, best of {repeat}): analysis {cpu_alone:.2} s, analysis + backtest \
         {cpu_both:.2} s: ratio {:.2}",
        cpu_both / cpu_alone
    );
    println!(
        "the app's card (at most {} customers, `max_customers`): analysis + sampled backtest \
         {best_sampled:.2} s: ratio {:.2} (the backtest adds {:.1} %); CPU {cpu_sampled:.2} s: \
         ratio {:.2}",
        backtest::CARD_SAMPLE_CUSTOMERS,
        best_sampled / best_alone,
        (best_sampled / best_alone - 1.0) * 100.0,
        cpu_sampled / cpu_alone
    );
    if let (Some(s), Some(w)) = (&sampled.card, &whole_card.card) {
        let share = sampled.sample.map_or(1.0, |x| x.share);
        println!(
            "sampled card ({} of {} customers, {:.1} %) vs the whole card: MAE {:.4} vs {:.4}, \
             baseline MAE {:.4} vs {:.4}, bias {:+.4} vs {:+.4}, Brier {:.4} vs {:.4}, \
             top 20 % share {:.4} vs {:.4}, verdict {:?} vs {:?}",
            s.customers,
            w.customers,
            share * 100.0,
            s.model.mae,
            w.model.mae,
            s.baseline.mae,
            w.baseline.mae,
            s.model.bias,
            w.model.bias,
            s.brier.unwrap_or(f64::NAN),
            w.brier.unwrap_or(f64::NAN),
            s.top_20_revenue_share.unwrap_or(f64::NAN),
            w.top_20_revenue_share.unwrap_or(f64::NAN),
            sampled.verdict,
            whole_card.verdict
        );
    }
    drop((sampled, whole_card));
    if let Some(c) = &bt.card {
        println!(
            "card: MAE model {:.4} vs baseline {:.4}, bias {:.4} vs {:.4}, Spearman {:?} vs {:?}, Brier {:?}, top 10/20 % revenue share {:?} / {:?}",
            c.model.mae,
            c.baseline.mae,
            c.model.bias,
            c.baseline.bias,
            c.model.spearman,
            c.baseline.spearman,
            c.brier,
            c.top_10_revenue_share,
            c.top_20_revenue_share
        );
    }
    if let Some(r) = &ranges {
        let buyers = r.iter().flatten().count();
        println!(
            "CLV ranges: {buyers} customers x 200 draws in {:.2} s ({:.2} x the analysis)",
            stage("CLV P10-P90 ranges (200 draws)") + stage("Laplace parameter draws (200)"),
            (stage("CLV P10-P90 ranges (200 draws)") + stage("Laplace parameter draws (200)"))
                / alone
        );
    }
    let cells = |c: &lifecycle_core::analytics::Cohorts| {
        c.cohorts.iter().map(|c| c.actual.len()).sum::<usize>()
    };
    println!(
        "\ninsights: {} monthly cohorts ({} cells, {} forecast cells), {} weekly ({} cells); \
         1st to 2nd order median {:?} days (q1 {:?}, q3 {:?}), {} repeat buyers of {}, {} RFM groups",
        by_month.cohorts.len(),
        cells(&by_month),
        forecast
            .cohorts
            .iter()
            .map(|c| c.predicted.len())
            .sum::<usize>(),
        by_week.cohorts.len(),
        cells(&by_week),
        between.first_to_second.median_days,
        between.first_to_second.q1_days,
        between.first_to_second.q3_days,
        between.repeat_buyers,
        between.buyers,
        by_group.len()
    );
    let insights: f64 =
        st.0.iter()
            .filter(|s| s.0.starts_with("insights:") || s.0.starts_with("products:"))
            .map(|s| s.1.as_secs_f64())
            .sum();
    println!(
        "insights stages together {insights:.2} s = {:.2} x analyze_shop",
        insights / end_to_end
    );
    println!("peak memory (VmHWM): {:.0} MiB", peak_mib());

    if !python {
        println!("\nlifetimes comparison skipped (LIFECYCLE_BENCH_PYTHON=0)");
        return;
    }
    let summary =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/lifecycle-bench-summary.csv");
    write_summary(
        &summary,
        &whole
            .customers
            .iter()
            .map(|c| c.features.clone())
            .collect::<Vec<_>>(),
    );
    drop(whole);
    println!(
        "\nwrote {}; fitting it with Python lifetimes …",
        summary.display()
    );
    let rust_bg: f64 =
        st.0.iter()
            .filter(|s| s.0.starts_with("compress") || s.0 == "fit BG/NBD")
            .map(|s| s.1.as_secs_f64())
            .sum();
    let rust_gg =
        st.0.iter()
            .find(|s| s.0 == "fit Gamma-Gamma")
            .map_or(f64::NAN, |s| s.1.as_secs_f64());
    match run_lifetimes(&summary) {
        Ok(v) => {
            let py_bg = v["bgnbd_seconds"].as_f64().unwrap_or(f64::NAN);
            let py_gg = v["gamma_gamma_seconds"].as_f64().unwrap_or(f64::NAN);
            println!("lifetimes BG/NBD fit: {py_bg:.2} s, params {}", v["bgnbd"]);
            println!(
                "lifetimes Gamma-Gamma fit: {py_gg:.2} s, params {}",
                v["gamma_gamma"]
            );
            println!(
                "ratio lifetimes / Rust: BG/NBD {:.0}x ({:.3} s vs {:.3} s incl. compression), Gamma-Gamma {:.0}x ({:.3} s vs {:.3} s)",
                py_bg / rust_bg,
                py_bg,
                rust_bg,
                py_gg / rust_gg,
                py_gg,
                rust_gg
            );
        }
        Err(reason) => println!("lifetimes comparison skipped: {reason}"),
    }
}
