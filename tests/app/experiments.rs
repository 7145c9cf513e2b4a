//! Offers that measure their own effect, end to end: two sandbox shops, one whose live
//! customers buy 30 % more while they hold a personal code and one where codes change nothing.
//! Each shop's win-back offer holds out half its customers; control customers never get a
//! code; after live traffic the Results API's conversion effect interval contains the true
//! effect (known from the sandbox's own record of the orders the uplift added) and excludes
//! zero with the uplift, and contains zero without it.
//!
//! Sizes, from the estimator's minimum detectable effect (MDE = 2.8 standard errors of the
//! difference): live orders pick a customer uniformly, so over E events among about N
//! customers (N grows by a tenth of the events) a customer places m ≈ 0.4 E / N orders, of
//! which about three quarters still count after live cancellations and refunds. With a rate
//! multiplier of 1.3 the conversion effect e^(−m') − e^(−1.3 m') peaks near m' ≈ 0.9 at about
//! 0.096, so the test buys exposure per customer rather than customers: N = 1,000, all
//! eligible, split 50/50, and E = 2,800 give m' ≈ 0.75, control ≈ 0.53 and treatment ≈ 0.62
//! conversion, an MDE of 2.8 × √(0.25/500 + 0.24/500) ≈ 0.087 just under the effect (the
//! interval excludes zero in about 88 % of splits), while each shop stays small enough to
//! install, backfill, issue ~500 codes and ingest its traffic in about a minute.
//!
//! The shops' code secrets are set to fixed values before the offer run, so the keyed-hash split
//! (like the sandbox's seeded traffic) is the same on every run: the test is a seeded
//! simulation, not a 95 % coin toss.

use std::collections::{BTreeMap, BTreeSet};

use lifecycle::store::{self, Db, shops};
use lifecycle::writeback::segment::run_for_shop;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;
use crate::shopify_install::forge_session_token;

const CUSTOMERS: usize = 1_000;
const EVENTS: u64 = 2_800;
const UPLIFT: f64 = 0.3;

/// Every customer is eligible (the six lifecycle stages cover everyone), half held out.
fn experiment_offers() -> Value {
    json!({"win_back": {
        "enabled": true, "min_days_since_trigger": 0, "max_days_since_trigger": null,
        "budget_per_run": 100000, "control_percent": 50,
        "segments": ["stage_prospect", "stage_new", "stage_repeat", "stage_loyal",
                     "stage_at_risk", "stage_lapsed"]
    }})
}

fn strings(rows: &[sea_orm::QueryResult], col: &str) -> BTreeSet<String> {
    rows.iter()
        .map(|r| r.try_get::<String>("", col).unwrap())
        .collect()
}

/// The true effect on conversion in the treatment group: the share of code holders who bought
/// only because of the orders the uplift added (their other counting orders in the window are
/// what they would have bought anyway, drawn from the natural stream).
async fn true_conversion_effect(
    db: &Db,
    shop_id: i64,
    treated: &BTreeSet<String>,
    since: chrono::DateTime<chrono::Utc>,
    added: &BTreeSet<String>,
) -> (f64, f64) {
    let orders = query_all(
        db,
        "SELECT platform_id, customer_platform_id, total_minor, refunded_minor, cancelled_at \
         FROM orders WHERE shop_id = ? AND deleted_at IS NULL AND platform_created_at >= ?",
        vec![shop_id.into(), since.into()],
    )
    .await;
    let (mut with, mut without) = (BTreeSet::new(), BTreeSet::new());
    for o in &orders {
        let Some(customer) = o
            .try_get::<Option<String>>("", "customer_platform_id")
            .unwrap()
        else {
            continue;
        };
        let total: i64 = o.try_get("", "total_minor").unwrap();
        let refunded: i64 = o.try_get("", "refunded_minor").unwrap();
        let cancelled = o
            .try_get::<Option<chrono::DateTime<chrono::Utc>>>("", "cancelled_at")
            .unwrap()
            .is_some();
        // The analytics' rule: not cancelled, not fully refunded.
        if !treated.contains(&customer) || cancelled || (refunded > 0 && total - refunded <= 0) {
            continue;
        }
        let id: String = o.try_get("", "platform_id").unwrap();
        if !added.contains(&id) {
            without.insert(customer.clone());
        }
        with.insert(customer);
    }
    let n = treated.len() as f64;
    (
        (with.len() - without.len()) as f64 / n,
        without.len() as f64 / n,
    )
}

struct Shop {
    domain: String,
    id: i64,
    uplift: f64,
}

async fn offers_measure_their_effect(backend: Backend) {
    let Some(env) = env_with(
        backend,
        EnvOptions {
            shops: 2,
            customers: CUSTOMERS,
            // Codes are created one call each: a plan whose rate limit does not dominate.
            plan: lifecycle_sandbox::Plan::Enterprise,
            bulk_threshold: 200,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let db = &env.app.state.db;
    let started = std::time::Instant::now();
    let phase = |what: &str| eprintln!("[{:>5.1} s] {what}", started.elapsed().as_secs_f64());
    let domains = env.sandbox.shop_domains();
    let mut shops_under_test = Vec::new();
    for (domain, uplift) in domains.iter().zip([UPLIFT, 0.0]) {
        lifecycle::cli::demo::install_via_app_store(&env.sandbox.base_url(), domain)
            .await
            .expect("install");
        let id = shops::find(db, "shopify", domain)
            .await
            .unwrap()
            .unwrap()
            .id;
        shops_under_test.push(Shop {
            domain: domain.clone(),
            id,
            uplift,
        });
    }
    for s in &shops_under_test {
        wait_job_done(db, s.id, lifecycle::triggers::kinds::BACKFILL).await;
        wait_job_done(db, s.id, "segment").await;
    }
    phase("installed and backfilled");

    // A percentage outside 0-50 is refused with a 400 that says why, and nothing is saved.
    let http = reqwest::Client::new();
    let bearer = |domain: &str| forge_session_token(domain, CLIENT_ID, CLIENT_SECRET, 60);
    let first = &shops_under_test[0];
    let r = http
        .put(format!("{}/api/settings", env.app.url()))
        .bearer_auth(bearer(&first.domain))
        .json(&json!({"offers": {"win_back": {"control_percent": 51}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    let body = r.text().await.unwrap();
    assert!(body.contains("control_percent must be 0 to 50"), "{body}");
    assert!(
        !shops::get(db, first.id)
            .await
            .unwrap()
            .unwrap()
            .settings
            .contains("control_percent"),
        "nothing saved"
    );

    for s in &shops_under_test {
        // A fixed code secret (kept as the app keeps it: sealed, server-side) fixes the split.
        let sealed = env.app.state.cipher.encrypt(
            &format!("experiment-test-secret-{}", s.domain),
            &format!("{}#codes", s.domain),
        );
        db.execute_raw(store::stmt(
            db.get_database_backend(),
            "INSERT INTO loyalty_secrets (shop_id, code_secret, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (shop_id) DO UPDATE SET code_secret = excluded.code_secret",
            vec![s.id.into(), sealed.into(), chrono::Utc::now().into()],
        ))
        .await
        .unwrap();
        let r = http
            .put(format!("{}/api/settings", env.app.url()))
            .bearer_auth(bearer(&s.domain))
            .json(&json!({ "offers": experiment_offers() }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let runs = futures_util::future::join_all(
        shops_under_test
            .iter()
            .map(|s| run_for_shop(&env.app.state, s.id, "manual", false)),
    )
    .await;
    phase("offer runs done");
    for (s, run) in shops_under_test.iter().zip(runs) {
        let run = run.expect("the offer run");
        assert!(run.stopped.is_none(), "{:?}", run.stopped);
        assert_eq!(run.codes.rejected, 0);
        assert!(run.held_out > CUSTOMERS / 3, "{} held out", run.held_out);
        assert!(
            run.codes_planned > CUSTOMERS / 3,
            "{} codes",
            run.codes_planned
        );
        // Control customers never receive a code: none of the shop's discounts names one, and
        // every control assignment is in the audit trail.
        let controls = strings(
            &query_all(
                db,
                "SELECT customer_platform_id FROM offer_controls WHERE shop_id = ?",
                vec![s.id.into()],
            )
            .await,
            "customer_platform_id",
        );
        assert_eq!(controls.len(), run.held_out);
        let coded = strings(
            &query_all(
                db,
                "SELECT customer_platform_id FROM discount_codes WHERE shop_id = ? AND state = 'confirmed'",
                vec![s.id.into()],
            )
            .await,
            "customer_platform_id",
        );
        assert_eq!(coded.len(), run.codes_planned);
        assert!(coded.is_disjoint(&controls));
        let discounts = env
            .sandbox_get(&format!("/_sandbox/shops/{}/discount_codes", s.domain))
            .await;
        let personal: BTreeSet<String> = discounts
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| d["customer_ids"].as_array().unwrap().clone())
            .map(|c| format!("gid://shopify/Customer/{c}"))
            .collect();
        assert_eq!(
            personal, coded,
            "the shop's codes are exactly the treatment group's"
        );
        let held_audit = strings(
            &query_all(
                db,
                "SELECT customer_platform_id FROM writeback_audit WHERE shop_id = ? AND action = 'control_hold' \
                 AND outcome = 'held_out'",
                vec![s.id.into()],
            )
            .await,
            "customer_platform_id",
        );
        assert_eq!(held_audit, controls, "each control assignment is audited");
        // The sandbox's request log: one discount creation per treatment customer, no more.
        let log = env
            .sandbox_get(&format!("/_sandbox/shops/{}/requests", s.domain))
            .await;
        let creations = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["root_fields"]
                    .to_string()
                    .contains("discountCodeBasicCreate")
            })
            .count();
        assert_eq!(creations, coded.len());
    }

    // Live traffic, the same number of events in both shops; codes are held from the start.
    for s in &shops_under_test {
        env.sandbox_post(
            &format!("/_sandbox/shops/{}/live", s.domain),
            json!({"rate": 500, "uplift": s.uplift, "events": EVENTS}),
        )
        .await;
    }
    phase("live started");
    let mut added: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &shops_under_test {
        let status = eventually(120, || async {
            let st = env
                .sandbox_get(&format!("/_sandbox/shops/{}/live", s.domain))
                .await;
            (st["running"] == false).then_some(st)
        })
        .await
        .expect("live traffic finishes");
        assert_eq!(status["events"], json!(EVENTS));
        let ids: BTreeSet<String> = status["uplift_orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| format!("gid://shopify/Order/{id}"))
            .collect();
        if s.uplift == 0.0 {
            assert!(ids.is_empty());
        } else {
            assert!(ids.len() > 50, "the uplift added {} orders", ids.len());
        }
        added.insert(s.domain.clone(), ids);
    }
    for s in &shops_under_test {
        env.wait_deliveries_settled(&s.domain, 180).await;
        // The traffic is ~2,500 orders per shop with their webhooks and re-scoring jobs; on a
        // busy machine SQLite's single writer takes minutes (over 10 beside the loyalty suite
        // once), so the wait is generous (a wait, not a timing assertion).
        let idle = eventually(1500, || async {
            (pending_work(db, s.id).await? == 0).then_some(())
        })
        .await;
        assert!(
            idle.is_some(),
            "the live traffic is ingested; still pending: {}",
            pending_work_report(db, s.id).await
        );
    }
    phase("live traffic ingested");

    for s in &shops_under_test {
        let r = http
            .get(format!("{}/api/results", env.app.url()))
            .bearer_auth(bearer(&s.domain))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        let results: Value = r.json().await.unwrap();
        let offers = results["offers"].as_array().unwrap();
        assert_eq!(offers.len(), 1, "{results:#}");
        let o = &offers[0];
        assert_eq!(o["offer"], "win_back");
        let treated = strings(
            &query_all(
                db,
                "SELECT customer_platform_id FROM discount_codes WHERE shop_id = ? AND state = 'confirmed'",
                vec![s.id.into()],
            )
            .await,
            "customer_platform_id",
        );
        assert_eq!(o["treatment"]["customers"], json!(treated.len()));
        let since = query_all(
            db,
            "SELECT MIN(starts_at) AS t FROM discount_codes WHERE shop_id = ?",
            vec![s.id.into()],
        )
        .await[0]
            .try_get::<chrono::DateTime<chrono::Utc>>("", "t")
            .unwrap();
        let (truth, natural) =
            true_conversion_effect(db, s.id, &treated, since, &added[&s.domain]).await;
        let c = &o["effect"]["conversion_difference"];
        let (est, low, high) = (
            c["estimate"].as_f64().unwrap(),
            c["low"].as_f64().unwrap(),
            c["high"].as_f64().unwrap(),
        );
        eprintln!(
            "{} uplift {}: treatment {}/{} bought, control {}/{}; effect {est:.4} [{low:.4}, {high:.4}], truth {truth:.4} (treatment without the uplift: {natural:.4}), MDE {}, redemptions {}",
            s.domain,
            s.uplift,
            o["treatment"]["buyers"],
            o["treatment"]["customers"],
            o["control"]["buyers"],
            o["control"]["customers"],
            o["effect"]["mde_conversion"],
            o["redemptions"],
        );
        assert!(
            low <= truth && truth <= high,
            "the interval [{low}, {high}] contains the true effect {truth}"
        );
        if s.uplift > 0.0 {
            assert!(truth > 0.0);
            assert!(low > 0.0, "the interval [{low}, {high}] excludes zero");
        } else {
            assert_eq!(truth, 0.0);
            assert!(low <= 0.0 && 0.0 <= high, "[{low}, {high}] contains zero");
        }
        // Redemptions: code holders who bought used their code.
        assert!(o["redemptions"].as_u64().unwrap() > 0);
        assert!(o["treatment"]["discounts_minor"].as_i64().unwrap() > 0);
        assert_eq!(o["control"]["discounts_minor"], json!(0));
        // The CSV has both groups; the page shows the offer with its charts.
        let csv = http
            .get(format!("{}/api/results.csv", env.app.url()))
            .bearer_auth(bearer(&s.domain))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(csv.starts_with("offer,group,customers,"), "{csv}");
        assert!(csv.contains("\nwin_back,treatment,") && csv.contains("\nwin_back,control,"));
        let page = http
            .get(format!("{}/admin/results", env.app.url()))
            .bearer_auth(bearer(&s.domain))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("data-offer=\"win_back\"") && page.contains("<svg"));
        // A period selects assignments by when they were made; a bad date is a 400.
        let get = |q: &str| {
            http.get(format!("{}/api/results{q}", env.app.url()))
                .bearer_auth(bearer(&s.domain))
                .send()
        };
        let before: Value = get("?from=2000-01-01&to=2000-12-31")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(before["offers"], json!([]));
        let r = get("?from=yesterday").await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
        assert!(r.text().await.unwrap().contains("`from` must be a date"));
    }
    let spec: Value = http
        .get(format!("{}/api/openapi.json", env.app.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/api/results"]["get"].is_object());
    assert!(spec["paths"]["/api/results.csv"]["get"].is_object());
    env.shutdown().await;
}

both_backends!(offers_measure_their_effect);
