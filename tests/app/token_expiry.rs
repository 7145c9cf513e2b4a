//! Expiring offline tokens (issue #15): a run that outlives its access token refreshes the
//! grant once per expiry and goes on; only a refresh the platform definitely refuses condemns
//! the grant; a throttled or failing token endpoint is waited out; two instances meeting one
//! expired token refresh it once between them.

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;
use lifecycle::platforms::Resource;

/// How many Admin API calls each access token answers in these tests before it expires.
const CALLS_PER_TOKEN: u64 = 2;

async fn put_faults(env: &Env, faults: Value) {
    let r = env
        .http
        .put(env.sandbox_url("/_sandbox/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "faults accepted: {}", r.status());
}

/// The sandbox's log of the shop's requests: Admin API calls that got past the token check
/// (a refused one is not logged), and token-endpoint requests by grant type and status.
struct Log {
    api_calls: u64,
    /// Statuses of the refresh-token requests, in order.
    refreshes: Vec<u64>,
    /// Code grants and token exchanges (installs).
    grants: u64,
    /// Whether a bulk export was started.
    bulk: bool,
}

async fn log(env: &Env) -> Log {
    let entries = env
        .sandbox_get(&format!("/_sandbox/shops/{}/requests", env.shop))
        .await;
    let entries = entries.as_array().unwrap();
    let token = |e: &&Value| e["kind"] == "token";
    // The OAuth authorize page's visit is logged too, and is no API call.
    let api_call = |e: &&Value| e["kind"] != "token" && e["kind"] != "authorize";
    Log {
        api_calls: entries.iter().filter(api_call).count() as u64,
        refreshes: entries
            .iter()
            .filter(token)
            .filter(|e| e["root_fields"][0] == "refresh_token")
            .map(|e| e["status"].as_u64().unwrap())
            .collect(),
        grants: entries
            .iter()
            .filter(token)
            .filter(|e| e["root_fields"][0] != "refresh_token")
            .count() as u64,
        bulk: entries.iter().any(|e| {
            e["root_fields"]
                .to_string()
                .contains("bulkOperationRunQuery")
        }),
    }
}

async fn sorted_ids(env: &Env, dump: &str, key: impl Fn(&Value) -> String) -> Vec<String> {
    let mut ids: Vec<String> = env
        .sandbox_get(&format!("/_sandbox/shops/{}/{dump}", env.shop))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(key)
        .collect();
    ids.sort();
    ids
}

async fn our_ids(env: &Env, table: &str, shop_id: i64) -> Vec<String> {
    let mut ids: Vec<String> = query_all(
        &env.app.state.db,
        &format!("SELECT platform_id FROM {table} WHERE shop_id = ? AND deleted_at IS NULL"),
        vec![shop_id.into()],
    )
    .await
    .iter()
    .map(|r| r.try_get::<String>("", "platform_id").unwrap())
    .collect();
    ids.sort();
    ids
}

/// Installs with tokens that each answer `CALLS_PER_TOKEN` calls (and `faults` besides), runs
/// the backfill and everything after it, and checks the shop was read whole and is still
/// installed. Returns the sandbox's log.
async fn backfill_with_expiring_tokens(env: &Env, mut faults: Value) -> Log {
    faults["token_calls"] = json!(CALLS_PER_TOKEN);
    put_faults(env, faults).await;
    env.install().await;
    let shop = env.installed_shop().await;
    let db = &env.app.state.db;
    wait_job_done(db, shop.id, lifecycle::triggers::kinds::BACKFILL).await;
    wait_work_done(db, shop.id).await;

    let customers = sorted_ids(env, "customers", |c| {
        env.customer_key(c["id"].as_u64().unwrap())
    })
    .await;
    assert!(!customers.is_empty());
    assert_eq!(
        our_ids(env, "customers", shop.id).await,
        customers,
        "every customer was read"
    );
    let orders = sorted_ids(env, "orders", |o| env.order_key(o)).await;
    assert!(!orders.is_empty());
    assert_eq!(
        our_ids(env, "orders", shop.id).await,
        orders,
        "every order was read"
    );
    let after = env.installed_shop().await;
    assert_eq!(after.status, "installed", "the grant was not condemned");
    assert!(after.credentials.is_some());
    log(env).await
}

/// Each token served exactly `CALLS_PER_TOKEN` calls before the one refused after it led to a
/// refresh, and the last served 1 to `CALLS_PER_TOKEN`: so the refreshes that succeeded are
/// exactly one per expiry, neither more (one per refused call) nor fewer.
fn assert_one_refresh_per_expiry(log: &Log) {
    let done = log.refreshes.iter().filter(|s| **s == 200).count() as u64;
    let expiries = (log.api_calls - 1) / CALLS_PER_TOKEN;
    assert_eq!(log.grants, 1, "one install");
    assert!(
        expiries >= 2,
        "the run outlived several tokens ({} calls)",
        log.api_calls
    );
    assert_eq!(
        done, expiries,
        "one refresh per expired token ({} calls of {CALLS_PER_TOKEN} per token)",
        log.api_calls
    );
}

async fn a_backfill_that_outlives_its_token_completes(backend: Backend) {
    outlived(backend, EnvOptions::default()).await;
}
both_backends!(a_backfill_that_outlives_its_token_completes);

/// The same through a bulk export: starting it, polling it until it completes and reading its
/// result outlive several tokens.
async fn a_bulk_backfill_that_outlives_its_token_completes(backend: Backend) {
    let log = outlived(
        backend,
        EnvOptions {
            bulk_threshold: 1,
            ..Default::default()
        },
    )
    .await;
    assert!(log.is_some_and(|l| l.bulk), "the bulk path was taken");
}
both_backends!(a_bulk_backfill_that_outlives_its_token_completes);

async fn outlived(backend: Backend, opts: EnvOptions) -> Option<Log> {
    let env = env_with(backend, opts).await?;
    let log = backfill_with_expiring_tokens(&env, json!({})).await;
    assert!(
        log.refreshes.iter().all(|s| *s == 200),
        "{:?}",
        log.refreshes
    );
    assert_one_refresh_per_expiry(&log);
    env.shutdown().await;
    Some(log)
}

/// A token endpoint that answers 429 and 503 is not a revoked grant: the refresh is tried
/// again (after `Retry-After`, or a backoff) and the work completes.
async fn a_throttled_or_failing_refresh_does_not_condemn_the_grant(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    let failures = [429, 503, 429];
    let log = backfill_with_expiring_tokens(&env, json!({ "refresh_errors": failures })).await;
    let refused: Vec<u64> = log
        .refreshes
        .iter()
        .copied()
        .filter(|s| *s != 200)
        .collect();
    assert_eq!(refused, failures, "every injected failure was met");
    assert_one_refresh_per_expiry(&log);
    env.shutdown().await;
}
both_backends!(a_throttled_or_failing_refresh_does_not_condemn_the_grant);

/// A refresh token the platform no longer knows (a definite `invalid_grant`) does condemn the
/// grant: the shop asks to be re-authorised, and the refused token is not sent again.
async fn a_revoked_refresh_token_condemns_the_grant(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    env.install().await;
    let shop = env.installed_shop().await;
    let db = &env.app.state.db;
    wait_job_done(db, shop.id, lifecycle::triggers::kinds::BACKFILL).await;
    wait_work_done(db, shop.id).await;
    // The merchant's grant ends on the platform's side (tokens and refresh token revoked), and
    // the access token is found refused.
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/expire_tokens", env.shop),
        json!({ "refresh": true }),
    )
    .await;
    let api = env.app.state.platforms.api(db, shop.id).await.unwrap();
    let r = api.count(Resource::Customers).await;
    assert!(
        matches!(r, Err(lifecycle::platforms::CallError::Unauthorized)),
        "{r:?}"
    );
    assert_eq!(env.installed_shop().await.status, "needs_reauth");
    let refreshes = log(&env).await.refreshes;
    assert_eq!(refreshes, vec![400], "one refresh, refused");
    drop(api);
    env.shutdown().await;
}
both_backends!(a_revoked_refresh_token_condemns_the_grant);

/// Two instances on one database whose calls all meet the same expired token: one refresh
/// between them (the other instance waits for it and uses its result), and neither condemns
/// the grant.
async fn two_instances_refresh_an_expired_token_once(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    env.install().await;
    let shop = env.installed_shop().await;
    let db = &env.app.state.db;
    wait_job_done(db, shop.id, lifecycle::triggers::kinds::BACKFILL).await;
    wait_work_done(db, shop.id).await;
    let mut config = env.config.clone();
    config.bind = "127.0.0.1:0".parse().unwrap();
    let other = spawn_with(launch(config)).await;
    let before = log(&env).await;
    assert!(before.refreshes.is_empty());

    env.sandbox_post(
        &format!("/_sandbox/shops/{}/expire_tokens", env.shop),
        json!({}),
    )
    .await;
    let instances = [&env.app.state, &other.state];
    let apis = futures_util::future::join_all(
        instances
            .iter()
            .flat_map(|s| std::iter::repeat_n(*s, 4))
            .map(|s| s.platforms.api(&s.db, shop.id)),
    )
    .await;
    let apis: Vec<_> = apis.into_iter().map(Result::unwrap).collect();
    let counts =
        futures_util::future::join_all(apis.iter().map(|api| api.count(Resource::Customers))).await;
    for c in &counts {
        assert!(matches!(c, Ok(Some(n)) if *n > 0), "{c:?}");
    }
    let after = log(&env).await;
    assert_eq!(
        after.refreshes,
        vec![200],
        "one refresh for both instances' eight calls"
    );
    assert_eq!(env.installed_shop().await.status, "installed");
    let tokens: std::collections::BTreeSet<String> = apis.iter().map(|a| a.token()).collect();
    assert_eq!(tokens.len(), 1, "every call went on with the one new token");
    drop(apis);
    other.shutdown().await;
    env.shutdown().await;
}
both_backends!(two_instances_refresh_an_expired_token_once);
