//! OAuth, Admin GraphQL, cost and throttling, over real HTTP.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

/// Shopify's documented algorithm, written independently of the sandbox: drop `hmac`, sort
/// `key=value` pairs, join with `&`, HMAC-SHA256 with the client secret, lowercase hex.
fn callback_hmac_ok(secret: &str, query: &str) -> bool {
    use hmac::{Hmac, KeyInit, Mac};
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let Some(given) = pairs
        .iter()
        .find(|(k, _)| k == "hmac")
        .map(|(_, v)| v.clone())
    else {
        return false;
    };
    let mut rest: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != "hmac")
        .map(|(k, v)| {
            let enc = |s: &str| {
                url::form_urlencoded::byte_serialize(s.as_bytes())
                    .collect::<String>()
                    .replace('+', "%20")
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect();
    rest.sort();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(rest.join("&").as_bytes());
    let Ok(given) = hex::decode(given) else {
        return false;
    };
    mac.verify_slice(&given).is_ok()
}

#[test]
fn independent_verifier_accepts_published_vector() {
    let q = "code=0907a61c0c8d55e99db179b68161bc00&hmac=700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173";
    assert!(callback_hmac_ok("hush", q));
    assert!(!callback_hmac_ok("not-hush", q));
}

#[tokio::test]
async fn oauth_code_grant_signs_callback_and_issues_token() {
    let sb = sandbox(50).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let app = "http://127.0.0.1:9/app";
    set_app_url(&base, app).await;
    let c = client();

    // The install kick-off URL is signed like the app store's.
    let iu = get_json(&format!("{base}/_sandbox/shops/{shop}/install_url")).await;
    let iu = iu["install_url"].as_str().unwrap();
    assert!(iu.starts_with(&format!("{app}/auth/shopify/install?")));
    assert!(callback_hmac_ok(
        CLIENT_SECRET,
        iu.split_once('?').unwrap().1
    ));

    let redirect = format!("{app}/auth/shopify/callback");
    let authorize = |client_id: &str, redirect: &str| {
        let mut u = url::Url::parse(&format!("{base}/{shop}/admin/oauth/authorize")).unwrap();
        u.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("scope", "read_customers,write_customers")
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "nonce 123");
        u.to_string()
    };
    let r = c.get(authorize(CLIENT_ID, &redirect)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(&redirect));
    let query = loc.split_once('?').unwrap().1;
    assert!(
        callback_hmac_ok(CLIENT_SECRET, query),
        "callback hmac must verify: {loc}"
    );
    assert!(!callback_hmac_ok("wrong-secret", query));
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    for k in ["code", "hmac", "host", "shop", "state", "timestamp"] {
        assert!(params.contains_key(k), "missing {k}");
    }
    assert_eq!(params["state"], "nonce 123");
    assert_eq!(params["shop"], shop);
    assert!(!params["host"].ends_with('='));

    // Wrong client id and a foreign redirect are refused.
    assert_eq!(
        c.get(authorize("other", &redirect))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        c.get(authorize(CLIENT_ID, "http://evil.example/cb"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    // Form-encoded code exchange; the code is single use.
    let form = [
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("code", params["code"].as_str()),
    ];
    let r = c
        .post(format!("{base}/{shop}/admin/oauth/access_token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tok: Value = r.json().await.unwrap();
    let token = tok["access_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("sbx_"));
    assert_eq!(tok["scope"], "read_customers,write_customers");
    let again = c
        .post(format!("{base}/{shop}/admin/oauth/access_token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);

    let (s, body) = gql(
        &base,
        &shop,
        &token,
        "{ shop { name myshopifyDomain currencyCode plan { displayName } } }",
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["data"]["shop"]["myshopifyDomain"], shop);
    assert!(body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"].is_number());

    let (s, body) = gql(&base, &shop, "sbx_at_bogus", "{ shop { name } }", json!({})).await;
    assert_eq!(s, 401);
    assert_eq!(
        body,
        json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn expiring_tokens_refresh_once_with_retry_window() {
    let sb = sandbox(10).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let c = client();
    let st = c
        .post(format!("{base}/_sandbox/shops/{shop}/session_token"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let exchange = |subject: Value| {
        json!({
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": subject,
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "expiring": "1"
        })
    };
    let url = format!("{base}/{shop}/admin/oauth/access_token");
    let v: Value = c
        .post(&url)
        .json(&exchange(st["token"].clone()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["expires_in"], 3600);
    let rt = v["refresh_token"].as_str().unwrap().to_string();
    assert!(rt.starts_with("sbx_"));

    // A forged session token is refused.
    let forged = c
        .post(&url)
        .json(&exchange(json!("eyJhbGciOiJIUzI1NiJ9.e30.x")))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);

    let refresh = json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant_type": "refresh_token", "refresh_token": rt});
    let a: Value = c
        .post(&url)
        .json(&refresh)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b: Value = c
        .post(&url)
        .json(&refresh)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a, b, "a retry inside the window gets the same response");
    assert_ne!(a["access_token"], v["access_token"]);
    // The old expiring token is gone; the new one works.
    assert_eq!(
        gql(
            &base,
            &shop,
            v["access_token"].as_str().unwrap(),
            "{ shop { name } }",
            json!({})
        )
        .await
        .0,
        401
    );
    assert_eq!(
        gql(
            &base,
            &shop,
            a["access_token"].as_str().unwrap(),
            "{ shop { name } }",
            json!({})
        )
        .await
        .0,
        200
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn paging_customers_returns_each_exactly_once() {
    let sb = sandbox(620).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let token = install(&base, &shop).await;
    let truth = get_json(&format!("{base}/_sandbox/shops/{shop}/customers")).await;
    let truth: HashSet<String> = truth
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["admin_graphql_api_id"].as_str().unwrap().to_string())
        .collect();

    let q = "query($after: String) { customers(first: 100, after: $after, sortKey: UPDATED_AT) { edges { cursor node { id updatedAt numberOfOrders amountSpent { amount currencyCode } } } pageInfo { hasNextPage endCursor } } customersCount { count precision } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let (s, body) = gql(&base, &shop, &token, q, json!({"after": after})).await;
        assert_eq!(s, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        let conn = &body["data"]["customers"];
        for e in conn["edges"].as_array().unwrap() {
            seen.push(e["node"]["id"].as_str().unwrap().to_string());
        }
        assert_eq!(body["data"]["customersCount"]["count"], truth.len());
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), unique.len(), "no duplicates");
    assert_eq!(unique, truth, "every customer once");

    // updated_at filtering: only customers changed after the cut.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let cut = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let target = seen[3].clone();
    let (_, r) = gql(&base, &shop, &token, "mutation($id: ID!) { tagsAdd(id: $id, tags: [\"vip\"]) { node { id } userErrors { message } } }", json!({"id": target})).await;
    assert_eq!(r["data"]["tagsAdd"]["userErrors"], json!([]));
    let (_, r) = gql(
        &base,
        &shop,
        &token,
        &format!(
            "{{ customers(first: 10, query: \"updated_at:>'{cut}'\") {{ nodes {{ id tags }} }} }}"
        ),
        json!({}),
    )
    .await;
    assert_eq!(
        r["data"]["customers"]["nodes"],
        json!([{"id": target, "tags": ["vip"]}])
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn expensive_burst_is_throttled_and_waiting_succeeds() {
    let sb = sandbox(300).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let token = install(&base, &shop).await;
    let q = "{ customers(first: 250) { edges { node { id amountSpent { amount } } } } }";
    let mut throttled = None;
    for _ in 0..20 {
        let (s, body) = gql(&base, &shop, &token, q, json!({})).await;
        assert_eq!(s, 200);
        if body.get("errors").is_some() {
            throttled = Some(body);
            break;
        }
        assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 502);
    }
    let body = throttled.expect("the burst is throttled");
    assert_eq!(
        body["errors"],
        json!([{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}])
    );
    let cost = &body["extensions"]["cost"];
    assert_eq!(cost["requestedQueryCost"], 502);
    assert!(cost["actualQueryCost"].is_null());
    assert_eq!(cost["throttleStatus"]["maximumAvailable"], 2000.0);
    assert_eq!(cost["throttleStatus"]["restoreRate"], 100.0);
    let available = cost["throttleStatus"]["currentlyAvailable"]
        .as_f64()
        .unwrap();
    assert!(available < 502.0);
    let wait = (502.0 - available) / 100.0;
    tokio::time::sleep(Duration::from_secs_f64(wait + 0.02)).await;
    let (_, ok) = gql(&base, &shop, &token, q, json!({})).await;
    assert!(
        ok.get("errors").is_none(),
        "after waiting the query runs: {ok}"
    );

    // A single query above 1000 points is refused before it runs.
    let big =
        "{ customers(first: 250) { edges { node { id orders(first: 10) { nodes { id } } } } } }";
    let (_, body) = gql(&base, &shop, &token, big, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED");
    assert_eq!(body["errors"][0]["extensions"]["maxCost"], 1000);

    // The request log shows what happened.
    let log = get_json(&format!("{base}/_sandbox/shops/{shop}/requests")).await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|r| r["throttled"] == true)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn mutations_discounts_metafields_and_errors() {
    let sb = sandbox(20).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let token = install(&base, &shop).await;
    let customers = get_json(&format!("{base}/_sandbox/shops/{shop}/customers")).await;
    let cid = customers[0]["admin_graphql_api_id"]
        .as_str()
        .unwrap()
        .to_string();

    let create = "mutation($input: DiscountCodeBasicInput!) { discountCodeBasicCreate(basicCodeDiscount: $input) { codeDiscountNode { id codeDiscount { ... on DiscountCodeBasic { title codes(first: 1) { nodes { code } } } } } userErrors { field code message } } }";
    let input = json!({
        "title": "Win-back 15%", "code": "BACK-15-ABC", "startsAt": "2026-01-01T00:00:00Z",
        "context": {"customers": {"add": [cid]}},
        "customerGets": {"value": {"percentage": 0.15}, "items": {"all": true}},
        "usageLimit": 1, "appliesOncePerCustomer": true
    });
    let (_, r) = gql(&base, &shop, &token, create, json!({"input": input})).await;
    assert_eq!(
        r["data"]["discountCodeBasicCreate"]["userErrors"],
        json!([]),
        "{r}"
    );
    assert_eq!(
        r["data"]["discountCodeBasicCreate"]["codeDiscountNode"]["codeDiscount"]["codes"]["nodes"]
            [0]["code"],
        "BACK-15-ABC"
    );
    assert_eq!(r["extensions"]["cost"]["requestedQueryCost"], 10);
    let (_, r) = gql(&base, &shop, &token, create, json!({"input": input})).await;
    let errs = &r["data"]["discountCodeBasicCreate"]["userErrors"];
    assert_eq!(errs[0]["code"], "TAKEN", "{r}");
    assert!(r["data"]["discountCodeBasicCreate"]["codeDiscountNode"].is_null());
    assert_eq!(
        get_json(&format!("{base}/_sandbox/shops/{shop}/discount_codes"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let set = "mutation($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) { metafields { key value } userErrors { field message code } } }";
    let (_, r) = gql(&base, &shop, &token, set, json!({"m": [{"ownerId": cid, "namespace": "lifecycle", "key": "clv", "type": "number_decimal", "value": "123.45"}]})).await;
    assert_eq!(r["data"]["metafieldsSet"]["userErrors"], json!([]), "{r}");
    let (_, r) = gql(&base, &shop, &token, set, json!({"m": [{"ownerId": cid, "namespace": "lifecycle", "key": "visits", "type": "number_integer", "value": "x"}]})).await;
    assert_eq!(
        r["data"]["metafieldsSet"]["userErrors"][0]["code"],
        "INVALID_VALUE"
    );
    let (_, r) = gql(&base, &shop, &token, "query($id: ID!) { customer(id: $id) { metafield(namespace: \"lifecycle\", key: \"clv\") { value } } }", json!({"id": cid})).await;
    assert_eq!(r["data"]["customer"]["metafield"]["value"], "123.45");

    let (s, r) = gql(&base, &shop, &token, "{ shop { nope } }", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(
        r["errors"][0]["message"],
        "Field 'nope' doesn't exist on type 'Shop'"
    );
    assert_eq!(r["errors"][0]["extensions"]["code"], "undefinedField");
    let (_, r) = gql(
        &base,
        &shop,
        &token,
        "{ customers { nodes { id } } }",
        json!({}),
    )
    .await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("first or last")
    );

    let log = get_json(&format!("{base}/_sandbox/shops/{shop}/requests")).await;
    let writes = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "mutation")
        .count();
    assert_eq!(writes, 4);
    sb.shutdown().await;
}

#[tokio::test]
async fn bulk_query_serves_jsonl_with_parent_ids() {
    let sb = sandbox(40).await;
    let base = sb.base_url();
    let shop = sb.shop_domains()[0].clone();
    let token = install(&base, &shop).await;
    let run = r#"mutation { bulkOperationRunQuery(query: """{ customers { edges { node { id email orders { edges { node { id totalPriceSet { shopMoney { amount } } } } } } } } }""") { bulkOperation { id status } userErrors { field message } } }"#;
    let (_, r) = gql(&base, &shop, &token, run, json!({})).await;
    assert_eq!(
        r["data"]["bulkOperationRunQuery"]["userErrors"],
        json!([]),
        "{r}"
    );
    let mut op = Value::Null;
    for _ in 0..100 {
        let (_, r) = gql(
            &base,
            &shop,
            &token,
            "{ currentBulkOperation { id status objectCount rootObjectCount url } }",
            json!({}),
        )
        .await;
        op = r["data"]["currentBulkOperation"].clone();
        if op["status"] == "COMPLETED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(op["status"], "COMPLETED", "{op}");
    let body = client()
        .get(op["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let customers = lines
        .iter()
        .filter(|l| l.get("__parentId").is_none())
        .count();
    let orders = get_json(&format!("{base}/_sandbox/shops/{shop}/orders")).await;
    let customer_orders = orders
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| !o["customer_id"].is_null())
        .count();
    assert_eq!(customers, 40);
    assert_eq!(lines.len(), 40 + customer_orders);
    assert_eq!(op["objectCount"], (40 + customer_orders).to_string());
    assert!(
        lines
            .iter()
            .filter(|l| l.get("__parentId").is_some())
            .all(|l| l["id"]
                .as_str()
                .unwrap()
                .starts_with("gid://shopify/Order/"))
    );

    let bad = r#"mutation { bulkOperationRunQuery(query: "{ shop { name } }") { bulkOperation { id } userErrors { message } } }"#;
    let (_, r) = gql(&base, &shop, &token, bad, json!({})).await;
    assert!(
        r["data"]["bulkOperationRunQuery"]["userErrors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("connection")
    );
    sb.shutdown().await;
}
