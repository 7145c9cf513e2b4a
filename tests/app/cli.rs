//! The command line as a merchant or an operator runs it: `lifecycle analyze` on files, good and bad.

use std::path::Path;
use std::process::{Command, Output};

fn analyze(dir: &Path, input: &Path, format: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lifecycle"))
        .arg("analyze")
        .arg("--input")
        .arg(input)
        .args(["--format", format])
        .arg("--out")
        .arg(dir.join("customers.csv"))
        .arg("--summary")
        .arg(dir.join("summary.json"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn analyze_reproduces_the_cdnow_fit_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cdnow_customers_summary.csv");
    let out = analyze(dir.path(), &data, "summary", &["--time-unit", "weeks"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["customers"], 2357);
    let r = summary["bgnbd"]["r"].as_f64().unwrap();
    let b = summary["bgnbd"]["b"].as_f64().unwrap();
    assert_eq!(format!("{r:.3} {b:.3}"), "0.243 2.426");
    let csv = std::fs::read_to_string(dir.path().join("customers.csv")).unwrap();
    assert!(csv.starts_with(
        "customer_id,frequency,recency,T,monetary_value,rfm_r,rfm_f,rfm_m,rfm_group,p_alive,expected_purchases,expected_avg_value,clv,churn_risk"
    ));
    assert_eq!(csv.lines().count(), 2358);
}

#[test]
fn analyze_rejects_bad_input_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "bad-date.csv",
            "customer_id,date,amount\n1,2024-01-02,10.00\n2,not-a-date,5\n",
            "line 3",
        ),
        (
            "bad-amount.csv",
            "customer_id,date,amount\n1,2024-01-02,ten\n",
            "line 2",
        ),
        (
            "negative.csv",
            "customer_id,date,amount\n1,2024-01-02,-4.00\n",
            "line 2",
        ),
        (
            "missing-column.csv",
            "customer_id,date\n1,2024-01-02\n",
            "amount",
        ),
        ("empty.csv", "", "empty"),
    ];
    for (name, body, expect) in cases {
        let input = dir.path().join(name);
        std::fs::write(&input, body).unwrap();
        let out = analyze(dir.path(), &input, "transactions", &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} must fail");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{name}: one line, got {stderr}");
        assert!(
            lines[0].to_lowercase().contains(expect),
            "{name}: `{}` should mention {expect}",
            lines[0]
        );
    }
    let out = analyze(
        dir.path(),
        &dir.path().join("nope.csv"),
        "transactions",
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));
}

#[test]
fn analyze_reads_a_platform_orders_export_by_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders_export.csv");
    std::fs::write(
        &input,
        "Name,Email,Total,Discount Code,Created at,Lineitem name,Cancelled at,Refunded Amount\n\
         #1001,a@example.com,50.00,WELCOME,2024-01-02 10:00:00 -0500,Mug,,0\n\
         #1001,a@example.com,,,2024-01-02 10:00:00 -0500,Cup,,\n\
         #1002,a@example.com,20.00,,2024-03-02 10:00:00 -0500,Mug,,\n\
         #1003,b@example.com,30.00,,2024-02-04 10:00:00 -0500,Mug,,\n",
    )
    .unwrap();
    let out = analyze(dir.path(), &input, "shopify-orders", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(dir.path().join("customers.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and two customers:\n{csv}");
    let out = analyze(dir.path(), &input, "woo-orders", &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shopify-orders") && err.contains("cdnow"),
        "the error names the formats: {err}"
    );
}

/// A CSV of plain fields (no quoting): the header and the rows.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>());
    (lines.next().unwrap(), lines.collect())
}

#[test]
fn analyze_backtests_cdnow_like_lifetimes_with_a_holdout_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let holdout = dir.path().join("holdout.csv");
    let out = analyze(
        dir.path(),
        &root.join("tests/data/CDNOW_sample.txt"),
        "cdnow",
        &[
            "--time-unit",
            "weeks",
            "--end",
            "1998-06-30",
            "--calibration-end",
            "1997-09-30",
            "--holdout",
            holdout.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    let b = &summary["backtest"];
    // lifetimes 0.11.3 on the same file (core/tests/data, see core/tests/backtest_cdnow.rs).
    let reference: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("core/tests/data/cdnow_backtest_lifetimes.json")).unwrap(),
    )
    .unwrap();
    for (model, keys) in [
        ("bgnbd", &["r", "alpha", "a", "b"][..]),
        ("gamma_gamma", &["p", "q", "gamma"][..]),
    ] {
        for k in keys {
            let (ours, theirs) = (
                b[model][k].as_f64().unwrap(),
                reference[model][k].as_f64().unwrap(),
            );
            assert!(
                (ours - theirs).abs() <= 1e-4 * theirs,
                "{model}.{k}: {ours} vs lifetimes {theirs}"
            );
        }
    }
    assert_eq!(b["duration_holdout"], 39.0);
    assert!(b["verdict"].is_string() && b["model"]["mae"].is_number());
    assert!(b["baseline"]["mae"].is_number() && b["brier"].is_number());
    assert!(b["top_10_revenue_share"].is_number() && b["top_20_revenue_share"].is_number());
    let deciles = b["deciles"].as_array().unwrap();
    for (ours, theirs) in deciles.iter().zip(reference["deciles"].as_array().unwrap()) {
        assert_eq!(ours["actual_purchases"], theirs["actual_purchases"]);
        assert_eq!(ours["customers"], theirs["customers"]);
    }

    // The holdout file: lifetimes' column names, one row per customer of the card, each as
    // lifetimes has it, and adding up to the summary's figures.
    let (header, rows) = read_csv(&holdout);
    assert_eq!(
        header.join(","),
        "customer_id,frequency_cal,recency_cal,T_cal,frequency_holdout,predicted_holdout"
    );
    assert_eq!(rows.len(), 2357);
    assert_eq!(b["customers"], rows.len());
    let (_, want) = read_csv(&root.join("core/tests/data/cdnow_backtest_lifetimes.csv"));
    let f = |v: &str| v.parse::<f64>().unwrap();
    let (mut actual, mut predicted) = (0.0, 0.0);
    for (row, want) in rows.iter().zip(&want) {
        assert_eq!(f(&row[0]), f(&want[0]), "customer order");
        assert_eq!(row[1], want[1], "frequency_cal of {}", row[0]);
        assert!(
            (f(&row[2]) - f(&want[2])).abs() < 1e-9,
            "recency_cal of {}",
            row[0]
        );
        assert!(
            (f(&row[3]) - f(&want[3])).abs() < 1e-9,
            "T_cal of {}",
            row[0]
        );
        assert_eq!(row[4], want[5], "frequency_holdout of {}", row[0]);
        // Our own fit's prediction against lifetimes' (parameters within 1e-4).
        let (p, q) = (f(&row[5]), f(&want[7]));
        assert!(
            (p - q).abs() <= 1e-3 * q.max(0.1),
            "predicted_holdout of {}: {p} vs {q}",
            row[0]
        );
        actual += f(&row[4]);
        predicted += p;
    }
    assert_eq!(actual, b["model"]["actual_total"].as_f64().unwrap());
    assert!((predicted - b["model"]["predicted_total"].as_f64().unwrap()).abs() < 1e-6);
}

#[test]
fn analyze_says_why_a_short_history_has_no_card() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tx.csv");
    std::fs::write(
        &input,
        "customer_id,date,amount\n1,2024-01-02,10.00\n1,2024-02-03,12.00\n2,2024-02-10,5.00\n",
    )
    .unwrap();
    let holdout = dir.path().join("holdout.csv");
    let out = analyze(
        dir.path(),
        &input,
        "transactions",
        &["--holdout", holdout.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    let b = &summary["backtest"];
    assert_eq!(b["verdict"], "too_little_data", "{b}");
    assert_eq!(b["reason"]["kind"], "short_holdout");
    assert_eq!(b["reason"]["history_days"], 39);
    assert_eq!(b["reason"]["need_holdout_days"], 56);
    assert!(b["deciles"].is_null() && b["bgnbd"].is_null());
    let text = std::fs::read_to_string(&holdout).unwrap();
    assert_eq!(
        text.trim_end(),
        "customer_id,frequency_cal,recency_cal,T_cal,frequency_holdout,predicted_holdout"
    );
    // A calibration end at or after the end is refused with one clear line.
    let out = analyze(
        dir.path(),
        &input,
        "transactions",
        &["--calibration-end", "2024-03-01"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("calibration_end") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn analyze_writes_cohorts_and_time_between_orders() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tx.csv");
    std::fs::write(
        &input,
        "customer_id,date,amount\n\
         a,2024-01-10,100.00\n\
         a,2024-01-20,50.00\n\
         b,2024-01-31,40.00\n\
         b,2024-02-01,60.00\n\
         a,2024-03-01,20.00\n\
         c,2024-02-20,25.00\n\
         c,2024-02-20,5.00\n\
         d,2024-03-02,10.00\n",
    )
    .unwrap();
    let (cohorts, between) = (dir.path().join("cohorts.csv"), dir.path().join("gaps.csv"));
    let out = analyze(
        dir.path(),
        &input,
        "transactions",
        &[
            "--end",
            "2024-03-31",
            "--cohorts",
            cohorts.to_str().unwrap(),
            "--between-orders",
            between.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // January: a (100 + 50) and b (40) = 190 over 2 customers; February b's 60
    // ((190 + 60) / 2 = 125); March a's 20 (270 / 2 = 135). February: c's two orders of one
    // day (30), nothing in March. March: d's 10.
    assert_eq!(
        std::fs::read_to_string(&cohorts).unwrap(),
        "cohort,period,customers,active_customers,orders,net_revenue,cumulative_revenue_per_customer\n\
         2024-01,0,2,2,3,190.00,95.00\n\
         2024-01,1,2,1,1,60.00,125.00\n\
         2024-01,2,2,1,1,20.00,135.00\n\
         2024-02,0,1,1,2,30.00,30.00\n\
         2024-02,1,1,0,0,0.00,30.00\n\
         2024-03,0,1,1,1,10.00,10.00\n"
    );
    // a: Jan 10 → Jan 20 (10 days) → Mar 1 (11 + 29 + 1 = 41, 2024 is a leap year);
    // b: Jan 31 → Feb 1; c: twice on one day; d: one order, no row.
    assert_eq!(
        std::fs::read_to_string(&between).unwrap(),
        "customer_id,order_number,days_since_previous\n\
         a,2,10\n\
         a,3,41\n\
         b,2,1\n\
         c,2,0\n"
    );
    // An end before some orders leaves them out of both files.
    let out = analyze(
        dir.path(),
        &input,
        "transactions",
        &[
            "--end",
            "2024-01-31",
            "--cohorts",
            cohorts.to_str().unwrap(),
            "--between-orders",
            between.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(&cohorts).unwrap(),
        "cohort,period,customers,active_customers,orders,net_revenue,cumulative_revenue_per_customer\n\
         2024-01,0,2,2,3,190.00,95.00\n"
    );
    assert_eq!(
        std::fs::read_to_string(&between).unwrap(),
        "customer_id,order_number,days_since_previous\na,2,10\n"
    );

    // A summary file has no order dates: one clear line, no file written.
    let summary =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cdnow_customers_summary.csv");
    let none = dir.path().join("none.csv");
    for flag in ["--cohorts", "--between-orders"] {
        let out = analyze(
            dir.path(),
            &summary,
            "summary",
            &[flag, none.to_str().unwrap()],
        );
        assert!(!out.status.success(), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(flag) && err.contains("order dates") && !err.contains("panicked"),
            "{flag}: {err}"
        );
        assert!(!none.exists());
    }
}
