//! The admin in a real browser: headless Chromium driven over WebDriver by the system's
//! chromedriver, which the test starts on a free port. The flow is a merchant's first visit
//! after the install: overview with charts, a custom segment (a mistake first, then a valid
//! rule with its preview), an offer enabled and saved, a dry run and its plan. Screenshots of
//! every page go to `screenshots/` for review.
//!
//! chromedriver missing is a failure, not a skip: CI installs it (`.ci/run`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use lifecycle::store;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        for bin in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the browser tests need Debian's chromium and chromium-driver \
                 (apt-get install -y chromium chromium-driver; .ci/run installs them)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        let ready = eventually(30, || async {
            let r = reqwest::get(&status).await.ok()?;
            let v: Value = r.json().await.ok()?;
            (v["value"]["ready"] == true).then_some(())
        })
        .await;
        assert!(ready.is_some(), "chromedriver did not become ready");
        Driver { child, url }
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1280,2000", "--hide-scrollbars"]
            }),
        );
        // chromedriver is local plain HTTP: no TLS stack needed.
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, backend: Backend, name: &str) {
    let png = c.screenshot().await.unwrap();
    let backend = format!("{backend:?}").to_lowercase();
    std::fs::write(shots_dir().join(format!("{backend}-{name}.png")), png).unwrap();
}

async fn text_of(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Waits (a wait, not a timing assertion) for an element's text to satisfy `pred`.
async fn wait_text(c: &Client, css: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let found = eventually(60, || async {
        let t = text_of(c, css).await?;
        pred(&t).then_some(t)
    })
    .await;
    match found {
        Some(t) => t,
        None => panic!(
            "{what}: {css} reads {:?}",
            text_of(c, css).await.unwrap_or_default()
        ),
    }
}

pub(crate) async fn wait_job_done(db: &store::Db, shop_id: i64, kind: &str) {
    let done = eventually(240, || async {
        let rows = db
            .query_all_raw(store::stmt(
                db.get_database_backend(),
                "SELECT state, last_error FROM jobs WHERE shop_id = ? AND kind = ? ORDER BY id DESC",
                vec![shop_id.into(), kind.into()],
            ))
            .await
            .ok()?;
        let state: String = rows.first()?.try_get("", "state").ok()?;
        assert_ne!(state, "dead", "{kind} job died");
        (state == "done").then_some(())
    })
    .await;
    assert!(done.is_some(), "{kind} job finished");
}

async fn mutation_count(env: &Env) -> usize {
    env.sandbox_get(&format!("/_sandbox/shops/{}/requests", env.shop))
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "mutation")
        .count()
}

async fn merchant_flow_in_chromium(backend: Backend) {
    let driver = Driver::start().await;
    let Some(env) = env_with(
        backend,
        EnvOptions {
            customers: 150,
            // The largest API budget, so the backfill is not paced by throttling.
            plan: lifecycle_sandbox::Plan::Enterprise,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let c = driver.browser().await;
    let base = env.app.url();
    // The install as the demo does it, in the browser: the app-store link, OAuth, and the
    // callback that sets the session cookie and lands on the overview.
    let kickoff = env
        .sandbox_get(&format!("/_sandbox/shops/{}/install_url", env.shop))
        .await;
    c.goto(kickoff["install_url"].as_str().unwrap())
        .await
        .unwrap();
    let landed = c.current_url().await.unwrap();
    assert_eq!(
        landed.path(),
        "/admin",
        "the install lands on the overview: {landed}"
    );
    wait_text(&c, "main h1", "the overview", |t| t == "Overview").await;
    shot(&c, backend, "0-overview-just-installed").await;
    let shop = env.installed_shop().await;
    let db = env.app.state.db.clone();
    // The backfill (sync) and the segment run it triggers (analysis) fill the overview.
    let started = std::time::Instant::now();
    wait_job_done(&db, shop.id, lifecycle::triggers::kinds::BACKFILL).await;
    eprintln!("backfill took {:?}", started.elapsed());
    wait_job_done(&db, shop.id, "segment").await;
    eprintln!("backfill and analysis took {:?}", started.elapsed());

    // Overview: figures and non-empty charts.
    c.goto(&format!("{base}/admin?shop={}", env.shop))
        .await
        .unwrap();
    let customers = wait_text(&c, "#kpi-customers", "customer count", |t| t != "0").await;
    assert_eq!(customers, "150");
    let lines = c
        .find_all(Locator::Css("svg.chart polyline.line"))
        .await
        .unwrap();
    let bars = c
        .find_all(Locator::Css("svg.chart rect.bar"))
        .await
        .unwrap();
    let cells = c.find_all(Locator::Css("svg.heatmap rect")).await.unwrap();
    assert!(
        lines.len() >= 3,
        "monthly line charts drawn: {}",
        lines.len()
    );
    assert!(
        bars.len() >= 5,
        "revenue and CLV bars drawn: {}",
        bars.len()
    );
    assert_eq!(cells.len(), 25, "the RFM grid has 5 × 5 cells");
    let points = lines[0].attr("points").await.unwrap().unwrap_or_default();
    assert!(
        points.split_whitespace().count() >= 2,
        "a line with points: {points}"
    );
    let label = c
        .find(Locator::Css("svg.chart"))
        .await
        .unwrap()
        .attr("aria-label")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(label.contains("months"), "charts are labelled: {label}");
    shot(&c, backend, "1-overview").await;

    // Segments: an invalid rule first; the message appears under the place it names.
    c.goto(&format!("{base}/admin/segments")).await.unwrap();
    let rule = c.find(Locator::Id("rule-input")).await.unwrap();
    c.find(Locator::Id("segment-key"))
        .await
        .unwrap()
        .send_keys("repeat-buyers")
        .await
        .unwrap();
    let bad = "number_of_orders >= 2 AND amount_spent >";
    rule.send_keys(bad).await.unwrap();
    let msg = wait_text(&c, "#rule-error", "the rule error", |t| {
        t.contains("Column")
    })
    .await;
    assert!(msg.starts_with("Column 41:"), "{msg}");
    assert!(msg.contains("expected a number"), "{msg}");
    let marker = text_of(&c, "#rule-marker").await.unwrap_or_default();
    assert_eq!(
        marker.find('^'),
        Some(bad.len()),
        "caret under the end: {marker:?}"
    );
    // Geometrically: the caret sits under the rule's text at that offset, just below the input.
    let geo = c
        .execute(
            r#"const inp = document.querySelector('#rule-input'), m = document.querySelector('#rule-marker');
               const i = m.textContent.indexOf('^'), r = document.createRange();
               r.setStart(m.firstChild, i); r.setEnd(m.firstChild, i + 1);
               const caret = r.getBoundingClientRect(), box = inp.getBoundingClientRect(), st = getComputedStyle(inp);
               const ctx = document.createElement('canvas').getContext('2d'); ctx.font = st.font;
               const x = box.left + parseFloat(st.paddingLeft) + parseFloat(st.borderLeftWidth) + ctx.measureText(inp.value.slice(0, i)).width;
               return [caret.left, x, caret.top - box.bottom];"#,
            vec![],
        )
        .await
        .unwrap();
    let (caret_x, text_x, gap) = (
        geo[0].as_f64().unwrap(),
        geo[1].as_f64().unwrap(),
        geo[2].as_f64().unwrap(),
    );
    assert!(
        (caret_x - text_x).abs() < 3.0,
        "caret at x={caret_x}, error text at x={text_x}"
    );
    assert!(
        (-1.0..30.0).contains(&gap),
        "the caret line is right under the input ({gap}px)"
    );
    shot(&c, backend, "2-segments-error").await;

    // Then a valid rule: the error goes, the preview counts.
    rule.clear().await.unwrap();
    rule.send_keys("number_of_orders >= 2").await.unwrap();
    wait_text(&c, "#rule-ok", "the valid rule", |t| t.starts_with("Valid")).await;
    assert!(
        !c.find(Locator::Id("rule-error"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "the error is gone"
    );
    c.find(Locator::Id("preview-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let preview = wait_text(&c, "#preview-count", "the preview", |t| t.contains("match")).await;
    let count: usize = preview.split_whitespace().next().unwrap().parse().unwrap();
    assert!(count > 0 && preview.contains("of 150"), "{preview}");
    let sample = c
        .find_all(Locator::Css("#preview-sample tbody tr"))
        .await
        .unwrap();
    assert_eq!(sample.len(), count.min(10), "a sample of the matches");
    shot(&c, backend, "3-segments-preview").await;
    c.find(Locator::Id("save-segment"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let row = eventually(60, || async {
        c.find(Locator::Css("#segments-table tr[data-key='repeat-buyers']"))
            .await
            .ok()
    })
    .await
    .expect("the saved segment is listed");
    let _ = row;
    let saved: Value = serde_json::from_str(&env.installed_shop().await.settings).unwrap();
    assert_eq!(
        saved["segments"]["custom"][0]["rule"],
        "number_of_orders >= 2"
    );
    shot(&c, backend, "4-segments-saved").await;

    // Offers: enable win-back with a budget, save.
    c.goto(&format!("{base}/admin/offers")).await.unwrap();
    let win_back = c
        .find(Locator::Css("fieldset[data-offer='win_back']"))
        .await
        .unwrap();
    let enabled = win_back.find(Locator::Css("[name=enabled]")).await.unwrap();
    assert!(
        !enabled.is_selected().await.unwrap(),
        "offers start disabled"
    );
    enabled.click().await.unwrap();
    let budget = win_back
        .find(Locator::Css("[name=budget_per_run]"))
        .await
        .unwrap();
    budget.clear().await.unwrap();
    budget.send_keys("25").await.unwrap();
    // Dry-run mode for the shop, so nothing in the background sends either.
    let dry_toggle = c.find(Locator::Id("dry-run-toggle")).await.unwrap();
    assert!(!dry_toggle.is_selected().await.unwrap());
    dry_toggle.click().await.unwrap();
    c.find(Locator::Id("save-settings"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#settings-status", "saving", |t| t == "Settings saved.").await;
    let saved: Value = serde_json::from_str(&env.installed_shop().await.settings).unwrap();
    assert_eq!(saved["offers"]["win_back"]["enabled"], true);
    assert_eq!(saved["offers"]["win_back"]["budget_per_run"], 25);
    assert_eq!(saved["dry_run"], true);
    assert_eq!(
        saved["segments"]["custom"][0]["key"], "repeat-buyers",
        "other settings kept"
    );
    shot(&c, backend, "5-offers-saved").await;

    // A dry run: the plan shows, nothing is sent to the shop. Work started before the
    // settings changed (re-scoring after the install's pushes) settles first.
    wait_work_done(&db, shop.id).await;
    let sent_before = mutation_count(&env).await;
    c.find(Locator::Id("dry-run-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let total = wait_text(&c, "#plan-total", "the plan", |t| t != "0").await;
    let items = c
        .find_all(Locator::Css("#plan-items tbody tr"))
        .await
        .unwrap();
    assert!(!items.is_empty(), "planned writes listed ({total})");
    let plan_text = text_of(&c, "#plan-items").await.unwrap();
    assert!(
        plan_text.contains("repeat-buyers"),
        "the new segment's tags are planned"
    );
    assert_eq!(
        mutation_count(&env).await,
        sent_before,
        "a dry run sends nothing"
    );
    shot(&c, backend, "6-offers-plan").await;

    // The remaining pages.
    c.goto(&format!("{base}/admin/customers")).await.unwrap();
    let first = c
        .find(Locator::Css("table.table tbody tr td a"))
        .await
        .expect("customers are listed");
    shot(&c, backend, "7-customers").await;
    first.click().await.unwrap();
    wait_text(&c, "main h1", "customer page", |t| !t.is_empty()).await;
    let body = text_of(&c, "main").await.unwrap();
    assert!(
        body.contains("Features") && body.contains("Order history"),
        "{body}"
    );
    shot(&c, backend, "8-customer").await;
    c.goto(&format!("{base}/admin/activity")).await.unwrap();
    wait_text(&c, "main h1", "activity page", |t| t == "Activity").await;
    shot(&c, backend, "9-activity").await;
    c.goto(&format!("{base}/admin/model")).await.unwrap();
    wait_text(&c, "main h1", "model page", |t| t == "Model").await;
    shot(&c, backend, "10-model").await;
    c.goto(&format!("{base}/admin/results")).await.unwrap();
    wait_text(&c, "main h1", "results page", |t| t == "Results").await;
    shot(&c, backend, "11-results").await;

    c.close().await.unwrap();
    env.shutdown().await;
    drop(driver);
}
both_backends!(merchant_flow_in_chromium);
