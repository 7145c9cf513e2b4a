//! Installing into the sandbox shop: the OAuth flow, re-install, uninstall, managed install by
//! token exchange, token refresh, and the install requests that must be refused.

use lifecycle::platforms::Credentials;
use lifecycle::platforms::shopify::signature::sign_query;
use lifecycle::store::jobs::NewJob;
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::both_backends;
use crate::common::*;

async fn subscriptions(env: &Env) -> Vec<serde_json::Value> {
    env.sandbox_get(&format!("/_sandbox/shops/{}/webhooks", env.shop))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn oauth_install_stores_an_encrypted_token_and_registers_webhooks(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    let done = env.install().await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), format!("/admin?shop={}", env.shop));
    assert!(
        done.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("lifecycle_session="))
    );

    let shop = env.installed_shop().await;
    assert_eq!(shop.status, "installed");
    let stored = shop.credentials.clone().unwrap();
    let credentials = Credentials::open(&env.app.state.cipher, &stored, &env.shop).unwrap();
    let token = credentials.access_token;
    assert!(!stored.contains(&token), "stored encrypted");
    assert!(
        credentials.refresh_token.is_some() && shop.token_expires_at.is_some(),
        "expiring offline token"
    );
    assert!(shop.scopes.contains("write_customers"));

    // The manifest's app-specific subscriptions deliver every topic; an API subscription of
    // any of them would deliver each event twice.
    let subs = subscriptions(&env).await;
    let topics = shopify(&env.app.state).manifest.api_topics();
    assert!(topics.is_empty(), "{topics:?}");
    assert_eq!(subs.len(), 0, "no API subscription: {subs:?}");
    // Only the backfill's own row: once it is done it enqueues the segment run, which may
    // already have happened on a fast machine.
    let db = &env.app.state.db;
    let backfills = db
        .query_one_raw(lifecycle::store::stmt(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM jobs WHERE shop_id = ? AND kind = ?",
            vec![shop.id.into(), lifecycle::triggers::kinds::BACKFILL.into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(backfills, 1, "the backfill is enqueued once");

    // An API subscription of a manifest topic at our address (as earlier versions made them)
    // is removed by the next install; one elsewhere is not ours to remove.
    let callback = format!("{}/webhooks/shopify", env.app.url());
    for (topic, url) in [
        ("CUSTOMERS_UPDATE", callback.as_str()),
        ("CUSTOMERS_UPDATE", "https://elsewhere.example/hooks"),
    ] {
        subscribe_via_api(&env, &token, topic, url).await;
    }
    assert_eq!(subscriptions(&env).await.len(), 2);

    // Re-install: a new token replaces the old one, subscriptions are not duplicated.
    let again = env.install().await;
    assert_eq!(again.status(), 302);
    let shop2 = env.installed_shop().await;
    assert_eq!(shop2.id, shop.id);
    let token2 = stored_token(&env, &shop2);
    assert_ne!(token, token2);
    let left = subscriptions(&env).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0]["callback_url"], callback.as_str(), "{left:?}");
    env.shutdown().await;
}
both_backends!(oauth_install_stores_an_encrypted_token_and_registers_webhooks);

async fn uninstall_erases_the_token_cancels_jobs_and_reinstall_works(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    env.install().await;
    let shop = env.installed_shop().await;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    lifecycle::store::jobs::enqueue(
        &env.app.state.db,
        NewJob::new("segment").shop(shop.id).run_at(later),
    )
    .await
    .unwrap();
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/trigger", env.shop),
        json!({ "topic": "app/uninstalled" }),
    )
    .await;
    let gone = eventually(15, || async {
        let s = env.installed_shop().await;
        (s.status == "uninstalled").then_some(s)
    })
    .await
    .expect("app/uninstalled is applied");
    assert!(gone.credentials.is_none(), "token erased");
    let db = &env.app.state.db;
    let queued = db
        .query_one_raw(lifecycle::store::stmt(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM jobs WHERE shop_id = ? AND state = 'queued'",
            vec![shop.id.into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(queued, 0, "the shop's queued jobs are cancelled");

    let r = env.install().await;
    assert_eq!(r.status(), 302);
    let back = env.installed_shop().await;
    assert_eq!(back.status, "installed");
    assert!(back.credentials.is_some());

    // A late retry of the first uninstall (and of a shop erasure), triggered before the
    // reinstall, changes nothing; one triggered after it uninstalls.
    let before_reinstall = (back.installed_at.unwrap() - chrono::Duration::seconds(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let customers = |db: &lifecycle::store::Db| {
        let db = db.clone();
        async move {
            query_all(
                &db,
                "SELECT id FROM customers WHERE shop_id = ?",
                vec![shop.id.into()],
            )
            .await
            .len()
        }
    };
    eventually(120, || async {
        (pending_work(db, shop.id).await? == 0).then_some(())
    })
    .await
    .expect("the reinstall's backfill settles");
    let kept = customers(db).await;
    assert!(kept > 0);
    for (topic, body) in [
        (
            "app/uninstalled",
            json!({"id": 1, "myshopify_domain": env.shop}),
        ),
        (
            "shop/redact",
            json!({"shop_id": 1, "shop_domain": env.shop}),
        ),
    ] {
        let (status, text) = post_shopify_webhook(
            &env,
            topic,
            &env.shop,
            body.to_string().as_bytes(),
            &format!("late-{topic}"),
            &[("X-Shopify-Triggered-At", before_reinstall.clone())],
        )
        .await;
        assert_eq!(status, 200, "{text}");
    }
    eventually(30, || async {
        (pending_work(db, shop.id).await? == 0).then_some(())
    })
    .await
    .expect("the late deliveries are applied");
    let still = env.installed_shop().await;
    assert_eq!(
        still.status, "installed",
        "a late uninstall changes nothing"
    );
    assert!(still.credentials.is_some());
    assert_eq!(customers(db).await, kept, "a late erasure erases nothing");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (status, _) = post_shopify_webhook(
        &env,
        "app/uninstalled",
        &env.shop,
        json!({"id": 1, "myshopify_domain": env.shop})
            .to_string()
            .as_bytes(),
        "current-uninstall",
        &[("X-Shopify-Triggered-At", now)],
    )
    .await;
    assert_eq!(status, 200);
    eventually(15, || async {
        (env.installed_shop().await.status == "uninstalled").then_some(())
    })
    .await
    .expect("an uninstall after the reinstall is applied");
    env.shutdown().await;
}
both_backends!(uninstall_erases_the_token_cancels_jobs_and_reinstall_works);

/// A request that must be refused with 400 before the app makes any outbound request.
async fn assert_refused(env: &Env, url: &str, cookie: Option<&str>, why: &str) {
    // The sandbox may log a request from the previous step just after answering it.
    let before = settled_request_count(env).await;
    let mut req = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 400, "{why}: {body}");
    assert!(body.contains("error"), "{why}: a clear message, got {body}");
    let after = env
        .sandbox_get(&format!("/_sandbox/shops/{}/requests", env.shop))
        .await
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(before, after, "{why}: no outbound request");
}

async fn request_count(env: &Env) -> usize {
    env.sandbox_get(&format!("/_sandbox/shops/{}/requests", env.shop))
        .await
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
}

/// The request count once it has stopped changing for a moment.
async fn settled_request_count(env: &Env) -> usize {
    let mut last = request_count(env).await;
    // Bounded: a log that never settles (the app polling in a loop) is a failure, not a hang.
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = request_count(env).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the sandbox's request log kept growing for 30 s: {last} requests");
}

pub(crate) fn signed(env: &Env, path: &str, params: &[(&str, String)], secret: &str) -> String {
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let hmac = sign_query(secret, &pairs);
    let mut url = url::Url::parse(&format!("{}{path}", env.app.url())).unwrap();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        q.append_pair("hmac", &hmac);
    }
    url.to_string()
}

async fn hostile_install_and_callback_requests_are_refused(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    let now = chrono::Utc::now().timestamp().to_string();
    let good = |shop: &str| vec![("shop", shop.to_string()), ("timestamp", now.clone())];
    for shop in [
        "evil.com",
        "x.myshopify.com.evil.com",
        "x.myshopify.com@evil.com",
        "-x.myshopify.com",
        "x.myshopify.com:8443",
        "x.myshopify.com/admin",
    ] {
        assert_refused(
            &env,
            &signed(&env, "/auth/shopify/install", &good(shop), CLIENT_SECRET),
            None,
            shop,
        )
        .await;
    }
    assert_refused(
        &env,
        &signed(
            &env,
            "/auth/shopify/install",
            &good(&env.shop),
            "wrong-secret",
        ),
        None,
        "bad HMAC",
    )
    .await;
    let stale = vec![
        ("shop", env.shop.clone()),
        (
            "timestamp",
            (chrono::Utc::now().timestamp() - 3600).to_string(),
        ),
    ];
    assert_refused(
        &env,
        &signed(&env, "/auth/shopify/install", &stale, CLIENT_SECRET),
        None,
        "stale timestamp",
    )
    .await;
    let no_hmac = format!(
        "{}/auth/shopify/install?shop={}&timestamp={now}",
        env.app.url(),
        env.shop
    );
    assert_refused(&env, &no_hmac, None, "missing HMAC").await;

    // A real callback, replayed without the cookie, with another cookie, and a second time.
    let install = env
        .sandbox_get(&format!("/_sandbox/shops/{}/install_url", env.shop))
        .await["install_url"]
        .as_str()
        .unwrap()
        .to_string();
    let r = env.browser.get(&install).send().await.unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = env.browser.get(location(&r)).send().await.unwrap();
    let callback = location(&r);
    assert_refused(&env, &callback, None, "missing state cookie").await;
    assert_refused(
        &env,
        &callback,
        Some("lifecycle_oauth_state=forged.value"),
        "forged state cookie",
    )
    .await;
    // Another install's (valid) cookie does not match this callback's state.
    let other = env.http.get(&install).send().await;
    drop(other);
    let r2 = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&install)
        .send()
        .await
        .unwrap();
    let other_cookie = r2
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_refused(
        &env,
        &callback,
        Some(&other_cookie),
        "state of another install",
    )
    .await;
    // The right cookie works once...
    let ok = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&callback)
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 302, "{}", ok.text().await.unwrap());
    // The install's own background work (backfill, first run, push) calls the shop with pauses
    // longer than a settled request log's; it is not the refused callbacks'.
    let shop = env.installed_shop().await;
    wait_work_done(&env.app.state.db, shop.id).await;
    // ...and never twice.
    assert_refused(&env, &callback, Some(&cookie), "reused nonce").await;
    let tampered = callback.replace("code=", "code=x");
    assert_refused(&env, &tampered, Some(&cookie), "tampered callback").await;
    env.shutdown().await;
}
both_backends!(hostile_install_and_callback_requests_are_refused);

async fn managed_install_by_token_exchange_and_session_token_checks(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    let st = env
        .sandbox_post(
            &format!("/_sandbox/shops/{}/session_token", env.shop),
            json!({}),
        )
        .await;
    let token = st["token"].as_str().unwrap();
    let url = format!("{}/auth/shopify/token-exchange", env.app.url());
    let r = env.http.post(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let shop = env.installed_shop().await;
    assert_eq!(shop.status, "installed");
    assert!(!stored_token(&env, &shop).is_empty());

    let r = env.http.post(&url).send().await.unwrap();
    assert_eq!(r.status(), 401, "missing token");
    let forged = forge_session_token(&env.shop, CLIENT_ID, "not-the-secret", 60);
    assert_eq!(
        env.http
            .post(&url)
            .bearer_auth(forged)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let expired = forge_session_token(&env.shop, CLIENT_ID, CLIENT_SECRET, -60);
    assert_eq!(
        env.http
            .post(&url)
            .bearer_auth(expired)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let other_app = forge_session_token(&env.shop, "another-app", CLIENT_SECRET, 60);
    assert_eq!(
        env.http
            .post(&url)
            .bearer_auth(other_app)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    env.shutdown().await;
}
both_backends!(managed_install_by_token_exchange_and_session_token_checks);

pub fn forge_session_token(shop: &str, aud: &str, secret: &str, exp_in: i64) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": format!("https://{shop}/admin"), "dest": format!("https://{shop}"), "aud": aud, "sub": "42",
        "exp": now + exp_in, "nbf": now - 5 + exp_in.min(0), "iat": now, "jti": "test-jti", "sid": "test-sid"
    });
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// An expiring token is refreshed before use, once, however many callers need it at once.
async fn expiring_token_is_refreshed_once(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    env.install().await;
    let shop = env.installed_shop().await;
    let old = stored_token(&env, &shop);
    let db = &env.app.state.db;
    db.execute_raw(lifecycle::store::stmt(
        db.get_database_backend(),
        "UPDATE shops SET token_expires_at = ? WHERE id = ?",
        vec![
            (chrono::Utc::now() + chrono::Duration::seconds(30)).into(),
            shop.id.into(),
        ],
    ))
    .await
    .unwrap();
    let state = env.app.state.clone();
    let clients = futures_util::future::join_all((0..5).map(|_| {
        let state = state.clone();
        async move {
            lifecycle::platforms::shopify::auth::client_for(shopify(&state), shop.id)
                .await
                .map(|c| c.token())
        }
    }))
    .await;
    let tokens: Vec<String> = clients
        .into_iter()
        .map(|c| c.expect("client after refresh"))
        .collect();
    // One refresh request reached the shop: five concurrent callers shared it (the sandbox,
    // like Shopify, answers a repeated refresh within a grace window with the same grant, so
    // equal tokens alone would not show it).
    let refreshes = env
        .sandbox_get(&format!("/_sandbox/shops/{}/requests", env.shop))
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "token" && r["root_fields"][0] == "refresh_token")
        .count();
    assert_eq!(refreshes, 1, "refreshed once");
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "every caller got the one refreshed token"
    );
    assert_ne!(tokens[0], old);
    let refreshed = env.installed_shop().await;
    assert!(
        refreshed.token_expires_at.unwrap() > chrono::Utc::now() + chrono::Duration::minutes(30)
    );
    // The new token works against the API.
    let c = lifecycle::platforms::shopify::auth::client_for(shopify(&state), shop.id)
        .await
        .unwrap();
    let r = c.run("{ shop { name } }", json!({}), 1.0).await.unwrap();
    assert!(r.data["shop"]["name"].is_string());
    env.shutdown().await;
}
both_backends!(expiring_token_is_refreshed_once);

/// The app's Shopify platform.
pub(crate) fn shopify(
    state: &lifecycle::state::AppState,
) -> &lifecycle::platforms::shopify::Shopify {
    state
        .platforms
        .find::<lifecycle::platforms::shopify::Shopify>()
        .expect("shopify is registered")
}

/// The access token the app keeps for the shop, opened.
pub(crate) fn stored_token(env: &Env, shop: &lifecycle::store::entities::shop::Model) -> String {
    Credentials::open(
        &env.app.state.cipher,
        shop.credentials.as_deref().expect("credentials"),
        &shop.domain,
    )
    .expect("credentials open")
    .access_token
}
