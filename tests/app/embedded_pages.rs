//! Every admin HTML page says who may frame it: `frame-ancestors https://{shop}
//! https://admin.shopify.com` for the shop of the session, as Shopify requires of embedded
//! apps, whether the session is a cookie or a session token, and on error and token-bounce
//! pages too.

use crate::both_backends;
use crate::common::*;
use crate::shopify_install::forge_session_token;

fn policy(shop: &str) -> String {
    format!("frame-ancestors https://{shop} https://admin.shopify.com")
}

async fn get(env: &Env, path: &str, cookie: Option<&str>) -> (u16, Option<String>, String) {
    let mut req = env.http.get(format!("{}{path}", env.app.url()));
    if let Some(c) = cookie {
        req = req.header("Cookie", format!("lifecycle_session={c}"));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let csp = r
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().unwrap().to_string());
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("text/html"),
        "{path} is a page: {content_type}"
    );
    (status, csp, path.to_string())
}

async fn every_admin_page_allows_framing_by_its_own_shop_only(backend: Backend) {
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
    let cookie = session_cookie(&env.install().await);
    let shop = env.installed_shop().await;
    let second = env.sandbox.shop_domains()[1].clone();
    let second_cookie = session_cookie(
        &lifecycle::cli::demo::install_via_app_store(&env.sandbox.base_url(), &second)
            .await
            .unwrap(),
    );
    wait_job_done(
        &env.app.state.db,
        shop.id,
        lifecycle::triggers::kinds::BACKFILL,
    )
    .await;
    let customer: i64 = query_all(
        &env.app.state.db,
        "SELECT id FROM customers WHERE shop_id = ? ORDER BY id LIMIT 1",
        vec![shop.id.into()],
    )
    .await[0]
        .try_get("", "id")
        .unwrap();

    // The pages, from the admin's own navigation, plus one customer's page.
    let mut pages: Vec<String> = lifecycle::admin::frame::NAV
        .iter()
        .map(|(path, _)| path.to_string())
        .collect();
    assert!(pages.len() >= 7, "{pages:?}");
    pages.push(format!("/admin/customers/{customer}"));
    for path in &pages {
        let (status, csp, _) = get(&env, path, Some(&cookie)).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            csp.as_deref(),
            Some(policy(&env.shop).as_str()),
            "{path} with the cookie"
        );
        // Embedded, signed in by a session token.
        let token = forge_session_token(&env.shop, CLIENT_ID, CLIENT_SECRET, 60);
        let embedded = format!(
            "{path}?shop={}&host=YWRtaW4&embedded=1&id_token={token}",
            env.shop
        );
        let (status, csp, _) = get(&env, &embedded, None).await;
        assert_eq!(status, 200, "{embedded}");
        assert_eq!(
            csp.as_deref(),
            Some(policy(&env.shop).as_str()),
            "{path} embedded"
        );
        // Another shop's session gets its own shop's policy on the same page.
        if !path.starts_with("/admin/customers/") {
            let (status, csp, _) = get(&env, path, Some(&second_cookie)).await;
            assert_eq!(status, 200, "{path} for {second}");
            assert_eq!(
                csp.as_deref(),
                Some(policy(&second).as_str()),
                "{path} for {second}"
            );
        }
    }
    // An error page of a signed-in shop (a customer that is not there) keeps the policy.
    let (status, csp, _) = get(&env, "/admin/customers/999999999", Some(&cookie)).await;
    assert_eq!(status, 404);
    assert_eq!(
        csp.as_deref(),
        Some(policy(&env.shop).as_str()),
        "error page"
    );
    // The embedded load before a session (the page that fetches a session token) may be
    // framed by the shop's admin it was opened in; a page without a shop by no other site.
    let (status, csp, _) = get(
        &env,
        &format!("/admin?shop={second}&host=YWRtaW4&embedded=1"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        csp.as_deref(),
        Some(policy(&second).as_str()),
        "token bounce"
    );
    let (status, csp, _) = get(&env, "/admin", None).await;
    assert_eq!(status, 401);
    assert_eq!(
        csp.as_deref(),
        Some("frame-ancestors 'self'"),
        "signed-out error page"
    );
    env.shutdown().await;
}
both_backends!(every_admin_page_allows_framing_by_its_own_shop_only);
