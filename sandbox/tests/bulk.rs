//! Bulk operations over HTTP: results larger than one page of roots, written to a temp file and
//! served from it, and the file's lifetime.

mod common;

use common::*;
use lifecycle_sandbox::Sandbox;
use lifecycle_sandbox::bulk::BULK_PAGE;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// Starts a bulk query and polls it by id until it leaves CREATED/RUNNING.
async fn run_bulk(base: &str, shop: &str, token: &str, query: &str) -> Value {
    let (_, r) = gql(
        base,
        shop,
        token,
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id status } userErrors { field message } } }",
        json!({ "q": query }),
    )
    .await;
    assert_eq!(
        r["data"]["bulkOperationRunQuery"]["userErrors"],
        json!([]),
        "{r}"
    );
    let id = r["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..600 {
        let (status, r) = gql(
            base,
            shop,
            token,
            "query($id: ID!) { bulkOperation(id: $id) { id status errorCode objectCount rootObjectCount fileSize url } }",
            json!({ "id": id }),
        )
        .await;
        let op = r["data"]["bulkOperation"].clone();
        match op["status"].as_str() {
            Some("CREATED" | "RUNNING") => {}
            Some(_) => return op,
            None => panic!("polling {id} answered {status}: {r}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("bulk operation {id} did not finish");
}

fn op_number(op: &Value) -> u64 {
    op["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Where the sandbox keeps an operation's result, if it still has one.
fn result_path(sb: &Sandbox, shop: &str, op: &Value) -> Option<PathBuf> {
    let id = op_number(op);
    let shop = sb.state().shop(shop).unwrap();
    let ops = shop.bulk.lock();
    ops.iter()
        .find(|o| o.id == id)
        .and_then(|o| o.result.as_ref().map(|r| r.path().to_path_buf()))
}

/// Downloads a result, checking the declared length against `fileSize`.
async fn download(op: &Value) -> String {
    let r = client()
        .get(op["url"].as_str().expect("a completed result has a url"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.content_length().map(|n| n.to_string()),
        op["fileSize"].as_str().map(str::to_string),
        "Content-Length is the fileSize"
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn result_spanning_many_pages_has_every_object_once_with_children_after_parents() {
    // Two passes of roots; nested orders make each pass slow in a debug build, so not more.
    let customers = BULK_PAGE + 37;
    let sb = sandbox(customers).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let token = install(&base, &shop).await;
    let op = run_bulk(
        &base,
        &shop,
        &token,
        "{ customers { edges { node { id email orders { edges { node { id } } } } } } }",
    )
    .await;
    assert_eq!(op["status"], "COMPLETED", "{op}");
    let body = download(&op).await;
    assert_eq!(
        body.len().to_string(),
        op["fileSize"],
        "fileSize is the body"
    );
    assert!(body.ends_with('\n'));

    let orders = get_json(&format!("{base}/_sandbox/shops/{shop}/orders")).await;
    let want_children: HashSet<String> = orders
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| !o["customer_id"].is_null())
        .map(|o| o["admin_graphql_api_id"].as_str().unwrap().to_string())
        .collect();
    let mut seen_roots = HashSet::new();
    let mut seen_children = HashSet::new();
    let mut last_root = None::<String>;
    for line in body.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        match v.get("__parentId") {
            None => {
                assert!(
                    v.get("orders").is_none(),
                    "children are not inlined: {line}"
                );
                assert!(seen_roots.insert(id.clone()), "{id} twice");
                last_root = Some(id);
            }
            Some(p) => {
                // A child follows its own parent, before the next root.
                assert_eq!(p.as_str(), last_root.as_deref(), "{line}");
                assert!(seen_children.insert(id.clone()), "{id} twice");
            }
        }
    }
    assert_eq!(seen_roots.len(), customers);
    assert_eq!(seen_children, want_children);
    assert_eq!(op["rootObjectCount"], customers.to_string());
    assert_eq!(
        op["objectCount"],
        (customers + want_children.len()).to_string()
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn several_root_connections_each_page_to_their_end() {
    let customers = BULK_PAGE + 11;
    let sb = sandbox(customers).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let token = install(&base, &shop).await;
    let op = run_bulk(
        &base,
        &shop,
        &token,
        "{ up: customers { edges { node { id } } } down: customers(reverse: true) { nodes { id } } checkouts: abandonedCheckouts { edges { node { id } } } }",
    )
    .await;
    assert_eq!(op["status"], "COMPLETED", "{op}");
    let body = download(&op).await;
    let ids: Vec<String> = body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let customer_ids: Vec<&String> = ids
        .iter()
        .filter(|i| i.starts_with("gid://shopify/Customer/"))
        .collect();
    let distinct: HashSet<_> = customer_ids.iter().collect();
    assert_eq!(customer_ids.len(), 2 * customers, "both aliases read all");
    assert_eq!(distinct.len(), customers);
    let n_checkouts = sb.state().shop(&shop).unwrap().data.read().checkouts.len();
    assert_eq!(ids.len(), 2 * customers + n_checkouts);
    assert_eq!(op["objectCount"], ids.len().to_string());
    sb.shutdown().await;
}

#[tokio::test]
async fn empty_result_has_no_url_and_no_file() {
    let sb = sandbox(5).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let token = install(&base, &shop).await;
    let op = run_bulk(
        &base,
        &shop,
        &token,
        r#"{ customers(query: "email:nobody@nowhere.invalid") { edges { node { id } } } }"#,
    )
    .await;
    assert_eq!(op["status"], "COMPLETED", "{op}");
    assert_eq!(op["objectCount"], "0");
    assert!(op["url"].is_null() && op["fileSize"].is_null(), "{op}");
    assert!(result_path(&sb, &shop, &op).is_none());
    sb.shutdown().await;
}

#[tokio::test]
async fn old_results_expire_and_files_go_with_the_sandbox() {
    let sb = sandbox(20).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let token = install(&base, &shop).await;
    let q = "{ customers { edges { node { id } } } }";
    let first = run_bulk(&base, &shop, &token, q).await;
    let first_file = result_path(&sb, &shop, &first).expect("a result file");
    assert!(first_file.exists());
    // A download started before the operation expires still completes.
    let early = client()
        .get(first["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 200);

    let mut later = Vec::new();
    for _ in 0..lifecycle_sandbox::bulk::KEPT_RESULTS {
        later.push(run_bulk(&base, &shop, &token, q).await);
    }
    let (_, r) = gql(
        &base,
        &shop,
        &token,
        "query($id: ID!) { bulkOperation(id: $id) { status url } }",
        json!({ "id": first["id"] }),
    )
    .await;
    assert_eq!(r["data"]["bulkOperation"]["status"], "EXPIRED", "{r}");
    assert!(r["data"]["bulkOperation"]["url"].is_null());
    let gone = client()
        .get(first["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let early_body = early.text().await.unwrap();
    assert_eq!(early_body.lines().count(), 20);
    assert!(
        !first_file.exists(),
        "the expired file is removed after its download"
    );

    let kept: Vec<PathBuf> = later
        .iter()
        .map(|op| result_path(&sb, &shop, op).expect("recent results are kept"))
        .collect();
    assert!(kept.iter().all(|p| p.exists()));
    sb.shutdown().await;
    assert!(
        kept.iter().all(|p| !p.exists()),
        "a stopped sandbox leaves no result files"
    );
}
