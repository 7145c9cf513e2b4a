//! Sync against the sandbox: the backfill mirrors the shop exactly, faults change nothing,
//! reconciliation repairs what dropped webhooks missed, and a killed backfill resumes.

use std::collections::BTreeMap;

use lifecycle::store::{self, Db};
use lifecycle::sync::{self, Mode};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::common::*;
use crate::{both_backends, every_platform};

/// Per order: (customer, total, refunded, cancelled).
type Orders = BTreeMap<String, (Option<String>, i64, i64, bool)>;

async fn sandbox_orders(env: &Env) -> Orders {
    let dump = env
        .sandbox_get(&format!("/_sandbox/shops/{}/orders", env.shop))
        .await;
    dump.as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                env.order_key(o),
                (
                    o["customer_id"].as_u64().map(|c| env.customer_key(c)),
                    o["total_price_minor"].as_i64().unwrap(),
                    o["refunded_minor"].as_i64().unwrap(),
                    !o["cancelled_at"].is_null(),
                ),
            )
        })
        .collect()
}

async fn our_orders(db: &Db, shop_id: i64) -> Orders {
    let rows = db
        .query_all_raw(store::stmt(
            db.get_database_backend(),
            "SELECT platform_id, customer_platform_id, total_minor, refunded_minor, cancelled_at FROM orders WHERE shop_id = ? AND deleted_at IS NULL",
            vec![shop_id.into()],
        ))
        .await
        .unwrap();
    rows.into_iter()
        .map(|r| {
            (
                r.try_get::<String>("", "platform_id").unwrap(),
                (
                    r.try_get::<Option<String>>("", "customer_platform_id")
                        .unwrap(),
                    r.try_get::<i64>("", "total_minor").unwrap(),
                    r.try_get::<i64>("", "refunded_minor").unwrap(),
                    r.try_get::<Option<chrono::DateTime<chrono::Utc>>>("", "cancelled_at")
                        .unwrap()
                        .is_some(),
                ),
            )
        })
        .collect()
}

async fn customer_ids(env: &Env, shop_id: i64) -> (Vec<String>, Vec<String>) {
    let mut theirs: Vec<String> = env
        .sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|c| env.customer_key(c["id"].as_u64().unwrap()))
        .collect();
    let db = &env.app.state.db;
    let rows = db
        .query_all_raw(store::stmt(
            db.get_database_backend(),
            "SELECT platform_id FROM customers WHERE shop_id = ? AND deleted_at IS NULL",
            vec![shop_id.into()],
        ))
        .await
        .unwrap();
    let mut ours: Vec<String> = rows
        .into_iter()
        .map(|r| r.try_get::<String>("", "platform_id").unwrap())
        .collect();
    theirs.sort();
    ours.sort();
    (theirs, ours)
}

/// Per customer: (orders, total of totals), from an order map.
fn per_customer(orders: &Orders) -> BTreeMap<String, (usize, i64)> {
    let mut m = BTreeMap::new();
    for (cust, total, _, _) in orders.values() {
        if let Some(c) = cust {
            let e = m.entry(c.clone()).or_insert((0, 0));
            e.0 += 1;
            e.1 += total;
        }
    }
    m
}

/// Per checkout: (customer, email, currency, total, created second, completed). The email is
/// compared where the app reads it (Ecwid's carts); it deliberately does not read it from
/// Shopify's checkouts (personal data it does not need there).
type Checkouts = BTreeMap<String, (Option<String>, Option<String>, String, i64, i64, bool)>;

/// The sandbox's checkouts as the platform's API shows them: every one on Shopify (completed
/// ones with their completion), only the unfinished ones on Ecwid (`GET /carts` does not list
/// a cart that became an order).
async fn sandbox_checkouts(env: &Env) -> Checkouts {
    let dump = env
        .sandbox_get(&format!("/_sandbox/shops/{}/checkouts", env.shop))
        .await;
    let ecwid = env.platform == "ecwid";
    dump.as_array()
        .unwrap()
        .iter()
        .filter(|k| !ecwid || k["completed_at"].is_null())
        .map(|k| {
            let key = if ecwid {
                k["ecwid_cart_id"].as_str().unwrap().to_string()
            } else {
                k["admin_graphql_api_id"].as_str().unwrap().to_string()
            };
            let created = chrono::DateTime::parse_from_rfc3339(k["created_at"].as_str().unwrap())
                .unwrap()
                .timestamp();
            (
                key,
                (
                    k["customer_id"].as_u64().map(|c| env.customer_key(c)),
                    if ecwid {
                        k["email"].as_str().map(str::to_string)
                    } else {
                        None
                    },
                    k["currency"].as_str().unwrap().to_string(),
                    k["total_price_minor"].as_i64().unwrap(),
                    created,
                    !k["completed_at"].is_null(),
                ),
            )
        })
        .collect()
}

async fn our_checkouts(env: &Env, shop_id: i64) -> Checkouts {
    let ecwid = env.platform == "ecwid";
    query_all(
        &env.app.state.db,
        "SELECT platform_id, customer_platform_id, email, currency, total_minor, \
         platform_created_at, completed_at FROM checkouts WHERE shop_id = ?",
        vec![shop_id.into()],
    )
    .await
    .into_iter()
    .map(|r| {
        let email: Option<String> = r.try_get("", "email").unwrap();
        if !ecwid {
            assert!(
                email.is_none(),
                "the app stores no email of a Shopify checkout"
            );
        }
        (
            r.try_get::<String>("", "platform_id").unwrap(),
            (
                r.try_get::<Option<String>>("", "customer_platform_id")
                    .unwrap(),
                email,
                r.try_get::<String>("", "currency").unwrap(),
                r.try_get::<i64>("", "total_minor").unwrap(),
                r.try_get::<chrono::DateTime<chrono::Utc>>("", "platform_created_at")
                    .unwrap()
                    .timestamp(),
                r.try_get::<Option<chrono::DateTime<chrono::Utc>>>("", "completed_at")
                    .unwrap()
                    .is_some(),
            ),
        )
    })
    .collect()
}

async fn assert_mirrors(env: &Env, shop_id: i64, why: &str) {
    let (theirs, ours) = customer_ids(env, shop_id).await;
    assert_eq!(theirs.len(), ours.len(), "{why}: customer count");
    assert_eq!(theirs, ours, "{why}: customers");
    let theirs = sandbox_orders(env).await;
    let ours = our_orders(&env.app.state.db, shop_id).await;
    assert_eq!(theirs.len(), ours.len(), "{why}: order count");
    let diff: Vec<_> = theirs
        .iter()
        .filter(|(k, _)| !ours.contains_key(*k))
        .map(|(k, _)| k.clone())
        .collect();
    assert!(diff.is_empty(), "{why}: orders missing: {diff:?}");
    let diff: Vec<_> = theirs
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone(), ours.get(k).cloned()))
        .collect();
    assert!(
        diff.is_empty(),
        "{why}: orders differ (id, sandbox, ours): {diff:?}"
    );
    assert_eq!(
        per_customer(&theirs),
        per_customer(&ours),
        "{why}: orders and totals per customer"
    );
    let theirs = sandbox_checkouts(env).await;
    let ours = our_checkouts(env, shop_id).await;
    assert!(
        !theirs.is_empty(),
        "{why}: the shop has checkouts to compare"
    );
    let diff: Vec<_> = theirs
        .keys()
        .chain(ours.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| theirs.get(*k) != ours.get(*k))
        .map(|k| (k.clone(), theirs.get(k).cloned(), ours.get(k).cloned()))
        .collect();
    assert!(
        diff.is_empty(),
        "{why}: checkouts differ (id, sandbox, ours): {diff:?}"
    );
}

async fn wait_job(
    db: &Db,
    shop_id: i64,
    kind: &str,
    secs: u64,
) -> lifecycle::store::entities::job::Model {
    use sea_orm::EntityTrait;
    let found = eventually(secs, || async {
        let r = db
            .query_one_raw(store::stmt(
                db.get_database_backend(),
                "SELECT id FROM jobs WHERE shop_id = ? AND kind = ? AND state IN ('done', 'dead') ORDER BY id DESC",
                vec![shop_id.into(), kind.into()],
            ))
            .await
            .ok()??;
        let id: i64 = r.try_get("", "id").ok()?;
        store::jobs::get(db, id).await.ok()?
    })
    .await;
    match found {
        Some(j) => j,
        None => {
            let all = lifecycle::store::entities::job::Entity::find()
                .all(db)
                .await
                .unwrap();
            panic!("{kind} job did not finish; jobs: {all:#?}")
        }
    }
}

async fn wait_inbox_idle(db: &Db) {
    eventually(60, || async {
        let r = db
            .query_one_raw(store::stmt(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM webhook_inbox WHERE state IN ('queued', 'running')",
                vec![],
            ))
            .await
            .ok()??;
        (r.try_get::<i64>("", "n").ok()? == 0).then_some(())
    })
    .await
    .expect("inbox drains");
}

/// Waits until the sandbox has delivered everything it intends to (including retries).
async fn wait_deliveries_settled(env: &Env) {
    eventually(60, || async {
        let d = env
            .sandbox_get(&format!("/_sandbox/shops/{}/deliveries", env.shop))
            .await;
        let pending = d
            .as_array()?
            .iter()
            .filter(|x| matches!(x["status"].as_str(), Some("pending" | "retrying")))
            .count();
        (pending == 0).then_some(())
    })
    .await
    .expect("deliveries settle");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    wait_inbox_idle(&env.app.state.db).await;
    // A platform whose webhooks carry only ids turns each into a fetch job.
    if let Ok(Some(shop)) =
        lifecycle::store::shops::find(&env.app.state.db, env.platform, &env.shop).await
    {
        wait_work_done(&env.app.state.db, shop.id).await;
    }
}

async fn backfill_mirrors_the_shop(backend: Backend, platform: Platform) {
    let Some(env) = env_on(backend, platform).await else {
        return;
    };
    env.install().await;
    let shop = env.installed_shop().await;
    let job = wait_job(
        &env.app.state.db,
        shop.id,
        lifecycle::triggers::kinds::BACKFILL,
        120,
    )
    .await;
    assert_eq!(job.state, "done", "{:?}", job.last_error);
    assert!(
        job.progress_total.unwrap_or(0) > 0 && job.progress_done >= job.progress_total.unwrap()
    );
    assert_mirrors(&env, shop.id, "after backfill").await;
    env.shutdown().await;
}
every_platform!(backfill_mirrors_the_shop);

/// Customers the merchant edits while the backfill pages through them are no reason to miss
/// another one: each edit moves a customer already read to the end of a list ordered by
/// update time, which shifts an offset-paged read past a customer it never returns.
async fn backfill_misses_no_customer_edited_while_it_pages(backend: Backend, platform: Platform) {
    let opts = EnvOptions {
        platform,
        customers: 450,
        plan: lifecycle_sandbox::Plan::Plus,
        ..Default::default()
    };
    let Some(env) = env_with(backend, opts).await else {
        return;
    };
    // Oldest update first: the customers a read by update time returns first.
    let mut oldest: Vec<(String, u64)> = env
        .sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["updated_at"].as_str().unwrap().to_string(),
                c["id"].as_u64().unwrap(),
            )
        })
        .collect();
    oldest.sort();
    // Slow pages, so edits land between them.
    env.http
        .put(env.sandbox_url("/_sandbox/faults"))
        .json(&json!({"latency_ms": 250}))
        .send()
        .await
        .unwrap();
    env.install().await;
    let shop = env.installed_shop().await;
    let db = env.app.state.db.clone();
    // Edits while the customers are being read, after their first page: each moves a customer
    // already read.
    let mut edited = 0;
    for (_, id) in &oldest {
        let cp = store::sync_state::load(&db, shop.id, "customers")
            .await
            .unwrap();
        if cp.backfilled {
            break;
        }
        if cp.fetched == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        }
        let r = env
            .http
            .patch(env.sandbox_url(&format!("/_sandbox/shops/{}/customers/{id}", env.shop)))
            .json(&json!({"city": format!("Edited {edited}")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        edited += 1;
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    }
    assert!(
        edited >= 3,
        "edits land between the pages of customers ({edited})"
    );
    let job = wait_job(&db, shop.id, lifecycle::triggers::kinds::BACKFILL, 120).await;
    assert_eq!(job.state, "done", "{:?}", job.last_error);
    // The edited customers are read either way (they move to the end); the others only if
    // the read does not skip them. Nothing else changes the customers, so the backfill alone
    // must have read every one.
    let (theirs, ours) = customer_ids(&env, shop.id).await;
    let missing: Vec<_> = theirs.iter().filter(|c| !ours.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "after {edited} edits during the backfill, {} of {} customers were never read: {missing:?}",
        missing.len(),
        theirs.len()
    );
    assert_eq!(theirs, ours);
    env.shutdown().await;
}
every_platform!(backfill_misses_no_customer_edited_while_it_pages);

async fn bulk_backfill_mirrors_the_shop(backend: Backend) {
    let Some(env) = env_with(
        backend,
        EnvOptions {
            bulk_threshold: 1,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    env.install().await;
    let shop = env.installed_shop().await;
    let job = wait_job(
        &env.app.state.db,
        shop.id,
        lifecycle::triggers::kinds::BACKFILL,
        120,
    )
    .await;
    assert_eq!(job.state, "done", "{:?}", job.last_error);
    let requests = env
        .sandbox_get(&format!("/_sandbox/shops/{}/requests", env.shop))
        .await;
    assert!(
        requests.as_array().unwrap().iter().any(|r| r["root_fields"]
            .to_string()
            .contains("bulkOperationRunQuery")),
        "the bulk path was taken"
    );
    assert_mirrors(&env, shop.id, "after bulk backfill").await;
    env.shutdown().await;
}
both_backends!(bulk_backfill_mirrors_the_shop);

async fn live_traffic(env: &Env, rounds: usize) {
    let customers = env
        .sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await;
    let ids: Vec<u64> = customers
        .as_array()
        .unwrap()
        .iter()
        .take(rounds)
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let o = env
            .sandbox_post(
                &format!("/_sandbox/shops/{}/customers/{id}/orders", env.shop),
                json!({"amount": format!("{}.25", 10 + i)}),
            )
            .await;
        let oid = o["id"].as_u64().unwrap();
        if i % 3 == 0 {
            env.sandbox_post(
                &format!("/_sandbox/shops/{}/orders/{oid}/refund", env.shop),
                json!({"amount": "2.00"}),
            )
            .await;
        }
        if i % 4 == 1 {
            env.sandbox_post(
                &format!("/_sandbox/shops/{}/orders/{oid}/cancel", env.shop),
                json!({}),
            )
            .await;
        }
        let r = env
            .http
            .patch(env.sandbox_url(&format!("/_sandbox/shops/{}/customers/{id}", env.shop)))
            .json(&json!({"last_name": format!("Łukasz-{i}")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
}

async fn faults_change_nothing(backend: Backend, platform: Platform) {
    let Some(env) = env_on(backend, platform).await else {
        return;
    };
    let r = env
        .http
        .put(env.sandbox_url("/_sandbox/faults"))
        .json(&json!({"error_rate": 0.1, "throttle_storm": 2.0, "duplicate_rate": 0.5, "reorder": 300, "latency_ms": 30}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    env.install().await;
    let shop = env.installed_shop().await;
    // Live traffic while the backfill runs.
    live_traffic(&env, 12).await;
    let live_done = chrono::Utc::now();
    let job = wait_job(
        &env.app.state.db,
        shop.id,
        lifecycle::triggers::kinds::BACKFILL,
        180,
    )
    .await;
    assert_eq!(job.state, "done", "{:?}", job.last_error);
    wait_deliveries_settled(&env).await;
    assert_mirrors(
        &env,
        shop.id,
        "with 5xx, throttle storms, duplicated and reordered webhooks",
    )
    .await;
    // The faults happened: errors and throttling during the backfill, webhooks duplicated
    // and sent out of order, and the live traffic overlapped the backfill.
    let requests = env
        .sandbox_get(&format!("/_sandbox/shops/{}/requests", env.shop))
        .await;
    let requests = requests.as_array().unwrap();
    assert!(
        requests
            .iter()
            .any(|r| r["status"].as_u64().unwrap_or(0) >= 500),
        "5xx were injected"
    );
    assert!(
        requests
            .iter()
            .any(|r| r["throttled"] == true || r["status"] == 429),
        "the shop throttled the backfill"
    );
    assert!(
        job.updated_at > live_done,
        "the backfill was still running when the live traffic was made"
    );
    let deliveries = env
        .sandbox_get(&format!("/_sandbox/shops/{}/deliveries", env.shop))
        .await;
    let deliveries = deliveries.as_array().unwrap();
    assert!(
        deliveries.iter().any(|d| d["duplicated"] == true),
        "webhooks were duplicated"
    );
    let at = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let sent: Vec<_> = deliveries
        .iter()
        .filter_map(|d| Some((at(&d["triggered_at"])?, at(&d["first_sent_at"])?)))
        .collect();
    let reordered = sent.iter().enumerate().any(|(i, (t1, s1))| {
        sent[i + 1..]
            .iter()
            .any(|(t2, s2)| (t1 < t2 && s1 > s2) || (t2 < t1 && s2 > s1))
    });
    assert!(reordered, "webhooks were sent out of their order");
    env.shutdown().await;
}
every_platform!(faults_change_nothing);

async fn reconciliation_restores_dropped_webhooks(backend: Backend, platform: Platform) {
    let Some(env) = env_on(backend, platform).await else {
        return;
    };
    env.install().await;
    let shop = env.installed_shop().await;
    wait_job(
        &env.app.state.db,
        shop.id,
        lifecycle::triggers::kinds::BACKFILL,
        120,
    )
    .await;
    let r = env
        .http
        .put(env.sandbox_url("/_sandbox/faults"))
        .json(&json!({"drop_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    live_traffic(&env, 6).await;
    wait_deliveries_settled(&env).await;
    // The install's own jobs (the segment run after the backfill) push tags, which change the
    // shop's customers; they must be done before reconciliation is expected to reach a fixed
    // point, or a second reconciliation picks up our own late writes.
    wait_work_done(&env.app.state.db, shop.id).await;
    let theirs = sandbox_orders(&env).await;
    let ours = our_orders(&env.app.state.db, shop.id).await;
    let missing = theirs.len() - ours.len();
    assert_eq!(missing, 6, "dropped webhooks left a gap");

    let report = sync::run(&env.app.state, shop.id, Mode::Reconcile, &|_, _| {})
        .await
        .unwrap();
    // 6 new orders, 6 changed customers; refunds and cancels update orders we did not have.
    assert!(report.changed.orders >= 6, "{report:?}");
    assert!(report.changed.customers >= 6, "{report:?}");
    assert_mirrors(&env, shop.id, "after reconciliation").await;
    let again = sync::run(&env.app.state, shop.id, Mode::Reconcile, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(
        again.changed.total(),
        0,
        "a second reconciliation finds nothing: {again:?}"
    );
    let db = &env.app.state.db;
    let runs = db
        .query_one_raw(store::stmt(
            db.get_database_backend(),
            "SELECT changed FROM sync_runs WHERE shop_id = ? AND kind = 'reconcile' ORDER BY id LIMIT 1",
            vec![shop.id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        runs.try_get::<i64>("", "changed").unwrap() as u64,
        report.changed.total(),
        "the run reports what it fixed"
    );
    env.shutdown().await;
}
every_platform!(reconciliation_restores_dropped_webhooks);

/// The backfill runs in a real `lifecycle serve` process that is killed with SIGKILL half-way;
/// a new instance resumes from the last committed checkpoint, not from the start.
async fn killed_backfill_resumes_from_its_checkpoint(backend: Backend, platform: Platform) {
    // A bigger shop on the Plus plan (1000 points/s), so the backfill has many pages but the
    // test does not wait on the standard plan's 100 points/s.
    let opts = EnvOptions {
        platform,
        customers: 150,
        plan: lifecycle_sandbox::Plan::Plus,
        ..Default::default()
    };
    let Some(env) = env_with(backend, opts).await else {
        return;
    };
    let Env {
        platform,
        sandbox,
        app,
        db: test_db,
        shop: _,
        http,
        browser,
        config,
    } = env;
    // The in-process app only served the sandbox's app URL; the process takes its place.
    app.shutdown().await;
    let shop_domain = sandbox.shop_domains()[0].clone();
    http.put(format!("{}/_sandbox/faults", sandbox.base_url()))
        .json(&json!({"latency_ms": 150}))
        .send()
        .await
        .unwrap();
    let mut child = spawn_process(&config);
    let env = Env {
        platform,
        sandbox,
        app: spawn_with(launch_without_workers(config.clone())).await,
        db: test_db,
        shop: shop_domain,
        browser,
        http,
        config,
    };
    wait_ready(&env.http, &env.config).await;
    env.install().await;
    let shop = env.installed_shop().await;
    let db = env.app.state.db.clone();
    let page = match env.platform {
        "ecwid" => 100,
        _ => lifecycle::platforms::shopify::resources::Gql::page_size(
            lifecycle::platforms::Resource::Orders,
        ) as u64,
    };
    // Killed after several committed pages of orders, so a restart from the first page
    // would show as several pages too many.
    let fetched_at_kill = eventually(60, || async {
        let cp = store::sync_state::load(&db, shop.id, "orders").await.ok()?;
        (cp.fetched as u64 >= 3 * page && !cp.backfilled).then_some(cp.fetched)
    })
    .await
    .expect("the backfill commits three pages of orders");
    child.kill().expect("SIGKILL the serving process");
    child.wait().unwrap();
    let order_pages_before = order_pages(&env.http, &env.sandbox, &env.shop).await;
    env.http
        .put(env.sandbox_url("/_sandbox/faults"))
        .json(&json!({"latency_ms": 0}))
        .send()
        .await
        .unwrap();

    let mut second = env.config.clone();
    second.bind = "127.0.0.1:0".parse().unwrap();
    let resumed = spawn_with(launch(second)).await;
    let job = wait_job(
        &resumed.state.db,
        shop.id,
        lifecycle::triggers::kinds::BACKFILL,
        120,
    )
    .await;
    assert_eq!(job.state, "done", "{:?}", job.last_error);
    assert_eq!(
        job.attempts, 2,
        "claimed again after the dead process's lease expired"
    );
    let order_pages_after = order_pages(&env.http, &env.sandbox, &env.shop).await;
    let total_orders = our_orders(&resumed.state.db, shop.id).await.len() as u64;
    let needed = total_orders.div_ceil(page);
    let resumed_pages = order_pages_after - order_pages_before;
    let already = (fetched_at_kill as u64) / page;
    assert!(already >= 3);
    assert!(
        resumed_pages <= needed - already + 1,
        "resumed from the checkpoint: {resumed_pages} pages after the restart, {needed} in all, {already} done before"
    );
    assert_mirrors(&env, shop.id, "after a resumed backfill").await;
    resumed.shutdown().await;
    env.shutdown().await;
}
every_platform!(killed_backfill_resumes_from_its_checkpoint);

/// The same configuration as a `lifecycle serve` child process.
fn spawn_process(config: &lifecycle::config::Config) -> std::process::Child {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lifecycle"));
    cmd.arg("serve")
        .env("LIFECYCLE_BIND", config.bind.to_string())
        .env("LIFECYCLE_DATA_DIR", &config.data_dir)
        .env("DATABASE_URL", config.database_url())
        .env("LIFECYCLE_APP_URL", config.app_url())
        .env(
            "LIFECYCLE_ENCRYPTION_KEY",
            config.encryption_key.clone().unwrap(),
        )
        .env("LIFECYCLE_SESSION_KEY", config.session_key.clone().unwrap())
        // The test's own path (paged, with a checkpoint per page), whatever the default.
        .env(
            "LIFECYCLE_BULK_THRESHOLD",
            config.bulk_threshold.to_string(),
        )
        .env(
            "LIFECYCLE_SHOPIFY_CLIENT_ID",
            &config.platforms.shopify.client_id,
        )
        .env(
            "LIFECYCLE_SHOPIFY_CLIENT_SECRET",
            config.platforms.shopify.client_secret.clone().unwrap(),
        )
        .env(
            "LIFECYCLE_SHOPIFY_API_ORIGIN",
            config.platforms.shopify.api_origin.clone().unwrap(),
        )
        .env(
            "LIFECYCLE_ECWID_CLIENT_ID",
            &config.platforms.ecwid.client_id,
        )
        .env(
            "LIFECYCLE_ECWID_CLIENT_SECRET",
            config.platforms.ecwid.client_secret.clone().unwrap(),
        )
        .env(
            "LIFECYCLE_ECWID_API_ORIGIN",
            config.platforms.ecwid.api_origin.clone().unwrap(),
        )
        .env("LIFECYCLE_LOG", "warn")
        .stdout(std::process::Stdio::null());
    cmd.spawn().expect("lifecycle serve starts")
}

async fn wait_ready(http: &reqwest::Client, config: &lifecycle::config::Config) {
    eventually(30, || async {
        let r = http
            .get(format!("{}/readyz", config.app_url()))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await
    .expect("the serving process is ready");
}

/// An instance that reads the database but runs no jobs (the test's window onto the data).
fn launch_without_workers(mut config: lifecycle::config::Config) -> lifecycle::server::Launch {
    config.bind = "127.0.0.1:0".parse().unwrap();
    let mut l = launch(config);
    l.workers.workers = 0;
    l
}

async fn order_pages(
    http: &reqwest::Client,
    sandbox: &lifecycle_sandbox::Sandbox,
    shop: &str,
) -> u64 {
    let r: serde_json::Value = http
        .get(format!(
            "{}/_sandbox/shops/{shop}/requests",
            sandbox.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r.as_array()
        .unwrap()
        .iter()
        .filter(|x| {
            // Shopify: GraphQL `orders` pages; Ecwid: full `/orders` list pages (not the
            // `limit=1` count, nor a single order fetched by id).
            let page = match x["path"].as_str() {
                Some(path) => path.contains("/orders?") && path.contains("limit=100"),
                None => x["root_fields"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|n| n == "orders")),
            };
            page && x["status"] == 200 && x["throttled"] == false
        })
        .count() as u64
}

/// A customer comes back and completes an abandoned checkout: on Shopify it stays, completed; on
/// Ecwid the cart leaves the store's cart list (`unfinished_order.deleted`), and the app's
/// mirror drops it, so the customer no longer counts as having abandoned it.
async fn completed_checkouts_leave_the_abandoned(backend: Backend, platform: Platform) {
    let Some(env) = env_on(backend, platform).await else {
        return;
    };
    env.install().await;
    let shop = env.installed_shop().await;
    let db = &env.app.state.db;
    wait_job(db, shop.id, lifecycle::triggers::kinds::BACKFILL, 120).await;
    wait_work_done(db, shop.id).await;
    assert_mirrors(&env, shop.id, "after the backfill").await;
    let dump = env
        .sandbox_get(&format!("/_sandbox/shops/{}/checkouts", env.shop))
        .await;
    let open: Vec<u64> = dump
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["completed_at"].is_null() && !k["customer_id"].is_null())
        .map(|k| k["id"].as_u64().unwrap())
        .take(3)
        .collect();
    assert_eq!(
        open.len(),
        3,
        "the shop has abandoned checkouts of customers"
    );
    let abandoned_before = one_value(
        db,
        "SELECT COUNT(*) AS n FROM checkouts WHERE shop_id = ? AND completed_at IS NULL",
        shop.id,
    )
    .await;
    for id in &open {
        let r = env
            .http
            .post(env.sandbox_url(&format!(
                "/_sandbox/shops/{}/checkouts/{id}/complete",
                env.shop
            )))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    wait_deliveries_settled(&env).await;
    wait_work_done(db, shop.id).await;
    assert_mirrors(&env, shop.id, "after three checkouts were completed").await;
    let abandoned_after = one_value(
        db,
        "SELECT COUNT(*) AS n FROM checkouts WHERE shop_id = ? AND completed_at IS NULL",
        shop.id,
    )
    .await;
    assert_eq!(
        abandoned_after,
        abandoned_before - 3,
        "the three completed checkouts are no longer abandoned"
    );
    env.shutdown().await;
}
every_platform!(completed_checkouts_leave_the_abandoned);

async fn one_value(db: &Db, sql: &str, shop_id: i64) -> i64 {
    query_all(db, sql, vec![shop_id.into()]).await[0]
        .try_get("", "n")
        .unwrap()
}
