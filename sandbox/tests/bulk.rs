//! Bulk operations over HTTP: results larger than one page of roots, written to a temp file and
//! served from it, and the file's lifetime.

mod common;

use common::*;
use lifecycle_sandbox::Sandbox;
use lifecycle_sandbox::shopify::bulk::BULK_PAGE;
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
    let ops = lifecycle_sandbox::shopify::ShopifyShop::of(&shop)
        .bulk
        .lock();
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
    for _ in 0..lifecycle_sandbox::shopify::bulk::KEPT_RESULTS {
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

// ---- bulk mutations ----

const TAGS_ADD: &str = "mutation call($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } } }";

/// Asks for a staged target; returns (url, parameters).
async fn staged_target(base: &str, shop: &str, token: &str) -> (String, Vec<(String, String)>) {
    let (_, r) = gql(
        base,
        shop,
        token,
        "mutation { stagedUploadsCreate(input: [{resource: BULK_MUTATION_VARIABLES, filename: \"vars.jsonl\", mimeType: \"text/jsonl\", httpMethod: POST}]) { stagedTargets { url resourceUrl parameters { name value } } userErrors { field message } } }",
        json!({}),
    )
    .await;
    let payload = &r["data"]["stagedUploadsCreate"];
    assert_eq!(payload["userErrors"], json!([]), "{r}");
    let target = &payload["stagedTargets"][0];
    let params = target["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (target["url"].as_str().unwrap().to_string(), params)
}

/// Posts the form as a bucket expects it: the parameters, then the file.
async fn post_upload(url: &str, params: &[(String, String)], body: &str) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    for (n, v) in params {
        form = form.text(n.clone(), v.clone());
    }
    let file = reqwest::multipart::Part::bytes(body.as_bytes().to_vec())
        .file_name("vars.jsonl")
        .mime_str("text/jsonl")
        .unwrap();
    client()
        .post(url)
        .multipart(form.part("file", file))
        .send()
        .await
        .unwrap()
}

/// Stages `body` and returns the `stagedUploadPath` (the `key` parameter).
async fn stage(base: &str, shop: &str, token: &str, body: &str) -> String {
    let (url, params) = staged_target(base, shop, token).await;
    let r = post_upload(&url, &params, body).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    params.iter().find(|(n, _)| n == "key").unwrap().1.clone()
}

async fn run_mutation(base: &str, shop: &str, token: &str, mutation: &str, path: &str) -> Value {
    let (_, r) = gql(
        base,
        shop,
        token,
        "mutation($m: String!, $p: String!) { bulkOperationRunMutation(mutation: $m, stagedUploadPath: $p) { bulkOperation { id status } userErrors { field message code } } }",
        json!({ "m": mutation, "p": path }),
    )
    .await;
    r["data"]["bulkOperationRunMutation"].clone()
}

async fn wait_done(base: &str, shop: &str, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let (_, r) = gql(
            base,
            shop,
            token,
            "query($id: ID!) { bulkOperation(id: $id) { id type status errorCode objectCount fileSize url } }",
            json!({ "id": id }),
        )
        .await;
        let op = r["data"]["bulkOperation"].clone();
        if !matches!(op["status"].as_str(), Some("CREATED" | "RUNNING")) {
            return op;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("bulk mutation {id} did not finish");
}

async fn customer_tags(base: &str, shop: &str) -> Vec<(String, Vec<String>)> {
    get_json(&format!("{base}/_sandbox/shops/{shop}/customers"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["admin_graphql_api_id"].as_str().unwrap().to_string(),
                serde_json::from_value(c["tags"].clone()).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn bulk_mutation_runs_each_line_through_tags_add_with_per_line_errors() {
    let sb = sandbox(4).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let token = install(&base, &shop).await;
    let before = customer_tags(&base, &shop).await;
    let (a, b) = (before[0].0.clone(), before[1].0.clone());
    let lines = [
        json!({"id": a, "tags": ["bulk:one", "bulk:two"]}).to_string(),
        "{not json".to_string(),
        json!({"id": b, "tags": ["bulk:one"]}).to_string(),
        json!({"id": "gid://shopify/Customer/999999999", "tags": ["bulk:one"]}).to_string(),
    ];
    let path = stage(&base, &shop, &token, &(lines.join("\n") + "\n")).await;
    let run = run_mutation(&base, &shop, &token, TAGS_ADD, &path).await;
    assert_eq!(run["userErrors"], json!([]), "{run}");
    let op = wait_done(
        &base,
        &shop,
        &token,
        run["bulkOperation"]["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(op["status"], "COMPLETED", "{op}");
    assert_eq!(op["type"], "MUTATION");
    assert_eq!(op["objectCount"], "4");
    let result: Vec<Value> = download(&op)
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(result.len(), 4, "{result:?}");
    for (i, line) in result.iter().enumerate() {
        assert_eq!(line["__lineNumber"], json!(i), "{line}");
    }
    assert_eq!(result[0]["data"]["tagsAdd"]["userErrors"], json!([]));
    assert_eq!(result[0]["data"]["tagsAdd"]["node"]["id"], json!(a));
    assert!(result[1]["data"].is_null(), "{}", result[1]);
    assert!(
        result[1]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid JSON"),
        "{}",
        result[1]
    );
    assert_eq!(result[2]["data"]["tagsAdd"]["userErrors"], json!([]));
    assert_eq!(
        result[3]["data"]["tagsAdd"]["userErrors"][0]["message"],
        "Customer does not exist"
    );

    let after = customer_tags(&base, &shop).await;
    let tags_of = |id: &str| after.iter().find(|(c, _)| c == id).unwrap().1.clone();
    assert!(
        tags_of(&a).contains(&"bulk:one".to_string())
            && tags_of(&a).contains(&"bulk:two".to_string())
    );
    assert!(tags_of(&b).contains(&"bulk:one".to_string()));
    for (id, tags) in &before[2..] {
        assert_eq!(&tags_of(id), tags, "untouched customers keep their tags");
    }

    // The run is one call at a mutation's price; its lines are no API calls of their own.
    let log = get_json(&format!("{base}/_sandbox/shops/{shop}/requests")).await;
    let log = log.as_array().unwrap();
    assert!(
        !log.iter()
            .any(|r| r["root_fields"].to_string().contains("tagsAdd")),
        "{log:?}"
    );
    let run_entry = log
        .iter()
        .find(|r| r["root_fields"] == json!(["bulkOperationRunMutation"]))
        .expect("the run is logged");
    assert_eq!(run_entry["actual_cost"], 10);

    // currentBulkOperation tells mutations and queries apart.
    let (_, r) = gql(
        &base,
        &shop,
        &token,
        "{ m: currentBulkOperation(type: MUTATION) { id type } q: currentBulkOperation { id } }",
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["m"]["id"], op["id"], "{r}");
    assert!(r["data"]["q"].is_null(), "no bulk query ran: {r}");

    // The staged file is used once.
    let again = run_mutation(&base, &shop, &token, TAGS_ADD, &path).await;
    assert_eq!(again["userErrors"][0]["code"], "NO_SUCH_FILE", "{again}");
    sb.shutdown().await;
}

#[tokio::test]
async fn bulk_mutation_refuses_bad_uploads_documents_and_a_second_run() {
    let sb = sandbox(2).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let token = install(&base, &shop).await;
    let body = "{\"id\": \"gid://shopify/Customer/1\", \"tags\": [\"x\"]}\n";

    // The upload must carry every issued parameter, the key first of all.
    let (url, params) = staged_target(&base, &shop, &token).await;
    let without_key: Vec<_> = params.iter().filter(|(n, _)| n != "key").cloned().collect();
    assert_eq!(post_upload(&url, &without_key, body).await.status(), 400);
    let forged: Vec<_> = params
        .iter()
        .map(|(n, v)| match n.as_str() {
            "x-goog-signature" => (n.clone(), "0".repeat(v.len())),
            _ => (n.clone(), v.clone()),
        })
        .collect();
    assert_eq!(post_upload(&url, &forged, body).await.status(), 403);
    let mut unknown = params.clone();
    for p in unknown.iter_mut().filter(|(n, _)| n == "key") {
        p.1 = format!("tmp/{shop}/bulk/none/vars.jsonl");
    }
    assert_eq!(post_upload(&url, &unknown, body).await.status(), 403);
    // Nothing was stored for a refused upload: the key names no file yet.
    let key = params.iter().find(|(n, _)| n == "key").unwrap().1.clone();
    let r = run_mutation(&base, &shop, &token, TAGS_ADD, &key).await;
    assert_eq!(r["userErrors"][0]["code"], "NO_SUCH_FILE", "{r}");
    let r = run_mutation(&base, &shop, &token, TAGS_ADD, "tmp/nowhere/vars.jsonl").await;
    assert_eq!(r["userErrors"][0]["code"], "NO_SUCH_FILE", "{r}");

    let path = stage(&base, &shop, &token, body).await;
    for bad in [
        "mutation { shop { name } }",
        "{ customers(first: 1) { edges { node { id } } } }",
        "mutation($id: ID!, $t: [String!]!) { a: tagsAdd(id: $id, tags: $t) { node { id } } b: tagsRemove(id: $id, tags: $t) { node { id } } }",
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } } }",
        "mutation {",
    ] {
        let r = run_mutation(&base, &shop, &token, bad, &path).await;
        assert_eq!(r["userErrors"][0]["code"], "INVALID_MUTATION", "{bad}: {r}");
        assert!(r["bulkOperation"].is_null());
    }

    // One bulk mutation at a time: hold one as running, as a long run would be.
    let held = {
        let s = sb.state().shop(&shop).unwrap();
        let id = s.data.write().next_id();
        let mut op = lifecycle_sandbox::shopify::bulk::BulkOperation::created(
            id,
            lifecycle_sandbox::shopify::bulk::BulkOperationType::Mutation,
            TAGS_ADD.into(),
        );
        op.status = lifecycle_sandbox::shopify::bulk::BulkOperationStatus::Running;
        lifecycle_sandbox::shopify::ShopifyShop::of(&s)
            .bulk
            .lock()
            .push(op);
        id
    };
    let r = run_mutation(&base, &shop, &token, TAGS_ADD, &path).await;
    assert_eq!(r["userErrors"][0]["code"], "OPERATION_IN_PROGRESS", "{r}");
    // A bulk query is not held up by a running mutation.
    let q = run_bulk(
        &base,
        &shop,
        &token,
        "{ customers { edges { node { id } } } }",
    )
    .await;
    assert_eq!(q["status"], "COMPLETED");
    {
        let s = sb.state().shop(&shop).unwrap();
        let mut ops = lifecycle_sandbox::shopify::ShopifyShop::of(&s).bulk.lock();
        let o = ops.iter_mut().find(|o| o.id == held).unwrap();
        o.status = lifecycle_sandbox::shopify::bulk::BulkOperationStatus::Completed;
    }
    // The refused run left the staged file in place.
    let r = run_mutation(&base, &shop, &token, TAGS_ADD, &path).await;
    assert_eq!(r["userErrors"], json!([]), "{r}");
    sb.shutdown().await;
}
