//! Test helpers: a sandbox on port 0 with obviously fake credentials, an installed app token,
//! and a tiny webhook receiver that records the exact bytes it gets.
#![allow(dead_code)]

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use lifecycle_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret";
pub const VERSION: &str = "2026-07";

pub async fn sandbox(customers: usize) -> Sandbox {
    Sandbox::start(
        SandboxConfig {
            bind: "127.0.0.1:0".into(),
            customers,
            seed: 7,
            // 4 h of retries pass in 4 s.
            time_scale: 3600.0,
            ..SandboxConfig::default()
        }
        .with_app("shopify", CLIENT_ID, CLIENT_SECRET)
        .expect("shopify is a flavour"),
    )
    .await
    .expect("sandbox starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn set_app_url(base: &str, app_url: &str) {
    let r = client()
        .post(format!("{base}/_sandbox/app"))
        .json(&json!({"app_url": app_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Installs the app through token exchange (session token -> offline token).
pub async fn install(base: &str, shop: &str) -> String {
    let c = client();
    let st: Value = c
        .post(format!("{base}/_sandbox/shops/{shop}/session_token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = c
        .post(format!("{base}/{shop}/admin/oauth/access_token"))
        .json(&json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": st["token"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

pub async fn gql(
    base: &str,
    shop: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let r = client()
        .post(format!("{base}/{shop}/admin/api/{VERSION}/graphql.json"))
        .header("X-Shopify-Access-Token", token)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn get_json(url: &str) -> Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// The path with its query string, as sent.
    pub uri: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// A webhook receiver; paths listed in `fail_first` answer 500 that many times first.
pub struct Receiver {
    pub base: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    fail: Arc<Mutex<HashMap<String, Arc<AtomicUsize>>>>,
    handle: actix_web::dev::ServerHandle,
}

struct RxState {
    got: Arc<Mutex<Vec<Received>>>,
    fail: Arc<Mutex<HashMap<String, Arc<AtomicUsize>>>>,
}

async fn receive(req: HttpRequest, body: web::Bytes, st: web::Data<RxState>) -> HttpResponse {
    let path = req.path().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    st.got.lock().unwrap().push(Received {
        path: path.clone(),
        uri: req.uri().to_string(),
        headers,
        body: body.to_vec(),
    });
    let counter = st.fail.lock().unwrap().get(&path).cloned();
    if let Some(c) = counter
        && c.load(Ordering::SeqCst) > 0
    {
        c.fetch_sub(1, Ordering::SeqCst);
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok().finish()
}

impl Receiver {
    pub async fn start() -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(Mutex::new(HashMap::new()));
        let data = web::Data::new(RxState {
            got: got.clone(),
            fail: fail.clone(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            base: format!("http://{addr}"),
            got,
            fail,
            handle,
        }
    }

    pub fn fail_first(&self, path: &str, n: usize) {
        self.fail
            .lock()
            .unwrap()
            .insert(path.to_string(), Arc::new(AtomicUsize::new(n)));
    }

    pub fn on(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits (bounded) until `path` has received at least `n` requests.
    pub async fn wait_for(&self, path: &str, n: usize) -> Vec<Received> {
        self.wait_until(path, |v| v.len() >= n).await
    }

    /// Waits (bounded) until the requests `path` has received satisfy `done`; returns them.
    pub async fn wait_until(
        &self,
        path: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        for _ in 0..200 {
            let v = self.on(path);
            if done(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.on(path)
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Independent check of Shopify's webhook signature: base64(HMAC-SHA256(secret, raw body)).
pub fn webhook_hmac_ok(secret: &str, body: &[u8], header: &str) -> bool {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(header) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}
