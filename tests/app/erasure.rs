//! Issue 15, "Erasure that erases": applied webhooks keep no raw body; a customer's data export
//! is complete and downloadable by the merchant until it expires; `customers/redact` leaves the
//! customer's e-mail and name in no column of any table; `shop/redact` leaves no row of the shop
//! in any table. The tables are read from the database's catalogue, so a table added later is
//! covered without editing these tests. Retention prunes settled rows past their age only.

use chrono::{TimeDelta, Utc};
use lifecycle::store::{self, Db, catalog};
use sea_orm::{ConnectionTrait, DatabaseBackend, Value};
use serde_json::{Value as Json, json};

use crate::both_backends;
use crate::common::*;

async fn exec(db: &Db, sql: &str, values: Vec<Value>) {
    db.execute_raw(store::stmt(db.get_database_backend(), sql, values))
        .await
        .unwrap();
}

async fn number(db: &Db, sql: &str, values: Vec<Value>) -> i64 {
    query_all(db, sql, values).await[0]
        .try_get::<i64>("", "n")
        .unwrap()
}

/// The catalogue's tables; it must list the tables we know, or the scans below prove nothing.
async fn tables(db: &Db) -> Vec<catalog::Table> {
    let tables = catalog::tables(db).await.unwrap();
    for known in [
        "shops",
        "customers",
        "orders",
        "webhook_inbox",
        "jobs",
        "privacy_requests",
        "oauth_nonces",
        "discount_codes",
    ] {
        assert!(
            tables.iter().any(|t| t.name == known),
            "the catalogue lists `{known}`"
        );
    }
    tables
}

/// Every (table, column) whose text holds `needle` (any case), raw bodies included.
async fn columns_holding(db: &Db, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
    for t in tables(db).await {
        for (column, is_text) in &t.columns {
            if !is_text {
                continue;
            }
            let (tq, cq) = (catalog::quote(&t.name), catalog::quote(column));
            // PostgreSQL shows bytes as hex text (`\x7b22…`); SQLite casts them to text.
            let sql = match db.get_database_backend() {
                DatabaseBackend::Postgres => format!(
                    "SELECT COUNT(*) AS n FROM {tq} WHERE lower({cq}::text) LIKE ? OR lower({cq}::text) LIKE ?"
                ),
                _ => format!(
                    "SELECT COUNT(*) AS n FROM {tq} WHERE lower(CAST({cq} AS TEXT)) LIKE ? OR lower(CAST({cq} AS TEXT)) LIKE ?"
                ),
            };
            let n = number(
                db,
                &sql,
                vec![
                    format!("%{}%", needle.to_lowercase()).into(),
                    format!("%{hex}%").into(),
                ],
            )
            .await;
            if n > 0 {
                found.push(format!("{}.{column} ({n} row(s))", t.name));
            }
        }
    }
    found
}

async fn one(db: &Db, sql: &str, values: Vec<Value>) -> Option<sea_orm::QueryResult> {
    query_all(db, sql, values).await.into_iter().next()
}

async fn erasure_leaves_nothing_of_the_customer_or_the_shop(backend: Backend) {
    let Some(env) = env(backend).await else {
        return;
    };
    let cookie = session_cookie(&env.install().await);
    let db = &env.app.state.db;
    let shop = env.installed_shop().await;
    let customers = env
        .sandbox_get(&format!("/_sandbox/shops/{}/customers", env.shop))
        .await;
    let c = &customers.as_array().unwrap()[0];
    let cid = c["id"].as_u64().unwrap();
    let key = env.customer_key(cid);
    let name = "Quintessa";
    let r = env
        .http
        .patch(env.sandbox_url(&format!("/_sandbox/shops/{}/customers/{cid}", env.shop)))
        .json(&json!({"first_name": name}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let email = eventually(30, || async {
        let r = one(
            db,
            "SELECT email, first_name FROM customers WHERE shop_id = ? AND platform_id = ?",
            vec![shop.id.into(), key.clone().into()],
        )
        .await?;
        let first: Option<String> = r.try_get("", "first_name").ok()?;
        (first.as_deref() == Some(name))
            .then(|| r.try_get::<Option<String>>("", "email").ok().flatten())
            .flatten()
    })
    .await
    .expect("the customer's update is applied");
    let order = env
        .sandbox_post(
            &format!("/_sandbox/shops/{}/customers/{cid}/orders", env.shop),
            json!({"amount": "12.00"}),
        )
        .await;
    let order_key = env.order_key(&order);
    eventually(30, || async {
        one(
            db,
            "SELECT id FROM orders WHERE shop_id = ? AND platform_id = ?",
            vec![shop.id.into(), order_key.clone().into()],
        )
        .await
    })
    .await
    .expect("the order is applied");
    wait_work_done(db, shop.id).await;

    // Applied webhooks keep what dedupe and the audit need, not their raw bodies.
    let applied = number(
        db,
        "SELECT COUNT(*) AS n FROM webhook_inbox WHERE shop_id = ? AND state = 'done'",
        vec![shop.id.into()],
    )
    .await;
    assert!(applied >= 2, "webhooks were applied: {applied}");
    assert_eq!(
        number(
            db,
            "SELECT COUNT(*) AS n FROM webhook_inbox WHERE shop_id = ? AND state = 'done' AND length(body) > 0",
            vec![shop.id.into()],
        )
        .await,
        0,
        "applied webhooks keep no raw body"
    );

    // A webhook about the customer still waiting (due far ahead, so no worker takes it).
    let later = Utc::now() + TimeDelta::days(1);
    exec(
        db,
        "INSERT INTO webhook_inbox (created_at, updated_at, platform, shop_id, shop_domain, topic, webhook_id, body, state, attempts, run_at) \
         VALUES (?, ?, ?, ?, ?, 'customers/update', 'waiting-1', ?, 'queued', 0, ?)",
        vec![
            Utc::now().into(),
            Utc::now().into(),
            env.platform.into(),
            shop.id.into(),
            env.shop.clone().into(),
            json!({"id": cid, "email": email, "first_name": name}).to_string().into_bytes().into(),
            later.into(),
        ],
    )
    .await;

    // Data request: a complete export, downloadable from the activity page.
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/trigger", env.shop),
        json!({"topic": "customers/data_request", "customer_id": cid}),
    )
    .await;
    let request_id = eventually(30, || async {
        one(
            db,
            "SELECT id FROM privacy_requests WHERE shop_id = ? AND kind = 'customers/data_request'",
            vec![shop.id.into()],
        )
        .await?
        .try_get::<i64>("", "id")
        .ok()
    })
    .await
    .expect("the data request is recorded");
    let (status, page) = admin_get(&env, &cookie, "/admin/activity").await;
    assert_eq!(status, 200);
    let link = format!("/api/data-requests/{request_id}/export.json");
    assert!(page.contains(&link), "the activity page offers the export");
    let (status, body) = admin_get(&env, &cookie, &link).await;
    assert_eq!(status, 200, "{body}");
    let export: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(export["customer"]["email"], email.as_str(), "{export}");
    assert_eq!(export["customer"]["first_name"], name, "{export}");
    assert!(
        export["orders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["platform_id"] == order_key.as_str()),
        "{export}"
    );
    for part in ["scores", "tags", "discount_codes"] {
        assert!(export[part].is_array(), "the export has {part}: {export}");
    }
    let (status, _) = admin_get(
        &env,
        &cookie,
        &format!("/api/data-requests/{}/export.json", request_id + 1000),
    )
    .await;
    assert_eq!(status, 404, "only this shop's requests are found");

    // Customer redact: the e-mail and the name are in no column of any table.
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/trigger", env.shop),
        json!({"topic": "customers/redact", "customer_id": cid}),
    )
    .await;
    eventually(30, || async {
        let r = one(
            db,
            "SELECT redacted_at FROM customers WHERE shop_id = ? AND platform_id = ?",
            vec![shop.id.into(), key.clone().into()],
        )
        .await?;
        r.try_get::<Option<chrono::DateTime<Utc>>>("", "redacted_at")
            .ok()
            .flatten()
    })
    .await
    .expect("the customer is redacted");
    wait_work_done(db, shop.id).await;
    assert_eq!(
        columns_holding(db, &email).await,
        Vec::<String>::new(),
        "the e-mail is gone"
    );
    assert_eq!(
        columns_holding(db, name).await,
        Vec::<String>::new(),
        "the name is gone"
    );
    let (status, _) = admin_get(&env, &cookie, &link).await;
    assert_eq!(status, 404, "the export went with the customer");

    // Shop redact: no row of the shop in any table, by id or by domain.
    env.sandbox_post(
        &format!("/_sandbox/shops/{}/trigger", env.shop),
        json!({"topic": "shop/redact"}),
    )
    .await;
    eventually(30, || async {
        store::shops::get(db, shop.id)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await
    .expect("the shop is erased");
    let mut left = Vec::new();
    for t in tables(db).await {
        if t.has("shop_id") {
            let n = number(
                db,
                &format!(
                    "SELECT COUNT(*) AS n FROM {} WHERE shop_id = ?",
                    catalog::quote(&t.name)
                ),
                vec![shop.id.into()],
            )
            .await;
            if n > 0 {
                left.push(format!("{} ({n} row(s) by shop_id)", t.name));
            }
        }
    }
    left.extend(columns_holding(db, &env.shop).await);
    assert_eq!(left, Vec::<String>::new(), "nothing of the shop is left");
    let (status, _) = admin_get(&env, &cookie, &link).await;
    assert_ne!(status, 200, "no export survives the shop");
    env.shutdown().await;
}
both_backends!(erasure_leaves_nothing_of_the_customer_or_the_shop);

async fn retention_prunes_settled_rows_past_their_age(backend: Backend) {
    let Some(tdb) = fresh_db(backend).await else {
        return;
    };
    let app = spawn_app(&tdb).await;
    let db = &app.state.db;
    let days = i64::from(app.state.config.retention_days);
    let now = Utc::now();
    let old = now - TimeDelta::days(days + 1);
    let new = now - TimeDelta::days(days - 1);
    let future = now + TimeDelta::days(1);
    for (id, state, at) in [
        ("old-done", "done", old),
        ("old-failed", "failed", old),
        ("old-queued", "queued", old),
        ("new-done", "done", new),
    ] {
        // Waiting rows are due later, so no worker applies them during the test.
        exec(
            db,
            "INSERT INTO webhook_inbox (created_at, updated_at, platform, shop_id, shop_domain, topic, webhook_id, body, state, attempts, run_at) \
             VALUES (?, ?, 'shopify', 1, 'a.example', 't', ?, ?, ?, 0, ?)",
            vec![at.into(), at.into(), id.into(), Vec::<u8>::new().into(), state.into(), future.into()],
        )
        .await;
    }
    for (key, state, at) in [
        ("old-done", "done", old),
        ("old-dead", "dead", old),
        ("old-queued", "queued", old),
        ("new-done", "done", new),
    ] {
        exec(
            db,
            "INSERT INTO jobs (created_at, updated_at, kind, shop_id, dedupe_key, state, max_attempts, run_at) \
             VALUES (?, ?, 'nothing', 1, ?, ?, 1, ?)",
            vec![at.into(), at.into(), key.into(), state.into(), future.into()],
        )
        .await;
    }
    for (detail, at) in [("old", old), ("new", new)] {
        exec(
            db,
            "INSERT INTO writeback_audit (shop_id, customer_platform_id, action, detail, reason, dry_run, outcome, at) \
             VALUES (1, 'c', 'tag', ?, 'r', false, 'ok', ?)",
            vec![detail.into(), at.into()],
        )
        .await;
    }
    for (request, expires) in [("expired", now - TimeDelta::hours(1)), ("current", future)] {
        exec(
            db,
            "INSERT INTO privacy_requests (shop_id, kind, customer_platform_id, request_id, export, summary, received_at, completed_at, expires_at) \
             VALUES (1, 'customers/data_request', 'c', ?, '{\"customer\":{}}', 's', ?, ?, ?)",
            vec![request.into(), old.into(), old.into(), expires.into()],
        )
        .await;
    }
    // The scheduled job, as the scheduler enqueues it.
    let job = store::jobs::enqueue(
        db,
        store::jobs::NewJob::new(lifecycle::triggers::kinds::RETENTION),
    )
    .await
    .unwrap()
    .unwrap();
    eventually(60, || async {
        let r = one(db, "SELECT state FROM jobs WHERE id = ?", vec![job.into()]).await?;
        (r.try_get::<String>("", "state").ok()? == "done").then_some(())
    })
    .await
    .expect("the retention job ran");
    let names = |sql: &'static str, col: &'static str| async move {
        let mut v: Vec<String> = query_all(db, sql, vec![])
            .await
            .iter()
            .map(|r| r.try_get::<String>("", col).unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names("SELECT webhook_id FROM webhook_inbox", "webhook_id").await,
        ["new-done", "old-queued"],
        "settled webhooks past the age are pruned; waiting ones never"
    );
    assert_eq!(
        names(
            "SELECT dedupe_key FROM jobs WHERE shop_id = 1",
            "dedupe_key"
        )
        .await,
        ["new-done", "old-queued"]
    );
    assert_eq!(
        names("SELECT detail FROM writeback_audit", "detail").await,
        ["new"]
    );
    assert_eq!(
        names(
            "SELECT request_id FROM privacy_requests WHERE export <> '{}'",
            "request_id"
        )
        .await,
        ["current"],
        "an expired export is emptied"
    );
    app.shutdown().await;
}
both_backends!(retention_prunes_settled_rows_past_their_age);
