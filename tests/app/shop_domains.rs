//! Shop domains are validated as the DNS names they are, by one function, wherever a request
//! names a shop: the install, the OAuth callback and the webhook headers. A hostile domain gets
//! 400 on each, causes no outbound request (the app's platform origin is a server that counts
//! connections) and writes nothing. A signed webhook body that names its shop must name the
//! header's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lifecycle::platforms::shopify::signature::{sign_body, sign_query};
use serde_json::json;

use crate::both_backends;
use crate::common::*;

/// A server that counts the connections made to it and answers each with a 500.
async fn counting_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = socket
                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (url, count)
}

/// The hostile table: each is refused wherever a shop is named.
fn hostile() -> Vec<String> {
    let mut list: Vec<String> = [
        "evil.com",
        "a.myshopify.com.evil.com",
        "A.MYSHOPIFY.COM.EVIL.COM",
        "../x.myshopify.com",
        "x.myshopify.com/../../evil",
        "x.myshopify.com:443@evil",
        "x.myshopify.com@evil.com",
        "evil.com#.myshopify.com",
        "evil.com?.myshopify.com",
        "x.myshopify.com:443",
        "x.myshopify.com.",
        "x.y.myshopify.com",
        ".myshopify.com",
        "myshopify.com",
        "-x.myshopify.com",
        "x_y.myshopify.com",
        "x .myshopify.com",
        " ",
        "",
        "%2e%2e.myshopify.com",
        "x%2emyshopify.com",
        "https://x.myshopify.com",
        "//evil.com/x.myshopify.com",
        "x.myshopify.co",
        "x.myshopify.com.evil",
        // Unicode: Cyrillic look-alikes, the Kelvin sign and the long s (both case-fold to
        // ASCII letters), a full-width dot.
        "ѕhop.myshopify.com",
        "\u{212A}elvin.myshopify.com",
        "\u{017F}hop.myshopify.com",
        "x\u{FF0E}myshopify.com",
        "bücher.myshopify.com",
        "x.myshopify.com\u{0}.evil.com",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    // A label over 63 characters, and a name over 253.
    list.push(format!("{}.myshopify.com", "a".repeat(64)));
    list.push(format!(
        "{}.myshopify.com",
        vec!["b".repeat(63); 4].join(".")
    ));
    list
}

fn signed_url(base: &str, path: &str, params: &[(&str, String)]) -> String {
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let hmac = sign_query(CLIENT_SECRET, &pairs);
    let mut url = url::Url::parse(&format!("{base}{path}")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        q.append_pair("hmac", &hmac);
    }
    url.to_string()
}

async fn rows(db: &lifecycle::store::Db, table: &str) -> usize {
    query_all(db, &format!("SELECT 1 AS one FROM {table}"), vec![])
        .await
        .len()
}

async fn hostile_shop_domains_get_400_and_no_outbound_request(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let (origin, outbound) = counting_server().await;
    let mut config = test_config(&db);
    config.platforms.shopify.api_origin = Some(origin.clone());
    let app = spawn_with(launch(config)).await;
    let base = app.url();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let now = chrono::Utc::now().timestamp().to_string();

    // A valid shop, in upper case, is taken (and its install makes no outbound request either:
    // the merchant is sent to the authorize page).
    let ok = http
        .get(signed_url(
            &base,
            "/auth/shopify/install",
            &[
                ("shop", "Valid-Shop.MyShopify.com".into()),
                ("timestamp", now.clone()),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 302, "a valid shop installs");
    assert!(
        location(&ok).starts_with(&format!(
            "{origin}/valid-shop.myshopify.com/admin/oauth/authorize?"
        )),
        "{}",
        location(&ok)
    );
    let nonces = rows(&app.state.db, "oauth_nonces").await;
    assert_eq!(nonces, 1, "sanity: the valid install stored its nonce");

    for shop in hostile() {
        let install = signed_url(
            &base,
            "/auth/shopify/install",
            &[("shop", shop.clone()), ("timestamp", now.clone())],
        );
        let callback = signed_url(
            &base,
            "/auth/shopify/callback",
            &[
                ("code", "0907a61c0c8d55e99db179b68161bc00".into()),
                ("shop", shop.clone()),
                ("state", "n0nce".into()),
                ("timestamp", now.clone()),
            ],
        );
        for (route, url) in [("install", install), ("callback", callback)] {
            let r = http
                .get(&url)
                .header("Cookie", "lifecycle_oauth_state=x")
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            assert_eq!(status, 400, "{route} with shop {shop:?}: {body}");
            assert!(
                body.contains("`shop`"),
                "{route} with {shop:?}: a clear reason, got {body}"
            );
        }

        // The webhook header, on a correctly signed body. A value HTTP cannot carry in a
        // header (a NUL) is not sent.
        let Ok(value) = reqwest::header::HeaderValue::from_bytes(shop.as_bytes()) else {
            continue;
        };
        let body = br#"{"id":1,"email":"a@example.com","updated_at":"2026-03-01T00:00:00Z"}"#;
        let r = http
            .post(format!("{base}/webhooks/shopify"))
            .header("X-Shopify-Topic", "customers/update")
            .header("X-Shopify-Shop-Domain", value)
            .header("X-Shopify-Webhook-Id", format!("hostile-{}", shop.len()))
            .header("X-Shopify-API-Version", "2026-07")
            .header("X-Shopify-Hmac-Sha256", sign_body(CLIENT_SECRET, body))
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 400, "webhook with shop header {shop:?}: {text}");
        assert!(text.contains("X-Shopify-Shop-Domain"), "{shop:?}: {text}");
    }

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        outbound.load(Ordering::SeqCst),
        0,
        "no request left the app for a hostile shop"
    );
    assert_eq!(
        rows(&app.state.db, "oauth_nonces").await,
        nonces,
        "no nonce stored"
    );
    assert_eq!(
        rows(&app.state.db, "webhook_inbox").await,
        0,
        "no webhook stored"
    );
    assert_eq!(rows(&app.state.db, "shops").await, 0, "no shop created");
    app.shutdown().await;
}
both_backends!(hostile_shop_domains_get_400_and_no_outbound_request);

/// Posts a signed Shopify webhook for `header_shop`.
async fn post_signed(
    env: &Env,
    topic: &str,
    header_shop: &str,
    body: &[u8],
    id: &str,
) -> (u16, String) {
    post_shopify_webhook(env, topic, header_shop, body, id, &[]).await
}

async fn inbox_rows(env: &Env) -> usize {
    query_all(&env.app.state.db, "SELECT id FROM webhook_inbox", vec![])
        .await
        .len()
}

/// A signed body that names another shop than the header (a delivery of one shop replayed
/// under another's header) is refused with the reason, and nothing is stored or applied.
async fn webhook_body_must_name_the_header_shop(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    env.install().await;
    let shop = env.installed_shop().await;
    let other = "another-shop.myshopify.com";
    let cases = [
        (
            "app/uninstalled",
            json!({"id": 1, "name": "Other", "domain": "other.example.com", "myshopify_domain": other}),
        ),
        ("shop/redact", json!({"shop_id": 1, "shop_domain": other})),
        (
            "customers/redact",
            json!({"shop_id": 1, "shop_domain": other, "customer": {"id": 1, "email": "a@example.com"}, "orders_to_redact": []}),
        ),
        (
            "customers/data_request",
            json!({"shop_id": 1, "shop_domain": "evil.com", "customer": {"id": 1}, "orders_requested": [], "data_request": {"id": 9}}),
        ),
    ];
    let before = inbox_rows(&env).await;
    for (i, (topic, body)) in cases.iter().enumerate() {
        let body = body.to_string().into_bytes();
        let (status, text) =
            post_signed(&env, topic, &env.shop, &body, &format!("mismatch-{i}")).await;
        assert_eq!(status, 400, "{topic}: {text}");
        assert!(
            text.contains("names another shop than X-Shopify-Shop-Domain"),
            "{topic}: a clear reason, got {text}"
        );
    }
    assert_eq!(inbox_rows(&env).await, before, "nothing is stored");
    // The shop the header named is untouched: still installed, with its token.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = env.installed_shop().await;
    assert_eq!(after.status, "installed");
    assert!(after.credentials.is_some());

    // The same payloads naming the header's own shop are taken.
    let (status, text) = post_signed(
        &env,
        "customers/data_request",
        &env.shop,
        json!({"shop_id": 1, "shop_domain": env.shop, "customer": {"id": 1}, "orders_requested": [], "data_request": {"id": 9}})
            .to_string()
            .as_bytes(),
        "match-1",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(inbox_rows(&env).await, before + 1);
    assert_eq!(after.id, shop.id);
    env.shutdown().await;
}
both_backends!(webhook_body_must_name_the_header_shop);
