//! The Ecwid flavour over real HTTP: OAuth (single-use codes), REST paging against the
//! ground-truth dumps, the rate limit, customer groups by plan, coupons, and signed webhooks
//! with Ecwid's retries, received by a tiny server that keeps the full URL and bytes.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
mod common;

use common::{Received, Receiver};
use lifecycle_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

use std::time::Duration;

const ID: &str = "test-ecwid-id";
const SECRET: &str = "test-ecwid-secret";
const SCOPES: &str = "read_store_profile read_customers update_customers create_customers read_orders create_discount_coupons read_discount_coupons";

async fn sandbox(customers: usize, per_minute: u32) -> Sandbox {
    Sandbox::start(
        SandboxConfig {
            customers,
            seed: 11,
            history_days: 400,
            platform: "ecwid".into(),
            // Ecwid's 24 h of retries pass in 24 s; the first retry comes after 0.25 s.
            time_scale: 3600.0,
            ..SandboxConfig::default()
        }
        .with_app("ecwid", ID, SECRET)
        .expect("ecwid is a flavour")
        .with_settings(
            "ecwid",
            lifecycle_sandbox::ecwid::Settings {
                requests_per_minute: per_minute,
                ..Default::default()
            },
        ),
    )
    .await
    .expect("sandbox starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn get_json(url: &str) -> Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn set_app_url(base: &str, app_url: &str) {
    let r = client()
        .post(format!("{base}/_sandbox/app"))
        .json(&json!({"app_url": app_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn code_of(location: &str) -> String {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.to_string())
        .expect("a code in the redirect")
}

async fn authorize(base: &str, app: &str) -> String {
    let r = client()
        .get(format!("{base}/api/oauth/authorize"))
        .query(&[
            ("client_id", ID),
            ("redirect_uri", &format!("{app}/auth/ecwid/callback")),
            ("response_type", "code"),
            ("scope", SCOPES),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        loc.starts_with(&format!("{app}/auth/ecwid/callback?code=")),
        "{loc}"
    );
    code_of(&loc)
}

async fn exchange(base: &str, app: &str, code: &str, secret: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{base}/api/oauth/token"))
        .query(&[
            ("client_id", ID),
            ("client_secret", secret),
            ("code", code),
            ("redirect_uri", &format!("{app}/auth/ecwid/callback")),
            ("grant_type", "authorization_code"),
        ])
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn install(base: &str, app: &str) -> String {
    let code = authorize(base, app).await;
    let (s, v) = exchange(base, app, &code, SECRET).await;
    assert_eq!(s, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

async fn api(base: &str, store: u64, token: &str, path: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{base}/api/v3/{store}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn api_send(
    base: &str,
    store: u64,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = client()
        .request(method, format!("{base}/api/v3/{store}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Walks a search with `offset`/`limit`, returning every item in the order served.
async fn walk(base: &str, store: u64, token: &str, path: &str, limit: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    let sep = if path.contains('?') { '&' } else { '?' };
    loop {
        let (s, page) = api(
            base,
            store,
            token,
            &format!("{path}{sep}offset={offset}&limit={limit}"),
        )
        .await;
        assert_eq!(s, 200, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        assert_eq!(page["count"].as_u64().unwrap(), items.len() as u64);
        assert_eq!(page["offset"].as_u64().unwrap(), offset);
        offset += items.len() as u64;
        out.extend(items);
        if offset >= page["total"].as_u64().unwrap() {
            assert_eq!(out.len() as u64, page["total"].as_u64().unwrap());
            return out;
        }
    }
}

fn minor(v: &Value, exp: u32) -> i64 {
    (v.as_f64().unwrap() * 10f64.powi(exp as i32)).round() as i64
}

/// Where the sandbox delivers an Ecwid store's webhooks (the app URL is the receiver's).
const WEBHOOKS: &str = "/webhooks/ecwid";

/// The Ecwid deliveries of `event` that `rx` received, with their bodies.
fn events(rx: &Receiver, event: &str) -> Vec<(Received, Value)> {
    rx.on(WEBHOOKS)
        .into_iter()
        .filter_map(|g| {
            let v: Value = serde_json::from_slice(&g.body).ok()?;
            (v["eventType"] == event).then_some((g, v))
        })
        .collect()
}

async fn wait_for(rx: &Receiver, event: &str, n: usize) -> Vec<(Received, Value)> {
    for _ in 0..200 {
        let got = events(rx, event);
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} '{event}' deliveries: {:?}", rx.on(WEBHOOKS));
}

/// A receiver, a sandbox with `customers` in store 1001 and the app installed: its token.
async fn installed(customers: usize, per_minute: u32) -> (Receiver, Sandbox, String, String) {
    let rx = Receiver::start().await;
    let sb = sandbox(customers, per_minute).await;
    let base = sb.base_url();
    set_app_url(&base, &rx.base).await;
    let token = install(&base, &rx.base).await;
    (rx, sb, base, token)
}

fn expected_signature(secret: &str, created: &Value, id: &str) -> String {
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(format!("{created}.{id}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

#[tokio::test]
async fn oauth_codes_are_single_use_and_a_replay_disables_the_token() {
    let rx = Receiver::start().await;
    let sb = sandbox(20, 600).await;
    let base = sb.base_url();
    let app = rx.base.clone();
    set_app_url(&base, &app).await;
    assert_eq!(sb.shop_domains(), vec!["1001".to_string()]);

    let c = client();
    // Mandatory parameters, the app's client id and its registered URL.
    for (q, what) in [
        (
            vec![
                ("client_id", ID),
                ("response_type", "code"),
                ("scope", SCOPES),
            ],
            "redirect_uri",
        ),
        (
            vec![
                ("client_id", "someone-else"),
                ("redirect_uri", &format!("{app}/auth/ecwid/callback")),
                ("response_type", "code"),
                ("scope", SCOPES),
            ],
            "client_id",
        ),
        (
            vec![
                ("client_id", ID),
                ("redirect_uri", "http://evil.example/cb"),
                ("response_type", "code"),
                ("scope", SCOPES),
            ],
            "redirect_uri",
        ),
    ] {
        let r = c
            .get(format!("{base}/api/oauth/authorize"))
            .query(&q)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error_description"].as_str().unwrap().contains(what),
            "{v}"
        );
    }

    let code = authorize(&base, &app).await;
    let (s, _) = exchange(&base, &app, &code, "wrong-secret").await;
    assert!(s == 400 || s == 401, "bad secret answered {s}");
    let (s, v) = exchange(&base, &app, &code, SECRET).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["store_id"], 1001);
    assert_eq!(v["scope"], SCOPES);
    let token = v["access_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("secure_"));

    let (s, profile) = api(&base, 1001, &token, "/profile").await;
    assert_eq!(s, 200);
    assert_eq!(profile["generalInfo"]["storeId"], 1001);
    assert_eq!(
        profile["formatsAndUnits"]["currency"]
            .as_str()
            .unwrap()
            .len(),
        3
    );

    // The replay is refused and the first token stops working.
    let (s, _) = exchange(&base, &app, &code, SECRET).await;
    assert_eq!(s, 400);
    let (s, v) = api(&base, 1001, &token, "/profile").await;
    assert_eq!(s, 403);
    assert!(v["errorMessage"].is_string());

    // The App Market's install redirect carries a code of its own.
    let v = get_json(&format!("{base}/_sandbox/shops/1001/install_url")).await;
    let url = v["install_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{app}/auth/ecwid/callback?code=")),
        "{url}"
    );
    let (s, v) = exchange(&base, &app, &code_of(url), SECRET).await;
    assert_eq!(s, 200);
    let token = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(api(&base, 1001, &token, "/profile").await.0, 200);
    assert_eq!(api(&base, 1001, "secure_nonsense", "/profile").await.0, 403);
    assert_eq!(api(&base, 4242, &token, "/profile").await.0, 404);

    // Uninstall revokes the token and tells the app.
    let r = c
        .post(format!("{base}/_sandbox/shops/1001/trigger"))
        .json(&json!({"topic": "application.uninstalled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(api(&base, 1001, &token, "/profile").await.0, 403);
    let got = wait_for(&rx, "application.uninstalled", 1).await;
    assert_eq!(got[0].1["storeId"], 1001);
    assert!(
        got[0]
            .0
            .uri
            .starts_with("/webhooks/ecwid?eventtype=application.uninstalled")
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn paging_walks_every_record_once_and_matches_the_dump() {
    let (_rx, sb, base, token) = installed(60, 600).await;
    let (_, profile) = api(&base, 1001, &token, "/profile").await;
    let currency = profile["formatsAndUnits"]["currency"]
        .as_str()
        .unwrap()
        .to_string();
    let exp = profile["formatsAndUnits"]["currencyPrecision"]
        .as_u64()
        .unwrap() as u32;

    // Customers: default limit 10, at most 100, every one exactly once in updated order.
    let (_, first) = api(&base, 1001, &token, "/customers").await;
    assert_eq!(first["limit"], 10);
    assert_eq!(first["count"], 10);
    let (_, big) = api(&base, 1001, &token, "/customers?limit=500").await;
    assert_eq!(big["limit"], 100);
    let dump = get_json(&format!("{base}/_sandbox/shops/1001/customers")).await;
    let dump_ids: HashSet<u64> = dump
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    let walked = walk(&base, 1001, &token, "/customers?sortBy=UPDATED_DATE_ASC", 7).await;
    let ids: Vec<u64> = walked.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), dump_ids.len());
    assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), dump_ids);
    let updated: Vec<&str> = walked
        .iter()
        .map(|c| c["updated"].as_str().unwrap())
        .collect();
    assert!(
        updated.windows(2).all(|w| w[0] <= w[1]),
        "sorted by updated"
    );
    assert!(walked.iter().all(|c| c["customerGroupId"] == 0
        && c["customerGroupName"] == "General"
        && c["billingPerson"]["firstName"].is_string()));
    let one = ids[3];
    let (s, c) = api(&base, 1001, &token, &format!("/customers/{one}")).await;
    assert_eq!((s, c["id"].as_u64()), (200, Some(one)));
    assert_eq!(api(&base, 1001, &token, "/customers/12345").await.0, 404);

    // Orders: every one once, and each as the dump has it.
    let dump = get_json(&format!("{base}/_sandbox/shops/1001/orders")).await;
    let dump: HashMap<String, Value> = dump
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o.clone()))
        .collect();
    assert!(dump.len() > 100, "enough orders to page: {}", dump.len());
    let orders = walk(&base, 1001, &token, "/orders", 100).await;
    assert_eq!(orders.len(), dump.len());
    let mut seen = HashSet::new();
    let mut with_code = 0;
    for o in &orders {
        let id = o["id"].as_str().unwrap().to_string();
        assert!(seen.insert(id.clone()), "order {id} twice");
        let d = &dump[&id];
        assert_eq!(
            minor(&o["total"], exp),
            d["total_price_minor"].as_i64().unwrap()
        );
        assert_eq!(
            minor(&o["refundedAmount"], exp),
            d["refunded_minor"].as_i64().unwrap()
        );
        assert_eq!(
            minor(&o["subtotal"], exp)
                - minor(&o["couponDiscount"], exp)
                - minor(&o["discount"], exp)
                + minor(&o["tax"], exp),
            minor(&o["total"], exp),
            "{o}"
        );
        assert_eq!(o["paymentStatus"], d["payment_status"]);
        let expected = if !d["cancelled_at"].is_null() {
            "CANCELLED"
        } else {
            match d["financial_status"].as_str().unwrap() {
                "paid" => "PAID",
                "refunded" => "REFUNDED",
                "partially_refunded" => "PARTIALLY_REFUNDED",
                other => panic!("{other}"),
            }
        };
        assert_eq!(o["paymentStatus"], expected);
        assert_eq!(o["customerId"].as_u64(), d["customer_id"].as_u64());
        match d["discount_codes"][0].as_str() {
            Some(code) => {
                with_code += 1;
                assert_eq!(o["discountCoupon"]["code"], code);
            }
            None => assert!(o.get("discountCoupon").is_none()),
        }
        assert!(o["createDate"].as_str().unwrap().ends_with(" +0000"));
        assert!(o["updateTimestamp"].as_i64().unwrap() >= o["createTimestamp"].as_i64().unwrap());
    }
    assert!(with_code > 0, "some orders use a code");
    assert_eq!(d_currency(&profile), currency);

    // updatedFrom keeps what changed at or after it.
    let mut times: Vec<i64> = orders
        .iter()
        .map(|o| o["updateTimestamp"].as_i64().unwrap())
        .collect();
    times.sort();
    let t = times[times.len() / 2];
    let want = times.iter().filter(|x| **x >= t).count();
    let recent = walk(&base, 1001, &token, &format!("/orders?updatedFrom={t}"), 50).await;
    assert_eq!(recent.len(), want);
    assert!(
        recent
            .iter()
            .all(|o| o["updateTimestamp"].as_i64().unwrap() >= t)
    );
    assert!(want < orders.len());

    // Carts: abandoned checkouts, each once.
    let carts = walk(&base, 1001, &token, "/carts", 100).await;
    let cart_ids: HashSet<&str> = carts
        .iter()
        .map(|k| k["cartId"].as_str().unwrap())
        .collect();
    assert_eq!(cart_ids.len(), carts.len());
    if let Some(k) = carts.first() {
        let (s, one) = api(
            &base,
            1001,
            &token,
            &format!("/carts/{}", k["cartId"].as_str().unwrap()),
        )
        .await;
        assert_eq!((s, &one["cartId"]), (200, &k["cartId"]));
    }

    // Every API request is in the shop's log, with its path and status.
    let log = get_json(&format!("{base}/_sandbox/shops/1001/requests")).await;
    let log = log.as_array().unwrap();
    assert!(log.iter().any(|r| {
        r["path"]
            .as_str()
            .unwrap_or("")
            .starts_with("/api/v3/1001/orders?offset=0")
    }));
    assert!(log.iter().any(|r| r["status"] == 404));
    sb.shutdown().await;
}

fn d_currency(profile: &Value) -> String {
    profile["formatsAndUnits"]["currency"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn beyond_the_limit_per_minute_requests_get_429_with_retry_after() {
    let (rx, sb, base, token) = installed(5, 20).await;
    for i in 0..20 {
        assert_eq!(
            api(&base, 1001, &token, "/profile").await.0,
            200,
            "request {i}"
        );
    }
    let r = client()
        .get(format!("{base}/api/v3/1001/profile"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // The limit is per token.
    let other = install(&base, &rx.base).await;
    assert_eq!(api(&base, 1001, &other, "/profile").await.0, 200);
    let log = get_json(&format!("{base}/_sandbox/shops/1001/requests")).await;
    // API requests only: the token exchanges of the two installs are in the log too.
    let log: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "rest")
        .collect();
    assert_eq!(log.iter().filter(|r| r["status"] == 429).count(), 1);
    assert_eq!(log.iter().filter(|r| r["throttled"] == true).count(), 1);
    assert_eq!(log.iter().filter(|r| r["status"] == 200).count(), 21);

    // The shared fault knobs: 5xx errors and a throttle storm.
    let faults = |f: Value| {
        let base = base.clone();
        async move {
            let r = client()
                .put(format!("{base}/_sandbox/faults"))
                .json(&f)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    let fresh = install(&base, &rx.base).await;
    faults(json!({"error_rate": 1.0})).await;
    let (s, v) = api(&base, 1001, &fresh, "/profile").await;
    assert_eq!(s, 503);
    assert!(v["errorMessage"].is_string());
    faults(json!({"throttle_storm": 1.0})).await;
    let r = client()
        .get(format!("{base}/api/v3/1001/customers"))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    faults(json!({})).await;
    assert_eq!(api(&base, 1001, &fresh, "/customers").await.0, 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn customer_groups_follow_the_plan_and_a_group_write_is_echoed() {
    let (rx, sb, base, token) = installed(10, 600).await;
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;

    let (s, g) = api_send(
        &base,
        1001,
        &token,
        post.clone(),
        "/customer_groups",
        json!({"name": "lc-vip"}),
    )
    .await;
    assert_eq!(s, 200, "{g}");
    let gid = g["id"].as_u64().unwrap();
    assert!(gid > 0);
    let (_, list) = api(&base, 1001, &token, "/customer_groups").await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0], json!({"id": gid, "name": "lc-vip"}));
    assert_eq!(
        api(&base, 1001, &token, &format!("/customer_groups/{gid}"))
            .await
            .1["name"],
        "lc-vip"
    );

    let cid = get_json(&format!("{base}/_sandbox/shops/1001/customers")).await[0]["id"]
        .as_u64()
        .unwrap();
    let (_, before) = api(&base, 1001, &token, &format!("/customers/{cid}")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, v) = api_send(
        &base,
        1001,
        &token,
        put.clone(),
        &format!("/customers/{cid}"),
        json!({"customerGroupId": gid}),
    )
    .await;
    assert_eq!((s, v), (200, json!({"updateCount": 1})));
    let (_, after) = api(&base, 1001, &token, &format!("/customers/{cid}")).await;
    assert_eq!(after["customerGroupId"], gid);
    assert_eq!(after["customerGroupName"], "lc-vip");
    assert!(after["updated"].as_str().unwrap() > before["updated"].as_str().unwrap());
    let (s, _) = api_send(
        &base,
        1001,
        &token,
        put,
        &format!("/customers/{cid}"),
        json!({"customerGroupId": 999}),
    )
    .await;
    assert_eq!(s, 400);
    let echo = wait_for(&rx, "customer.updated", 1).await;
    assert!(echo.iter().any(|(_, v)| v["entityId"] == cid));

    // A plan without customer groups answers 402.
    let r = client()
        .post(format!("{base}/_sandbox/shops"))
        .json(&json!({"name": "free-store", "customers": 5, "seed": 3, "plan": "free", "history_days": 60, "platform": "ecwid"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let summary: Value = r.json().await.unwrap();
    assert_eq!(
        (summary["platform"].as_str(), summary["store_id"].as_u64()),
        (Some("ecwid"), Some(1002))
    );
    assert_eq!(summary["domain"], "1002");
    let shops = get_json(&format!("{base}/_sandbox/shops")).await;
    assert!(
        shops
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["store_id"] == 1002 && s["plan"] == "free")
    );
    let r = client()
        .get(format!("{base}/api/oauth/authorize"))
        .query(&[
            ("client_id", ID),
            ("redirect_uri", &format!("{}/auth/ecwid/callback", rx.base)),
            ("response_type", "code"),
            ("scope", SCOPES),
            ("store_id", "1002"),
        ])
        .send()
        .await
        .unwrap();
    let code = code_of(r.headers()["location"].to_str().unwrap());
    let (s, v) = exchange(&base, &rx.base, &code, SECRET).await;
    assert_eq!((s, v["store_id"].as_u64()), (200, Some(1002)));
    let free = v["access_token"].as_str().unwrap();
    let (s, v) = api(&base, 1002, free, "/customer_groups").await;
    assert_eq!(s, 402);
    assert!(v["errorMessage"].is_string());
    assert_eq!(
        api_send(
            &base,
            1002,
            free,
            post,
            "/customer_groups",
            json!({"name": "x"})
        )
        .await
        .0,
        402
    );
    // The business store's token does not open the free one.
    assert_eq!(api(&base, 1002, &token, "/profile").await.0, 403);
    sb.shutdown().await;
}

#[tokio::test]
async fn coupons_are_created_once_found_by_code_and_used_by_orders() {
    let (rx, sb, base, token) = installed(10, 600).await;
    let post = reqwest::Method::POST;
    let coupon = json!({
        "name": "Welcome back", "code": "LC-ABC123", "discountType": "PERCENT", "status": "ACTIVE",
        "discount": 10, "launchDate": "2026-01-01 00:00:00 +0000", "expirationDate": "2036-01-01 00:00:00 +0000",
        "usesLimit": "SINGLE"
    });
    let (s, v) = api_send(
        &base,
        1001,
        &token,
        post.clone(),
        "/discount_coupons",
        coupon.clone(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["code"], "LC-ABC123");
    let id = v["id"].as_u64().unwrap();
    let (s, v) = api_send(
        &base,
        1001,
        &token,
        post.clone(),
        "/discount_coupons",
        coupon,
    )
    .await;
    assert_eq!(s, 409);
    assert!(v["errorMessage"].as_str().unwrap().contains("LC-ABC123"));
    let (s, _) = api_send(
        &base,
        1001,
        &token,
        post.clone(),
        "/discount_coupons",
        json!({"code": "LC-X", "discountType": "PERCENT"}),
    )
    .await;
    assert_eq!(s, 400, "no discount");
    let (s, _) = api_send(
        &base,
        1001,
        &token,
        post,
        "/discount_coupons",
        json!({"code": "LC-Y", "discountType": "BOGUS", "discount": 1}),
    )
    .await;
    assert_eq!(s, 400);

    let (_, found) = api(&base, 1001, &token, "/discount_coupons?code=LC-ABC123").await;
    assert_eq!(found["total"], 1);
    let c = &found["items"][0];
    assert_eq!(
        (
            c["id"].as_u64(),
            c["discountType"].as_str(),
            c["usesLimit"].as_str(),
            c["status"].as_str()
        ),
        (Some(id), Some("PERCENT"), Some("SINGLE"), Some("ACTIVE"))
    );
    assert_eq!(c["discount"].as_f64(), Some(10.0));
    assert_eq!(c["expirationDate"], "2036-01-01 00:00:00 +0000");
    assert_eq!(
        api(&base, 1001, &token, "/discount_coupons?code=NOPE")
            .await
            .1["total"],
        0
    );
    assert_eq!(
        api(&base, 1001, &token, &format!("/discount_coupons/{id}"))
            .await
            .1["code"],
        "LC-ABC123"
    );

    // The request log names the code created (and only once: the duplicate was 409).
    let log = get_json(&format!("{base}/_sandbox/shops/1001/requests")).await;
    let created: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["detail"] == "coupon LC-ABC123")
        .collect();
    assert_eq!(created.len(), 1);

    // An order using the code carries it and its discount.
    let cid = get_json(&format!("{base}/_sandbox/shops/1001/customers")).await[0]["id"]
        .as_u64()
        .unwrap();
    let r = client()
        .post(format!("{base}/_sandbox/shops/1001/customers/{cid}/orders"))
        .json(&json!({"amount": "50", "discount_code": "LC-ABC123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let made: Value = r.json().await.unwrap();
    let oid = made["ecwid_id"].as_str().unwrap().to_string();
    let (s, o) = api(&base, 1001, &token, &format!("/orders/{oid}")).await;
    assert_eq!(s, 200);
    assert_eq!(o["discountCoupon"]["code"], "LC-ABC123");
    assert_eq!(o["discountCoupon"]["id"].as_u64(), Some(id));
    assert_eq!(
        o["couponDiscount"].as_f64(),
        o["subtotal"]
            .as_f64()
            .map(|s| (s * 0.1 * 100.0).round() / 100.0)
    );
    assert!(o["total"].as_f64().unwrap() < o["subtotal"].as_f64().unwrap());
    // Live traffic uses the store's coupons that are not used up (the SINGLE one is).
    let (s, _) = api_send(
        &base,
        1001,
        &token,
        reqwest::Method::POST,
        "/discount_coupons",
        json!({"name": "Live", "code": "LC-LIVE", "discountType": "ABS", "discount": 5, "usesLimit": "UNLIMITED"}),
    )
    .await;
    assert_eq!(s, 200);
    let r = client()
        .post(format!("{base}/_sandbox/shops/1001/live"))
        .json(&json!({"rate": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    client()
        .delete(format!("{base}/_sandbox/shops/1001/live"))
        .send()
        .await
        .unwrap();
    let dump = get_json(&format!("{base}/_sandbox/shops/1001/orders")).await;
    let uses = |code: &str| {
        dump.as_array()
            .unwrap()
            .iter()
            .filter(|o| o["discount_codes"] == json!([code]))
            .count()
    };
    assert_eq!(uses("LC-ABC123"), 1);
    assert!(uses("LC-LIVE") > 0, "live orders use the store's coupon");
    let created = wait_for(&rx, "order.created", 1).await;
    assert!(
        created
            .iter()
            .any(|(_, v)| v["data"]["orderId"] == oid.as_str()
                && v["data"]["newPaymentStatus"] == "PAID")
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_change_is_delivered_signed_and_retried_on_ecwids_schedule() {
    let (rx, sb, base, _token) = installed(10, 600).await;
    rx.fail_first(WEBHOOKS, 2);

    let r = client()
        .post(format!("{base}/_sandbox/shops/1001/customers"))
        .json(&json!({"email": "new.one@example.com", "first_name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cid = r.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    let got = wait_for(&rx, "customer.created", 3).await;
    assert_eq!(got.len(), 3, "two failures, then delivered");
    let (first, body) = &got[0];
    assert_eq!(first.uri, "/webhooks/ecwid?eventtype=customer.created");
    assert_eq!(body["storeId"], 1001);
    assert_eq!(body["entityId"], cid);
    assert_eq!(body["data"]["customerEmail"], "new.one@example.com");
    assert!(body["eventCreated"].is_i64());
    let event_id = body["eventId"].as_str().unwrap();
    assert_eq!(
        first.headers["x-ecwid-webhook-signature"],
        expected_signature(SECRET, &body["eventCreated"], event_id)
    );
    assert_ne!(
        first.headers["x-ecwid-webhook-signature"],
        expected_signature("another-secret", &body["eventCreated"], event_id)
    );
    // Retries resend the same event.
    assert!(got.iter().all(|(_, v)| v["eventId"] == event_id));

    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = get_json(&format!("{base}/_sandbox/shops/1001/deliveries")).await;
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["event_id"] == event_id)
        .unwrap()
        .clone();
    assert_eq!(entry["topic"], "customer.created");
    assert_eq!(entry["status"], "delivered");
    assert_eq!(entry["attempts"], 3);

    // Refund and cancel are order.updated with the new payment status.
    let r = client()
        .post(format!("{base}/_sandbox/shops/1001/customers/{cid}/orders"))
        .json(&json!({"amount": "80"}))
        .send()
        .await
        .unwrap();
    let oid = r.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    let r = client()
        .post(format!("{base}/_sandbox/shops/1001/orders/{oid}/refund"))
        .json(&json!({"amount": "20"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let upd = wait_for(&rx, "order.updated", 1).await;
    assert_eq!(upd[0].1["data"]["newPaymentStatus"], "PARTIALLY_REFUNDED");
    assert_eq!(upd[0].1["data"]["orderId"], oid.to_string());
    sb.shutdown().await;
}

#[test]
fn platform_flag_seeds_ecwid_stores() {
    use clap::{CommandFactory, Parser};
    use lifecycle_sandbox::ecwid::{EcwidPlan, Settings};

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: lifecycle_sandbox::SandboxArgs,
    }

    Wrapper::command().debug_assert();
    let w = Wrapper::try_parse_from(["x", "--platform", "ecwid", "--ecwid-plan", "free"]).unwrap();
    let cfg = w.args.config().unwrap();
    assert_eq!(cfg.platform, "ecwid");
    let settings = cfg.settings["ecwid"].0.downcast_ref::<Settings>().unwrap();
    assert_eq!(settings.plan, EcwidPlan::Free);
    let w = Wrapper::try_parse_from(["x"]).unwrap();
    assert_eq!(w.args.config().unwrap().platform, "shopify");
    let w = Wrapper::try_parse_from(["x", "--platform", "woo"]).unwrap();
    assert!(w.args.config().is_err());
}
