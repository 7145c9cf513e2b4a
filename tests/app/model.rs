//! The model report card end to end: install, backfill and the segment run on a sandbox shop,
//! then the card in `/api/model` checked against the sandbox's own orders, the Model page, the
//! reason a small shop gets no card, and the customers' P10-P90 CLV ranges.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::Value;

use crate::both_backends;
use crate::common::*;

async fn json(env: &Env, cookie: &str, path: &str) -> Value {
    let (status, text) = admin_get(env, cookie, path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Installs the sandbox shop of `customers` and waits for the backfill and the segment run.
async fn analysed(backend: Backend, customers: usize) -> Option<(Env, String)> {
    let env = env_with(
        backend,
        EnvOptions {
            customers,
            // The largest API budget, so the backfill is not paced by throttling.
            plan: lifecycle_sandbox::Plan::Enterprise,
            ..Default::default()
        },
    )
    .await?;
    let cookie = session_cookie(&env.install().await);
    let shop = env.installed_shop().await;
    let db = env.app.state.db.clone();
    crate::browser::wait_job_done(&db, shop.id, lifecycle::triggers::kinds::BACKFILL).await;
    crate::browser::wait_job_done(&db, shop.id, "segment").await;
    Some((env, cookie))
}

fn ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// Holdout purchases counted from the sandbox's orders alone, in lifetimes' convention: for
/// each customer with a counted order (not cancelled, not fully refunded) up to the
/// calibration end, the distinct UTC days with a counted order in (calibration end, end].
/// Also the first counted order's time.
fn holdout_purchases(
    orders: &Value,
    cal_end: DateTime<Utc>,
    end: DateTime<Utc>,
) -> (usize, u64, DateTime<Utc>) {
    let mut by_customer: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
    for o in orders.as_array().unwrap() {
        let counted = o["cancelled_at"].is_null()
            && (o["refunded_minor"].as_i64().unwrap_or(0) <= 0
                || o["net_minor"].as_i64().unwrap_or(0) > 0);
        if !counted || o["customer_id"].is_null() {
            continue;
        }
        by_customer
            .entry(o["customer_id"].to_string())
            .or_default()
            .push(ts(&o["created_at"]));
    }
    let (mut customers, mut purchases) = (0, 0);
    for times in by_customer.values() {
        if !times.iter().any(|t| *t <= cal_end) {
            continue;
        }
        customers += 1;
        let days: BTreeSet<_> = times
            .iter()
            .filter(|t| **t > cal_end && **t <= end)
            .map(|t| t.date_naive())
            .collect();
        purchases += days.len() as u64;
    }
    let first = by_customer.values().flatten().min().copied().unwrap();
    (customers, purchases, first)
}

async fn a_shop_big_enough_gets_a_card_that_matches_its_orders(backend: Backend) {
    let Some((env, cookie)) = analysed(backend, 450).await else {
        return;
    };
    let m = json(&env, &cookie, "/api/model").await;
    let b = &m["backtest"];
    assert!(
        m["verdict"] == "good_enough_to_target" || m["verdict"] == "not_better_than_baseline",
        "a card with a verdict: {m}"
    );
    assert_eq!(b["verdict"], m["verdict"]);
    for k in ["r", "alpha", "a", "b"] {
        assert!(b["bgnbd"][k].as_f64().unwrap() > 0.0, "{k}: {b}");
    }
    for k in ["p", "q", "gamma"] {
        assert!(b["gamma_gamma"][k].as_f64().unwrap() > 0.0, "{k}: {b}");
    }
    let (cal_end, end) = (ts(&b["calibration_end"]), ts(&b["end"]));

    // The deciles' actual purchases add up to the holdout's purchases counted from the
    // sandbox's orders, customer by customer in the same convention.
    let orders = env
        .sandbox_get(&format!("/_sandbox/shops/{}/orders", env.shop))
        .await;
    let (customers, purchases, first) = holdout_purchases(&orders, cal_end, end);
    // The holdout rule: the last 26 weeks, or a quarter of a shorter history (in days).
    let history_days = (end.date_naive() - first.date_naive()).num_days();
    let holdout_days = 182.min(history_days / 4);
    assert!(holdout_days >= 56, "{history_days}");
    assert_eq!(b["duration_holdout"], holdout_days as f64, "{history_days}");
    let deciles = b["deciles"].as_array().unwrap();
    assert_eq!(deciles.len(), 10);
    let sum = |k: &str| deciles.iter().map(|d| d[k].as_f64().unwrap()).sum::<f64>();
    assert_eq!(sum("actual_purchases"), purchases as f64, "{b}");
    assert_eq!(sum("customers"), customers as f64);
    assert_eq!(b["customers"], customers);
    assert!(customers >= 300 && purchases > 0, "{customers} {purchases}");
    assert_eq!(
        b["model"]["actual_total"].as_f64().unwrap(),
        purchases as f64
    );
    assert!(
        (sum("predicted_purchases") - b["model"]["predicted_total"].as_f64().unwrap()).abs() < 1e-6
    );
    assert!(b["model"]["mae"].as_f64().unwrap() > 0.0 && b["baseline"]["mae"].is_number());
    let bins = b["p_alive_reliability"].as_array().unwrap();
    assert_eq!(
        bins.iter()
            .map(|r| r["customers"].as_u64().unwrap())
            .sum::<u64>(),
        customers as u64
    );
    assert!(
        b["top_20_revenue_share"].as_f64().unwrap() > b["top_10_revenue_share"].as_f64().unwrap()
    );

    // One card per finished run; the API shows the latest run's, whose summary names it.
    let shop = env.installed_shop().await;
    let db = &env.app.state.db;
    let runs = db
        .query_all_raw(lifecycle::store::stmt(
            db.get_database_backend(),
            "SELECT id, summary FROM segment_runs WHERE shop_id = ? AND status = 'done' ORDER BY id",
            vec![shop.id.into()],
        ))
        .await
        .unwrap();
    assert!(!runs.is_empty());
    assert_eq!(count(db, "model_cards", shop.id).await, runs.len() as i64);
    let last = runs.last().unwrap();
    assert_eq!(m["run_id"], last.try_get::<i64>("", "id").unwrap());
    let summary: Value =
        serde_json::from_str(&last.try_get::<String>("", "summary").unwrap()).unwrap();
    assert_eq!(summary["model_card"], m["verdict"], "{summary}");
    assert!(summary["timings"]["backtest_ms"].is_u64(), "{summary}");
    let (status, page) = admin_get(&env, &cookie, "/admin/model").await;
    assert_eq!(status, StatusCode::OK);
    let verdict_text = m["verdict_text"].as_str().unwrap();
    assert!(
        verdict_text.starts_with("Good enough to target") || verdict_text.starts_with("Not better"),
        "{verdict_text}"
    );
    assert!(
        verdict_text.contains(&format!("Over the last {holdout_days} days")),
        "{verdict_text}"
    );
    assert!(
        page.contains(&format!(
            "data-verdict=\"{}\"",
            m["verdict"].as_str().unwrap()
        )) && page.contains(&maud::html! { (verdict_text) }.into_string()),
        "the page shows the verdict"
    );
    assert!(page.contains("Predicted vs actual purchases by decile"));
    assert!(page.contains("Calibration of P(active)") && page.contains("class=\"diagonal\""));
    assert!(page.contains("href=\"/admin/model\""), "linked in the nav");
    // Decile 1's actual purchases, as the table shows them.
    assert!(page.contains(&format!(
        "{:.0}",
        deciles[0]["actual_purchases"].as_f64().unwrap()
    )));

    // CLV ranges: with the scores in the API, and on the customer page, around the point CLV.
    let list = json(&env, &cookie, "/api/customers").await;
    let list = list.as_array().unwrap();
    let with_range: Vec<&Value> = list
        .iter()
        .filter(|c| c["clv_p10_minor"].is_i64())
        .collect();
    assert!(
        with_range.len() * 10 >= list.len() * 9,
        "the analysed customers have ranges: {} of {}",
        with_range.len(),
        list.len()
    );
    for c in &with_range {
        let (lo, clv, hi) = (
            c["clv_p10_minor"].as_i64().unwrap(),
            c["clv_minor"].as_i64().unwrap(),
            c["clv_p90_minor"].as_i64().unwrap(),
        );
        assert!(lo <= clv && clv <= hi && lo < hi, "{c}");
    }
    let top = with_range[0];
    let detail = json(&env, &cookie, &format!("/api/customers/{}", top["id"])).await;
    assert_eq!(detail["scores"]["clv_p10_minor"], top["clv_p10_minor"]);
    assert_eq!(detail["scores"]["clv_p90_minor"], top["clv_p90_minor"]);
    let (status, page) = admin_get(&env, &cookie, &format!("/admin/customers/{}", top["id"])).await;
    assert_eq!(status, StatusCode::OK);
    let cur = top["currency"].as_str().unwrap();
    let money = |minor: i64| lifecycle::admin::data::format_money(minor, cur);
    let shown = format!(
        "{} – {}",
        money(top["clv_p10_minor"].as_i64().unwrap()),
        money(top["clv_p90_minor"].as_i64().unwrap())
    );
    assert!(
        page.contains(&format!("id=\"clv-range\">{shown}<")),
        "the customer page shows the range {shown}"
    );

    // The customers export: every customer, the ranges beside the point CLV.
    let (status, csv) = admin_get(&env, &cookie, "/api/customers/export.csv").await;
    assert_eq!(status, StatusCode::OK);
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), lifecycle::admin::export::HEADER);
    let lines: Vec<&str> = lines.collect();
    assert_eq!(lines.len() as i64, count(db, "customers", shop.id).await);
    let row = lines
        .iter()
        .find(|l| l.starts_with(&format!("{},", top["id"])))
        .expect("the top customer is exported");
    assert!(
        row.contains(&format!(
            ",{},{},{},{cur},",
            top["clv_minor"], top["clv_p10_minor"], top["clv_p90_minor"]
        )),
        "{row}"
    );

    // The API is documented.
    let doc = json(&env, &cookie, "/api/openapi.json").await;
    assert!(doc["paths"]["/api/model"]["get"].is_object(), "in OpenAPI");
    assert!(doc["components"]["schemas"]["ModelView"].is_object());
    assert!(doc["paths"]["/api/customers/export.csv"]["get"].is_object());
    env.shutdown().await;
}
both_backends!(a_shop_big_enough_gets_a_card_that_matches_its_orders);

async fn a_small_shop_is_told_why_it_has_no_card(backend: Backend) {
    let Some((env, cookie)) = analysed(backend, 40).await else {
        return;
    };
    let m = json(&env, &cookie, "/api/model").await;
    assert_eq!(m["verdict"], "too_little_data", "{m}");
    let reason = &m["backtest"]["reason"];
    assert_eq!(reason["kind"], "too_few_customers", "{m}");
    assert_eq!(reason["need"], 300);
    assert!(m["backtest"]["deciles"].is_null(), "no card: {m}");
    let text = m["verdict_text"].as_str().unwrap();
    assert!(
        text.starts_with("Too little data")
            && text.contains(&format!("{} customers had ordered", reason["have"]))
            && text.contains("at least 300"),
        "{text}"
    );
    // What segments use instead: a 40-customer shop is below the model's own minimum.
    let uses = m["segments_use"].as_str().unwrap();
    assert!(uses.contains("simple rules instead of the model"), "{uses}");
    let (status, page) = admin_get(&env, &cookie, "/admin/model").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-verdict=\"too_little_data\"")
            && page.contains("at least 300 are needed")
            && page.contains("simple rules instead of the model"),
        "the page gives the reason and the fallback"
    );
    assert!(!page.contains("Predicted vs actual purchases by decile"));
    env.shutdown().await;
}
both_backends!(a_small_shop_is_told_why_it_has_no_card);
