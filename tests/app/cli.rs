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
