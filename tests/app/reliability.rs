//! Reliability of the instance itself: the webhook writer is restarted when it dies and
//! `/readyz` says so meanwhile; `/metrics` reads the tables at most once per cache window and
//! can be closed by a bearer token; a shutdown under webhook load keeps every 200 and releases
//! the jobs it was running.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lifecycle::platforms::Credentials;
use lifecycle::platforms::shopify::signature::sign_body;
use lifecycle::server::Running;
use lifecycle::store::entities::job;
use lifecycle::store::jobs::{NewJob, enqueue};
use lifecycle::store::shops::{self, TokenGrant};
use lifecycle::store::{self, Db};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

const SHOP: &str = "reliable.myshopify.com";

/// A launch whose shop API is unreachable at once (nothing listens on port 1), so jobs that
/// webhooks trigger fail fast instead of reaching out.
fn offline_launch(db: &TestDb) -> lifecycle::server::Launch {
    let mut config = test_config(db);
    config.platforms.shopify.api_origin = Some("http://127.0.0.1:1".into());
    launch(config)
}

async fn install(app: &Running) {
    let state = &app.state;
    shops::upsert_installed(
        &state.db,
        "shopify",
        SHOP,
        TokenGrant {
            credentials: Credentials::token("test-token").seal(&state.cipher, SHOP),
            expires_at: None,
            scopes: "read_customers".into(),
        },
    )
    .await
    .unwrap();
}

/// Posts a signed `customers/update` with webhook id `id`; the status, or None when the
/// request did not get an answer (connection refused or closed).
async fn post(http: &reqwest::Client, base: &str, id: &str) -> Option<u16> {
    let body = json!({"id": 7, "admin_graphql_api_id": "gid://shopify/Customer/7",
        "email": "someone@example.com", "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-11-01T10:00:00Z", "tags": ""})
    .to_string();
    http.post(format!("{base}/webhooks/shopify"))
        .header("X-Shopify-Topic", "customers/update")
        .header("X-Shopify-Shop-Domain", SHOP)
        .header("X-Shopify-Webhook-Id", id)
        .header("X-Shopify-API-Version", "2026-07")
        .header(
            "X-Shopify-Hmac-Sha256",
            sign_body(CLIENT_SECRET, body.as_bytes()),
        )
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

async fn stored_ids(db: &Db) -> HashSet<String> {
    query_all(db, "SELECT webhook_id FROM webhook_inbox", vec![])
        .await
        .into_iter()
        .map(|r| r.try_get::<String>("", "webhook_id").unwrap())
        .collect()
}

async fn readyz(http: &reqwest::Client, base: &str) -> (u16, Value) {
    let r = http.get(format!("{base}/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn intake_writer_is_restarted_and_readyz_tells_the_truth(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let mut l = offline_launch(&db);
    l.workers.workers = 0;
    let app = spawn_with(l).await;
    install(&app).await;
    let (http, base) = (reqwest::Client::new(), app.url());
    assert_eq!(post(&http, &base, "before").await, Some(200));
    let (status, body) = readyz(&http, &base).await;
    assert_eq!(
        (status, &body["intake_restarts"]),
        (200, &json!(0)),
        "{body}"
    );

    app.state
        .intake
        .crash_writer_for_tests(Duration::from_millis(1500));
    // The delivery the writer dies on is not acknowledged: the platform will resend it.
    assert_eq!(post(&http, &base, "in-the-crash").await, Some(503));
    let (status, body) = readyz(&http, &base).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["intake_restarts"], 1);
    assert!(
        body["reason"].as_str().unwrap().contains("webhook writer"),
        "{body}"
    );
    // Sent while the writer is down: it waits in the queue for the restarted writer.
    assert_eq!(post(&http, &base, "while-down").await, Some(200));
    let ready = eventually(10, || async {
        let (status, body) = readyz(&http, &base).await;
        (status == 200).then_some(body)
    })
    .await
    .expect("ready again after the restart");
    assert_eq!(ready["intake_restarts"], 1);
    assert_eq!(post(&http, &base, "in-the-crash").await, Some(200));
    assert_eq!(post(&http, &base, "after").await, Some(200));
    let want: HashSet<String> = ["before", "while-down", "in-the-crash", "after"]
        .map(String::from)
        .into();
    assert_eq!(stored_ids(&app.state.db).await, want);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lifecycle_intake_restarts_total 1\n"),
        "{metrics}"
    );
    app.shutdown().await;
}
both_backends!(intake_writer_is_restarted_and_readyz_tells_the_truth);

/// The figure `lifecycle_metrics_table_reads_total` in a scrape.
fn table_reads(body: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix("lifecycle_metrics_table_reads_total "))
        .expect("the counter is in the body")
        .parse()
        .unwrap()
}

async fn metrics_read_tables_once_per_window_and_honour_the_token(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let http = reqwest::Client::new();
    let scrape = |base: String, auth: Option<&'static str>| {
        let http = http.clone();
        async move {
            let mut req = http.get(format!("{base}/metrics"));
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    // Without the setting it is open, and scrapes within the window share one reading.
    let mut l = offline_launch(&db);
    l.workers.workers = 0;
    let app = spawn_with(l).await;
    let (status, first) = scrape(app.url(), None).await;
    assert_eq!(status, 200);
    let (_, second) = scrape(app.url(), None).await;
    assert_eq!((table_reads(&first), table_reads(&second)), (1, 1));
    assert_eq!(app.state.metrics.table_reads(), 1);
    // A job enqueued now shows once the window has passed, from a second reading.
    enqueue(&app.state.db, NewJob::new("waiting").max_attempts(1))
        .await
        .unwrap();
    tokio::time::sleep(lifecycle::metrics::TABLE_TTL + Duration::from_millis(200)).await;
    let (_, third) = scrape(app.url(), None).await;
    assert_eq!(table_reads(&third), 2);
    assert!(
        third.contains("lifecycle_jobs{state=\"queued\"} 1\n"),
        "{third}"
    );
    app.shutdown().await;

    // With the setting, only its bearer gets the figures.
    let mut config = test_config(&db);
    config.metrics_token = Some("metrics-test-token".into());
    let mut l = launch(config);
    l.workers.workers = 0;
    let app = spawn_with(l).await;
    for auth in [
        None,
        Some("Bearer wrong-token"),
        Some("Bearer metrics-test-token-and-more"),
        Some("Basic metrics-test-token"),
        Some("metrics-test-token"),
        Some("Bearer "),
    ] {
        let (status, body) = scrape(app.url(), auth).await;
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(!body.contains("lifecycle_"), "{auth:?} leaked figures");
    }
    assert_eq!(
        app.state.metrics.table_reads(),
        0,
        "refused scrapes read nothing"
    );
    let (status, body) = scrape(app.url(), Some("Bearer metrics-test-token")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("lifecycle_jobs{state=\"queued\"} 1\n"),
        "{body}"
    );
    // The other endpoints stay open.
    assert_eq!(readyz(&http, &app.url()).await.0, 200);
    app.shutdown().await;
}
both_backends!(metrics_read_tables_once_per_window_and_honour_the_token);

/// Jobs of this kind run until they are stopped.
const ENDLESS: &str = "endless";

async fn shutdown_under_webhook_load_keeps_every_200_and_releases_jobs(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let mut l = with_handler(offline_launch(&db), ENDLESS, |_, _| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    });
    // A lease far longer than the test: only a release lets another instance take the job.
    l.workers.lease = chrono::Duration::seconds(600);
    l.config.shutdown_grace_secs = 1;
    let app = spawn_with(l).await;
    install(&app).await;
    let instance = app.state.instance_id.clone();
    let job_id = enqueue(&app.state.db, NewJob::new(ENDLESS).max_attempts(3))
        .await
        .unwrap()
        .unwrap();
    eventually(20, || async {
        let j = job::Entity::find_by_id(job_id)
            .one(&app.state.db)
            .await
            .unwrap()?;
        (j.state == "running").then_some(())
    })
    .await
    .expect("the endless job runs");

    // 16 senders post webhooks until the server stops answering.
    let base = app.url();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..16)
        .map(|s| {
            let (base, stop) = (base.clone(), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()
                    .unwrap();
                let (mut ok, mut other) = (Vec::new(), 0);
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = format!("load-{s}-{n}");
                    match post(&http, &base, &id).await {
                        Some(200) => ok.push(id),
                        Some(_) => other += 1,
                        None => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                (ok, other)
            })
        })
        .collect();
    let db_conn = app.state.db.clone();
    eventually(30, || async {
        (stored_ids(&db_conn).await.len() >= 200).then_some(())
    })
    .await
    .expect("webhooks are flowing");

    let shutdown = tokio::time::timeout(Duration::from_secs(60), app.shutdown()).await;
    assert!(shutdown.is_ok(), "the instance did not stop within 60 s");
    stop.store(true, Ordering::Relaxed);
    let mut answered = Vec::new();
    for s in senders {
        answered.extend(s.await.unwrap().0);
    }
    // Every 200 is in the inbox.
    let conn = store::connect(&db.url).await.unwrap();
    let stored = stored_ids(&conn).await;
    let missing: Vec<_> = answered.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(answered.len() >= 200, "only {} answered", answered.len());
    assert!(
        missing.is_empty(),
        "{} answered 200 but not stored",
        missing.len()
    );
    // Nothing is left running under this instance's lease; the endless job is queued again,
    // its lease cleared and its attempt refunded.
    let held = query_all(
        &conn,
        "SELECT id FROM jobs WHERE state = 'running' AND locked_by LIKE ?",
        vec![format!("{instance}%").into()],
    )
    .await;
    assert!(held.is_empty(), "{} jobs still held", held.len());
    let j = job::Entity::find_by_id(job_id)
        .one(&conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            j.state.as_str(),
            j.locked_by.as_deref(),
            j.lease_until,
            j.attempts
        ),
        ("queued", None, None, 0)
    );

    // Another instance takes it at once, not after the 600 s lease.
    let mut l = with_handler(offline_launch(&db), ENDLESS, |_, _| async { Ok(()) });
    l.workers.lease = chrono::Duration::seconds(600);
    let next = spawn_with(l).await;
    let done = eventually(20, || async {
        let j = job::Entity::find_by_id(job_id).one(&conn).await.unwrap()?;
        (j.state == "done").then_some(j)
    })
    .await
    .expect("the released job is taken over at once");
    assert_eq!(done.attempts, 1);
    next.shutdown().await;
    conn.close().await.ok();
}
both_backends!(shutdown_under_webhook_load_keeps_every_200_and_releases_jobs);
