//! The app's own keys in local use: generated once into the data directory (mode 0600), they
//! survive a restart, so stored tokens still decrypt and session cookies still sign in.

use std::path::Path;

use lifecycle::platforms::Credentials;
use serde_json::json;

use crate::common::*;

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Without keys in the environment (local use, SQLite), the app generates them once into the
/// data directory and a restarted server still reads its stored tokens and honours its session
/// cookies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_keys_survive_a_restart() {
    let Some(env) = env_with(
        Backend::Sqlite,
        EnvOptions {
            local_keys: true,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    assert!(env.config.encryption_key.is_none() && env.config.session_key.is_none());
    let cookie = session_cookie(&env.install().await);
    let shop = env.installed_shop().await;
    let data_dir = env.config.data_dir.clone();
    let key_files = [
        data_dir.join(lifecycle::keys::ENCRYPTION_FILE),
        data_dir.join(lifecycle::keys::SESSION_FILE),
    ];
    #[cfg(unix)]
    for file in &key_files {
        assert_eq!(mode(file), 0o600, "{} is private", file.display());
    }
    let before: Vec<String> = key_files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();

    let Env {
        platform,
        sandbox,
        app,
        db,
        shop: shop_domain,
        browser,
        http,
        config,
    } = env;
    app.shutdown().await;
    let env = Env {
        platform,
        sandbox,
        app: spawn_with(launch(config.clone())).await,
        db,
        shop: shop_domain,
        browser,
        http,
        config,
    };
    let after: Vec<String> = key_files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(before, after, "the key files are read back, not replaced");

    // The stored token opens with the restarted server's key and works against the shop.
    let stored = env.installed_shop().await.credentials.expect("credentials");
    let opened = Credentials::open(&env.app.state.cipher, &stored, &env.shop);
    assert!(opened.is_ok(), "the stored token decrypts after a restart");
    let shopify = env
        .app
        .state
        .platforms
        .find::<lifecycle::platforms::shopify::Shopify>()
        .unwrap();
    let client = lifecycle::platforms::shopify::auth::client_for(shopify, shop.id)
        .await
        .expect("a client of the shop after the restart");
    let r = client
        .run("{ shop { name } }", json!({}), 1.0)
        .await
        .expect("the shop's API accepts the stored token");
    assert!(r.data["shop"]["name"].is_string());
    // A sync after the restart runs to completion with it.
    lifecycle::store::jobs::enqueue(
        &env.app.state.db,
        lifecycle::store::jobs::NewJob::new(lifecycle::triggers::kinds::INCREMENTAL).shop(shop.id),
    )
    .await
    .unwrap();
    wait_job_done(
        &env.app.state.db,
        shop.id,
        lifecycle::triggers::kinds::INCREMENTAL,
    )
    .await;

    // The session cookie from before the restart still signs the merchant in.
    let r = env
        .http
        .get(format!("{}/admin", env.app.url()))
        .header("Cookie", format!("lifecycle_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the session survives the restart");
    env.shutdown().await;
}
