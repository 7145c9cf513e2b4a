//! The foundation: health endpoints, durable jobs (scheduling across instances, leases, retries),
//! start-up failures, and tokens at rest.

use std::time::Duration;

use lifecycle::queue::{JobError, Schedule};
use lifecycle::store::entities::job;
use lifecycle::store::jobs::{NewJob, enqueue};
use lifecycle::store::{self, shops};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::both_backends;
use crate::common::*;

async fn health_endpoints_answer(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app(&db).await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/healthz", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{}/readyz", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
    enqueue(
        &app.state.db,
        NewJob::new("nobody-handles-this").max_attempts(1),
    )
    .await
    .unwrap();
    let metrics = eventually(10, || async {
        let body = http
            .get(format!("{}/metrics", app.url()))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        body.contains("lifecycle_jobs{state=\"dead\"} 1")
            .then_some(body)
    })
    .await
    .expect("the dead job shows in /metrics");
    assert!(metrics.contains("lifecycle_http_requests_total{class=\"2xx\"}"));
    assert!(metrics.contains("# TYPE lifecycle_inbox gauge"));
    app.shutdown().await;
}
both_backends!(health_endpoints_answer);

/// Two instances on one database fire the same schedule every second; each tick's job is
/// enqueued and executed exactly once.
async fn scheduled_job_runs_once_per_tick_across_instances(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let make = || {
        let mut l = launch(test_config(&db));
        l.schedules = vec![Schedule {
            cron: "* * * * * *".into(),
            kind: "tick".into(),
            per_shop: false,
            shop_setting: None,
        }];
        // Each execution adds one to the row's progress_done, so the database counts runs.
        with_handler(l, "tick", |state, job: job::Model| async move {
            let backend = state.db.get_database_backend();
            state
                .db
                .execute_raw(store::stmt(
                    backend,
                    "UPDATE jobs SET progress_done = progress_done + 1 WHERE id = ?",
                    vec![job.id.into()],
                ))
                .await?;
            Ok(())
        })
    };
    let a = spawn_with(make()).await;
    let b = spawn_with(make()).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    a.shutdown().await;
    b.shutdown().await;
    // A tick enqueued as the instances stopped waits, durably, for the next instance.
    let mut drain = make();
    drain.schedules.clear();
    let c = spawn_with(drain).await;
    eventually(20, || async {
        let queued = job::Entity::find()
            .filter(job::Column::Kind.eq("tick"))
            .filter(job::Column::State.is_in(["queued", "running"]))
            .all(&c.state.db)
            .await
            .ok()?;
        queued.is_empty().then_some(())
    })
    .await
    .expect("the last ticks are drained");
    c.shutdown().await;

    let conn = store::connect(&db.url).await.unwrap();
    let jobs = job::Entity::find()
        .filter(job::Column::Kind.eq("tick"))
        .all(&conn)
        .await
        .unwrap();
    assert!(
        jobs.len() >= 8,
        "about ten ticks in ten seconds, got {}",
        jobs.len()
    );
    let mut ticks: Vec<String> = jobs.iter().map(|j| j.dedupe_key.clone().unwrap()).collect();
    ticks.sort();
    ticks.dedup();
    assert_eq!(ticks.len(), jobs.len(), "one row per tick");
    for j in &jobs {
        assert_eq!(j.state, "done", "job {} ended {}", j.id, j.state);
        assert_eq!(
            j.progress_done, 1,
            "tick {:?} ran {} times",
            j.dedupe_key, j.progress_done
        );
    }
}
both_backends!(scheduled_job_runs_once_per_tick_across_instances);

/// A shop with its own schedule is left out of the app-wide firing and enqueued at its own
/// time instead, once per tick whichever instance fires; uninstalled shops are never enqueued.
async fn shop_schedule_overrides_the_app_schedule(backend: Backend) {
    use chrono::{TimeDelta, TimeZone, Utc};
    use lifecycle::queue::scheduler::{enqueue_shop_schedules, enqueue_tick, parse_cron};
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app(&db).await;
    let state = &app.state;
    let install = |domain: &'static str| async move {
        let grant = shops::TokenGrant {
            credentials: lifecycle::platforms::Credentials::token("unused")
                .seal(&state.cipher, domain),
            expires_at: None,
            scopes: "read_customers".into(),
        };
        shops::upsert_installed(&state.db, "shopify", domain, grant)
            .await
            .unwrap()
    };
    let own = install("own-time.myshopify.com").await;
    let default = install("app-time.myshopify.com").await;
    let gone = install("gone.myshopify.com").await;
    shops::save_settings(
        &state.db,
        own.id,
        &serde_json::json!({"schedule": "30 4 * * *"}),
    )
    .await
    .unwrap();
    shops::save_settings(
        &state.db,
        gone.id,
        &serde_json::json!({"schedule": "30 4 * * *"}),
    )
    .await
    .unwrap();
    shops::mark_uninstalled(&state.db, gone.id).await.unwrap();
    let entry = Schedule {
        cron: "0 0 3 * * *".into(),
        kind: "nightly-test".into(),
        per_shop: true,
        shop_setting: Some("schedule"),
    };
    let app_cron = parse_cron(&entry.cron).unwrap();
    let three = Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0).unwrap();
    let half_four = Utc.with_ymd_and_hms(2026, 11, 23, 4, 30, 0).unwrap();
    let ms = TimeDelta::milliseconds;
    assert_eq!(
        enqueue_tick(
            &state.db,
            state.config.schedule_spread_secs,
            &entry,
            &app_cron,
            three + ms(200)
        )
        .await
        .unwrap(),
        1
    );
    assert_eq!(
        enqueue_shop_schedules(&state.db, &entry, three + ms(200))
            .await
            .unwrap(),
        0
    );
    // Two instances fire the dispatcher at 04:30; one job.
    assert_eq!(
        enqueue_shop_schedules(&state.db, &entry, half_four + ms(300))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        enqueue_shop_schedules(&state.db, &entry, half_four + ms(900))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        enqueue_shop_schedules(&state.db, &entry, half_four + TimeDelta::minutes(1))
            .await
            .unwrap(),
        0,
        "the next minute is not a tick of the shop's schedule"
    );
    let jobs = job::Entity::find()
        .filter(job::Column::Kind.eq("nightly-test"))
        .all(&state.db)
        .await
        .unwrap();
    let mut shops_enqueued: Vec<(Option<i64>, String)> = jobs
        .iter()
        .map(|j| (j.shop_id, j.dedupe_key.clone().unwrap_or_default()))
        .collect();
    shops_enqueued.sort();
    let mut expected = vec![
        (
            Some(own.id),
            format!("sched:nightly-test:{}:{}", own.id, half_four.timestamp()),
        ),
        (
            Some(default.id),
            format!("sched:nightly-test:{}:{}", default.id, three.timestamp()),
        ),
    ];
    expected.sort();
    assert_eq!(shops_enqueued, expected);
    app.shutdown().await;
}
both_backends!(shop_schedule_overrides_the_app_schedule);

/// A worker that dies mid-job keeps its lease until it expires; then another instance takes
/// the job over and completes it exactly once.
async fn job_of_a_dead_worker_is_taken_over_after_its_lease(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let slow = |l| {
        with_handler(l, "slow", |state, job: job::Model| async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let backend = state.db.get_database_backend();
            state
                .db
                .execute_raw(store::stmt(
                    backend,
                    "UPDATE jobs SET progress_done = progress_done + 1 WHERE id = ?",
                    vec![job.id.into()],
                ))
                .await?;
            Ok(())
        })
    };
    let a = spawn_with(slow(launch(test_config(&db)))).await;
    let id = enqueue(&a.state.db, NewJob::new("slow"))
        .await
        .unwrap()
        .unwrap();
    let holder = eventually(10, || async {
        let j = store::jobs::get(&a.state.db, id).await.ok()??;
        (j.state == "running").then_some(j.locked_by)
    })
    .await
    .expect("instance A claims the job");
    a.kill().await;

    let b = spawn_with(slow(launch(test_config(&db)))).await;
    let done = eventually(20, || async {
        let j = store::jobs::get(&b.state.db, id).await.ok()??;
        (j.state == "done").then_some(j)
    })
    .await
    .expect("instance B completes the job after A's lease expired");
    assert_eq!(
        done.progress_done, 1,
        "the job's effect happened exactly once"
    );
    assert_eq!(
        done.attempts, 2,
        "one claim by the dead worker, one by the new one"
    );
    assert_ne!(done.locked_by, holder);
    b.shutdown().await;
}
both_backends!(job_of_a_dead_worker_is_taken_over_after_its_lease);

async fn always_failing_job_ends_dead_with_its_error(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let l = with_handler(launch(test_config(&db)), "fails", |_s, _j| async {
        Err::<(), _>(JobError::Retry("upstream said no".into()))
    });
    let app = spawn_with(l).await;
    let id = enqueue(&app.state.db, NewJob::new("fails").max_attempts(3))
        .await
        .unwrap()
        .unwrap();
    let dead = eventually(20, || async {
        let j = store::jobs::get(&app.state.db, id).await.ok()??;
        (j.state == "dead").then_some(j)
    })
    .await
    .expect("the job is parked as dead");
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_error.as_deref(), Some("upstream said no"));
    // A duplicate dedupe key collapses into the existing row.
    let first = enqueue(&app.state.db, NewJob::new("fails").dedupe("k1"))
        .await
        .unwrap();
    let second = enqueue(&app.state.db, NewJob::new("fails").dedupe("k1"))
        .await
        .unwrap();
    assert!(first.is_some() && second.is_none());
    app.shutdown().await;
}
both_backends!(always_failing_job_ends_dead_with_its_error);

async fn a_job_whose_payload_does_not_parse_fails_and_does_nothing(backend: Backend) {
    let Some(db) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app(&db).await;
    let state = &app.state;
    let grant = shops::TokenGrant {
        credentials: lifecycle::platforms::Credentials::token("unused")
            .seal(&state.cipher, "typed.myshopify.com"),
        expires_at: None,
        scopes: "read_customers".into(),
    };
    let shop = shops::upsert_installed(&state.db, "shopify", "typed.myshopify.com", grant)
        .await
        .unwrap();
    // `"true"` is not a boolean: read as its default it would push for real.
    let id = enqueue(
        &state.db,
        NewJob::new(lifecycle::triggers::kinds::SEGMENT)
            .shop(shop.id)
            .payload(serde_json::json!({"dry_run": "true"})),
    )
    .await
    .unwrap()
    .unwrap();
    let dead = eventually(20, || async {
        let j = store::jobs::get(&state.db, id).await.ok()??;
        (j.state == "dead").then_some(j)
    })
    .await
    .expect("the job is parked as dead");
    assert_eq!(dead.attempts, 1, "a malformed payload is not retried");
    let error = dead.last_error.unwrap_or_default();
    assert!(
        error.contains("payload") && error.contains("segment"),
        "{error}"
    );
    let runs = state
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            state.db.get_database_backend(),
            format!(
                "SELECT COUNT(*) AS n FROM segment_runs WHERE shop_id = {}",
                shop.id
            ),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(runs, 0, "no run started");
    app.shutdown().await;
}
both_backends!(a_job_whose_payload_does_not_parse_fails_and_does_nothing);

/// A wrong `DATABASE_URL` fails at once with the real reason, not after the pool's acquire
/// timeout with "pool timed out".
#[test]
fn serve_against_an_unreachable_database_exits_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifecycle"))
        .args(["serve"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nowhere")
        .env(
            "LIFECYCLE_ENCRYPTION_KEY",
            lifecycle::secrets::Cipher::generate_key(),
        )
        .env(
            "LIFECYCLE_SESSION_KEY",
            lifecycle::secrets::Cipher::generate_key(),
        )
        .env("LIFECYCLE_BIND", "127.0.0.1:0")
        .env("LIFECYCLE_DATA_DIR", dir.path())
        .env("LIFECYCLE_LOG", "off")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, got: {stderr}");
    assert!(
        lines[0].contains("cannot connect to the database"),
        "{stderr}"
    );
    assert!(
        lines[0].contains("127.0.0.1:1"),
        "names the target: {stderr}"
    );
    assert!(
        lines[0].to_ascii_lowercase().contains("connection refused"),
        "names the reason: {stderr}"
    );
    assert!(!lines[0].contains("timed out"), "{stderr}");
    assert!(
        took < lifecycle::store::ACQUIRE_TIMEOUT,
        "fails before the pool's acquire timeout ({took:?})"
    );
    assert!(!stderr.contains("panicked"));
}

/// PostgreSQL is a production database: without explicit keys `serve` refuses to start, says
/// which variable is missing, and writes no key file.
#[test]
fn serve_with_postgres_and_no_keys_refuses_to_start() {
    for (set, missing) in [
        (None, "LIFECYCLE_ENCRYPTION_KEY"),
        (Some("LIFECYCLE_ENCRYPTION_KEY"), "LIFECYCLE_SESSION_KEY"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lifecycle"));
        cmd.args(["serve"])
            .env_remove("LIFECYCLE_ENCRYPTION_KEY")
            .env_remove("LIFECYCLE_SESSION_KEY")
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nowhere")
            .env("LIFECYCLE_BIND", "127.0.0.1:0")
            .env("LIFECYCLE_DATA_DIR", dir.path())
            .env("LIFECYCLE_LOG", "off");
        if let Some(var) = set {
            cmd.env(var, lifecycle::secrets::Cipher::generate_key());
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "refuses without {missing}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{missing} must be set when DATABASE_URL is PostgreSQL"
            )),
            "{stderr}"
        );
        assert!(
            !stderr.contains("cannot connect"),
            "checked before connecting: {stderr}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no key file is written for a production database"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_tokens_are_not_readable_in_the_database_file() {
    let db = fresh_db(Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    let token = "plain-access-token-4f1c2a9e";
    let grant = shops::TokenGrant {
        credentials: lifecycle::platforms::Credentials::token(token)
            .seal(&app.state.cipher, "token-test.myshopify.com"),
        expires_at: None,
        scopes: "read_customers".into(),
    };
    let shop = shops::upsert_installed(&app.state.db, "shopify", "token-test.myshopify.com", grant)
        .await
        .unwrap();
    let stored = shop.credentials.unwrap();
    assert_eq!(
        lifecycle::platforms::Credentials::open(
            &app.state.cipher,
            &stored,
            "token-test.myshopify.com"
        )
        .unwrap()
        .access_token,
        token
    );
    app.shutdown().await;
    let mut raw = std::fs::read(db.sqlite_file.as_ref().unwrap()).unwrap();
    if let Ok(wal) = std::fs::read(db.sqlite_file.as_ref().unwrap().with_extension("db-wal")) {
        raw.extend(wal);
    }
    let needle = token.as_bytes();
    assert!(
        !raw.windows(needle.len()).any(|w| w == needle),
        "the token is in the database file in clear"
    );
    assert!(
        raw.windows(8).any(|w| w == b"token-te"),
        "sanity: the shop row itself is in the file"
    );
}
