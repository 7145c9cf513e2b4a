//! Webhooks: deliveries from the sandbox are stored and applied; bad input is refused with the
//! right status and writes nothing; duplicates, replays and reordering change nothing; privacy
//! topics do what they say.

use lifecycle::platforms::shopify::signature::sign_body;
use lifecycle::store::{self, Db};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

async fn inbox_rows(db: &Db) -> i64 {
    let backend = db.get_database_backend();
    db.query_one_raw(store::stmt(
        backend,
        "SELECT COUNT(*) AS n FROM webhook_inbox",
        vec![],
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "n")
    .unwrap()
}

async fn one_value(
    db: &Db,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Option<sea_orm::QueryResult> {
    db.query_one_raw(store::stmt(db.get_database_backend(), sql, values))
        .await
        .unwrap()
}

/// Posts a webhook as Shopify would, signed with `secret`, with the given headers left out.
async fn post_webhook(
    env: &Env,
    topic: &str,
    body: &[u8],
    secret: Option<&str>,
    omit: &[&str],
    id: &str,
) -> reqwest::Response {
    post_delivery(env, topic, body, secret, omit, id, &format!("evt-{id}")).await
}

/// `post_webhook` with the event id given: deliveries of one event share it.
async fn post_delivery(
    env: &Env,
    topic: &str,
    body: &[u8],
    secret: Option<&str>,
    omit: &[&str],
    id: &str,
    event_id: &str,
) -> reqwest::Response {
    let mut headers = vec![
        ("X-Shopify-Topic", topic.to_string()),
        ("X-Shopify-Shop-Domain", env.shop.clone()),
        ("X-Shopify-Webhook-Id", id.to_string()),
        ("X-Shopify-API-Version", "2026-07".to_string()),
        (
            "X-Shopify-Triggered-At",
            "2026-11-01T10:00:00.000000Z".to_string(),
        ),
        ("X-Shopify-Event-Id", event_id.to_string()),
    ];
    if let Some(s) = secret {
        headers.push(("X-Shopify-Hmac-Sha256", sign_body(s, body)));
    }
    let mut req = env
        .http
        .post(format!("{}/webhooks/shopify", env.app.url()))
        .body(body.to_vec());
    for (k, v) in headers {
        if !omit.contains(&k) {
            req = req.header(k, v);
        }
    }
    req.header("Content-Type", "application/json")
        .send()
        .await
        .unwrap()
}

fn customer_body(id: u64, email: &str, updated: &str) -> Vec<u8> {
    json!({"id": id, "admin_graphql_api_id": format!("gid://shopify/Customer/{id}"), "email": email,
           "first_name": "Zoë", "last_name": "Ångström", "created_at": "2026-01-01T00:00:00Z", "updated_at": updated,
           "tags": "vip"})
    .to_string()
    .into_bytes()
}

fn order_body(id: u64, customer: u64, total: &str, updated: &str) -> Vec<u8> {
    json!({"id": id, "admin_graphql_api_id": format!("gid://shopify/Order/{id}"), "currency": "USD",
           "total_price": total, "subtotal_price": total, "total_discounts": "0.00", "created_at": "2026-02-01T00:00:00Z",
           "updated_at": updated, "financial_status": "paid", "discount_codes": [],
           "customer": {"id": customer, "admin_graphql_api_id": format!("gid://shopify/Customer/{customer}")}})
    .to_string()
    .into_bytes()
}

async fn bad_webhooks_are_refused_and_write_nothing(backend: Backend) {
    let Some(env) = env_with(
        backend,
        EnvOptions {
            webhook_max_bytes: 4096,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    env.install().await;
    let db = &env.app.state.db;
    let base = inbox_rows(db).await;
    let body = customer_body(9001, "a@example.com", "2026-03-01T00:00:00Z");
    for topic in [
        "customers/update",
        "customers/redact",
        "shop/redact",
        "customers/data_request",
    ] {
        let r = post_webhook(
            &env,
            topic,
            &body,
            Some("wrong-secret"),
            &[],
            &format!("bad-{topic}"),
        )
        .await;
        assert_eq!(r.status(), 401, "bad HMAC on {topic}");
        let r = post_webhook(&env, topic, &body, None, &[], &format!("none-{topic}")).await;
        assert_eq!(r.status(), 401, "missing HMAC on {topic}");
    }
    // A valid signature over different bytes (re-serialised JSON) is not valid.
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    let mut req = env
        .http
        .post(format!("{}/webhooks/shopify", env.app.url()))
        .body(reserialised.clone());
    req = req
        .header("X-Shopify-Topic", "customers/update")
        .header("X-Shopify-Shop-Domain", &env.shop)
        .header("X-Shopify-Webhook-Id", "reser")
        .header(
            "X-Shopify-Hmac-Sha256",
            sign_body(CLIENT_SECRET, &[&reserialised[..], b" "].concat()),
        );
    assert_eq!(req.send().await.unwrap().status(), 401);
    for header in [
        "X-Shopify-Topic",
        "X-Shopify-Shop-Domain",
        "X-Shopify-Webhook-Id",
    ] {
        let r = post_webhook(
            &env,
            "customers/update",
            &body,
            Some(CLIENT_SECRET),
            &[header],
            "missing-header",
        )
        .await;
        assert_eq!(r.status(), 400, "missing {header}");
        assert!(r.text().await.unwrap().contains(header));
    }
    let big = vec![b' '; 5000];
    let r = post_webhook(
        &env,
        "customers/update",
        &big,
        Some(CLIENT_SECRET),
        &[],
        "too-big",
    )
    .await;
    assert_eq!(r.status(), 413);
    assert_eq!(inbox_rows(db).await, base, "nothing was written");

    // Unknown shop: 200, nothing stored.
    let mut req = env
        .http
        .post(format!("{}/webhooks/shopify", env.app.url()))
        .body(body.clone());
    req = req
        .header("X-Shopify-Topic", "customers/update")
        .header("X-Shopify-Shop-Domain", "nobody.myshopify.com")
        .header("X-Shopify-Webhook-Id", "unknown-shop")
        .header("X-Shopify-Hmac-Sha256", sign_body(CLIENT_SECRET, &body));
    assert_eq!(req.send().await.unwrap().status(), 200);
    assert_eq!(inbox_rows(db).await, base);

    // Valid HMAC, not JSON: 200, stored, and failed with its reason without blocking the queue.
    let r = post_webhook(
        &env,
        "customers/update",
        b"this is not json",
        Some(CLIENT_SECRET),
        &[],
        "not-json",
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = post_webhook(
        &env,
        "customers/update",
        &body,
        Some(CLIENT_SECRET),
        &[],
        "fine",
    )
    .await;
    assert_eq!(r.status(), 200);
    let failed = eventually(15, || async {
        let row = one_value(
            db,
            "SELECT state, last_error FROM webhook_inbox WHERE webhook_id = 'not-json'",
            vec![],
        )
        .await?;
        let state: String = row.try_get("", "state").ok()?;
        (state == "failed").then(|| row.try_get::<Option<String>>("", "last_error").unwrap())
    })
    .await
    .expect("the non-JSON delivery ends failed");
    assert!(failed.unwrap().contains("not JSON"));
    eventually(15, || async {
        let row = one_value(
            db,
            "SELECT state FROM webhook_inbox WHERE webhook_id = 'fine'",
            vec![],
        )
        .await?;
        (row.try_get::<String>("", "state").ok()? == "done").then_some(())
    })
    .await
    .expect("the next delivery is applied");

    // Uninstalled shop: 200, nothing stored.
    let shop = env.installed_shop().await;
    store::shops::mark_uninstalled(db, shop.id).await.unwrap();
    let before = inbox_rows(db).await;
    let r = post_webhook(
        &env,
        "customers/update",
        &body,
        Some(CLIENT_SECRET),
        &[],
        "after-uninstall",
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(inbox_rows(db).await, before);
    env.shutdown().await;
}
both_backends!(bad_webhooks_are_refused_and_write_nothing);

async fn customer_email(db: &Db, shop_id: i64, id: u64) -> Option<String> {
    one_value(
        db,
        "SELECT email FROM customers WHERE shop_id = ? AND platform_id = ?",
        vec![
            shop_id.into(),
            format!("gid://shopify/Customer/{id}").into(),
        ],
    )
    .await
    .and_then(|r| r.try_get::<Option<String>>("", "email").ok().flatten())
}

async fn wait_idle(db: &Db) {
    eventually(20, || async {
        let row = one_value(
            db,
            "SELECT COUNT(*) AS n FROM webhook_inbox WHERE state IN ('queued', 'running')",
            vec![],
        )
        .await?;
        (row.try_get::<i64>("", "n").ok()? == 0).then_some(())
    })
    .await
    .expect("the inbox drains");
}

async fn duplicates_replays_and_reordering_change_nothing(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    env.install().await;
    let db = &env.app.state.db;
    let shop = env.installed_shop().await;
    // The order arrives before its customer: kept, and linked when the customer arrives.
    let r = post_webhook(
        &env,
        "orders/create",
        &order_body(501, 77, "40.00", "2026-02-01T00:00:00Z"),
        Some(CLIENT_SECRET),
        &[],
        "o1",
    )
    .await;
    assert_eq!(r.status(), 200);
    let newer = customer_body(77, "new@example.com", "2026-03-02T00:00:00Z");
    let older = customer_body(77, "old@example.com", "2026-03-01T00:00:00Z");
    assert_eq!(
        post_webhook(
            &env,
            "customers/update",
            &newer,
            Some(CLIENT_SECRET),
            &[],
            "c-new"
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        post_webhook(
            &env,
            "customers/update",
            &newer,
            Some(CLIENT_SECRET),
            &[],
            "c-new"
        )
        .await
        .status(),
        200,
        "duplicate delivery"
    );
    wait_idle(db).await;
    assert_eq!(
        post_webhook(
            &env,
            "customers/update",
            &older,
            Some(CLIENT_SECRET),
            &[],
            "c-old"
        )
        .await
        .status(),
        200
    );
    // A replay of the newer payload under a new delivery id.
    assert_eq!(
        post_webhook(
            &env,
            "customers/update",
            &newer,
            Some(CLIENT_SECRET),
            &[],
            "c-new-replay"
        )
        .await
        .status(),
        200
    );
    wait_idle(db).await;
    assert_eq!(
        customer_email(db, shop.id, 77).await.as_deref(),
        Some("new@example.com"),
        "older update never wins"
    );
    let n = one_value(
        db,
        "SELECT COUNT(*) AS n FROM webhook_inbox WHERE webhook_id = 'c-new'",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        n.try_get::<i64>("", "n").unwrap(),
        1,
        "deduplicated by webhook id"
    );
    let linked = one_value(
        db,
        "SELECT o.total_minor AS total, c.email AS email FROM orders o JOIN customers c \
         ON c.shop_id = o.shop_id AND c.platform_id = o.customer_platform_id WHERE o.shop_id = ? AND o.platform_id = ?",
        vec![shop.id.into(), "gid://shopify/Order/501".into()],
    )
    .await
    .expect("the early order is linked to its customer");
    assert_eq!(linked.try_get::<i64>("", "total").unwrap(), 4000);

    // An older order update after a newer one, and a refund replayed: no change, no double count.
    post_webhook(
        &env,
        "orders/updated",
        &order_body(501, 77, "55.00", "2026-02-03T00:00:00Z"),
        Some(CLIENT_SECRET),
        &[],
        "o2",
    )
    .await;
    post_webhook(
        &env,
        "orders/updated",
        &order_body(501, 77, "45.00", "2026-02-02T00:00:00Z"),
        Some(CLIENT_SECRET),
        &[],
        "o3",
    )
    .await;
    let refund = json!({"id": 9, "order_id": 501, "created_at": "2026-02-04T00:00:00Z",
        "transactions": [{"kind": "refund", "status": "success", "amount": "5.00", "currency": "USD"}]})
    .to_string();
    post_webhook(
        &env,
        "refunds/create",
        refund.as_bytes(),
        Some(CLIENT_SECRET),
        &[],
        "r1",
    )
    .await;
    post_webhook(
        &env,
        "refunds/create",
        refund.as_bytes(),
        Some(CLIENT_SECRET),
        &[],
        "r1-again",
    )
    .await;
    wait_idle(db).await;
    let o = one_value(
        db,
        "SELECT total_minor, refunded_minor FROM orders WHERE shop_id = ? AND platform_id = ?",
        vec![shop.id.into(), "gid://shopify/Order/501".into()],
    )
    .await
    .unwrap();
    assert_eq!(o.try_get::<i64>("", "total_minor").unwrap(), 5500);
    assert_eq!(o.try_get::<i64>("", "refunded_minor").unwrap(), 500);
    env.shutdown().await;
}
both_backends!(duplicates_replays_and_reordering_change_nothing);

async fn sandbox_traffic_and_privacy_topics_are_applied(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    env.install().await;
    let db = &env.app.state.db;
    let shop = env.installed_shop().await;
    let customers = env
        .sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await;
    let c = &customers.as_array().unwrap()[0];
    let cid = c["id"].as_u64().unwrap();
    let gid = c["admin_graphql_api_id"].as_str().unwrap().to_string();
    // Until a backfill has run, the customer reaches us through its update webhook.
    let r = env
        .http
        .patch(env.sandbox_url(&format!("/_sandbox/shops/{}/customers/{cid}", env.shop)))
        .json(&json!({"first_name": "Zoë"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    eventually(20, || async { customer_email(db, shop.id, cid).await })
        .await
        .expect("customers/update applied");
    let order = env
        .sandbox_post(
            &format!("/_sandbox/shops/{}/customers/{cid}/orders", env.shop),
            json!({"amount": "31.50"}),
        )
        .await;
    let order_gid = order["admin_graphql_api_id"].as_str().unwrap().to_string();
    let row = eventually(20, || async {
        one_value(
            db,
            "SELECT total_minor FROM orders WHERE shop_id = ? AND platform_id = ?",
            vec![shop.id.into(), order_gid.clone().into()],
        )
        .await
    })
    .await
    .expect("the sandbox's orders/create webhook is applied");
    assert_eq!(row.try_get::<i64>("", "total_minor").unwrap(), 3150);

    // Data request: an export is recorded for the merchant.
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/trigger", env.shop),
        json!({"topic": "customers/data_request", "customer_id": cid}),
    )
    .await;
    let export = eventually(20, || async {
        let r = one_value(db, "SELECT export FROM privacy_requests WHERE shop_id = ? AND kind = 'customers/data_request'", vec![shop.id.into()]).await?;
        r.try_get::<String>("", "export").ok()
    })
    .await
    .expect("data request recorded");
    assert!(
        export.contains(&order_gid),
        "the export lists the customer's orders: {export}"
    );

    // Redact: the customer's personal data is gone; amounts stay.
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/trigger", env.shop),
        json!({"topic": "customers/redact", "customer_id": cid}),
    )
    .await;
    eventually(20, || async {
        let r = one_value(db, "SELECT redacted_at, email, first_name FROM customers WHERE shop_id = ? AND platform_id = ?", vec![shop.id.into(), gid.clone().into()]).await?;
        let redacted: Option<chrono::DateTime<chrono::Utc>> = r.try_get("", "redacted_at").ok()?;
        let email: Option<String> = r.try_get("", "email").ok()?;
        (redacted.is_some() && email.is_none()).then_some(())
    })
    .await
    .expect("customer redacted");
    let o = one_value(
        db,
        "SELECT email, total_minor FROM orders WHERE shop_id = ? AND platform_id = ?",
        vec![shop.id.into(), order_gid.clone().into()],
    )
    .await
    .unwrap();
    assert_eq!(o.try_get::<Option<String>>("", "email").unwrap(), None);
    assert_eq!(o.try_get::<i64>("", "total_minor").unwrap(), 3150);

    // Shop redact: everything of the shop is erased, the shop's own row included (the
    // catalogue-wide check is in `erasure`).
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/trigger", env.shop),
        json!({"topic": "shop/redact"}),
    )
    .await;
    eventually(20, || async {
        store::shops::get(db, shop.id)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await
    .expect("shop erased");
    assert_eq!(count(db, "customers", shop.id).await, 0);
    assert_eq!(count(db, "orders", shop.id).await, 0);
    assert_eq!(count(db, "privacy_requests", shop.id).await, 0);
    env.shutdown().await;
}
both_backends!(sandbox_traffic_and_privacy_topics_are_applied);

/// (webhook id, state) of the inbox rows of one event of `topic`, first stored first.
async fn event_rows(db: &Db, topic: &str, event_id: &str) -> Vec<(String, String)> {
    query_all(
        db,
        "SELECT webhook_id, state FROM webhook_inbox WHERE topic = ? AND event_id = ? ORDER BY id",
        vec![topic.into(), event_id.into()],
    )
    .await
    .iter()
    .map(|r| {
        (
            r.try_get::<String>("", "webhook_id").unwrap(),
            r.try_get::<String>("", "state").unwrap(),
        )
    })
    .collect()
}

/// The sandbox's settled deliveries of `topic`, grouped by event id (the app's own writes may
/// add events of their own, so tests look at every event).
async fn sandbox_events(env: &Env, topic: &str) -> std::collections::BTreeMap<String, Vec<Value>> {
    env.wait_deliveries_settled(&env.shop, 60).await;
    let mut out: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for d in env
        .sandbox_get(&format!("/_sandbox/shops/{}/deliveries", env.shop))
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["topic"] == topic)
    {
        assert_eq!(d["status"], "delivered", "{d}");
        let event = d["event_id"].as_str().unwrap().to_string();
        out.entry(event).or_default().push(d.clone());
    }
    out
}

/// Every event of `events` is in the inbox once, and applied.
async fn each_stored_once(
    db: &Db,
    topic: &str,
    events: &std::collections::BTreeMap<String, Vec<Value>>,
) {
    for (event, sent) in events {
        let rows = event_rows(db, topic, event).await;
        assert_eq!(
            rows.len(),
            1,
            "event {event}, sent {sent:?}, stored {rows:?}"
        );
        assert_eq!(rows[0].1, "done", "{rows:?}");
    }
}

async fn rename_customer(env: &Env, cid: u64, first_name: &str) {
    let r = env
        .http
        .patch(env.sandbox_url(&format!("/_sandbox/shops/{}/customers/{cid}", env.shop)))
        .json(&json!({ "first_name": first_name }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

async fn one_event_is_stored_and_applied_once_however_often_it_is_delivered(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    env.install().await;
    let db = &env.app.state.db;
    let shop = env.installed_shop().await;
    let customers = env
        .sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await;
    let cid = customers[0]["id"].as_u64().unwrap();
    let shop_id = shop.id;
    let first_name = |name: &'static str| {
        let gid = format!("gid://shopify/Customer/{cid}");
        async move {
            let r = one_value(
                db,
                "SELECT first_name FROM customers WHERE shop_id = ? AND platform_id = ?",
                vec![shop_id.into(), gid.into()],
            )
            .await?;
            (r.try_get::<Option<String>>("", "first_name").ok()?? == name).then_some(())
        }
    };

    // Right after install, the manifest's app-specific subscription alone delivers each event.
    rename_customer(&env, cid, "Ada").await;
    let before = sandbox_events(&env, "customers/update").await;
    assert!(!before.is_empty());
    for (event, sent) in &before {
        assert_eq!(sent.len(), 1, "one delivery of event {event}: {sent:?}");
    }
    wait_idle(db).await;
    each_stored_once(db, "customers/update", &before).await;
    eventually(20, || first_name("Ada"))
        .await
        .expect("the update is applied");

    // An API subscription of the same topic and address is a second subscription: an event
    // arrives twice (one event id, two webhook ids) and is stored, so applied, once.
    let token = lifecycle::platforms::Credentials::open(
        &env.app.state.cipher,
        shop.credentials.as_deref().unwrap(),
        &shop.domain,
    )
    .unwrap()
    .access_token;
    let callback = format!("{}/webhooks/shopify", env.app.url());
    subscribe_via_api(&env, &token, "CUSTOMERS_UPDATE", &callback).await;
    // Payloads' `updated_at` has whole seconds, and an update no newer than the stored one
    // is not applied.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    rename_customer(&env, cid, "Grace").await;
    let after = sandbox_events(&env, "customers/update").await;
    let twice: Vec<&Vec<Value>> = after
        .iter()
        .filter(|(e, _)| !before.contains_key(*e))
        .map(|(_, sent)| sent)
        .filter(|sent| sent.len() == 2)
        .collect();
    assert!(!twice.is_empty(), "an event delivered twice: {after:?}");
    for sent in &twice {
        assert_ne!(sent[0]["id"], sent[1]["id"], "two webhook ids");
    }
    wait_idle(db).await;
    each_stored_once(db, "customers/update", &after).await;
    eventually(20, || first_name("Grace"))
        .await
        .expect("the second update is applied");

    // Two deliveries of one event under different webhook ids: both answered 200, stored once.
    // The same event id under another topic is kept: one merchant action shares its event id
    // across the topics it triggers.
    let body = customer_body(88, "e@example.com", "2026-03-01T00:00:00Z");
    for id in ["e-1", "e-2"] {
        let r = post_delivery(
            &env,
            "customers/update",
            &body,
            Some(CLIENT_SECRET),
            &[],
            id,
            "evt-shared",
        )
        .await;
        assert_eq!(r.status(), 200, "{id}");
    }
    let order = order_body(601, 88, "12.00", "2026-03-01T00:00:00Z");
    let r = post_delivery(
        &env,
        "orders/create",
        &order,
        Some(CLIENT_SECRET),
        &[],
        "e-3",
        "evt-shared",
    )
    .await;
    assert_eq!(r.status(), 200);
    wait_idle(db).await;
    assert_eq!(
        event_rows(db, "customers/update", "evt-shared").await,
        vec![("e-1".to_string(), "done".to_string())]
    );
    assert_eq!(
        event_rows(db, "orders/create", "evt-shared").await,
        vec![("e-3".to_string(), "done".to_string())]
    );
    env.shutdown().await;
}
both_backends!(one_event_is_stored_and_applied_once_however_often_it_is_delivered);
