//! OAuth codes and session tokens never reach the logs: `lifecycle serve` as its own process,
//! logging JSON at info, goes through an install and embedded loads, and its log is searched.

use std::path::Path;

use serde_json::json;

use crate::both_backends;
use crate::common::*;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `lifecycle serve` as its own process, logging JSON at info to `log`.
fn serve(config: &lifecycle::config::Config, log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_lifecycle"))
        .arg("serve")
        .env("LIFECYCLE_BIND", config.bind.to_string())
        .env("LIFECYCLE_DATA_DIR", &config.data_dir)
        .env("DATABASE_URL", config.database_url())
        .env("LIFECYCLE_APP_URL", config.app_url())
        .env(
            "LIFECYCLE_ENCRYPTION_KEY",
            config.encryption_key.clone().unwrap(),
        )
        .env("LIFECYCLE_SESSION_KEY", config.session_key.clone().unwrap())
        .env("LIFECYCLE_SHOPIFY_CLIENT_ID", CLIENT_ID)
        .env("LIFECYCLE_SHOPIFY_CLIENT_SECRET", CLIENT_SECRET)
        .env(
            "LIFECYCLE_SHOPIFY_API_ORIGIN",
            config.platforms.shopify.api_origin.clone().unwrap(),
        )
        .env("LIFECYCLE_LOG", "info")
        .env("LIFECYCLE_LOG_FORMAT", "json")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("lifecycle serve starts");
    Child(child)
}

fn query_value(url: &str, key: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{key} in {url}"))
}

/// The install's OAuth code and the admin's session tokens, sent as the platform sends them,
/// appear nowhere in the app's logs; the requests that carried them are logged with the values
/// redacted.
async fn oauth_codes_and_session_tokens_never_reach_the_logs(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    // The in-process app only served the sandbox's app URL; a process logging to a file takes
    // its place on the same address.
    let Env {
        sandbox,
        app,
        db,
        shop,
        http,
        config,
        ..
    } = env;
    app.shutdown().await;
    let log = db.dir.path().join("app.log");
    let child = serve(&config, &log);
    let app_url = config.app_url();
    let ready = eventually(60, || async {
        let r = http.get(format!("{app_url}/healthz")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    assert!(ready.is_some(), "the app answers /healthz");

    // The install, step by step, to see the code.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let install: serde_json::Value = http
        .get(format!(
            "{}/_sandbox/shops/{shop}/install_url",
            sandbox.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut url = install["install_url"].as_str().unwrap().to_string();
    let mut code = None;
    for _ in 0..6 {
        let r = browser.get(&url).send().await.unwrap();
        if !r.status().is_redirection() {
            break;
        }
        let next = url::Url::parse(&url).unwrap().join(&location(&r)).unwrap();
        if next.path() == "/auth/shopify/callback" {
            code = Some(query_value(next.as_str(), "code"));
        }
        if next.path().starts_with("/admin") {
            break;
        }
        url = next.to_string();
    }
    let code = code.expect("the platform sent a code to the callback");
    assert!(code.len() >= 8, "a code worth looking for: {code}");
    // The callback answered after the install completed.
    let conn = lifecycle::store::connect(&db.url).await.unwrap();
    let installed = lifecycle::store::shops::find(&conn, "shopify", &shop)
        .await
        .unwrap()
        .expect("the shop row");
    assert_eq!(installed.status, "installed", "the install went through");
    conn.close().await.ok();

    // Session tokens: in the query of an embedded page load, and as a bearer token.
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let st: serde_json::Value = http
            .post(format!(
                "{}/_sandbox/shops/{shop}/session_token",
                sandbox.base_url()
            ))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(st["token"].as_str().unwrap().to_string());
    }
    let r = http
        .get(format!(
            "{app_url}/admin?shop={shop}&host=YWRtaW4&embedded=1&id_token={}",
            tokens[0]
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the embedded load is signed in");
    let r = http
        .post(format!("{app_url}/auth/shopify/token-exchange"))
        .bearer_auth(&tokens[1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // A replayed callback is refused (and logged as an error of that request).
    let r = http
        .get(format!(
            "{app_url}/auth/shopify/callback?code={code}&shop={shop}&state=x&timestamp=1&hmac=00"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    drop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("/auth/shopify/callback?") && l.contains("code=[redacted]")),
        "the callback's request is in the log, redacted:\n{text}"
    );
    assert!(
        !text.contains(&code),
        "the OAuth code is in the log:\n{text}"
    );
    for token in &tokens {
        // The signature part alone would be enough to misuse nothing, but none of it belongs there.
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !text.contains(signature),
            "a session token is in the log:\n{text}"
        );
    }
    sandbox.shutdown().await;
}
both_backends!(oauth_codes_and_session_tokens_never_reach_the_logs);
