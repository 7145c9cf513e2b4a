//! Segments, tags and personal codes pushed to the sandbox shop: the run converges the shop's
//! `lifecycle:` tags to the computed segments without touching merchant tags, issues each
//! code once, sends nothing when nothing changed, survives a killed worker, stops for an
//! uninstalled shop, and re-tags a customer within seconds of a webhook. A large difference
//! goes as bulk mutations, confirmed line by line.

use std::collections::{BTreeMap, BTreeSet};

use lifecycle::core::loyalty::{TagAction, TagChange, TagReason};
use lifecycle::core::segments::{SegmentCatalog, SegmentSettings};
use lifecycle::store::{self, Db};
use lifecycle::writeback::segment::run_for_shop;
use lifecycle::writeback::tags::TagWork;
use lifecycle::writeback::{Stop, labels, rescore};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::common::*;
use crate::{both_backends, every_platform};

const PREFIX: &str = "lifecycle:";
/// Merchant tags set before install; they must survive every run.
const MERCHANT_TAGS: [&str; 3] = ["vip", "lifecycle-fan", "my-lifecycle:gold"];

fn offers_on() -> Value {
    // Every offer on with open windows and large budgets, so a small shop has eligible
    // customers for each.
    let open = |segments: &[&str]| {
        json!({"enabled": true, "min_days_since_trigger": 0, "max_days_since_trigger": null,
               "budget_per_run": 1000, "cooldown_days": 30, "segments": segments})
    };
    json!({
        "second_purchase": open(&["first_time_buyer"]),
        "win_back": open(&["stage_at_risk", "rfm_at_risk", "stage_lapsed"]),
        "reward": open(&["rfm_champions", "rfm_loyal", "tier_platinum"]),
        "cart_recovery": open(&["cart_abandoner"]),
    })
}

/// Write requests the sandbox logged for the shop (Shopify: the write mutations; Ecwid: every
/// REST call that is not a read).
async fn mutations(env: &Env) -> Vec<Value> {
    env.sandbox_get(&format!("/_sandbox/shops/{}/requests", env.shop))
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            if r["kind"] == "token" {
                return false;
            }
            if let Some(method) = r["method"].as_str() {
                return method != "GET";
            }
            let roots = r["root_fields"].to_string();
            r["kind"] == "mutation"
                && [
                    "tagsAdd",
                    "tagsRemove",
                    "discountCodeBasicCreate",
                    "metafieldsSet",
                    "stagedUploadsCreate",
                    "bulkOperationRunMutation",
                ]
                .iter()
                .any(|f| roots.contains(f))
        })
        .cloned()
        .collect()
}

/// Sandbox customers: their id as the app keeps it → their labels (Shopify: the tags; Ecwid:
/// the customer group, none for "General").
async fn sandbox_tags(env: &Env) -> BTreeMap<String, Vec<String>> {
    env.sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let tags = match c["customer_group_id"].as_u64() {
                Some(0) => Vec::new(),
                Some(_) => vec![c["customer_group_name"].as_str().unwrap().to_string()],
                None => c["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect(),
            };
            (env.customer_key(c["id"].as_u64().unwrap()), tags)
        })
        .collect()
}

/// Our stored segments per customer, as the labels they should produce: every published
/// segment as a tag, or on a one-group platform only the loyalty tier (the default label).
async fn expected_tags(env: &Env, shop_id: i64) -> BTreeMap<String, BTreeSet<String>> {
    expected_labels(env, shop_id, lifecycle::settings::GroupLabel::Tier).await
}

/// As [`expected_tags`], with `group_label` the label a one-group platform's group follows.
async fn expected_labels(
    env: &Env,
    shop_id: i64,
    group_label: lifecycle::settings::GroupLabel,
) -> BTreeMap<String, BTreeSet<String>> {
    let db = &env.app.state.db;
    let one_group = env.platform == "ecwid";
    let catalog = SegmentCatalog::new(&SegmentSettings::default()).unwrap();
    let rows = query_all(
        db,
        "SELECT customer_platform_id, segments FROM customer_scores WHERE shop_id = ?",
        vec![shop_id.into()],
    )
    .await;
    rows.into_iter()
        .map(|r| {
            let keys: Vec<String> =
                serde_json::from_str(&r.try_get::<String>("", "segments").unwrap()).unwrap();
            let tags = keys
                .iter()
                .map(|k| {
                    catalog
                        .id_of(k)
                        .unwrap_or_else(|| panic!("unknown segment {k}"))
                })
                .filter(|id| catalog.published(*id))
                .filter(|id| !one_group || group_label.drives(*id))
                .map(|id| format!("{PREFIX}{}", catalog.slug(id)))
                .collect();
            (
                r.try_get::<String>("", "customer_platform_id").unwrap(),
                tags,
            )
        })
        .collect()
}

/// Waits until webhooks are delivered, the inbox is drained and the shop has no pending job.
async fn wait_idle(env: &Env, db: &Db, shop_id: i64) {
    env.wait_deliveries_settled(&env.shop, 90).await;
    wait_work_done(db, shop_id).await;
}

/// Installs with merchant tags on a few customers and offers enabled; waits for the backfill
/// and the segment run it triggers. Returns the shop and every customer's tags before install.
/// On Ecwid the merchant's own labels are a customer group of theirs, set through the API as
/// the merchant's admin would, right after the install.
async fn installed(env: &Env) -> (i64, BTreeMap<String, Vec<String>>) {
    if env.platform == "ecwid" {
        return installed_ecwid(env).await;
    }
    let customers = env
        .sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await;
    for c in customers.as_array().unwrap().iter().take(4) {
        let mut tags: Vec<String> = c["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        tags.extend(MERCHANT_TAGS.iter().map(|t| t.to_string()));
        let r = env
            .http
            .patch(env.sandbox_url(&format!(
                "/_sandbox/shops/{}/customers/{}",
                env.shop, c["id"]
            )))
            .json(&json!({ "tags": tags }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let before = sandbox_tags(env).await;
    env.install().await;
    let shop = env.installed_shop().await;
    offers_on_after_install(env, shop.id).await;
    (shop.id, before)
}

/// Switches every offer on and waits for the backfill and the segment run it triggers.
async fn offers_on_after_install(env: &Env, shop_id: i64) {
    let db = &env.app.state.db;
    store::shops::save_settings(db, shop_id, &json!({ "offers": offers_on() }))
        .await
        .unwrap();
    wait_job_done(db, shop_id, lifecycle::triggers::kinds::BACKFILL).await;
    wait_job_done(db, shop_id, "segment").await;
}

async fn installed_ecwid(env: &Env) -> (i64, BTreeMap<String, Vec<String>>) {
    env.install().await;
    let shop = env.installed_shop().await;
    let token = lifecycle::platforms::Credentials::open(
        &env.app.state.cipher,
        shop.credentials.as_deref().unwrap(),
        &shop.domain,
    )
    .unwrap()
    .access_token;
    let api = |path: &str| env.sandbox_url(&format!("/api/v3/{}{path}", env.shop));
    let group: Value = env
        .http
        .post(api("/customer_groups"))
        .bearer_auth(&token)
        .json(&json!({"name": MERCHANT_GROUP}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let customers = env
        .sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await;
    for c in customers.as_array().unwrap().iter().take(3) {
        let r = env
            .http
            .put(api(&format!("/customers/{}", c["id"])))
            .bearer_auth(&token)
            .json(&json!({"customerGroupId": group["id"]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    offers_on_after_install(env, shop.id).await;
    // What the merchant set stays theirs; a customer the first run already grouped and the
    // merchant then moved is the merchant's too.
    let before = sandbox_tags(env)
        .await
        .into_iter()
        .map(|(id, tags)| {
            let theirs = tags
                .into_iter()
                .filter(|t| !t.starts_with(PREFIX))
                .collect();
            (id, theirs)
        })
        .collect();
    (shop.id, before)
}

/// Ecwid: the merchant's own customer group.
const MERCHANT_GROUP: &str = "Wholesale";

/// The shop's tags equal the computed segments; merchant tags are as they were. On a
/// one-group platform a customer in the merchant's own group keeps it and gets none of ours.
async fn assert_tags_match(
    env: &Env,
    shop_id: i64,
    before: &BTreeMap<String, Vec<String>>,
    why: &str,
) {
    let expected = expected_tags(env, shop_id).await;
    let actual = sandbox_tags(env).await;
    assert_eq!(
        expected.len(),
        actual.len(),
        "{why}: every customer was scored"
    );
    let mut wrong = Vec::new();
    for (id, tags) in &actual {
        let ours: BTreeSet<String> = tags
            .iter()
            .filter(|t| t.starts_with(PREFIX))
            .cloned()
            .collect();
        let merchant_group = env.platform == "ecwid" && tags.iter().any(|t| !t.starts_with(PREFIX));
        let want = if merchant_group {
            Some(BTreeSet::new())
        } else {
            expected.get(id).cloned()
        };
        if Some(&ours) != want.as_ref() {
            wrong.push((id.clone(), ours, want));
        }
        let merchant: BTreeSet<&String> = tags.iter().filter(|t| !t.starts_with(PREFIX)).collect();
        let was: BTreeSet<&String> = before[id]
            .iter()
            .filter(|t| !t.starts_with(PREFIX))
            .collect();
        assert_eq!(merchant, was, "{why}: merchant tags of {id} intact");
    }
    assert!(
        wrong.is_empty(),
        "{why}: customers whose tags differ (id, shop, expected): {wrong:?}"
    );
}

/// Every confirmed code exists once in the shop, personal, single-use, unexpired, and named in
/// the customer's metafield; no customer has two codes of one offer.
async fn assert_codes_exactly_once(env: &Env, shop_id: i64) -> usize {
    let rows = query_all(
        &env.app.state.db,
        "SELECT customer_platform_id, offer, code, state, reason FROM discount_codes WHERE shop_id = ? ORDER BY id",
        vec![shop_id.into()],
    )
    .await;
    let discounts = env
        .sandbox_get(&format!("/_sandbox/shops/{}/discount_codes", env.shop))
        .await;
    let discounts = discounts.as_array().unwrap();
    let metafields = env
        .sandbox_get(&format!("/_sandbox/shops/{}/metafields", env.shop))
        .await;
    let scores = query_all(
        &env.app.state.db,
        "SELECT customer_platform_id, segments FROM customer_scores WHERE shop_id = ?",
        vec![shop_id.into()],
    )
    .await;
    let segments: BTreeMap<String, String> = scores
        .iter()
        .map(|r| {
            (
                r.try_get("", "customer_platform_id").unwrap(),
                r.try_get("", "segments").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        discounts.len(),
        rows.len(),
        "one discount in the shop per code row: {discounts:#?}"
    );
    let mut pairs = BTreeSet::new();
    // The metafield holds one code: the customer's latest.
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for r in &rows {
        let customer: String = r.try_get("", "customer_platform_id").unwrap();
        let offer: String = r.try_get("", "offer").unwrap();
        let code: String = r.try_get("", "code").unwrap();
        let reason: String = r.try_get("", "reason").unwrap();
        assert_eq!(
            r.try_get::<String>("", "state").unwrap(),
            "confirmed",
            "{code}"
        );
        assert!(
            pairs.insert((customer.clone(), offer.clone())),
            "{customer} has two {offer} codes"
        );
        assert!(
            segments[&customer].contains(&format!("\"{reason}\"")),
            "{customer} is in {reason}"
        );
        let same: Vec<&Value> = discounts
            .iter()
            .filter(|d| d["code"] == code.as_str())
            .collect();
        assert_eq!(same.len(), 1, "{code} exists once");
        let d = same[0];
        let numeric: u64 = customer.rsplit('/').next().unwrap().parse().unwrap();
        // Ecwid cannot bind a coupon to a customer: an unguessable single-use code it is.
        let personal = if env.platform == "ecwid" {
            json!([])
        } else {
            json!([numeric])
        };
        assert_eq!(
            d["customer_ids"], personal,
            "{code} is as personal as it can be"
        );
        assert_eq!(d["usage_limit"], json!(1), "{code} is single-use");
        let ends: chrono::DateTime<chrono::Utc> = d["ends_at"].as_str().unwrap().parse().unwrap();
        assert!(ends > chrono::Utc::now(), "{code} has not expired");
        latest.insert(customer, code);
    }
    // Ecwid keeps no fields on a customer: the coupon alone carries the offer.
    let named_in_a_field = env.platform != "ecwid";
    for (customer, code) in latest.iter().filter(|_| named_in_a_field) {
        let numeric: u64 = customer.rsplit('/').next().unwrap().parse().unwrap();
        let named: Vec<&Value> = metafields
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["owner_id"] == json!(numeric)
                    && m["namespace"] == "lifecycle"
                    && m["key"] == "offer_code"
            })
            .collect();
        assert_eq!(named.len(), 1, "{customer} has one offer_code metafield");
        assert_eq!(
            named[0]["value"],
            code.as_str(),
            "{customer}'s metafield names their latest code"
        );
    }
    rows.len()
}

/// Runs again with no data change: no tag change, no write call of any kind (aliased or bulk),
/// and the shop's tags still match.
async fn second_run_sends_nothing(
    env: &Env,
    shop_id: i64,
    before: &BTreeMap<String, Vec<String>>,
) -> lifecycle::writeback::Summary {
    let sent_before = mutations(env).await.len();
    let second = run_for_shop(&env.app.state, shop_id, "test", false)
        .await
        .unwrap();
    wait_idle(env, &env.app.state.db, shop_id).await;
    // On a one-group platform the customers in the merchant's own groups are asked about
    // again (read, not written: the merchant may have moved them back to General).
    let merchants = if env.platform == "ecwid" {
        before
            .values()
            .filter(|t| t.iter().any(|t| !t.starts_with(PREFIX)))
            .count()
    } else {
        0
    };
    assert_eq!(second.tag_changes, merchants, "{second}");
    assert_eq!(
        mutations(env).await.len(),
        sent_before,
        "a run with no change makes no write call"
    );
    assert_tags_match(env, shop_id, before, "after the second run").await;
    second
}

async fn run_converges_and_a_second_run_sends_nothing(backend: Backend, platform: Platform) {
    let Some(env) = env_with(
        backend,
        EnvOptions {
            platform,
            customers: 80,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let (shop_id, before) = installed(&env).await;
    let db = env.app.state.db.clone();
    // The scheduled-after-sync run may have started before the offers were saved; this run
    // sees them either way.
    let first = run_for_shop(&env.app.state, shop_id, "test", false)
        .await
        .unwrap();
    assert!(first.stopped.is_none(), "{first}");
    wait_idle(&env, &db, shop_id).await;
    assert_tags_match(&env, shop_id, &before, "after the first run").await;
    let codes = assert_codes_exactly_once(&env, shop_id).await;
    assert!(
        codes > 0,
        "some customers were eligible for an offer: {first}"
    );
    let audited = query_all(
        &db,
        "SELECT COUNT(*) AS n FROM writeback_audit WHERE shop_id = ? AND action = 'code_create'",
        vec![shop_id.into()],
    )
    .await;
    assert!(
        audited[0].try_get::<i64>("", "n").unwrap() >= codes as i64,
        "every code is audited"
    );

    let second = second_run_sends_nothing(&env, shop_id, &before).await;
    assert_eq!(second.codes_planned, 0, "{second}");
    env.shutdown().await;
}
every_platform!(run_converges_and_a_second_run_sends_nothing);

async fn dry_run_records_the_plan_and_sends_nothing(backend: Backend, platform: Platform) {
    let Some(env) = env_on(backend, platform).await else {
        return;
    };
    env.install().await;
    let shop = env.installed_shop().await;
    let db = env.app.state.db.clone();
    store::shops::save_settings(
        &db,
        shop.id,
        &json!({ "dry_run": true, "offers": offers_on() }),
    )
    .await
    .unwrap();
    wait_job_done(&db, shop.id, lifecycle::triggers::kinds::BACKFILL).await;
    wait_idle(&env, &db, shop.id).await;
    let summary = run_for_shop(&env.app.state, shop.id, "test", false)
        .await
        .unwrap();
    assert!(summary.dry_run && summary.tag_changes > 0, "{summary}");
    assert!(mutations(&env).await.is_empty(), "a dry run sends nothing");
    let audit = query_all(&db, "SELECT COUNT(*) AS n FROM writeback_audit WHERE shop_id = ? AND dry_run = ? AND outcome = 'planned'", vec![shop.id.into(), true.into()]).await;
    assert!(
        audit[0].try_get::<i64>("", "n").unwrap() > 0,
        "the plan is recorded"
    );
    assert!(
        sandbox_tags(&env)
            .await
            .values()
            .flatten()
            .all(|t| !t.starts_with(PREFIX))
    );
    env.shutdown().await;
}
every_platform!(dry_run_records_the_plan_and_sends_nothing);

/// The worker is killed while it pushes codes; a new instance resumes the job and the shop
/// ends in the same state with no code created twice. Then a lost write after a successful
/// create (the crash window the exactly-once rule is about) is replayed deterministically.
async fn killed_push_converges_without_duplicate_codes(backend: Backend, platform: Platform) {
    let Some(env) = env_with(
        backend,
        EnvOptions {
            platform,
            customers: 100,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let before = sandbox_tags(&env).await;
    env.install().await;
    let shop_id = env.installed_shop().await.id;
    let mid = {
        let db = env.app.state.db.clone();
        // The run after the backfill tags everyone; offers are switched on only afterwards, so
        // the killed run below is the one creating codes.
        wait_job_done(&db, shop_id, lifecycle::triggers::kinds::BACKFILL).await;
        wait_job_done(&db, shop_id, "segment").await;
        wait_idle(&env, &db, shop_id).await;
        store::shops::save_settings(&db, shop_id, &json!({ "offers": offers_on() }))
            .await
            .unwrap();
        // Slow API calls so the kill lands in the middle of the code push.
        env.http
            .put(env.sandbox_url("/_sandbox/faults"))
            .json(&json!({"latency_ms": 200}))
            .send()
            .await
            .unwrap();
        store::jobs::enqueue(
            &db,
            store::jobs::NewJob::new("segment")
                .shop(shop_id)
                .dedupe("test-kill"),
        )
        .await
        .unwrap();
        eventually(120, || async {
            let r = query_all(
                &db,
                "SELECT COUNT(*) AS n FROM discount_codes WHERE shop_id = ? AND state = 'confirmed'",
                vec![shop_id.into()],
            )
            .await;
            (r[0].try_get::<i64>("", "n").ok()? >= 2).then_some(())
        })
        .await
    };
    assert!(mid.is_some(), "the push reached the codes");
    let Env {
        platform,
        sandbox,
        app,
        db: test_db,
        shop,
        http,
        browser,
        config,
    } = env;
    app.kill().await;
    http.put(format!("{}/_sandbox/faults", sandbox.base_url()))
        .json(&json!({"latency_ms": 0}))
        .send()
        .await
        .unwrap();
    let mut second = config.clone();
    second.bind = "127.0.0.1:0".parse().unwrap();
    let resumed = spawn_with(launch(second)).await;
    let env = Env {
        platform,
        sandbox,
        app: resumed,
        db: test_db,
        shop,
        http,
        browser,
        config,
    };
    let db = env.app.state.db.clone();
    let job = eventually(120, || async {
        let r = query_all(
            &db,
            "SELECT state, attempts FROM jobs WHERE dedupe_key = 'test-kill'",
            vec![],
        )
        .await;
        let state: String = r.first()?.try_get("", "state").ok()?;
        (state == "done").then(|| r[0].try_get::<i32>("", "attempts").unwrap())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the killed job is resumed by the new instance; jobs: {:?}",
            futures_jobs_dump(&db)
        )
    });
    assert!(job >= 2, "claimed again after the lease expired");
    wait_idle(&env, &db, shop_id).await;
    assert_tags_match(&env, shop_id, &before, "after a killed push").await;
    let codes = assert_codes_exactly_once(&env, shop_id).await;

    // The API call succeeded but the write that records it was lost: the row is `planned`
    // again. The next run re-sends it, meets TAKEN and confirms; nothing is duplicated.
    let backend = db.get_database_backend();
    db.execute_raw(store::stmt(
        backend,
        "UPDATE discount_codes SET state = 'planned' WHERE shop_id = ?",
        vec![shop_id.into()],
    ))
    .await
    .unwrap();
    let replay = run_for_shop(&env.app.state, shop_id, "test", false)
        .await
        .unwrap();
    assert_eq!(replay.codes.taken, codes, "{replay}");
    assert_eq!(replay.codes.created, 0, "{replay}");
    assert_eq!(assert_codes_exactly_once(&env, shop_id).await, codes);
    env.shutdown().await;
}
every_platform!(killed_push_converges_without_duplicate_codes);

async fn uninstalled_shop_gets_no_pushes(backend: Backend, platform: Platform) {
    let Some(env) = env_on(backend, platform).await else {
        return;
    };
    let (shop_id, _) = installed(&env).await;
    let db = env.app.state.db.clone();
    wait_idle(&env, &db, shop_id).await;
    // Forget what was pushed, so a run would have everything to send again.
    db.execute_raw(store::stmt(
        db.get_database_backend(),
        "DELETE FROM pushed_tags WHERE shop_id = ?",
        vec![shop_id.into()],
    ))
    .await
    .unwrap();
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/trigger", env.shop),
        json!({"topic": "app/uninstalled"}),
    )
    .await;
    eventually(30, || async {
        let s = store::shops::get(&db, shop_id).await.ok()??;
        (s.status == "uninstalled").then_some(())
    })
    .await
    .expect("the uninstall is processed");
    let sent = mutations(&env).await.len();
    let summary = run_for_shop(&env.app.state, shop_id, "test", false)
        .await
        .unwrap();
    assert_eq!(summary.stopped, Some(Stop::Uninstalled), "{summary}");
    let customer = sandbox_tags(&env).await.keys().next().unwrap().clone();
    let r = rescore::rescore(&env.app.state, shop_id, &customer, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(r.stopped, Some(Stop::Uninstalled));
    assert_eq!(
        mutations(&env).await.len(),
        sent,
        "no write after the uninstall"
    );
    let shop = store::shops::get(&db, shop_id).await.unwrap().unwrap();
    assert_eq!(
        shop.status, "uninstalled",
        "no request was even tried (a 401 would mark it needs_reauth)"
    );
    env.shutdown().await;
}
every_platform!(uninstalled_shop_gets_no_pushes);

/// A new order on a customer without orders: the webhook re-scores them with the stored model
/// and their tags change in the shop without a full run.
async fn an_order_webhook_retags_the_customer(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    let (shop_id, _) = installed(&env).await;
    let db = env.app.state.db.clone();
    wait_idle(&env, &db, shop_id).await;
    let rows = query_all(&db, "SELECT customer_platform_id FROM customer_scores WHERE shop_id = ? AND rfm_group = 'PROSPECTS' ORDER BY customer_platform_id", vec![shop_id.into()]).await;
    let gid: String = match rows.first() {
        Some(r) => r.try_get("", "customer_platform_id").unwrap(),
        None => {
            let c = env
                .sandbox_post(
                    &format!("/_sandbox/shops/{}/customers", env.shop),
                    json!({"email": "new@example.com"}),
                )
                .await;
            wait_idle(&env, &db, shop_id).await;
            c["admin_graphql_api_id"].as_str().unwrap().to_string()
        }
    };
    let numeric: u64 = gid.rsplit('/').next().unwrap().parse().unwrap();
    // A run whose process died left its row `running`: only a live run (one holding the
    // shop's lease) makes re-scoring wait.
    dead_run(&db, shop_id).await;
    let runs_before = query_all(
        &db,
        "SELECT COUNT(*) AS n FROM segment_runs WHERE shop_id = ?",
        vec![shop_id.into()],
    )
    .await[0]
        .try_get::<i64>("", "n")
        .unwrap();
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/customers/{numeric}/orders", env.shop),
        json!({"amount": "40.00"}),
    )
    .await;
    let tags = eventually(60, || async {
        let tags = sandbox_tags(&env).await.remove(&gid)?;
        let ours: BTreeSet<String> = tags.into_iter().filter(|t| t.starts_with(PREFIX)).collect();
        (!ours.contains("lifecycle:prospects") && !ours.is_empty()).then_some(ours)
    })
    .await
    .expect("the customer is re-tagged after the order webhook");
    assert!(tags.contains("lifecycle:first-time-buyer"), "{tags:?}");
    wait_idle(&env, &db, shop_id).await;
    let expected = expected_tags(&env, shop_id).await;
    assert_eq!(
        expected.get(&gid),
        Some(&tags),
        "the shop shows the stored segments"
    );
    let runs_after = query_all(
        &db,
        "SELECT COUNT(*) AS n FROM segment_runs WHERE shop_id = ?",
        vec![shop_id.into()],
    )
    .await[0]
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(runs_before, runs_after, "no full run was needed");
    env.shutdown().await;
}
both_backends!(an_order_webhook_retags_the_customer);

/// A `running` row of a write run whose process died.
async fn dead_run(db: &Db, shop_id: i64) {
    db.execute_raw(lifecycle::store::stmt(
        db.get_database_backend(),
        "INSERT INTO segment_runs (shop_id, trigger, dry_run, status, summary, started_at) \
         VALUES (?, 'job', ?, 'running', '{}', ?)",
        vec![shop_id.into(), false.into(), chrono::Utc::now().into()],
    ))
    .await
    .unwrap();
}

/// Runs that send writes to one shop exclude each other through the shop's lease: while
/// another holder has it, a run is refused and a scheduled run comes back later instead of
/// spending its attempts; the next run that holds it closes the rows of dead runs.
async fn runs_of_one_shop_exclude_each_other(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    let (shop_id, _) = installed(&env).await;
    let db = env.app.state.db.clone();
    wait_idle(&env, &db, shop_id).await;
    dead_run(&db, shop_id).await;
    let lease = lifecycle::writeback::segment::RUN_LEASE;
    let now = chrono::Utc::now();
    let ttl = chrono::Duration::seconds(300);
    assert!(
        store::leases::acquire(&db, shop_id, lease, "another-instance", ttl, now)
            .await
            .unwrap()
    );
    let refused = run_for_shop(&env.app.state, shop_id, "test", false).await;
    assert!(
        matches!(refused, Err(lifecycle::writeback::WritebackError::Busy)),
        "{refused:?}"
    );
    // A dry run sends nothing and needs no lease.
    let dry = run_for_shop(&env.app.state, shop_id, "test", true)
        .await
        .unwrap();
    assert!(dry.dry_run);
    // A scheduled run meeting the lease is done, with a run queued a window later.
    let id = store::jobs::enqueue(
        &db,
        store::jobs::NewJob::new("segment")
            .shop(shop_id)
            .dedupe("test-busy"),
    )
    .await
    .unwrap()
    .unwrap();
    let done = eventually(120, || async {
        let j = store::jobs::get(&db, id).await.unwrap()?;
        (j.state == "done").then_some(j)
    })
    .await
    .expect("the refused job is done");
    assert_eq!(done.attempts, 1);
    let later = query_all(
        &db,
        "SELECT state, run_at FROM jobs WHERE shop_id = ? AND kind = 'segment' AND dedupe_key LIKE 'segment:busy:%'",
        vec![shop_id.into()],
    )
    .await;
    assert_eq!(later.len(), 1, "one run queued for later");
    let statuses = |rows: Vec<sea_orm::QueryResult>| -> Vec<String> {
        rows.iter()
            .map(|r| r.try_get::<String>("", "status").unwrap())
            .collect()
    };
    let running = statuses(
        query_all(
            &db,
            "SELECT status FROM segment_runs WHERE shop_id = ? AND status = 'running'",
            vec![shop_id.into()],
        )
        .await,
    );
    assert_eq!(running.len(), 1, "refused runs record nothing: {running:?}");
    store::leases::release(&db, shop_id, lease, "another-instance")
        .await
        .unwrap();
    let run = run_for_shop(&env.app.state, shop_id, "test", false)
        .await
        .unwrap();
    assert!(run.stopped.is_none());
    let after = statuses(
        query_all(
            &db,
            "SELECT status FROM segment_runs WHERE shop_id = ? AND dry_run = ? ORDER BY id DESC LIMIT 2",
            vec![shop_id.into(), false.into()],
        )
        .await,
    );
    assert_eq!(
        after,
        ["done", "interrupted"],
        "the dead run's row is closed"
    );
    assert!(
        !store::leases::is_held(&db, shop_id, lease, chrono::Utc::now())
            .await
            .unwrap(),
        "released at the end"
    );
    env.shutdown().await;
}
both_backends!(runs_of_one_shop_exclude_each_other);

/// Every job row, for a failure message.
fn futures_jobs_dump(db: &Db) -> Vec<String> {
    let db = db.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            query_all(&db, "SELECT id, kind, state, attempts, locked_by, last_error, dedupe_key FROM jobs ORDER BY id", vec![])
                .await
                .into_iter()
                .map(|r| {
                    format!(
                        "{} {} {} {} {:?} {:?} {:?}",
                        r.try_get::<i64>("", "id").unwrap(),
                        r.try_get::<String>("", "kind").unwrap(),
                        r.try_get::<String>("", "state").unwrap(),
                        r.try_get::<i32>("", "attempts").unwrap(),
                        r.try_get::<Option<String>>("", "locked_by").unwrap(),
                        r.try_get::<Option<String>>("", "last_error").unwrap(),
                        r.try_get::<Option<String>>("", "dedupe_key").unwrap(),
                    )
                })
                .collect()
        })
    })
    .join()
    .unwrap()
}

/// The crash window exactly-once is about, replayed deterministically: the discount was
/// created but the write recording it was lost, so the row is `planned` again. The next run
/// re-sends the stored code, meets TAKEN and confirms; the shop holds no second discount.
async fn a_lost_write_after_create_meets_taken(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    let (shop_id, _) = installed(&env).await;
    let db = env.app.state.db.clone();
    run_for_shop(&env.app.state, shop_id, "test", false)
        .await
        .unwrap();
    wait_idle(&env, &db, shop_id).await;
    let codes = assert_codes_exactly_once(&env, shop_id).await;
    assert!(codes > 0, "some codes were issued");
    db.execute_raw(store::stmt(
        db.get_database_backend(),
        "UPDATE discount_codes SET state = 'planned', platform_id = NULL WHERE shop_id = ?",
        vec![shop_id.into()],
    ))
    .await
    .unwrap();
    let replay = run_for_shop(&env.app.state, shop_id, "test", false)
        .await
        .unwrap();
    assert_eq!(replay.codes.taken, codes, "{replay}");
    assert_eq!(replay.codes.created, 0, "{replay}");
    assert_eq!(replay.codes_planned, 0, "{replay}");
    wait_idle(&env, &db, shop_id).await;
    assert_eq!(assert_codes_exactly_once(&env, shop_id).await, codes);
    env.shutdown().await;
}
both_backends!(a_lost_write_after_create_meets_taken);

/// Logged requests whose root fields include `field`.
fn calls(log: &[Value], field: &str) -> usize {
    log.iter()
        .filter(|r| {
            r["root_fields"]
                .to_string()
                .contains(&format!("\"{field}\""))
        })
        .count()
}

async fn request_log(env: &Env) -> Vec<Value> {
    env.sandbox_get(&format!("/_sandbox/shops/{}/requests", env.shop))
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// A shop of `customers` installed as [`installed`] does it, with its work settled.
async fn installed_idle(
    backend: Backend,
    customers: usize,
) -> Option<(Env, i64, BTreeMap<String, Vec<String>>)> {
    let env = env_with(
        backend,
        EnvOptions {
            customers,
            // The backfill reads through bulk queries: paging these shops takes minutes.
            bulk_threshold: 0,
            ..Default::default()
        },
    )
    .await?;
    let (shop_id, before) = installed(&env).await;
    wait_idle(&env, &env.app.state.db, shop_id).await;
    Some((env, shop_id, before))
}

async fn a_large_difference_goes_as_bulk_mutations(backend: Backend) {
    // Every customer is tagged on the first run: more writes than the bulk threshold.
    let customers = lifecycle::platforms::shopify::bulk_tags::BULK_MIN_WRITES + 50;
    let Some((env, shop_id, before)) = installed_idle(backend, customers).await else {
        return;
    };
    let db = env.app.state.db.clone();
    assert_tags_match(&env, shop_id, &before, "after the bulk run").await;

    let runs = query_all(
        &db,
        "SELECT summary FROM segment_runs WHERE shop_id = ? AND dry_run = ? ORDER BY id",
        vec![shop_id.into(), false.into()],
    )
    .await;
    let first: Value =
        serde_json::from_str(&runs[0].try_get::<String>("", "summary").unwrap()).unwrap();
    assert!(
        first["tags"]["customers"].as_u64().unwrap() >= customers as u64 - 5,
        "the first run tagged (nearly) every customer: {first}"
    );
    assert_eq!(
        first["tags"]["bulk_operations"], 1,
        "one bulk mutation for the adds; nothing to remove on a first run: {first}"
    );
    let log = request_log(&env).await;
    assert_eq!(calls(&log, "stagedUploadsCreate"), 1, "{log:#?}");
    assert_eq!(calls(&log, "bulkOperationRunMutation"), 1);
    assert_eq!(
        calls(&log, "tagsAdd") + calls(&log, "tagsRemove"),
        0,
        "no per-customer tag writes beside the bulk mutation"
    );

    second_run_sends_nothing(&env, shop_id, &before).await;
    env.shutdown().await;
}
both_backends!(a_large_difference_goes_as_bulk_mutations);

async fn a_refused_bulk_line_is_recorded_and_the_others_confirmed(backend: Backend) {
    // An add and a remove per customer: enough writes for the bulk path, in two operations.
    let customers = lifecycle::platforms::shopify::bulk_tags::BULK_MIN_WRITES / 2 + 10;
    let Some((env, shop_id, _)) = installed_idle(backend, customers).await else {
        return;
    };
    let db = env.app.state.db.clone();
    let pushed = lifecycle::writeback::store::load_pushed(&db, shop_id, None)
        .await
        .unwrap();
    let ids: Vec<String> = sandbox_tags(&env).await.into_keys().collect();
    // Tags without our prefix: nothing the planner owns, so no re-scoring undoes them.
    let mut works: Vec<TagWork> = ids
        .iter()
        .map(|id| {
            let previous = pushed.get(id).cloned().unwrap_or_default();
            TagWork {
                change: TagChange {
                    customer_id: id.clone(),
                    add: vec!["bulk-new".into()],
                    remove: vec!["bulk-old".into()],
                    reasons: vec![TagReason {
                        tag: "bulk-new".into(),
                        action: TagAction::Add,
                        segment_key: Some("test".into()),
                    }],
                },
                desired: previous.tags.clone(),
                previous,
            }
        })
        .collect();
    // A customer planned, then deleted before the push (a customer with orders cannot be
    // deleted, so it is a new one).
    let created = env
        .sandbox_post(
            &format!("/_sandbox/shops/{}/customers", env.shop),
            json!({ "email": "gone@example.com" }),
        )
        .await;
    let gone = created["admin_graphql_api_id"]
        .as_str()
        .unwrap()
        .to_string();
    works.push(TagWork {
        change: TagChange {
            customer_id: gone.clone(),
            ..works[0].change.clone()
        },
        desired: vec![],
        previous: Default::default(),
    });
    let r = env
        .http
        .delete(env.sandbox_url(&format!(
            "/_sandbox/shops/{}/customers/{}",
            env.shop, created["id"]
        )))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let log_before = request_log(&env).await.len();
    let (stats, stop) = labels::push(&env.app.state, shop_id, None, &works, chrono::Utc::now())
        .await
        .unwrap();
    assert!(stop.is_none());
    assert_eq!(stats.bulk_operations, 2, "adds, then removes: {stats:?}");
    assert_eq!(stats.customers, ids.len(), "{stats:?}");
    assert_eq!(stats.rejected, 1, "{stats:?}");
    let log = request_log(&env).await;
    let log = &log[log_before..];
    assert_eq!(calls(log, "bulkOperationRunMutation"), 2);
    assert_eq!(calls(log, "tagsAdd") + calls(log, "tagsRemove"), 0);

    let tags_now = sandbox_tags(&env).await;
    assert!(!tags_now.contains_key(&gone));
    for (id, tags) in &tags_now {
        assert!(tags.contains(&"bulk-new".to_string()), "{id}: {tags:?}");
    }
    let rows = query_all(
        &db,
        "SELECT customer_platform_id, outcome FROM writeback_audit WHERE shop_id = ? AND detail = ?",
        vec![shop_id.into(), "bulk-new".into()],
    )
    .await;
    assert_eq!(rows.len(), ids.len() + 1, "one audit row per customer");
    for r in &rows {
        let customer: String = r.try_get("", "customer_platform_id").unwrap();
        let outcome: String = r.try_get("", "outcome").unwrap();
        if customer == gone {
            assert_eq!(outcome, "rejected: Customer does not exist");
        } else {
            assert_eq!(outcome, "sent", "{customer}");
        }
    }
    env.shutdown().await;
}
both_backends!(a_refused_bulk_line_is_recorded_and_the_others_confirmed);

/// An Ecwid plan without customer groups (402): the push learns it from one request, not one
/// per customer, puts nobody in a group, still issues every code, and the admin says so in the
/// platform's words on the overview and the offers page.
async fn a_plan_without_groups_keeps_codes_and_says_so(backend: Backend) {
    let Some(env) = env_with(
        backend,
        EnvOptions {
            platform: Platform::Ecwid,
            customers: 80,
            ecwid_plan: EcwidPlan::Venture,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let cookie = session_cookie(&env.install().await);
    let shop_id = env.installed_shop().await.id;
    offers_on_after_install(&env, shop_id).await;
    let log_before = request_log(&env).await.len();
    let run = run_for_shop(&env.app.state, shop_id, "test", false)
        .await
        .unwrap();
    assert!(run.stopped.is_none(), "{run}");
    assert!(run.tag_changes > 0, "customers should be in groups: {run}");
    assert_eq!(run.tags.customers, 0, "{run}");
    let why = run.tags.plan_limit.clone().expect("the plan's refusal");
    assert!(why.contains("Business plan"), "Ecwid's own words: {why}");
    let log = request_log(&env).await;
    let during = &log[log_before..];
    let path = |r: &Value| r["path"].as_str().unwrap_or("").to_string();
    assert_eq!(
        during
            .iter()
            .filter(|r| path(r).contains("/customer_groups"))
            .count(),
        1,
        "one request learns the plan: {during:#?}"
    );
    assert!(
        !during.iter().any(|r| r["method"] == "PUT"),
        "no customer is written"
    );
    wait_idle(&env, &env.app.state.db, shop_id).await;
    assert!(
        sandbox_tags(&env).await.values().all(Vec::is_empty),
        "nobody is in a group"
    );
    assert!(
        assert_codes_exactly_once(&env, shop_id).await > 0,
        "codes still go out: {run}"
    );

    // The admin, signed in by the install's cookie.
    for path in ["/admin", "/admin/offers"] {
        let (_, html) = admin_get(&env, &cookie, path).await;
        assert!(
            html.contains("id=\"labels-unavailable\"")
                && html.contains("Your plan does not include customer groups")
                && html.contains("Business plan"),
            "{path} says the plan has no groups: {html}"
        );
    }
    // A plan with groups again: the next run puts customers in groups and the notice goes.
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/plan", env.shop),
        json!({ "plan": "business" }),
    )
    .await;
    let upgraded = run_for_shop(&env.app.state, shop_id, "test", false)
        .await
        .unwrap();
    assert!(upgraded.tags.plan_limit.is_none(), "{upgraded}");
    assert!(upgraded.tags.customers > 0, "{upgraded}");
    assert!(
        !admin_get(&env, &cookie, "/admin")
            .await
            .1
            .contains("labels-unavailable"),
        "the notice is gone"
    );
    env.shutdown().await;
}
both_backends!(a_plan_without_groups_keeps_codes_and_says_so);

/// The text a page shows: its markup without scripts, styles and tags, entities decoded
/// enough for words ("&amp;" → "&").
fn visible_text(html: &str) -> String {
    let hidden = regex::Regex::new(r"(?is)<(script|style)\b.*?</(script|style)>").unwrap();
    let tags = regex::Regex::new(r"(?s)<[^>]*>").unwrap();
    let shown = hidden.replace_all(html, " ");
    tags.replace_all(&shown, " ")
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

/// The admin names Lifecycle's labels in the platform's words: an Ecwid merchant reads
/// "customer group" (never "tag") on every page, a Shopify merchant reads "tag"; the offers
/// page says how narrowly the platform can restrict a code.
async fn the_admin_names_labels_in_the_platforms_words(backend: Backend, platform: Platform) {
    let Some(env) = env_on(backend, platform).await else {
        return;
    };
    let cookie = session_cookie(&env.install().await);
    let shop_id = env.installed_shop().await.id;
    offers_on_after_install(&env, shop_id).await;
    wait_idle(&env, &env.app.state.db, shop_id).await;
    // A dry run, so the offers page shows its plan summary.
    run_for_shop(&env.app.state, shop_id, "test", true)
        .await
        .unwrap();
    let customer: i64 = query_all(
        &env.app.state.db,
        "SELECT id FROM customers WHERE shop_id = ? ORDER BY id LIMIT 1",
        vec![shop_id.into()],
    )
    .await[0]
        .try_get("", "id")
        .unwrap();
    let caps = env
        .app
        .state
        .platforms
        .get(env.platform)
        .unwrap()
        .capabilities()
        .clone();
    let mut pages: Vec<String> = lifecycle::admin::frame::NAV
        .iter()
        .map(|(path, _)| path.to_string())
        .collect();
    pages.push(format!("/admin/customers/{customer}"));
    let tag_word = regex::Regex::new(r"(?i)\btags?\b").unwrap();
    let mut all = String::new();
    for path in &pages {
        let (status, html) = admin_get(&env, &cookie, path).await;
        assert_eq!(status, 200, "{path}");
        let text = visible_text(&html);
        match env.platform {
            "ecwid" => {
                assert_eq!(caps.label_word, "customer group");
                let found: Vec<&str> = tag_word.find_iter(&text).map(|m| m.as_str()).collect();
                assert!(
                    found.is_empty(),
                    "{path} says {found:?} to an Ecwid merchant: {text}"
                );
                assert!(
                    text.contains("Offers & customer groups"),
                    "{path}: the navigation names groups: {text}"
                );
            }
            _ => {
                assert_eq!(caps.label_word, "tag");
                assert!(
                    text.contains("Offers & tags"),
                    "{path}: the navigation names tags: {text}"
                );
            }
        }
        if path == "/admin/offers" {
            let note = format!("id=\"code-note\">{}</p>", caps.code_note);
            assert!(html.contains(&note), "the offers page says {note}: {html}");
            // Every capability of the platform, in words.
            let facts = caps.facts();
            assert_eq!(facts.len(), 6);
            for (term, fact) in facts {
                let row = format!("<dt>{term}</dt><dd>{}</dd>", maud::html! { (fact) }.0);
                assert!(html.contains(&row), "the offers page says {row}: {html}");
            }
            let limit = match caps.rate_limit {
                lifecycle::platforms::RateLimit::RequestsPerMinute(n) => {
                    format!("{n} requests a minute")
                }
                lifecycle::platforms::RateLimit::CostBucket => "query cost points".into(),
            };
            assert!(text.contains(&limit), "the API limit is named: {text}");
            assert!(
                html.contains("id=\"plan-summary\""),
                "a dry run's plan is shown"
            );
            assert_eq!(
                html.contains("id=\"group-label\""),
                env.platform == "ecwid",
                "the choice of the group's label is offered only where a customer has one group"
            );
        }
        all.push_str(&text);
    }
    let (label, title) = match env.platform {
        "ecwid" => ("customer group", "Customer groups"),
        _ => ("tag", "Tags"),
    };
    for words in [
        format!("{} prefix", capitalise(label)),
        format!("Customers whose {label}s change"),
        format!("{} or code", capitalise(label)),
        format!("review the {label}s and codes"),
        format!("<h2>{title}</h2>"),
    ] {
        let seen = if words.starts_with('<') {
            // A heading: in the customer page's markup.
            let (_, html) = admin_get(&env, &cookie, &format!("/admin/customers/{customer}")).await;
            html.contains(&words)
        } else {
            all.contains(&words)
        };
        assert!(seen, "the admin says {words:?}");
    }
    env.shutdown().await;
}
every_platform!(the_admin_names_labels_in_the_platforms_words);

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The merchant chooses the label an Ecwid customer group follows: `group_label` is writable
/// through the settings API (only "tier" or "stage"; anything else is a 400 that says which),
/// documented in the OpenAPI document, and with "stage" a run puts every customer in the group
/// of their lifecycle stage instead of their loyalty tier.
async fn the_group_follows_the_lifecycle_stage_when_chosen(backend: Backend) {
    use lifecycle::settings::GroupLabel;
    let Some(env) = env_on(backend, Platform::Ecwid).await else {
        return;
    };
    let cookie = session_cookie(&env.install().await);
    let shop_id = env.installed_shop().await.id;
    offers_on_after_install(&env, shop_id).await;
    wait_idle(&env, &env.app.state.db, shop_id).await;
    // The default: groups follow the loyalty tier.
    let by_tier = expected_labels(&env, shop_id, GroupLabel::Tier).await;
    let groups = |m: &BTreeMap<String, Vec<String>>| -> BTreeMap<String, BTreeSet<String>> {
        m.iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect()
    };
    assert_eq!(
        groups(&sandbox_tags(&env).await),
        by_tier,
        "tier groups first"
    );

    let put = |body: Value| {
        let request = env
            .http
            .put(format!("{}/api/settings", env.app.url()))
            .header("Cookie", format!("lifecycle_session={cookie}"))
            .json(&body);
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let stored = || async { env.installed_shop().await.settings };
    let before = stored().await;
    for bad in [
        json!("lifecycle_stage"),
        json!("Stage"),
        json!(1),
        json!(["stage"]),
    ] {
        let (status, r) = put(json!({ "group_label": bad })).await;
        assert_eq!(status, 400, "{bad}: {r}");
        let msg = r["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains("group_label") && msg.contains("\"tier\"") && msg.contains("\"stage\""),
            "{bad}: the refusal names the setting and its values: {msg}"
        );
        assert_eq!(stored().await, before, "nothing saved for {bad}");
    }
    let doc: Value = env
        .http
        .get(format!("{}/api/openapi.json", env.app.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["SettingsPatch"]["properties"]["group_label"].is_object(),
        "the settings body documents group_label: {schemas}"
    );
    assert_eq!(schemas["GroupLabel"]["enum"], json!(["tier", "stage"]));

    let (status, r) = put(json!({ "group_label": "stage" })).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["effective"]["group_label"], "stage", "{r}");
    let (_, offers) = admin_get(&env, &cookie, "/admin/offers").await;
    assert!(
        offers.contains("<option value=\"stage\" selected>"),
        "the offers page shows the choice: {offers}"
    );

    let run = run_for_shop(&env.app.state, shop_id, "test", false)
        .await
        .unwrap();
    assert!(run.tag_changes > 0, "customers move to stage groups: {run}");
    wait_idle(&env, &env.app.state.db, shop_id).await;
    let by_stage = expected_labels(&env, shop_id, GroupLabel::Stage).await;
    let actual = groups(&sandbox_tags(&env).await);
    assert_eq!(actual, by_stage, "every customer is in their stage's group");
    let stage_groups: BTreeSet<&String> = actual.values().flatten().collect();
    assert!(
        !stage_groups.is_empty()
            && stage_groups
                .iter()
                .all(|g| g.starts_with(&format!("{PREFIX}stage-"))),
        "groups are named after lifecycle stages: {stage_groups:?}"
    );
    assert!(
        actual.values().all(|g| g.len() <= 1),
        "one group per customer"
    );
    env.shutdown().await;
}
both_backends!(the_group_follows_the_lifecycle_stage_when_chosen);
