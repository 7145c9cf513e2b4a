//! Shopify's 60-day window on orders. Without `read_all_orders` (a scope Shopify must approve
//! for the app) the platform shows an app only the orders created in the last 60 days: the
//! sandbox enforces it, the install still succeeds, the backfill mirrors exactly that window,
//! and the admin says the figures are partial. When the grant widens, the next install reads
//! the whole history.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::both_backends;
use crate::common::*;

/// The sandbox's orders by the app's key, with their creation time.
async fn sandbox_orders(env: &Env) -> Vec<(String, DateTime<Utc>)> {
    env.sandbox_get(&format!("/_sandbox/shops/{}/orders", env.shop))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                env.order_key(o),
                o["created_at"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

async fn our_orders(env: &Env, shop_id: i64) -> Vec<String> {
    let mut ids: Vec<String> = query_all(
        &env.app.state.db,
        "SELECT platform_id FROM orders WHERE shop_id = ? AND deleted_at IS NULL",
        vec![shop_id.into()],
    )
    .await
    .iter()
    .map(|r| r.try_get("", "platform_id").unwrap())
    .collect();
    ids.sort();
    ids
}

async fn without_all_orders_the_history_is_60_days_and_the_admin_says_so(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    // Shopify has not approved the app for `read_all_orders`: the grant leaves it out.
    env.sandbox_post(
        "/_sandbox/app",
        json!({"withheld_scopes": "read_all_orders"}),
    )
    .await;
    let cookie = session_cookie(&env.install().await);
    let shop = env.installed_shop().await;
    assert!(
        !shop.scopes.contains("read_all_orders") && shop.scopes.contains("read_orders"),
        "the grant: {}",
        shop.scopes
    );
    wait_job_done(
        &env.app.state.db,
        shop.id,
        lifecycle::triggers::kinds::BACKFILL,
    )
    .await;

    let theirs = sandbox_orders(&env).await;
    let now = Utc::now();
    let window = Duration::days(60);
    // An hour either side of the boundary, which moves while the test runs.
    let surely_in: Vec<&String> = theirs
        .iter()
        .filter(|(_, t)| *t >= now - window + Duration::hours(1))
        .map(|(k, _)| k)
        .collect();
    let surely_out: Vec<&String> = theirs
        .iter()
        .filter(|(_, t)| *t < now - window - Duration::hours(1))
        .map(|(k, _)| k)
        .collect();
    assert!(
        !surely_in.is_empty() && !surely_out.is_empty(),
        "the shop has orders on both sides of the window ({} in, {} out)",
        surely_in.len(),
        surely_out.len()
    );
    let ours = our_orders(&env, shop.id).await;
    let missing: Vec<_> = surely_in.iter().filter(|k| !ours.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "orders of the window not read: {missing:?}"
    );
    let leaked: Vec<_> = surely_out.iter().filter(|k| ours.contains(k)).collect();
    assert!(
        leaked.is_empty(),
        "orders older than the window reached the app: {leaked:?}"
    );

    let (status, page) = admin_get(&env, &cookie, "/admin").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"partial-history\""), "{page}");
    assert!(page.contains("only the last 60 days of orders"));
    assert!(
        page.contains("read_all_orders"),
        "the remedy names the permission"
    );
    assert_eq!(
        page.matches("class=\"badge warn partial\"").count(),
        2,
        "revenue and CLV are marked partial"
    );

    // Shopify approves the scope; the merchant opens the app again and grants it.
    env.sandbox_post("/_sandbox/app", json!({"withheld_scopes": ""}))
        .await;
    env.install().await;
    let shop = env.installed_shop().await;
    assert!(shop.scopes.contains("read_all_orders"), "{}", shop.scopes);
    wait_job_done(
        &env.app.state.db,
        shop.id,
        lifecycle::triggers::kinds::BACKFILL,
    )
    .await;
    let mut all: Vec<String> = theirs.into_iter().map(|(k, _)| k).collect();
    all.sort();
    assert_eq!(
        our_orders(&env, shop.id).await,
        all,
        "the whole history once the grant covers it"
    );
    let (_, page) = admin_get(&env, &cookie, "/admin").await;
    assert!(!page.contains("partial-history"));
    assert!(!page.contains("class=\"badge warn partial\""));
    env.shutdown().await;
}
both_backends!(without_all_orders_the_history_is_60_days_and_the_admin_says_so);
