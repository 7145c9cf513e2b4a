//! Sandbox server benchmark: seeding a large shop, then paging all customers over HTTP.
//! Prints throughput, latency percentiles, peak memory, and the ratio of late-page to
//! early-page latency (≈1 means a page costs the same wherever it is: no scans).
//!
//! `cargo bench -p lifecycle-sandbox --bench server` (SANDBOX_BENCH_CUSTOMERS to resize).

use lifecycle_sandbox::seed::{ShopSpec, build_shop};
use lifecycle_sandbox::{Plan, Sandbox, SandboxConfig};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn peak_rss_mib() -> f64 {
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

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let customers: usize = std::env::var("SANDBOX_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);

    // 1. Seed: generate + load into the indexed store.
    let spec = ShopSpec {
        name: "bench".into(),
        customers,
        seed: 42,
        plan: Plan::Standard,
        history_days: 730,
        end: lifecycle_sandbox::default_history_end(),
        index: 0,
    };
    let t = Instant::now();
    let (shop, _, _) = build_shop(&spec)?;
    let seed_secs = t.elapsed().as_secs_f64();
    let orders = shop.data.read().orders.len();
    drop(shop);
    println!(
        "seed: {customers} customers, {orders} orders in {seed_secs:.2} s ({:.0} orders/s)",
        orders as f64 / seed_secs
    );

    // 2. Page every customer over HTTP, 250 per page, with a plan big enough not to throttle.
    let sb = Sandbox::start(
        SandboxConfig {
            customers,
            plan: Plan::Enterprise,
            ..SandboxConfig::default()
        }
        .with_app("shopify", "bench-client-id", "bench-client-secret")?,
    )
    .await?;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let http = reqwest::Client::new();
    let st: Value = http
        .post(format!("{base}/_sandbox/shops/{shop}/session_token"))
        .send()
        .await?
        .json()
        .await?;
    let tok: Value = http
        .post(format!("{base}/{shop}/admin/oauth/access_token"))
        .json(&json!({
            "client_id": "bench-client-id", "client_secret": "bench-client-secret",
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": st["token"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token"
        }))
        .send()
        .await?
        .json()
        .await?;
    let token = tok["access_token"].as_str().unwrap_or_default().to_string();
    let q = "query($after: String) { customers(first: 250, after: $after) { edges { node { id email updatedAt numberOfOrders amountSpent { amount currencyCode } } } pageInfo { hasNextPage endCursor } } }";
    let mut after = Value::Null;
    let mut lat = Vec::new();
    let mut seen = 0usize;
    let mut throttled = 0usize;
    let mut waited = Duration::ZERO;
    let t = Instant::now();
    loop {
        let t0 = Instant::now();
        let body: Value = http
            .post(format!("{base}/{shop}/admin/api/2026-07/graphql.json"))
            .header("X-Shopify-Access-Token", &token)
            .json(&json!({"query": q, "variables": {"after": after}}))
            .send()
            .await?
            .json()
            .await?;
        if body["errors"][0]["extensions"]["code"] == "THROTTLED" {
            // Wait as a well-behaved client does: (requested - available) / restoreRate.
            let c = &body["extensions"]["cost"];
            let need = c["requestedQueryCost"].as_f64().unwrap_or(0.0)
                - c["throttleStatus"]["currentlyAvailable"]
                    .as_f64()
                    .unwrap_or(0.0);
            let wait = Duration::from_secs_f64(
                (need / c["throttleStatus"]["restoreRate"].as_f64().unwrap_or(1.0)).max(0.001),
            );
            throttled += 1;
            waited += wait;
            tokio::time::sleep(wait).await;
            continue;
        }
        lat.push(t0.elapsed());
        let conn = &body["data"]["customers"];
        let Some(edges) = conn["edges"].as_array() else {
            anyhow::bail!("unexpected response: {body}");
        };
        seen += edges.len();
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    let total = t.elapsed().as_secs_f64();
    let pages = lat.len();
    let tenth = (pages / 10).max(1);
    let mean = |s: &[Duration]| s.iter().map(Duration::as_secs_f64).sum::<f64>() / s.len() as f64;
    let early = mean(&lat[..tenth]);
    let late = mean(&lat[pages - tenth..]);
    let mut sorted = lat.clone();
    sorted.sort();
    println!(
        "paging: {seen} customers in {pages} pages, {total:.2} s ({:.0} customers/s)",
        seen as f64 / total
    );
    println!(
        "throttled {throttled} times, {:.2} s spent waiting for the bucket",
        waited.as_secs_f64()
    );
    println!(
        "page latency ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        pct(&sorted, 0.5),
        pct(&sorted, 0.95),
        pct(&sorted, 0.99),
        pct(&sorted, 1.0)
    );
    println!(
        "late/early page latency ratio (baseline = first 10% of pages): {:.2}",
        late / early
    );
    println!("peak RSS: {:.0} MiB", peak_rss_mib());
    sb.shutdown().await;
    Ok(())
}
