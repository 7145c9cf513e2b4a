//! Installing into an Ecwid store of the sandbox, end to end: the manual install through the
//! authorize page and the App Market's redirect, the callbacks that must be refused (too few
//! scopes, a replayed or unknown code, hostile parameters), the uninstall and reinstall, and
//! the privacy and deletion events Ecwid sends.

use std::collections::{BTreeSet, HashMap};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use lifecycle::platforms::Credentials;
use lifecycle::store::jobs::NewJob;
use lifecycle::triggers::kinds;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::both_backends;
use crate::common::*;

/// What Lifecycle must ask an Ecwid store for (written out here, not taken from the app, so a
/// change of the app's request is a deliberate one).
const EXPECTED_SCOPES: [&str; 7] = [
    "read_store_profile",
    "read_customers",
    "update_customers",
    "create_customers",
    "read_orders",
    "create_discount_coupons",
    "read_discount_coupons",
];

async fn ecwid_env(backend: Backend) -> Option<Env> {
    env_on(backend, Platform::Ecwid).await
}

async fn one_number(env: &Env, sql: &str, values: Vec<sea_orm::Value>) -> i64 {
    query_all(&env.app.state.db, sql, values).await[0]
        .try_get::<i64>("", "n")
        .unwrap()
}

async fn shop_rows(env: &Env) -> i64 {
    one_number(env, "SELECT COUNT(*) AS n FROM shops", vec![]).await
}

async fn job_rows(env: &Env) -> i64 {
    one_number(env, "SELECT COUNT(*) AS n FROM jobs", vec![]).await
}

async fn jobs_of_kind(env: &Env, shop_id: i64, kind: &str) -> i64 {
    one_number(
        env,
        "SELECT COUNT(*) AS n FROM jobs WHERE shop_id = ? AND kind = ?",
        vec![shop_id.into(), kind.into()],
    )
    .await
}

/// The store's request log: its API calls and (kind `token`) the code exchanges.
async fn request_log(env: &Env) -> Vec<Value> {
    env.sandbox_get(&format!("/_sandbox/shops/{}/requests", env.shop))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The number of requests the store has seen, once it has stopped changing for a moment.
async fn settled_request_count(env: &Env) -> usize {
    let mut last = request_log(env).await.len();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = request_log(env).await.len();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// A browser of its own: no cookies, no redirects followed.
fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn callback_url(env: &Env, query: &str) -> String {
    format!("{}/auth/ecwid/callback?{query}", env.app.url())
}

/// A fresh App Market code for the store (the sandbox's install redirect).
async fn app_market_code(env: &Env) -> String {
    let url = env
        .sandbox_get(&format!("/_sandbox/shops/{}/install_url", env.shop))
        .await["install_url"]
        .as_str()
        .unwrap()
        .to_string();
    url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("the install URL carries a code")
}

/// The plain token appears nowhere in the database: the SQLite file (and its WAL) byte for
/// byte, or every row of every PostgreSQL table as text.
async fn assert_token_not_stored(env: &Env, token: &str) {
    assert!(token.len() >= 16, "a real token: {token}");
    if let Some(file) = &env.db.sqlite_file {
        for suffix in ["", "-wal"] {
            let path = format!("{}{suffix}", file.display());
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "the plain token is in {path}"
            );
        }
        return;
    }
    let tables = query_all(
        &env.app.state.db,
        "SELECT table_name AS t FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        vec![],
    )
    .await;
    assert!(tables.len() > 5, "the schema's tables are listed");
    for t in tables {
        let table: String = t.try_get("", "t").unwrap();
        let n = one_number(
            env,
            &format!("SELECT COUNT(*) AS n FROM {table} x WHERE CAST(x AS TEXT) LIKE ?"),
            vec![format!("%{token}%").into()],
        )
        .await;
        assert_eq!(n, 0, "the plain token is in table {table}");
    }
}

/// The store is installed as the callback must leave it: one row keyed by the store id, the
/// granted scopes, the token sealed and not stored in plain, one backfill that mirrors the
/// store's customers. Returns the token.
async fn assert_installed_and_backfilled(env: &Env) -> String {
    let shop = env.installed_shop().await;
    assert_eq!(shop.platform, "ecwid");
    assert_eq!(shop.domain, env.shop, "keyed by the store id");
    assert_eq!(shop.domain.parse::<u64>().ok(), Some(1001));
    assert_eq!(shop.status, "installed");
    assert!(
        shop.token_expires_at.is_none(),
        "Ecwid tokens do not expire"
    );
    let scopes: BTreeSet<&str> = shop.scopes.split_whitespace().collect();
    assert_eq!(scopes, EXPECTED_SCOPES.into_iter().collect::<BTreeSet<_>>());
    let sealed = shop.credentials.clone().expect("credentials");
    let token = Credentials::open(&env.app.state.cipher, &sealed, &shop.domain)
        .expect("the credentials open with the app's key and the store id")
        .access_token;
    assert!(
        token.starts_with("secure_sbx_"),
        "the store's token: {token}"
    );
    assert!(!sealed.contains(&token), "sealed");
    assert_eq!(shop_rows(env).await, 1, "one shop row");
    let backfills = jobs_of_kind(env, shop.id, kinds::BACKFILL).await;
    assert!(backfills >= 1, "the backfill is enqueued");
    wait_job_done(&env.app.state.db, shop.id, kinds::BACKFILL).await;
    let theirs = env
        .sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await
        .as_array()
        .unwrap()
        .len() as i64;
    assert!(theirs > 0);
    assert_eq!(
        one_number(
            env,
            "SELECT COUNT(*) AS n FROM customers WHERE shop_id = ? AND deleted_at IS NULL",
            vec![shop.id.into()]
        )
        .await,
        theirs,
        "the backfill read every customer of the store"
    );
    assert_token_not_stored(env, &token).await;
    token
}

async fn manual_install_goes_through_the_authorize_page(backend: Backend) {
    let Some(env) = ecwid_env(backend).await else {
        return;
    };
    let r = env
        .browser
        .get(format!("{}/auth/ecwid/install", env.app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let to = url::Url::parse(&location(&r)).unwrap();
    let sandbox = url::Url::parse(&env.sandbox.base_url()).unwrap();
    assert_eq!(
        to.origin(),
        sandbox.origin(),
        "to the platform's OAuth host"
    );
    assert_eq!(to.path(), "/api/oauth/authorize");
    let q: HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(
        q.len(),
        4,
        "client_id, redirect_uri, response_type, scope: {q:?}"
    );
    assert_eq!(q["client_id"], ECWID_CLIENT_ID);
    assert_eq!(
        q["redirect_uri"],
        format!(
            "{}/auth/ecwid/callback",
            env.config.app_url.as_deref().unwrap()
        )
    );
    assert_eq!(q["response_type"], "code");
    let asked: BTreeSet<&str> = q["scope"].split(' ').collect();
    assert_eq!(
        asked,
        EXPECTED_SCOPES.into_iter().collect::<BTreeSet<_>>(),
        "space-separated scopes"
    );
    // Nothing is stored before the merchant comes back.
    assert_eq!(shop_rows(&env).await, 0);

    // The authorize page approves and sends the merchant back with a code.
    let r = env.browser.get(to).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let callback = location(&r);
    assert!(
        callback.starts_with(&format!("{}/auth/ecwid/callback?code=", env.app.url())),
        "{callback}"
    );
    let done = env.browser.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), format!("/admin?shop={}", env.shop));
    assert!(!session_cookie(&done).is_empty());
    assert_installed_and_backfilled(&env).await;
    let shop = env.installed_shop().await;
    assert_eq!(
        jobs_of_kind(&env, shop.id, kinds::BACKFILL).await,
        1,
        "one backfill"
    );
    env.shutdown().await;
}
both_backends!(manual_install_goes_through_the_authorize_page);

async fn app_market_install_stores_the_store_and_backfills(backend: Backend) {
    let Some(env) = ecwid_env(backend).await else {
        return;
    };
    let done = env.install().await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), format!("/admin?shop={}", env.shop));
    let token = assert_installed_and_backfilled(&env).await;
    let shop = env.installed_shop().await;
    assert_eq!(jobs_of_kind(&env, shop.id, kinds::BACKFILL).await, 1);
    // The token the app keeps is the one the store issued: the backfill used it.
    assert!(
        request_log(&env)
            .await
            .iter()
            .any(|r| r["kind"] == "rest" && r["status"] == 200),
        "the store answered the app's API calls"
    );
    // A reinstall replaces the token in the same row.
    assert_eq!(env.install().await.status(), 302);
    let again = env.installed_shop().await;
    assert_eq!(again.id, shop.id);
    let token2 = Credentials::open(
        &env.app.state.cipher,
        again.credentials.as_deref().unwrap(),
        &again.domain,
    )
    .unwrap()
    .access_token;
    assert_ne!(token, token2);
    assert_eq!(shop_rows(&env).await, 1);
    assert_token_not_stored(&env, &token2).await;
    env.shutdown().await;
}
both_backends!(app_market_install_stores_the_store_and_backfills);

async fn a_token_with_too_few_scopes_is_refused(backend: Backend) {
    let Some(env) = ecwid_env(backend).await else {
        return;
    };
    // The store grants less than Lifecycle needs (no customer groups, no coupons).
    env.sandbox_post(
        "/_sandbox/app",
        json!({"ecwid_scopes": "read_store_profile read_customers read_orders"}),
    )
    .await;
    let r = env.install().await;
    assert_eq!(r.status(), 403);
    assert!(
        r.headers().get("set-cookie").is_none(),
        "no session for a refused install"
    );
    let body: Value = r.json().await.unwrap();
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("update_customers") && message.contains("create_discount_coupons"),
        "the message names what is missing: {body}"
    );
    assert_eq!(shop_rows(&env).await, 0, "no shop stored");
    assert_eq!(job_rows(&env).await, 0, "no job enqueued");

    // With the scopes granted, the same install works.
    env.sandbox_post(
        "/_sandbox/app",
        json!({"ecwid_scopes": EXPECTED_SCOPES.join(" ")}),
    )
    .await;
    assert_eq!(env.install().await.status(), 302);
    assert_eq!(env.installed_shop().await.status, "installed");
    env.shutdown().await;
}
both_backends!(a_token_with_too_few_scopes_is_refused);

async fn a_replayed_or_unknown_code_is_refused(backend: Backend) {
    let Some(env) = ecwid_env(backend).await else {
        return;
    };
    let http = bare_client();
    // A code the store never issued: the exchange is tried, refused, and logged by the store
    // (which is what lets the other tests see that no exchange was tried).
    let before = settled_request_count(&env).await;
    let r = http
        .get(callback_url(&env, "code=0123456789abcdef0123456789abcdef"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("set-cookie").is_none());
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string(), "a clear message: {body}");
    assert_eq!(shop_rows(&env).await, 0, "nothing stored");
    assert_eq!(job_rows(&env).await, 0);
    let log = request_log(&env).await;
    assert_eq!(log.len(), before + 1, "one exchange: {log:?}");
    assert_eq!(log[before]["kind"], "token");
    assert_eq!(log[before]["status"], 400);

    // A real code works once...
    let code = app_market_code(&env).await;
    let url = callback_url(&env, &format!("code={code}"));
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let shop = env.installed_shop().await;
    wait_job_done(&env.app.state.db, shop.id, kinds::BACKFILL).await;
    wait_work_done(&env.app.state.db, shop.id).await;
    let jobs = job_rows(&env).await;
    // ...and is refused when replayed, which changes nothing stored.
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("set-cookie").is_none());
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string(), "a clear message: {body}");
    let after = env.installed_shop().await;
    assert_eq!(
        after.credentials, shop.credentials,
        "the token is unchanged"
    );
    assert_eq!(after.installed_at, shop.installed_at);
    assert_eq!(after.status, "installed");
    assert_eq!(shop_rows(&env).await, 1);
    assert_eq!(job_rows(&env).await, jobs, "no job enqueued");
    assert_eq!(jobs_of_kind(&env, shop.id, kinds::BACKFILL).await, 1);
    env.shutdown().await;
}
both_backends!(a_replayed_or_unknown_code_is_refused);

async fn hostile_callback_parameters_are_refused(backend: Backend) {
    let Some(env) = ecwid_env(backend).await else {
        return;
    };
    let http = bare_client();
    let code = app_market_code(&env).await;
    let long = "a".repeat(513);
    let huge = "9".repeat(4000);
    let cases: Vec<(String, u16, &str)> = vec![
        (String::new(), 400, "no parameters"),
        ("code=".into(), 400, "an empty code"),
        ("store_id=garbage".into(), 400, "a store id and no code"),
        (
            "store_id=-1&code=".into(),
            400,
            "a negative store id and an empty code",
        ),
        (format!("code={long}"), 400, "an oversized code"),
        (
            format!("code={huge}&store_id={huge}"),
            400,
            "oversized code and store id",
        ),
        ("error=access_denied".into(), 403, "the merchant declined"),
        (
            format!("error=access_denied&code={code}"),
            403,
            "declined, with a code",
        ),
    ];
    for (query, expected, why) in cases {
        let before = settled_request_count(&env).await;
        let r = http.get(callback_url(&env, &query)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), expected, "{why}");
        assert!(r.headers().get("set-cookie").is_none(), "{why}: no session");
        let body = r.text().await.unwrap();
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("{why}: a JSON error, got {body}"));
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{why}: a clear message, got {body}"
        );
        assert_eq!(shop_rows(&env).await, 0, "{why}: nothing stored");
        assert_eq!(job_rows(&env).await, 0, "{why}: nothing enqueued");
        assert_eq!(
            settled_request_count(&env).await,
            before,
            "{why}: no outbound request"
        );
    }
    // The declined callback did not spend the code, and a store id in the URL is not trusted:
    // the store installed is the one the code was issued to.
    let r = http
        .get(callback_url(&env, &format!("code={code}&store_id=999999")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    assert_eq!(env.installed_shop().await.domain, "1001");
    assert!(
        lifecycle::store::shops::find(&env.app.state.db, "ecwid", "999999")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(shop_rows(&env).await, 1);
    env.shutdown().await;
}
both_backends!(hostile_callback_parameters_are_refused);

/// An Ecwid webhook for the store, signed as Ecwid signs (computed here from the recipe).
async fn post_ecwid_webhook(env: &Env, kind: &str, entity: Value, data: Value) -> u16 {
    let id = uuid::Uuid::new_v4().to_string();
    let created = chrono::Utc::now().timestamp();
    let body = json!({"eventId": id, "eventCreated": created, "storeId": env.shop.parse::<u64>().unwrap(),
                      "entityId": entity, "eventType": kind, "data": data});
    let mut m = Hmac::<Sha256>::new_from_slice(ECWID_CLIENT_SECRET.as_bytes()).unwrap();
    m.update(format!("{created}.{id}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
    env.http
        .post(format!("{}/webhooks/ecwid?eventtype={kind}", env.app.url()))
        .header("Content-Type", "application/json")
        .header("X-Ecwid-Webhook-Signature", signature)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn uninstall_erases_credentials_cancels_jobs_and_reinstall_backfills(backend: Backend) {
    let Some(env) = ecwid_env(backend).await else {
        return;
    };
    assert_eq!(env.install().await.status(), 302);
    let shop = env.installed_shop().await;
    let old_token = assert_installed_and_backfilled(&env).await;
    let db = &env.app.state.db;
    wait_work_done(db, shop.id).await;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    lifecycle::store::jobs::enqueue(db, NewJob::new("segment").shop(shop.id).run_at(later))
        .await
        .unwrap();
    let orders_before = one_number(
        &env,
        "SELECT COUNT(*) AS n FROM orders WHERE shop_id = ?",
        vec![shop.id.into()],
    )
    .await;

    env.sandbox_post(
        &format!("/_sandbox/shops/{}/trigger", env.shop),
        json!({ "topic": "application.uninstalled" }),
    )
    .await;
    let gone = eventually(30, || async {
        let s = env.installed_shop().await;
        (s.status == "uninstalled").then_some(s)
    })
    .await
    .expect("application.uninstalled is applied");
    assert!(gone.credentials.is_none(), "credentials erased");
    let queued = one_number(
        &env,
        "SELECT COUNT(*) AS n FROM jobs WHERE shop_id = ? AND state = 'queued'",
        vec![shop.id.into()],
    )
    .await;
    assert_eq!(queued, 0, "the store's queued jobs are cancelled");
    let cancelled = one_number(
        &env,
        "SELECT COUNT(*) AS n FROM jobs WHERE shop_id = ? AND kind = 'segment' AND state = 'cancelled'",
        vec![shop.id.into()],
    )
    .await;
    assert!(cancelled >= 1, "the future segment run was cancelled");
    assert_token_not_stored(&env, &old_token).await;

    // Afterwards: a signed order webhook and a fetch or sync of the store do nothing.
    let before = settled_request_count(&env).await;
    let fetches = jobs_of_kind(&env, shop.id, kinds::FETCH).await;
    let order_id = env
        .sandbox_get(&format!("/_sandbox/shops/{}/orders", env.shop))
        .await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = post_ecwid_webhook(
        &env,
        "order.updated",
        json!(order_id),
        json!({"orderId": order_id}),
    )
    .await;
    assert!(status == 200, "the delivery is acknowledged: {status}");
    eventually(30, || async {
        (pending_work(db, shop.id).await? == 0).then_some(())
    })
    .await
    .expect("the delivery is handled");
    assert_eq!(
        jobs_of_kind(&env, shop.id, kinds::FETCH).await,
        fetches,
        "no fetch for an uninstalled store"
    );
    // Nothing new is queued for the store: neither a fetch nor a sync.
    let payload = serde_json::to_value(lifecycle::triggers::FetchPayload {
        resource: lifecycle::model::Resource::Orders,
        platform_id: order_id.clone(),
    })
    .unwrap();
    let refused = lifecycle::store::jobs::enqueue(
        db,
        NewJob::new(kinds::FETCH)
            .shop(shop.id)
            .payload(payload.clone()),
    )
    .await
    .unwrap();
    assert_eq!(refused, None, "no fetch job for an uninstalled store");
    let refused =
        lifecycle::store::jobs::enqueue(db, NewJob::new(kinds::INCREMENTAL).shop(shop.id))
            .await
            .unwrap();
    assert_eq!(refused, None, "no sync job for an uninstalled store");
    // A sync asked for directly fails for want of credentials.
    let r = lifecycle::sync::run(
        &env.app.state,
        shop.id,
        lifecycle::sync::Mode::Incremental,
        &|_, _| {},
    )
    .await;
    assert!(
        matches!(
            r,
            Err(lifecycle::sync::SyncError::Token(
                lifecycle::platforms::TokenError::NotInstalled(_)
            ))
        ),
        "{r:?}"
    );
    // A fetch job that was already taken when the uninstall came (so not cancelled) ends
    // without reading anything.
    let now = chrono::Utc::now();
    let backend = sea_orm::ConnectionTrait::get_database_backend(db);
    sea_orm::ConnectionTrait::execute_raw(
        db,
        lifecycle::store::stmt(
            backend,
            "INSERT INTO jobs (created_at, updated_at, kind, shop_id, payload, dedupe_key, state, \
             attempts, max_attempts, run_at, progress_done) VALUES (?, ?, ?, ?, ?, ?, 'queued', 0, 3, ?, 0)",
            vec![
                now.into(),
                now.into(),
                kinds::FETCH.into(),
                shop.id.into(),
                payload.to_string().into(),
                "late-fetch".into(),
                now.into(),
            ],
        ),
    )
    .await
    .unwrap();
    let state = eventually(30, || async {
        let r = query_all(
            db,
            "SELECT state FROM jobs WHERE dedupe_key = 'late-fetch'",
            vec![],
        )
        .await;
        let state: String = r.first()?.try_get("", "state").ok()?;
        (!matches!(state.as_str(), "queued" | "running")).then_some(state)
    })
    .await
    .expect("the late fetch runs");
    assert_eq!(state, "done", "a fetch for an uninstalled store is a no-op");
    assert_eq!(
        settled_request_count(&env).await,
        before,
        "nothing reached the store after the uninstall"
    );
    assert_eq!(
        one_number(
            &env,
            "SELECT COUNT(*) AS n FROM orders WHERE shop_id = ?",
            vec![shop.id.into()]
        )
        .await,
        orders_before
    );
    assert_eq!(env.installed_shop().await.status, "uninstalled");

    // Reinstall: a new token, a new backfill that reads the store again.
    let r = env.install().await;
    assert_eq!(r.status(), 302);
    let back = env.installed_shop().await;
    assert_eq!(back.id, shop.id);
    assert_eq!(back.status, "installed");
    let new_token = assert_installed_and_backfilled(&env).await;
    assert_ne!(new_token, old_token);
    assert_eq!(
        jobs_of_kind(&env, shop.id, kinds::BACKFILL).await,
        2,
        "the reinstall has its own backfill"
    );
    let log = request_log(&env).await;
    assert!(
        log[before..]
            .iter()
            .any(|r| r["kind"] == "rest" && r["status"] == 200),
        "the reinstall's backfill read the store"
    );
    env.shutdown().await;
}
both_backends!(uninstall_erases_credentials_cancels_jobs_and_reinstall_backfills);

async fn privacy_requests_and_deletions_are_applied(backend: Backend) {
    let Some(env) = ecwid_env(backend).await else {
        return;
    };
    assert_eq!(env.install().await.status(), 302);
    let shop = env.installed_shop().await;
    let db = &env.app.state.db;
    wait_job_done(db, shop.id, kinds::BACKFILL).await;
    wait_work_done(db, shop.id).await;
    let customers = env
        .sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await;
    let orders = env
        .sandbox_get(&format!("/_sandbox/shops/{}/orders", env.shop))
        .await;
    let orders = orders.as_array().unwrap();
    let orders_of = |c: u64| -> Vec<String> {
        orders
            .iter()
            .filter(|o| o["customer_id"].as_u64() == Some(c))
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    };
    let with_orders: Vec<u64> = customers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .filter(|c| orders_of(*c).len() >= 2)
        .collect();
    assert!(with_orders.len() >= 2, "customers with orders to work with");
    let (redacted, buyer) = (with_orders[0], with_orders[1]);
    let col = |sql: &'static str, id: String| {
        let db = db.clone();
        async move {
            query_all(&db, sql, vec![shop.id.into(), id.into()])
                .await
                .into_iter()
                .next()
        }
    };
    // Waits until the row `sql` selects by id has a `deleted_at`.
    let marked_deleted = |sql: &'static str, id: String| {
        let col = &col;
        eventually(30, move || {
            let id = id.clone();
            async move {
                let r = col(sql, id).await?;
                let at: Option<chrono::DateTime<chrono::Utc>> = r.try_get("", "deleted_at").ok()?;
                at.is_some().then_some(())
            }
        })
    };

    // A personal data removal request erases the customer's personal data and that of their
    // orders, and records the request.
    let before = col(
        "SELECT email FROM customers WHERE shop_id = ? AND platform_id = ?",
        redacted.to_string(),
    )
    .await
    .unwrap();
    assert!(
        before
            .try_get::<Option<String>>("", "email")
            .unwrap()
            .is_some(),
        "the customer has an email to erase"
    );
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/trigger", env.shop),
        json!({"topic": "customer.personalDataRemovalRequest", "customer_id": redacted}),
    )
    .await;
    eventually(30, || async {
        let r = col(
            "SELECT redacted_at, email, first_name, last_name FROM customers WHERE shop_id = ? AND platform_id = ?",
            redacted.to_string(),
        )
        .await?;
        let at: Option<chrono::DateTime<chrono::Utc>> = r.try_get("", "redacted_at").ok()?;
        let email: Option<String> = r.try_get("", "email").ok()?;
        let first: Option<String> = r.try_get("", "first_name").ok()?;
        let last: Option<String> = r.try_get("", "last_name").ok()?;
        (at.is_some() && email.is_none() && first.is_none() && last.is_none()).then_some(())
    })
    .await
    .expect("the customer's personal data is erased");
    let with_email = one_number(
        &env,
        "SELECT COUNT(*) AS n FROM orders WHERE shop_id = ? AND customer_platform_id = ? AND email IS NOT NULL",
        vec![shop.id.into(), redacted.to_string().into()],
    )
    .await;
    assert_eq!(with_email, 0, "the customer's orders keep no email");
    let kept = one_number(
        &env,
        "SELECT COUNT(*) AS n FROM orders WHERE shop_id = ? AND customer_platform_id = ?",
        vec![shop.id.into(), redacted.to_string().into()],
    )
    .await;
    assert_eq!(
        kept,
        orders_of(redacted).len() as i64,
        "their anonymous figures stay"
    );
    let recorded = one_number(
        &env,
        "SELECT COUNT(*) AS n FROM privacy_requests WHERE shop_id = ? AND kind = 'customers/redact'",
        vec![shop.id.into()],
    )
    .await;
    assert_eq!(recorded, 1, "the request is recorded");
    let other_email = col(
        "SELECT email FROM customers WHERE shop_id = ? AND platform_id = ?",
        buyer.to_string(),
    )
    .await
    .unwrap();
    assert!(
        other_email
            .try_get::<Option<String>>("", "email")
            .unwrap()
            .is_some(),
        "another customer keeps their data"
    );

    // order.deleted: that order is gone from the app, the customer's other orders stay.
    let buyer_orders = orders_of(buyer);
    let gone = &buyer_orders[0];
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/trigger", env.shop),
        json!({"topic": "order.deleted", "order_id": gone.parse::<u64>().unwrap()}),
    )
    .await;
    marked_deleted(
        "SELECT deleted_at FROM orders WHERE shop_id = ? AND platform_id = ?",
        gone.clone(),
    )
    .await
    .expect("the deleted order is marked deleted");
    let live = one_number(
        &env,
        "SELECT COUNT(*) AS n FROM orders WHERE shop_id = ? AND customer_platform_id = ? AND deleted_at IS NULL",
        vec![shop.id.into(), buyer.to_string().into()],
    )
    .await;
    assert_eq!(live, buyer_orders.len() as i64 - 1, "only that order");

    // customer.deleted: a customer without orders (Ecwid keeps those with orders).
    let created = env
        .sandbox_post(
            &format!("/_sandbox/shops/{}/customers", env.shop),
            json!({"email": "leaving@example.com", "first_name": "Ada", "last_name": "Leaving"}),
        )
        .await;
    let leaving = created["id"].as_u64().expect("the new customer's id");
    eventually(60, || async {
        col(
            "SELECT id FROM customers WHERE shop_id = ? AND platform_id = ?",
            leaving.to_string(),
        )
        .await
    })
    .await
    .expect("the new customer reaches the app");
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/trigger", env.shop),
        json!({"topic": "customer.deleted", "customer_id": leaving}),
    )
    .await;
    marked_deleted(
        "SELECT deleted_at FROM customers WHERE shop_id = ? AND platform_id = ?",
        leaving.to_string(),
    )
    .await
    .expect("the deleted customer is marked deleted");
    let live_customers = one_number(
        &env,
        "SELECT COUNT(*) AS n FROM customers WHERE shop_id = ? AND deleted_at IS NULL",
        vec![shop.id.into()],
    )
    .await;
    let theirs = env
        .sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await
        .as_array()
        .unwrap()
        .len() as i64;
    assert_eq!(
        live_customers, theirs,
        "the app's customers are the store's"
    );
    env.shutdown().await;
}
both_backends!(privacy_requests_and_deletions_are_applied);
