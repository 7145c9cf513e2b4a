//! Install and first open. Managed install: Shopify installs the app itself and opens it in the
//! admin at `application_url` with `shop`, `host` and `id_token`, never calling the OAuth
//! routes; that first load installs the shop by token exchange, and a later load after the grant
//! was revoked authorises again the same way. The legacy OAuth flow, started inside the admin
//! iframe, leaves the iframe before it sets its state cookie. A sign-in link (what `lifecycle
//! demo` prints) opens one shop's admin, once.

use lifecycle::store::shops;
use serde_json::json;

use crate::both_backends;
use crate::common::*;
use crate::shopify_install::{shopify, signed, stored_token};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

fn policy(shop: &str) -> String {
    format!("frame-ancestors https://{shop} https://admin.shopify.com")
}

fn csp(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("content-security-policy")
        .map(|v| v.to_str().unwrap().to_string())
}

/// A session token for the shop, signed by the sandbox as App Bridge's are.
async fn app_bridge_token(env: &Env) -> String {
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/session_token", env.shop),
        json!({}),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The shop's grants at the token endpoint (their grant types, in order) and how often its
/// OAuth authorize page was opened, from the sandbox's request log.
async fn auth_requests(env: &Env) -> (Vec<String>, usize) {
    let log = env
        .sandbox_get(&format!("/_sandbox/shops/{}/requests", env.shop))
        .await;
    let log = log.as_array().unwrap();
    let grants = log
        .iter()
        .filter(|r| r["kind"] == "token")
        .map(|r| r["root_fields"][0].as_str().unwrap().to_string())
        .collect();
    let authorize = log.iter().filter(|r| r["kind"] == "authorize").count();
    (grants, authorize)
}

/// The admin opening the app: `application_url` (`/`) with `shop`, `host`, `embedded` and a
/// session token, followed to the page it leads to. Returns that page's status, policy and body.
async fn embedded_load(env: &Env) -> (u16, Option<String>, String) {
    let token = app_bridge_token(env).await;
    let query = format!("shop={}&host=YWRtaW4&embedded=1&id_token={token}", env.shop);
    let r = env
        .browser
        .get(format!("{}/?{query}", env.app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(location(&r), format!("/admin?{query}"));
    let page = env
        .browser
        .get(format!("{}{}", env.app.url(), location(&r)))
        .send()
        .await
        .unwrap();
    let status = page.status().as_u16();
    let policy = csp(&page);
    (status, policy, page.text().await.unwrap())
}

fn assert_admin_of(shop: &str, body: &str) {
    assert!(
        !body.contains("has not installed"),
        "the admin, not a refusal: {body}"
    );
    assert!(body.contains("<h1>Overview</h1>"), "the overview: {body}");
    assert!(body.contains(shop), "of {shop}: {body}");
}

async fn the_first_embedded_load_installs_the_shop_without_oauth(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    let db = &env.app.state.db;
    assert!(
        shops::find(db, "shopify", &env.shop)
            .await
            .unwrap()
            .is_none(),
        "never installed"
    );

    let (status, policy_sent, body) = embedded_load(&env).await;
    assert_eq!(status, 200, "{body}");
    assert_admin_of(&env.shop, &body);
    assert_eq!(policy_sent, Some(policy(&env.shop)));
    let shop = env.installed_shop().await;
    assert_eq!(shop.status, shops::INSTALLED);
    assert!(!stored_token(&env, &shop).is_empty());
    // The backfill ran and brought every customer of the shop.
    wait_job_done(db, shop.id, lifecycle::triggers::kinds::BACKFILL).await;
    let in_shop = env
        .sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await
        .as_array()
        .map(Vec::len)
        .unwrap();
    assert!(in_shop > 0);
    assert_eq!(count(db, "customers", shop.id).await, in_shop as i64);

    // No OAuth: the authorize page never opened, and the one grant was a token exchange, made
    // once although `/` and the admin page both authenticated the load.
    let (grants, authorize) = auth_requests(&env).await;
    assert_eq!(authorize, 0, "no OAuth authorize page");
    assert_eq!(grants, vec![TOKEN_EXCHANGE.to_string()]);
    // The next load is signed in by its token and exchanges nothing.
    let (status, _, body) = embedded_load(&env).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(auth_requests(&env).await.0.len(), 1, "no second exchange");
    // The token the exchange stored works against the shop's API.
    let client = lifecycle::platforms::shopify::auth::client_for(shopify(&env.app.state), shop.id)
        .await
        .unwrap();
    client
        .run("{ shop { name } }", json!({}), 1.0)
        .await
        .unwrap();
    env.shutdown().await;
}
both_backends!(the_first_embedded_load_installs_the_shop_without_oauth);

async fn an_embedded_load_after_a_revoked_grant_authorises_again(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    let state = env.app.state.clone();
    let (status, _, body) = embedded_load(&env).await;
    assert_eq!(status, 200, "{body}");
    let shop = env.installed_shop().await;
    wait_job_done(&state.db, shop.id, lifecycle::triggers::kinds::BACKFILL).await;
    let old = stored_token(&env, &shop);

    // The shop revokes the grant; the app's next call is refused, its refresh is refused too,
    // and the client condemns the grant: the shop needs re-authorisation.
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/revoke_tokens", env.shop),
        json!({}),
    )
    .await;
    let client = lifecycle::platforms::shopify::auth::client_for(shopify(&state), shop.id)
        .await
        .unwrap();
    assert!(
        client
            .run("{ shop { name } }", json!({}), 1.0)
            .await
            .is_err(),
        "the revoked token is refused"
    );
    assert_eq!(env.installed_shop().await.status, shops::NEEDS_REAUTH);

    // The merchant opens the app again: the load exchanges its session token once more.
    let (status, policy_sent, body) = embedded_load(&env).await;
    assert_eq!(status, 200, "{body}");
    assert_admin_of(&env.shop, &body);
    assert_eq!(policy_sent, Some(policy(&env.shop)));
    let renewed = env.installed_shop().await;
    assert_eq!(renewed.status, shops::INSTALLED);
    assert_ne!(stored_token(&env, &renewed), old);
    let (grants, authorize) = auth_requests(&env).await;
    assert_eq!(authorize, 0, "no OAuth authorize page");
    // The install's exchange, the refused call's one refresh (refused: the grant was revoked)
    // and the new exchange.
    assert_eq!(grants, [TOKEN_EXCHANGE, "refresh_token", TOKEN_EXCHANGE]);
    let client = lifecycle::platforms::shopify::auth::client_for(shopify(&state), shop.id)
        .await
        .unwrap();
    client
        .run("{ shop { name } }", json!({}), 1.0)
        .await
        .unwrap();
    // A forged session token installs nothing and is refused.
    let forged = crate::shopify_install::forge_session_token(
        "another.myshopify.com",
        CLIENT_ID,
        "not-the-secret",
        60,
    );
    let r = env
        .browser
        .get(format!(
            "{}/admin?shop=another.myshopify.com&host=YWRtaW4&id_token={forged}",
            env.app.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        shops::find(&state.db, "shopify", "another.myshopify.com")
            .await
            .unwrap()
            .is_none()
    );
    env.shutdown().await;
}
both_backends!(an_embedded_load_after_a_revoked_grant_authorises_again);

fn state_cookie_set(r: &reqwest::Response) -> bool {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("lifecycle_oauth_state="))
}

/// The `href` of the exit page's top-level link.
fn top_level_link(body: &str) -> String {
    let start = body
        .find(r#"id="top-level" href=""#)
        .expect("a top-level link")
        + 21;
    let end = start + body[start..].find('"').unwrap();
    body[start..end].replace("&amp;", "&")
}

async fn oauth_started_inside_the_admin_iframe_leaves_it_before_setting_its_cookie(
    backend: Backend,
) {
    let Some(env) = env(backend).await else {
        return;
    };
    let now = chrono::Utc::now().timestamp().to_string();
    let install = |embedded: bool| {
        let mut params = vec![
            ("host", "YWRtaW4".to_string()),
            ("shop", env.shop.clone()),
            ("timestamp", now.clone()),
        ];
        if embedded {
            params.insert(0, ("embedded", "1".to_string()));
        }
        signed(&env, "/auth/shopify/install", &params, CLIENT_SECRET)
    };
    // Inside the iframe (Shopify's `embedded=1`, or the browser's `Sec-Fetch-Dest: iframe`):
    // a page that takes the whole window to the install, framed only by the shop's admin, and
    // no cookie yet.
    let mut top = Vec::new();
    for (url, dest) in [
        (install(true), None),
        (install(true), Some("iframe")),
        (install(false), Some("iframe")),
    ] {
        let mut req = env.browser.get(&url);
        if let Some(d) = dest {
            req = req.header("Sec-Fetch-Dest", d);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200, "{url} from {dest:?}");
        assert!(!state_cookie_set(&r), "no state cookie inside the iframe");
        assert_eq!(csp(&r), Some(policy(&env.shop)));
        let body = r.text().await.unwrap();
        assert!(body.contains("window.open("), "{body}");
        assert!(body.contains("app-bridge.js"), "{body}");
        let link = top_level_link(&body);
        assert!(
            link.starts_with(&format!("{}/auth/shopify/install?begin=", env.app.url())),
            "{link}"
        );
        top.push(link);
    }
    // Its signed value names the shop: changed, it starts nothing.
    let tampered = top[0].replace(&env.shop, "another.myshopify.com");
    assert_ne!(tampered, top[0]);
    let r = env.browser.get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(!state_cookie_set(&r));
    // At the top level the state cookie is set, first-party, and the flow completes.
    let r = env
        .browser
        .get(&top[0])
        .header("Sec-Fetch-Dest", "document")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(state_cookie_set(&r));
    let authorize = location(&r);
    assert!(authorize.contains("/admin/oauth/authorize"), "{authorize}");
    let r = env.browser.get(&authorize).send().await.unwrap();
    assert_eq!(r.status(), 302, "the sandbox approves");
    let r = env.browser.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status(), 302, "the callback accepts the cookie");
    assert_eq!(location(&r), format!("/admin?shop={}", env.shop));
    assert_eq!(env.installed_shop().await.status, shops::INSTALLED);
    env.shutdown().await;
}
both_backends!(oauth_started_inside_the_admin_iframe_leaves_it_before_setting_its_cookie);

async fn a_sign_in_link_opens_its_shops_admin_once(backend: Backend) {
    let Some(env) = env_with(
        backend,
        EnvOptions {
            shops: 2,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let state = env.app.state.clone();
    env.install().await;
    let shop = env.installed_shop().await;
    let second = env.sandbox.shop_domains()[1].clone();
    lifecycle::cli::demo::install_via_app_store(&env.sandbox.base_url(), &second)
        .await
        .unwrap();
    let second_id = shops::find(&state.db, "shopify", &second)
        .await
        .unwrap()
        .unwrap()
        .id;
    let browser = || {
        reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap()
    };

    let link = lifecycle::admin::login::fresh_link(&state, shop.id)
        .await
        .unwrap();
    assert!(
        link.starts_with(&format!("{}/admin/login?token=", env.app.url())),
        "{link}"
    );
    // Changed to name the other shop, it is refused (and not spent).
    let other = link.replace(&format!("%2F{}.", shop.id), &format!("%2F{second_id}."));
    assert_ne!(other, link);
    let r = browser().get(&other).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains(&second));
    // Opened in a fresh browser: the admin of its shop, signed in (cookie), and only that one.
    let you = browser();
    let r = you.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert_admin_of(&env.shop, &body);
    assert!(!body.contains(&second));
    let r = you
        .get(format!("{}/admin/segments", env.app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the session cookie signs in the next page");
    // Once only.
    let r = browser().get(&link).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("not valid"));
    // Not after it expires.
    let expired = lifecycle::admin::login::link(
        &state,
        shop.id,
        chrono::Utc::now() - chrono::Duration::seconds(1),
    )
    .await
    .unwrap();
    assert_eq!(browser().get(&expired).send().await.unwrap().status(), 401);
    // Nor with a changed signature.
    let fresh = lifecycle::admin::login::fresh_link(&state, shop.id)
        .await
        .unwrap();
    let flipped = if fresh.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{flipped}", &fresh[..fresh.len() - 1]);
    assert_ne!(forged, fresh);
    assert_eq!(browser().get(&forged).send().await.unwrap().status(), 401);
    env.shutdown().await;
}
both_backends!(a_sign_in_link_opens_its_shops_admin_once);
