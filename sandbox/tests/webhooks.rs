//! Webhook delivery and fault knobs, checked by a tiny receiver that keeps the raw bytes.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const SUBSCRIBE: &str = "mutation($topic: WebhookSubscriptionTopic!, $url: URL!) { webhookSubscriptionCreate(topic: $topic, webhookSubscription: {callbackUrl: $url, format: JSON}) { webhookSubscription { id topic } userErrors { field message } } }";

async fn subscribe(base: &str, shop: &str, token: &str, topic: &str, url: &str) -> Value {
    let (_, r) = gql(
        base,
        shop,
        token,
        SUBSCRIBE,
        json!({"topic": topic, "url": url}),
    )
    .await;
    r["data"]["webhookSubscriptionCreate"].clone()
}

async fn put_faults(base: &str, faults: Value) -> u16 {
    client()
        .put(format!("{base}/_sandbox/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn trigger(base: &str, shop: &str, body: Value) -> Value {
    let r = client()
        .post(format!("{base}/_sandbox/shops/{shop}/trigger"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "trigger {body} failed: {}",
        r.status()
    );
    r.json().await.unwrap()
}

#[tokio::test]
async fn deliveries_are_signed_over_the_exact_bytes_with_all_headers() {
    let rx = Receiver::start().await;
    let sb = sandbox(30).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    set_app_url(&base, &rx.base).await;
    let token = install(&base, &shop).await;

    let hook = format!("{}/hooks/customers", rx.base);
    let created = subscribe(&base, &shop, &token, "CUSTOMERS_UPDATE", &hook).await;
    assert_eq!(created["userErrors"], json!([]));
    let dup = subscribe(&base, &shop, &token, "CUSTOMERS_UPDATE", &hook).await;
    assert_eq!(
        dup["userErrors"][0]["message"],
        "Address for this topic has already been taken"
    );
    assert_eq!(
        subscribe(
            &base,
            &shop,
            &token,
            "ORDERS_CREATE",
            &format!("{}/hooks/orders", rx.base)
        )
        .await["userErrors"],
        json!([])
    );

    let customers = get_json(&format!("{base}/_sandbox/shops/{shop}/customers")).await;
    let cid = customers[0]["id"].as_u64().unwrap();
    let gid = customers[0]["admin_graphql_api_id"]
        .as_str()
        .unwrap()
        .to_string();
    gql(&base, &shop, &token, "mutation($id: ID!) { tagsAdd(id: $id, tags: \"lc-champion, lc-vip\") { userErrors { message } } }", json!({"id": gid})).await;
    let r = client()
        .post(format!(
            "{base}/_sandbox/shops/{shop}/customers/{cid}/orders"
        ))
        .json(&json!({"amount": "19.99"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let got = rx.wait_for("/hooks/customers", 1).await;
    assert_eq!(got.len(), 1);
    let d = &got[0];
    for h in [
        "x-shopify-topic",
        "x-shopify-hmac-sha256",
        "x-shopify-shop-domain",
        "x-shopify-api-version",
        "x-shopify-webhook-id",
        "x-shopify-event-id",
        "x-shopify-triggered-at",
    ] {
        assert!(d.headers.contains_key(h), "missing header {h}");
    }
    assert_eq!(d.headers["x-shopify-topic"], "customers/update");
    assert_eq!(d.headers["x-shopify-shop-domain"], shop);
    assert_eq!(d.headers["x-shopify-api-version"], VERSION);
    assert!(webhook_hmac_ok(
        CLIENT_SECRET,
        &d.body,
        &d.headers["x-shopify-hmac-sha256"]
    ));
    assert!(!webhook_hmac_ok(
        "another-secret",
        &d.body,
        &d.headers["x-shopify-hmac-sha256"]
    ));
    let payload: Value = serde_json::from_slice(&d.body).unwrap();
    assert_eq!(payload["id"], cid);
    assert_eq!(payload["admin_graphql_api_id"], gid);

    let orders = rx.wait_for("/hooks/orders", 1).await;
    let o: Value = serde_json::from_slice(&orders[0].body).unwrap();
    assert!(webhook_hmac_ok(
        CLIENT_SECRET,
        &orders[0].body,
        &orders[0].headers["x-shopify-hmac-sha256"]
    ));
    assert_eq!(o["total_price"], "19.99");
    assert_eq!(o["total_price_set"]["shop_money"]["amount"], "19.99");
    assert_eq!(o["customer"]["id"], cid);

    // Compliance and uninstall go to the app's TOML address; uninstall revokes the token.
    trigger(
        &base,
        &shop,
        json!({"topic": "customers/redact", "customer_id": cid}),
    )
    .await;
    trigger(&base, &shop, json!({"topic": "app/uninstalled"})).await;
    // The manifest's app-specific subscriptions deliver the data topics to that address too,
    // so wait for these two rather than for any two deliveries.
    let topics_of = |hooks: &[Received]| -> HashSet<String> {
        hooks
            .iter()
            .map(|r| r.headers["x-shopify-topic"].clone())
            .collect()
    };
    let app_hooks = rx
        .wait_until("/webhooks/shopify", |v| {
            let t = topics_of(v);
            t.contains("customers/redact") && t.contains("app/uninstalled")
        })
        .await;
    let topics = topics_of(&app_hooks);
    assert!(
        topics.contains("customers/redact") && topics.contains("app/uninstalled"),
        "{topics:?}"
    );
    for r in &app_hooks {
        assert!(webhook_hmac_ok(
            CLIENT_SECRET,
            &r.body,
            &r.headers["x-shopify-hmac-sha256"]
        ));
    }
    assert_eq!(
        gql(&base, &shop, &token, "{ shop { name } }", json!({}))
            .await
            .0,
        401
    );
    let shops = get_json(&format!("{base}/_sandbox/shops")).await;
    assert_eq!(shops[0]["installed"], false);

    let ids: HashSet<String> = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.headers["x-shopify-webhook-id"].clone())
        .collect();
    assert_eq!(
        ids.len(),
        rx.got.lock().unwrap().len(),
        "webhook ids are unique per delivery"
    );
    sb.shutdown().await;
    rx.stop().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_scaled_backoff() {
    let rx = Receiver::start().await;
    let sb = sandbox(10).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    set_app_url(&base, &rx.base).await;
    let token = install(&base, &shop).await;
    subscribe(
        &base,
        &shop,
        &token,
        "CUSTOMERS_CREATE",
        &format!("{}/flaky", rx.base),
    )
    .await;
    rx.fail_first("/flaky", 3);
    trigger(&base, &shop, json!({"topic": "customers/create"})).await;
    let got = rx.wait_for("/flaky", 4).await;
    assert_eq!(got.len(), 4);
    let ids: HashSet<_> = got
        .iter()
        .map(|r| r.headers["x-shopify-webhook-id"].clone())
        .collect();
    assert_eq!(ids.len(), 1, "a retry is the same delivery");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = get_json(&format!("{base}/_sandbox/shops/{shop}/deliveries")).await;
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["topic"] == "customers/create")
        .unwrap()
        .clone();
    assert_eq!(entry["status"], "delivered");
    assert_eq!(entry["attempts"], 4);

    // A subscription that never succeeds is removed after 8 retries (4 h scaled to 4 s).
    subscribe(
        &base,
        &shop,
        &token,
        "CUSTOMERS_UPDATE",
        &format!("{}/dead", rx.base),
    )
    .await;
    rx.fail_first("/dead", 1000);
    trigger(&base, &shop, json!({"topic": "customers/update"})).await;
    let got = rx.wait_for("/dead", 9).await;
    assert_eq!(got.len(), 9);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let subs = get_json(&format!("{base}/_sandbox/shops/{shop}/webhooks")).await;
    assert!(
        subs.as_array()
            .unwrap()
            .iter()
            .all(|s| s["topic"] != "customers/update")
    );
    sb.shutdown().await;
    rx.stop().await;
}

#[tokio::test]
async fn fault_knobs_take_effect() {
    let rx = Receiver::start().await;
    let sb = sandbox(10).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    set_app_url(&base, &rx.base).await;
    let token = install(&base, &shop).await;
    subscribe(
        &base,
        &shop,
        &token,
        "CUSTOMERS_UPDATE",
        &format!("{}/f", rx.base),
    )
    .await;

    assert_eq!(put_faults(&base, json!({"error_rate": 2.0})).await, 400);
    assert_eq!(put_faults(&base, json!({"bogus": 1})).await, 400);

    assert_eq!(put_faults(&base, json!({"error_rate": 1.0})).await, 200);
    assert!(
        gql(&base, &shop, &token, "{ shop { name } }", json!({}))
            .await
            .0
            >= 500
    );

    assert_eq!(put_faults(&base, json!({"latency_ms": 300})).await, 200);
    let t = std::time::Instant::now();
    assert_eq!(
        gql(&base, &shop, &token, "{ shop { name } }", json!({}))
            .await
            .0,
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(300));

    assert_eq!(put_faults(&base, json!({"throttle_storm": 2.0})).await, 200);
    let (_, r) = gql(&base, &shop, &token, "{ shop { name } }", json!({})).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "THROTTLED");
    assert_eq!(
        r["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"],
        0
    );
    // The storm holds the bucket empty; it refills only after it ends.
    tokio::time::sleep(Duration::from_millis(2100)).await;

    assert_eq!(put_faults(&base, json!({"drop_rate": 1.0})).await, 200);
    trigger(&base, &shop, json!({"topic": "customers/update"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.on("/f").is_empty());
    let log = get_json(&format!("{base}/_sandbox/shops/{shop}/deliveries")).await;
    assert_eq!(log[0]["status"], "dropped");

    assert_eq!(put_faults(&base, json!({"duplicate_rate": 1.0})).await, 200);
    trigger(&base, &shop, json!({"topic": "customers/update"})).await;
    let got = rx.wait_for("/f", 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].headers["x-shopify-webhook-id"],
        got[1].headers["x-shopify-webhook-id"]
    );

    // Reordering: held deliveries arrive in a different order than they were triggered.
    assert_eq!(put_faults(&base, json!({"reorder": 400})).await, 200);
    let mut reordered = false;
    for _ in 0..5 {
        let before = rx.on("/f").len();
        for _ in 0..6 {
            trigger(&base, &shop, json!({"topic": "customers/update"})).await;
        }
        let got = rx.wait_for("/f", before + 6).await;
        let times: Vec<String> = got[before..]
            .iter()
            .map(|r| r.headers["x-shopify-triggered-at"].clone())
            .collect();
        let mut sorted = times.clone();
        sorted.sort();
        if times != sorted {
            reordered = true;
            break;
        }
    }
    assert!(reordered, "deliveries should arrive out of order");
    assert_eq!(put_faults(&base, json!({})).await, 200);
    sb.shutdown().await;
    rx.stop().await;
}

#[tokio::test]
async fn live_traffic_creates_data_and_webhooks() {
    let rx = Receiver::start().await;
    let sb = sandbox(50).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    set_app_url(&base, &rx.base).await;
    let token = install(&base, &shop).await;
    for t in [
        "CUSTOMERS_CREATE",
        "ORDERS_CREATE",
        "CUSTOMERS_UPDATE",
        "CHECKOUTS_CREATE",
        "REFUNDS_CREATE",
    ] {
        subscribe(&base, &shop, &token, t, &format!("{}/live", rx.base)).await;
    }
    let before = get_json(&format!("{base}/_sandbox/shops")).await[0].clone();
    let r = client()
        .post(format!("{base}/_sandbox/shops/{shop}/live"))
        .json(&json!({"rate": 50.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = rx.wait_for("/live", 20).await;
    assert!(got.len() >= 20);
    let r = client()
        .delete(format!("{base}/_sandbox/shops/{shop}/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = get_json(&format!("{base}/_sandbox/shops")).await[0].clone();
    let grew = after["customers"].as_u64() > before["customers"].as_u64()
        || after["orders"].as_u64() > before["orders"].as_u64();
    assert!(grew, "live traffic adds records: {before} -> {after}");
    sb.shutdown().await;
    rx.stop().await;
}
