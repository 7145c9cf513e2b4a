//! Ecwid webhooks at `/webhooks/ecwid`: a delivery signed as Ecwid signs (over
//! `eventCreated.eventId`, the body unsigned) is stored and becomes a fetch of the record it
//! names; hostile inputs get the right status and write nothing.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use lifecycle::store::{self, Db, shops};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::both_backends;
use crate::common::*;

const SECRET: &str = ECWID_CLIENT_SECRET;
const STORE: &str = "1003";

/// Ecwid's signature, computed here from the documented recipe (not with the app's code).
fn signature(secret: &str, created: i64, event_id: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(format!("{created}.{event_id}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

async fn count(db: &Db, sql: &str) -> i64 {
    db.query_one_raw(store::stmt(db.get_database_backend(), sql, vec![]))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

fn event(id: &str, created: i64, store: u64, kind: &str, data: Value) -> Value {
    json!({"eventId": id, "eventCreated": created, "storeId": store, "entityId": 42,
           "eventType": kind, "data": data})
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    body: &[u8],
    signature: Option<&str>,
) -> reqwest::StatusCode {
    let mut req = http
        .post(format!("{url}/webhooks/ecwid"))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("X-Ecwid-Webhook-Signature", s);
    }
    req.send().await.unwrap().status()
}

async fn hostile_and_valid_deliveries(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let mut config = test_config(&db);
    // Nothing listens here: the fetch the webhook asks for is queued, not answered.
    config.platforms.ecwid.api_origin = Some("http://127.0.0.1:9".into());
    let mut l = launch(config);
    l.workers.workers = 1;
    let app = spawn_with(l).await;
    let state = app.state.clone();
    let grant = shops::TokenGrant {
        credentials: lifecycle::platforms::Credentials::token("secure_token")
            .seal(&state.cipher, STORE),
        expires_at: None,
        scopes: lifecycle::platforms::ecwid::auth::SCOPES.into(),
    };
    shops::upsert_installed(&state.db, "ecwid", STORE, grant)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = app.url();
    let now = chrono::Utc::now().timestamp();
    let inbox = "SELECT COUNT(*) AS n FROM webhook_inbox";

    let order = event(
        "e-1",
        now,
        1003,
        "order.updated",
        json!({"orderId": "EBJFT"}),
    );
    let body = order.to_string().into_bytes();
    let good = signature(SECRET, now, "e-1");

    // Refused before anything is stored.
    assert_eq!(post(&http, &url, &body, None).await, 401, "no signature");
    assert_eq!(
        post(
            &http,
            &url,
            &body,
            Some(&signature("wrong-secret", now, "e-1"))
        )
        .await,
        401,
        "signed with another secret"
    );
    assert_eq!(
        post(&http, &url, &body, Some(&signature(SECRET, now, "e-2"))).await,
        401,
        "a signature of another event"
    );
    assert_eq!(post(&http, &url, &body, Some("not base64!")).await, 401);
    assert_eq!(post(&http, &url, b"not json", Some(&good)).await, 400);
    let stale_at = now - 3 * 24 * 3600;
    let stale = event(
        "e-old",
        stale_at,
        1003,
        "order.updated",
        json!({"orderId": "X"}),
    );
    assert_eq!(
        post(
            &http,
            &url,
            stale.to_string().as_bytes(),
            Some(&signature(SECRET, stale_at, "e-old"))
        )
        .await,
        400,
        "an event from days ago is a replay"
    );
    let no_store = json!({"eventId": "e-3", "eventCreated": now, "eventType": "order.updated"});
    assert_eq!(
        post(
            &http,
            &url,
            no_store.to_string().as_bytes(),
            Some(&signature(SECRET, now, "e-3"))
        )
        .await,
        400
    );
    let huge = vec![b' '; 2 * 1024 * 1024];
    assert_eq!(post(&http, &url, &huge, Some(&good)).await, 413);
    assert_eq!(count(&state.db, inbox).await, 0, "nothing was written");

    // An unknown store is acknowledged and nothing is stored.
    let other = event(
        "e-4",
        now,
        999_999,
        "order.updated",
        json!({"orderId": "Y"}),
    );
    assert_eq!(
        post(
            &http,
            &url,
            other.to_string().as_bytes(),
            Some(&signature(SECRET, now, "e-4"))
        )
        .await,
        200
    );
    assert_eq!(count(&state.db, inbox).await, 0);

    // A good delivery is stored once, however often it comes, and becomes a fetch of the order.
    for _ in 0..3 {
        assert_eq!(post(&http, &url, &body, Some(&good)).await, 200);
    }
    assert_eq!(count(&state.db, inbox).await, 1, "deduplicated by eventId");
    let fetch = eventually(20, || async {
        let row = state
            .db
            .query_one_raw(store::stmt(
                state.db.get_database_backend(),
                "SELECT payload FROM jobs WHERE kind = ?",
                vec![lifecycle::triggers::kinds::FETCH.into()],
            ))
            .await
            .ok()??;
        row.try_get::<String>("", "payload").ok()
    })
    .await
    .expect("the delivery became a fetch job");
    let payload: Value = serde_json::from_str(&fetch).unwrap();
    assert_eq!(
        payload,
        json!({"resource": "orders", "platform_id": "EBJFT"})
    );
    // The body's own fields were not trusted: no order was written from it.
    assert_eq!(
        count(&state.db, "SELECT COUNT(*) AS n FROM orders").await,
        0
    );
    app.shutdown().await;
}
both_backends!(hostile_and_valid_deliveries);
