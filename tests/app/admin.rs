//! The merchant's admin over real HTTP: who may read what (session tokens and the install
//! cookie, never another shop's data), every page rendering for a just-installed shop, the
//! JSON API's shapes, settings validation, rule checks, previews, dry runs and job retries.

use std::collections::BTreeSet;

use lifecycle::store::{self, shops};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;
use crate::shopify_install::forge_session_token;

const OTHER_SHOP: &str = "other-shop.myshopify.com";

#[derive(Clone)]
enum Auth {
    None,
    Token(String),
    Cookie(String),
}

struct Admin {
    base: String,
    http: reqwest::Client,
}

impl Admin {
    fn new(env: &Env) -> Admin {
        Admin {
            base: env.app.url(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str, auth: &Auth) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match auth {
            Auth::None => r,
            Auth::Token(t) => r.bearer_auth(t),
            Auth::Cookie(c) => r.header("Cookie", format!("lifecycle_session={c}")),
        }
    }

    async fn get(&self, path: &str, auth: &Auth) -> (StatusCode, String) {
        let r = self
            .req(reqwest::Method::GET, path, auth)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn json(&self, path: &str, auth: &Auth) -> Value {
        let (status, text) = self.get(path, auth).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: &Auth,
        body: &Value,
    ) -> (StatusCode, Value) {
        let r = self
            .req(method, path, auth)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, auth: &Auth, body: &Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, auth, body).await
    }

    async fn put(&self, path: &str, auth: &Auth, body: &Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, auth, body).await
    }

    /// POSTs `body` to `path` and expects 200.
    async fn post_ok(&self, path: &str, auth: &Auth, body: &Value) -> Value {
        let (status, r) = self.post(path, auth, body).await;
        assert_eq!(status, StatusCode::OK, "POST {path} {body}: {r}");
        r
    }

    async fn delete(&self, path: &str, auth: &Auth) -> StatusCode {
        self.send(reqwest::Method::DELETE, path, auth, &Value::Null)
            .await
            .0
    }

    /// A request with exactly these headers and body text, for what a browser or a forger
    /// might send rather than what the admin's script sends.
    async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: &Auth,
        headers: &[(&str, &str)],
        body: &str,
    ) -> StatusCode {
        let mut r = self.req(method, path, auth).body(body.to_string());
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send().await.unwrap().status()
    }
}

/// A valid session token of `shop` for this app.
fn token_for(shop: &str) -> Auth {
    Auth::Token(forge_session_token(shop, CLIENT_ID, CLIENT_SECRET, 60))
}

/// The entry of `key` in a segment list from the API.
fn segment(view: &Value, key: &str) -> Value {
    view["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("segment {key} is listed: {view}"))
}

/// The sum of `field` over a JSON array of objects.
fn sum_of(list: &Value, field: &str) -> i64 {
    list.as_array()
        .unwrap()
        .iter()
        .map(|x| x[field].as_i64().unwrap())
        .sum()
}

/// The session cookie the install callback set.
/// A second installed shop with one customer, as another merchant's data.
async fn other_shop(env: &Env) -> (i64, i64) {
    let db = &env.app.state.db;
    let shop = shops::upsert_installed(
        db,
        "shopify",
        OTHER_SHOP,
        shops::TokenGrant {
            credentials: lifecycle::platforms::Credentials::token("other-token")
                .seal(&env.app.state.cipher, OTHER_SHOP),
            expires_at: None,
            scopes: "read_customers".into(),
        },
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();
    let row = db
        .query_one_raw(store::stmt(
            db.get_database_backend(),
            "INSERT INTO customers (created_at, updated_at, shop_id, platform_id, email, first_name, last_name, tags, platform_updated_at) \
             VALUES (?, ?, ?, 'gid://shopify/Customer/999', 'secret@other.example', 'Other', 'Merchant', '[]', ?) RETURNING id",
            vec![now.into(), now.into(), shop.id.into(), now.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    (shop.id, row.try_get::<i64>("", "id").unwrap())
}

use sea_orm::ConnectionTrait;

/// A test environment with its shop installed, the admin client and the install's session
/// cookie; `None` when the backend is not available.
async fn installed(backend: Backend, customers: usize) -> Option<(Env, Admin, String)> {
    installed_with(
        backend,
        EnvOptions {
            customers,
            ..Default::default()
        },
    )
    .await
}

async fn installed_with(backend: Backend, opts: EnvOptions) -> Option<(Env, Admin, String)> {
    let env = env_with(backend, opts).await?;
    let cookie = session_cookie(&env.install().await);
    let admin = Admin::new(&env);
    Some((env, admin, cookie))
}

async fn sessions_are_checked_and_scoped_to_their_shop(backend: Backend) {
    let Some((env, admin, cookie)) = installed(backend, 0).await else {
        return;
    };
    let (_, other_customer) = other_shop(&env).await;
    let shop = env.shop.clone();
    // Every protected route, generated: the API's from its OpenAPI document (written from the
    // handlers), the pages from the navigation a signed-in merchant sees.
    let doc = admin.json("/api/openapi.json", &Auth::None).await;
    let mut api_routes: Vec<(reqwest::Method, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let path = path
            .replace("{id}", "1")
            .replace("{token}", "0123456789abcdef0123456789abcdef")
            .replace("{key}", "vip");
        for method in ops.as_object().unwrap().keys() {
            api_routes.push((method.to_uppercase().parse().unwrap(), path.clone()));
        }
    }
    assert!(api_routes.len() >= 15, "{api_routes:?}");
    let (_, home) = admin.get("/admin", &Auth::Cookie(cookie.clone())).await;
    let mut pages: BTreeSet<String> = home
        .split("href=\"")
        .skip(1)
        .filter_map(|h| h.split('"').next())
        // Static assets are public.
        .filter(|h| h.starts_with("/admin") && !h.starts_with("/admin/static/"))
        .map(|h| h.split('?').next().unwrap().to_string())
        .collect();
    assert!(pages.len() >= 6, "{pages:?}");
    // A customer's page is linked from the customer list, not the navigation.
    pages.insert("/admin/customers/1".into());

    // No credentials, a bad signature, an expired token, another app's token: 401.
    for (what, auth) in [
        ("missing", Auth::None),
        (
            "forged",
            Auth::Token(forge_session_token(&shop, CLIENT_ID, "not-the-secret", 60)),
        ),
        (
            "expired",
            Auth::Token(forge_session_token(&shop, CLIENT_ID, CLIENT_SECRET, -120)),
        ),
        (
            "wrong audience",
            Auth::Token(forge_session_token(&shop, "another-app", CLIENT_SECRET, 60)),
        ),
        ("garbage", Auth::Token("not.a.jwt".into())),
        ("tampered cookie", Auth::Cookie(format!("{cookie}x"))),
        (
            // The cookie has its own key: the platform's client secret signs nothing of ours.
            "cookie signed with the client secret",
            Auth::Cookie(lifecycle::signed::sign_expiring(
                CLIENT_SECRET,
                "session",
                &format!("shopify/{shop}"),
                chrono::Utc::now() + chrono::Duration::hours(1),
            )),
        ),
        (
            "other shop's cookie",
            Auth::Cookie(lifecycle::signed::sign_expiring(
                "not-the-secret",
                "session",
                OTHER_SHOP,
                chrono::Utc::now() + chrono::Duration::hours(1),
            )),
        ),
    ] {
        for (method, path) in &api_routes {
            let (status, body) = admin.send(method.clone(), path, &auth, &json!({})).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{what} on {method} {path}: {body}"
            );
            assert!(body["error"].is_string(), "{what}: a JSON error: {body}");
        }
        for page in &pages {
            let (status, _) = admin.get(page, &auth).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} on {page}");
        }
        let (status, _) = admin
            .put("/api/settings", &auth, &json!({"dry_run": true}))
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{what} cannot save settings"
        );
    }
    // Changes made with the cookie must be same-site JSON requests.
    let by_cookie = Auth::Cookie(cookie.clone());
    let same_origin = env.app.url();
    for (headers, body, expect, what) in [
        (
            vec![("Content-Type", "text/plain")],
            r#"{"dry_run": true}"#,
            StatusCode::FORBIDDEN,
            "a form-like request is refused",
        ),
        (
            vec![
                ("Origin", "http://evil.example"),
                ("Content-Type", "application/json"),
            ],
            r#"{"dry_run": true}"#,
            StatusCode::FORBIDDEN,
            "another site's request is refused",
        ),
        (
            vec![
                ("Origin", same_origin.as_str()),
                ("Content-Type", "application/json"),
            ],
            r#"{"tag_prefix": "lifecycle:"}"#,
            StatusCode::OK,
            "the admin's own request passes",
        ),
    ] {
        let status = admin
            .raw(
                reqwest::Method::PUT,
                "/api/settings",
                &by_cookie,
                &headers,
                body,
            )
            .await;
        assert_eq!(status, expect, "{what}");
    }
    assert!(
        !env.installed_shop().await.settings.contains("dry_run"),
        "nothing changed by the refused ones"
    );
    // A non-Bearer Authorization header is refused, not ignored in favour of the cookie.
    let status = admin
        .raw(
            reqwest::Method::GET,
            "/api/overview",
            &by_cookie,
            &[("Authorization", "Basic dXNlcjpwYXNz")],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let token = token_for(&shop);
    for auth in [&token, &by_cookie] {
        let o = admin.json("/api/overview", auth).await;
        assert_eq!(o["shop"], shop.as_str());
        // Naming another shop in the query is refused, whatever the session.
        for path in [
            format!("/api/overview?shop={OTHER_SHOP}"),
            format!("/admin?shop={OTHER_SHOP}"),
            format!("/admin/customers?shop={OTHER_SHOP}"),
        ] {
            let (status, body) = admin.get(&path, auth).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        }
        // The same shop in the query, in another case, is fine.
        let (status, _) = admin
            .get(&format!("/api/overview?shop={}", shop.to_uppercase()), auth)
            .await;
        assert_eq!(status, StatusCode::OK);
        // Shop B's customer does not exist for shop A.
        let (status, body) = admin
            .get(&format!("/api/customers/{other_customer}"), auth)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, _) = admin
            .get(&format!("/admin/customers/{other_customer}"), auth)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let list = admin.json("/api/customers?q=secret", auth).await;
        assert_eq!(
            list,
            json!([]),
            "shop B's customers never show up for shop A"
        );
    }
    // A valid token for shop B reads shop B, whatever the query says about A.
    let b = token_for(OTHER_SHOP);
    let o = admin.json("/api/overview", &b).await;
    assert_eq!(o["shop"], OTHER_SHOP);
    assert_eq!(o["customers"], 1);
    let (status, _) = admin.get(&format!("/api/overview?shop={shop}"), &b).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Shop B's settings change does not touch shop A's.
    let (status, body) = admin
        .put("/api/settings", &b, &json!({"tag_prefix": "b:"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let a = admin.json("/api/settings", &token).await;
    assert_eq!(a["effective"]["tag_prefix"], "lifecycle:");
    // A token for a shop that never installed is refused (the shop refuses its exchange).
    let stranger = token_for("stranger.myshopify.com");
    let (status, body) = admin.get("/api/overview", &stranger).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    env.shutdown().await;
}
both_backends!(sessions_are_checked_and_scoped_to_their_shop);

async fn every_page_renders_for_an_empty_shop(backend: Backend) {
    // No workers: the shop stays exactly as installed (the backfill's analysis, a window
    // later, would otherwise race the "nothing yet" pages on a busy machine).
    let Some((env, admin, cookie)) = installed_with(
        backend,
        EnvOptions {
            customers: 0,
            workers: lifecycle::queue::worker::WorkerOptions {
                workers: 0,
                ..fast_workers()
            },
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let auth = Auth::Cookie(cookie);
    for (path, must) in [
        ("/admin", "No analysis yet"),
        ("/admin/segments", "New custom segment"),
        ("/admin/offers", "No dry run yet"),
        ("/admin/customers", "No customers yet"),
        ("/admin/results", "No offer has been sent yet"),
        ("/admin/activity", "Webhooks received"),
        ("/admin/model", "No report card yet"),
    ] {
        let (status, html) = admin.get(path, &auth).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        assert!(html.contains(must), "{path} says {must:?}");
        assert!(html.contains("<title>"), "{path} has a title");
        // Standalone pages load nothing from outside.
        assert!(!html.contains("cdn.shopify.com"), "{path} is standalone");
        // Empty charts still say what they are.
        if path == "/admin" {
            assert!(html.contains("role=\"img\"") && html.contains("No data yet"));
        }
    }
    // Embedded, the page loads App Bridge with our client id.
    let (status, html) = admin
        .get(
            &format!("/admin?shop={}&host=YWRtaW4&embedded=1", env.shop),
            &auth,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("https://cdn.shopify.com/shopifyapp-bridge/app-bridge.js"));
    assert!(html.contains(&format!(
        "<meta name=\"shopify-api-key\" content=\"{CLIENT_ID}\">"
    )));
    // An embedded load with no session yet gets the token bounce, not an error.
    let (status, html) = admin
        .get("/admin?host=YWRtaW4&embedded=1", &Auth::None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("shopify.idToken()"));
    // ... and a page load carrying the token as `id_token` is signed in.
    let token = forge_session_token(&env.shop, CLIENT_ID, CLIENT_SECRET, 60);
    let (status, _) = admin
        .get(
            &format!("/admin/activity?host=YWRtaW4&embedded=1&id_token={token}"),
            &Auth::None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // The API's shapes for an empty shop.
    let o = admin.json("/api/overview", &auth).await;
    assert_eq!(
        (o["customers"].clone(), o["orders"].clone()),
        (json!(0), json!(0))
    );
    for k in ["monthly", "clv_distribution", "rfm_grid"] {
        assert_eq!(o[k], json!([]), "{k}");
    }
    assert!(o["analysed_at"].is_null() && o["maturity"].is_null() && o["clv_cac"].is_null());
    let s = admin.json("/api/segments", &auth).await;
    assert!(
        s["segments"].as_array().unwrap().len() >= 30,
        "the built-ins are listed"
    );
    assert!(
        s["segments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["size"] == 0 && x["builtin"] == true)
    );
    let settings = admin.json("/api/settings", &auth).await;
    assert_eq!(settings["effective"]["tag_prefix"], "lifecycle:");
    assert_eq!(
        settings["effective"]["offers"]["win_back"]["enabled"],
        false
    );
    let plan = admin.json("/api/plan", &auth).await;
    assert!(plan["run"].is_null() && plan["items"] == json!([]));
    let a = admin.json("/api/activity", &auth).await;
    for k in [
        "webhooks_by_topic",
        "webhook_failures",
        "jobs",
        "audit",
        "codes",
        "privacy_requests",
    ] {
        assert!(a[k].is_array(), "{k}");
    }
    let p = admin
        .post_ok(
            "/api/segments/preview",
            &auth,
            &json!({"rule": "number_of_orders >= 1"}),
        )
        .await;
    assert_eq!(
        (p["count"].clone(), p["analysed"].clone()),
        (json!(0), json!(false))
    );
    let (status, body) = admin.get("/api/customers/abc", &auth).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let doc = admin.json("/api/openapi.json", &Auth::None).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/overview",
        "/api/segments/validate",
        "/api/segments/preview",
        "/api/settings",
        "/api/dry-run",
        "/api/dry-run/{token}",
        "/api/customers/{id}",
        "/api/activity",
        "/api/jobs/{id}/retry",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} is documented");
    }
    assert!(doc["components"]["schemas"]["Overview"].is_object());
    assert!(doc["components"]["securitySchemes"]["session_token"].is_object());
    env.shutdown().await;
}
both_backends!(every_page_renders_for_an_empty_shop);

async fn settings_are_validated_before_saving(backend: Backend) {
    let Some((env, admin, cookie)) = installed(backend, 0).await else {
        return;
    };
    let auth = Auth::Cookie(cookie);
    let shop_id = env.installed_shop().await.id;
    let stored = || async { env.installed_shop().await.settings };
    let before = stored().await;

    for (body, says) in [
        (json!({"tag_prefix": "a,b"}), "comma"),
        (
            json!({"segments": {"custom": [{"key": "vip", "rule": "number_of_orders >="}]}}),
            "vip",
        ),
        (
            json!({"offers": {"reward": {"enabled": true, "segments": ["nope"]}}}),
            "nope",
        ),
        (
            json!({"offers": {"win_back": {"value": {"type": "percentage", "percent": "ten"}}}}),
            "invalid",
        ),
        (json!({"cac": -3}), "cac"),
        (json!({"schedule": "every night"}), "schedule"),
        (
            json!({"schedule": "*/10 * * * *"}),
            "at most one run an hour",
        ),
        (json!({"group_label": "rfm"}), "group_label"),
        (json!({"no_such_setting": 1}), "unknown setting"),
        (json!([1, 2]), "JSON"),
    ] {
        let (status, r) = admin.put("/api/settings", &auth, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {r}");
        let msg = r["error"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{body}: {msg:?} names {says:?}");
        assert_eq!(stored().await, before, "nothing saved for {body}");
    }
    let status = admin
        .raw(
            reqwest::Method::PUT,
            "/api/settings",
            &auth,
            &[("Content-Type", "application/json")],
            "{not json",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A valid change is saved, merged with what was there, and read back with defaults.
    let (status, r) = admin
        .put("/api/settings", &auth, &json!({"offers": {"win_back": {"enabled": true, "budget_per_run": 7}}, "dry_run": true, "cac": 25.5, "schedule": "0 4 * * *"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["effective"]["offers"]["win_back"]["budget_per_run"], 7);
    assert_eq!(
        r["effective"]["offers"]["win_back"]["expiry_days"], 21,
        "defaults fill the rest"
    );
    let (status, _) = admin
        .put("/api/settings", &auth, &json!({"tag_prefix": "lc:"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let saved: Value = serde_json::from_str(&stored().await).unwrap();
    assert_eq!(saved["tag_prefix"], "lc:");
    assert_eq!(saved["dry_run"], true, "earlier keys are kept");
    assert_eq!(saved["cac"], 25.5);
    // null removes a key.
    let (status, _) = admin
        .put("/api/settings", &auth, &json!({"cac": null}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let saved: Value = serde_json::from_str(&stored().await).unwrap();
    assert!(saved.get("cac").is_none());

    // Rules: checked as typed, with the error's place; saved only when valid.
    let validate = async |rule: &str| {
        admin
            .post_ok("/api/segments/validate", &auth, &json!({ "rule": rule }))
            .await
    };
    let c = validate("number_of_orders >= 2 AND").await;
    assert_eq!(c["valid"], false);
    assert_eq!(c["error"]["column"], 26, "{c}");
    assert_eq!(c["error"]["start"], 25);
    let c = validate("amount_spent > 100 AND rfm_group = CHAMPIONS").await;
    assert_eq!(c["valid"], true, "{c}");
    // A bad rule (the error names the segment) or a bad key is refused.
    for (key, rule, names) in [
        ("big", "amount_spent >", Some("big")),
        ("Bad Key", "amount_spent > 1", None),
    ] {
        let (status, r) = admin
            .post("/api/segments", &auth, &json!({"key": key, "rule": rule}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}: {r}");
        if let Some(names) = names {
            assert!(r["error"].as_str().unwrap().contains(names), "{r}");
        }
    }
    let r = admin
        .post_ok(
            "/api/segments",
            &auth,
            &json!({"key": "big", "rule": "amount_spent > 100"}),
        )
        .await;
    let big = segment(&r, "big");
    assert_eq!(
        (big["builtin"].clone(), big["rule"].clone()),
        (json!(false), json!("amount_spent > 100"))
    );
    assert_eq!(
        admin.delete("/api/segments/big", &auth).await,
        StatusCode::OK
    );
    assert_eq!(
        admin.delete("/api/segments/big", &auth).await,
        StatusCode::NOT_FOUND
    );
    let (status, _) = admin
        .post("/api/segments/preview", &auth, &json!({"rule": "(("}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Retrying jobs: only a dead job of this shop.
    let db = &env.app.state.db;
    // Not due for a day, so no worker claims it while the test looks at it.
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let id = store::jobs::enqueue(
        db,
        store::jobs::NewJob::new("no-such-kind")
            .shop(shop_id)
            .run_at(later),
    )
    .await
    .unwrap()
    .unwrap();
    let (status, _) = admin
        .post(&format!("/api/jobs/{id}/retry"), &auth, &json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a job that is not dead is not retried"
    );
    db.execute_raw(store::stmt(
        db.get_database_backend(),
        "UPDATE jobs SET state = 'dead', attempts = 5, last_error = 'gave up' WHERE id = ?",
        vec![id.into()],
    ))
    .await
    .unwrap();
    let other = token_for(OTHER_SHOP);
    other_shop(&env).await;
    let (status, _) = admin
        .post(&format!("/api/jobs/{id}/retry"), &other, &json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another shop cannot retry it"
    );
    let (_, html) = admin.get("/admin/activity", &auth).await;
    assert!(
        html.contains(&format!("data-id=\"{id}\"")) && html.contains("gave up"),
        "the dead job is shown with its reason and a retry button"
    );
    let (status, r) = admin
        .post(&format!("/api/jobs/{id}/retry"), &auth, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    // Back in the queue with its attempts reset (a worker may already have tried it again).
    let job = store::jobs::get(db, id).await.unwrap().unwrap();
    assert!(job.state != "dead" || job.attempts < 5, "{job:?}");
    env.shutdown().await;
}
both_backends!(settings_are_validated_before_saving);

async fn the_api_reports_a_synced_shop(backend: Backend) {
    let Some((env, admin, cookie)) = installed_with(
        backend,
        EnvOptions {
            customers: 60,
            plan: lifecycle_sandbox::Plan::Enterprise,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let auth = Auth::Cookie(cookie);
    let shop = env.installed_shop().await;
    let db = env.app.state.db.clone();
    crate::browser::wait_job_done(&db, shop.id, lifecycle::triggers::kinds::BACKFILL).await;
    crate::browser::wait_job_done(&db, shop.id, "segment").await;

    let o = admin.json("/api/overview", &auth).await;
    assert_eq!(o["customers"], 60);
    assert!(
        o["orders"].as_i64().unwrap() > 0 && o["revenue_minor"].as_i64().unwrap() > 0,
        "{o}"
    );
    assert!(!o["monthly"].as_array().unwrap().is_empty());
    assert!(
        o["maturity"]["stage"].is_string() && o["last_sync"]["status"] == "done",
        "{o}"
    );
    assert_eq!(
        sum_of(&o["rfm_grid"], "customers"),
        count(&db, "customer_scores", shop.id).await,
        "every scored customer is in one RFM cell"
    );
    assert!(sum_of(&o["clv_distribution"], "customers") > 0);
    // The rule evaluator and the analytics agree on who has ordered.
    let p = admin
        .post_ok(
            "/api/segments/preview",
            &auth,
            &json!({"rule": "number_of_orders >= 1"}),
        )
        .await;
    assert_eq!(p["count"], o["customers_with_orders"], "{p}");
    assert_eq!(
        (p["total"].clone(), p["analysed"].clone()),
        (json!(60), json!(true))
    );
    assert_eq!(p["sample"].as_array().unwrap().len(), 10);
    assert!(p["sample"][0]["number_of_orders"].as_u64().unwrap() >= 1);
    // A CAC gives CLV:CAC.
    let (status, _) = admin.put("/api/settings", &auth, &json!({"cac": 20})).await;
    assert_eq!(status, StatusCode::OK);
    let o = admin.json("/api/overview", &auth).await;
    assert_eq!(o["clv_cac"]["cac"], 20.0);
    assert!(o["clv_cac"]["ratio"].as_f64().unwrap() > 0.0 && o["clv_cac"]["health"].is_string());

    // Money reads in the shop's currency with its thousands grouped, on every figure.
    let cur = o["currency"].as_str().unwrap().to_string();
    let (status, _) = admin
        .put("/api/settings", &auth, &json!({"cac": 1234567.5}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = admin.get("/admin", &auth).await;
    assert!(
        page.contains(&format!("CAC 1,234,567.50 {cur}")),
        "the CAC with separators: {page}"
    );
    assert!(
        page.contains(&format!(
            ">{} {cur}<",
            grouped(o["revenue_minor"].as_i64().unwrap())
        )),
        "the net revenue with separators: {page}"
    );
    for (minor, currency, shown) in [
        (-123_456_789, "USD", "-1,234,567.89 USD"),
        (1_234_567, "JPY", "1,234,567 JPY"),
        (99, "EUR", "0.99 EUR"),
        (100_000, "EUR", "1,000.00 EUR"),
    ] {
        assert_eq!(lifecycle::admin::data::format_money(minor, currency), shown);
    }

    // Figures named alike mean alike: the monthly charts say they are monthly, and the
    // current month is marked as partial rather than drawn as a drop.
    assert!(
        page.contains("Monthly retention rate") && !page.contains("<h2>Retention rate<"),
        "{page}"
    );
    let last = o["monthly"].as_array().unwrap().last().unwrap().clone();
    let day = last["partial_to_day"]
        .as_u64()
        .unwrap_or_else(|| panic!("the current month is partial: {last}"));
    let marker = format!(
        "{} (partial, to day {day})",
        &last["month"].as_str().unwrap()[..7]
    );
    assert!(
        page.contains(&marker) && page.contains("class=\"dot partial\""),
        "{marker} on the monthly charts: {page}"
    );
    let months = o["monthly"].as_array().unwrap();
    assert!(
        months[..months.len() - 1]
            .iter()
            .all(|m| m["partial_to_day"].is_null()),
        "only the current month is partial: {o}"
    );

    // Customers: a list and one customer's whole view.
    let list = admin.json("/api/customers", &auth).await;
    let first = &list.as_array().unwrap()[0];
    let c = admin
        .json(&format!("/api/customers/{}", first["id"]), &auth)
        .await;
    assert_eq!(c["platform_id"], first["platform_id"]);
    assert!(
        c["scores"]["rfm_group"].is_string() && c["features"]["number_of_orders"].is_u64(),
        "{c}"
    );
    assert!(!c["segments"].as_array().unwrap().is_empty());
    assert!(
        !c["orders"].as_array().unwrap().is_empty(),
        "the top customer has orders"
    );
    let (status, _) = admin
        .get(&format!("/admin/customers/{}", first["id"]), &auth)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Dry-run mode first (so background re-scoring sends nothing either), then a new
    // segment and a dry run: its tags are planned for every member, nothing is sent.
    let (status, _) = admin
        .put("/api/settings", &auth, &json!({"dry_run": true}))
        .await;
    assert_eq!(status, StatusCode::OK);
    wait_work_done(&db, shop.id).await;
    let (status, _) = admin
        .post(
            "/api/segments",
            &auth,
            &json!({"key": "buyers", "rule": "number_of_orders >= 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The dry run is a job: the request answers at once with where to follow it, and asking
    // again while it waits answers with the same one.
    let (status, req) = admin.post("/api/dry-run", &auth, &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{req}");
    let url = req["status_url"].as_str().unwrap().to_string();
    let (_, again) = admin.post("/api/dry-run", &auth, &json!({})).await;
    let st = admin.json(&url, &auth).await;
    if st["state"] == "queued" || st["state"] == "running" {
        assert_eq!(again["token"], req["token"], "one dry run at a time");
    }
    let done = eventually(120, || async {
        let st = admin.json(&url, &auth).await;
        (st["state"] == "done").then_some(st)
    })
    .await
    .expect("the dry run finishes");
    let r = &done["result"];
    assert_eq!(r["summary"]["dry_run"], true);
    assert_eq!(r["plan"]["run"]["kind"], "admin");
    let asked = query_all(
        &db,
        "SELECT id FROM segment_runs WHERE shop_id = ? AND trigger = ?",
        vec![
            shop.id.into(),
            format!("admin:{}", req["token"].as_str().unwrap()).into(),
        ],
    )
    .await;
    assert_eq!(
        r["plan"]["run_id"],
        json!(asked[0].try_get::<i64>("", "id").unwrap()),
        "the plan is the one this request asked for"
    );
    // A made-up token (or another shop's) is not found; a malformed one neither.
    for path in [
        "/api/dry-run/0123456789abcdef0123456789abcdef",
        "/api/dry-run/..%2f1",
    ] {
        let (status, _) = admin.get(path, &auth).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        r["summary"]["segments"]["buyers"],
        o["customers_with_orders"]
    );
    let plan = admin.json("/api/plan", &auth).await;
    assert_eq!(plan["run_id"], r["summary"]["run_id"]);
    assert!(plan["total_items"].as_i64().unwrap() >= o["customers_with_orders"].as_i64().unwrap());
    let items = plan["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .all(|i| i["dry_run"] == true && i["outcome"] == "planned")
    );
    assert!(
        items.iter().any(|i| i["detail"] == "lifecycle:buyers"),
        "{plan}"
    );
    let seg = admin.json("/api/segments", &auth).await;
    let buyers = segment(&seg, "buyers");
    assert_eq!(
        buyers["size"], o["customers_with_orders"],
        "sizes come from the last scores"
    );
    let a = admin.json("/api/activity", &auth).await;
    assert!(
        a["webhooks_by_topic"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{a}"
    );
    assert!(a["audit"].as_array().is_some_and(|t| !t.is_empty()));
    env.shutdown().await;
}
both_backends!(the_api_reports_a_synced_shop);

/// Minor units of a two-decimal currency as `1,234,567.89`: written apart from the app's
/// formatter, to check it.
fn grouped(minor: i64) -> String {
    let whole = (minor / 100).to_string();
    let mut out: Vec<String> = Vec::new();
    let mut end = whole.len();
    while end > 3 {
        out.insert(0, whole[end - 3..end].to_string());
        end -= 3;
    }
    out.insert(0, whole[..end].to_string());
    format!("{}.{:02}", out.join(","), minor % 100)
}
