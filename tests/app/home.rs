//! `GET /`: a newcomer gets a short page saying what Lifecycle is and how to install it; a
//! signed-in merchant (session cookie or session token) goes on to the admin.

use crate::both_backends;
use crate::common::*;
use crate::shopify_install::forge_session_token;

async fn the_root_explains_or_opens_the_admin(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    let root = format!("{}/", env.app.url());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // A newcomer, before any install: a page, not a 404.
    let r = client.get(&root).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    for words in [
        "Lifecycle",
        "customer tags",
        "Install it",
        "lifecycle demo",
        "shopify",
    ] {
        assert!(html.contains(words), "the page says {words:?}: {html}");
    }

    let cookie = session_cookie(&env.install().await);
    // Signed in by the cookie: on to the admin.
    let r = client
        .get(&root)
        .header("Cookie", format!("lifecycle_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin");
    // Opened inside the platform's admin with a session token: on to the admin, embedded,
    // with the same query.
    let token = forge_session_token(&env.shop, CLIENT_ID, CLIENT_SECRET, 60);
    let query = format!("shop={}&host=YWRtaW4&id_token={token}", env.shop);
    let r = client.get(format!("{root}?{query}")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("/admin?{query}"));
    let admin = client
        .get(format!("{}{}", env.app.url(), location(&r)))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200, "the admin opens");
    // A bad cookie or a forged token is no session: the newcomer's page again.
    for r in [
        client
            .get(&root)
            .header("Cookie", format!("lifecycle_session={cookie}x"))
            .send()
            .await
            .unwrap(),
        client
            .get(format!(
                "{root}?id_token={}",
                forge_session_token(&env.shop, CLIENT_ID, "not-the-secret", 60)
            ))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Install it"));
    }
    env.shutdown().await;
}
both_backends!(the_root_explains_or_opens_the_admin);
