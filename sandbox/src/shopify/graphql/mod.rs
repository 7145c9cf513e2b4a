//! The Admin GraphQL API: schema, cost and throttling, and the HTTP endpoint.

pub mod context;
pub mod cost;
pub mod mutation;
pub mod paging;
pub mod query;
pub mod scalars;
pub mod types;

use crate::faults::chance;
use crate::state::{RequestLog, Shop, State};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::parser::types::OperationType;
use async_graphql::{EmptySubscription, Schema};
use chrono::Utc;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type AdminSchema = Schema<query::QueryRoot, mutation::MutationRoot, EmptySubscription>;

/// Shopify rejects single queries above this requested cost (reference §3.1).
pub const MAX_QUERY_COST: u64 = 1000;

/// The schema, built on first use (it holds no state: each request brings its `Ctx`).
pub fn schema() -> &'static AdminSchema {
    static SCHEMA: std::sync::LazyLock<AdminSchema> = std::sync::LazyLock::new(build_schema);
    &SCHEMA
}

/// The cost model of [`schema`].
pub fn cost_model() -> &'static cost::TypeMap {
    static MODEL: std::sync::LazyLock<cost::TypeMap> =
        std::sync::LazyLock::new(|| cost::TypeMap::from_sdl(&schema().sdl()));
    &MODEL
}

/// Runs requests against [`schema`].
pub fn executor() -> context::Execute {
    Arc::new(|req| Box::pin(schema().execute(req)))
}

pub fn build_schema() -> AdminSchema {
    Schema::build(query::QueryRoot, mutation::MutationRoot, EmptySubscription)
        .limit_recursive_depth(64)
        .finish()
}

pub const INVALID_TOKEN: &str =
    "[API] Invalid API key or access token (unrecognized login or wrong password)";

fn json_status(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status).json(body)
}

/// `YYYY-MM` quarterly versions or `unstable`.
fn valid_version(v: &str) -> bool {
    v == "unstable"
        || (v.len() == 7
            && v.as_bytes()[4] == b'-'
            && v[..4].bytes().all(|b| b.is_ascii_digit())
            && matches!(&v[5..], "01" | "04" | "07" | "10"))
}

fn cost_extension(
    requested: Option<u64>,
    actual: Option<u64>,
    s: crate::throttle::ThrottleStatus,
) -> Value {
    json!({
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": s.maximum_available,
                "currentlyAvailable": s.currently_available as u64,
                "restoreRate": s.restore_rate,
            }
        }
    })
}

/// async-graphql words some validation errors differently from Shopify; use Shopify's wording.
fn shopify_error(mut e: Value) -> Value {
    let msg = e
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    if let Some(rest) = msg.strip_prefix("Unknown field \"")
        && let Some((field, tail)) = rest.split_once("\" on type \"")
        && let Some((ty, _)) = tail.split_once('"')
    {
        let ty = match ty {
            "QueryRoot" => "QueryRoot",
            "MutationRoot" => "Mutation",
            other => other,
        };
        e["message"] = json!(format!("Field '{field}' doesn't exist on type '{ty}'"));
        e["extensions"] = json!({"code": "undefinedField", "typeName": ty, "fieldName": field});
    }
    e
}

#[derive(serde::Deserialize)]
struct GraphqlBody {
    query: Option<String>,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

pub async fn handle(
    state: web::Data<Arc<State>>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (shop_domain, version) = path.into_inner();
    let Some(shop) = state.shop(&shop_domain).filter(|s| {
        s.flavour_as::<crate::shopify::shop::ShopifyShop>()
            .is_some()
    }) else {
        return json_status(StatusCode::NOT_FOUND, json!({"errors": "Not Found"}));
    };
    if !valid_version(&version) {
        return json_status(StatusCode::NOT_FOUND, json!({"errors": "Not Found"}));
    }
    let faults = state.faults.read().clone();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let token = req
        .headers()
        .get("X-Shopify-Access-Token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !shop.auth.lock().spend(token, Utc::now()) {
        return json_status(StatusCode::UNAUTHORIZED, json!({"errors": INVALID_TOKEN}));
    }
    if chance(faults.error_rate) {
        shop.log_request(RequestLog {
            time: Utc::now(),
            kind: "unknown".into(),
            root_fields: vec![],
            requested_cost: None,
            actual_cost: None,
            throttled: false,
            status: 503,
            ..Default::default()
        });
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(json!({"errors": "Service Unavailable"}));
    }
    let parsed: GraphqlBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(_) => {
            return json_status(
                StatusCode::BAD_REQUEST,
                json!({"errors": {"query": "Required parameter missing or invalid"}}),
            );
        }
    };
    let Some(query) = parsed.query.filter(|q| !q.trim().is_empty()) else {
        return json_status(
            StatusCode::BAD_REQUEST,
            json!({"errors": {"query": "Required parameter missing or invalid"}}),
        );
    };
    let variables = parsed.variables.unwrap_or(Value::Null);
    execute(
        &state,
        &shop,
        &version,
        query,
        variables,
        parsed.operation_name,
    )
    .await
}

/// Answers a query as the Admin API would, without HTTP, the bucket or the request log, and
/// returns the data with the actual cost the bucket would have been charged. It lets a
/// benchmark price a paged read of a large shop exactly without spending hours throttled.
pub async fn price(
    state: &Arc<State>,
    shop: &Arc<Shop>,
    query: &str,
    variables: Value,
) -> Result<(Value, u64), String> {
    let doc = async_graphql::parser::parse_query(query).map_err(|e| e.to_string())?;
    let input = cost::CostInput {
        doc: &doc,
        operation_name: None,
        variables: &variables,
    };
    let requested = cost::cost(&input, cost_model(), None);
    if requested > MAX_QUERY_COST {
        return Err(format!("query cost {requested} exceeds {MAX_QUERY_COST}"));
    }
    let request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables.clone()))
        .data(types::Ctx {
            shop: shop.clone(),
            state: state.clone(),
            api_version: crate::shopify::shop::API_VERSION.to_string(),
            bulk: false,
            dry_run: false,
            bulk_pager: None,
            execute: executor(),
        });
    let resp = schema().execute(request).await;
    if let Some(e) = resp.errors.first() {
        return Err(e.message.clone());
    }
    let data = resp.data.into_json().map_err(|e| e.to_string())?;
    let actual = cost::cost(&input, cost_model(), Some(&data)).min(requested);
    Ok((data, actual))
}

async fn execute(
    state: &Arc<State>,
    shop: &Arc<Shop>,
    version: &str,
    query: String,
    variables: Value,
    operation_name: Option<String>,
) -> HttpResponse {
    let doc = async_graphql::parser::parse_query(&query).ok();
    let vars = if variables.is_object() {
        variables.clone()
    } else {
        json!({})
    };
    let (kind, roots, requested) = match &doc {
        Some(doc) => {
            let input = cost::CostInput {
                doc,
                operation_name: operation_name.as_deref(),
                variables: &vars,
            };
            let (ty, roots) = cost::roots(&input).unwrap_or((OperationType::Query, vec![]));
            let kind = if ty == OperationType::Mutation {
                "mutation"
            } else {
                "query"
            };
            (kind, roots, cost::cost(&input, cost_model(), None))
        }
        None => ("query", vec![], 0),
    };
    let log = |requested: Option<u64>, actual: Option<u64>, throttled: bool| {
        shop.log_request(RequestLog {
            time: Utc::now(),
            kind: kind.into(),
            root_fields: roots.clone(),
            requested_cost: requested,
            actual_cost: actual,
            throttled,
            status: 200,
            ..Default::default()
        })
    };

    if requested > MAX_QUERY_COST {
        log(Some(requested), None, false);
        let status = shop.bucket.lock().status(Instant::now());
        let body = json!({
            "errors": [{
                "message": format!(
                    "Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\ncost of a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk operations should be used instead.\nSee https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"
                ),
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST}
            }],
            "extensions": cost_extension(Some(requested), None, status),
        });
        return HttpResponse::Ok().json(body);
    }

    let taken = shop
        .bucket
        .lock()
        .try_take(requested as f64, Instant::now());
    if let Err(status) = taken {
        log(Some(requested), None, true);
        let body = json!({
            "errors": [{
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}
            }],
            "extensions": cost_extension(Some(requested), None, status),
        });
        return HttpResponse::Ok().json(body);
    }

    let mut request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(vars))
        .data(types::Ctx {
            shop: shop.clone(),
            state: state.clone(),
            api_version: version.to_string(),
            bulk: false,
            dry_run: false,
            bulk_pager: None,
            execute: executor(),
        });
    if let Some(name) = operation_name.clone() {
        request = request.operation_name(name);
    }
    let resp = schema().execute(request).await;
    let mut out = serde_json::to_value(&resp).unwrap_or_else(|_| json!({}));
    let data = out.get("data").cloned().filter(|d| !d.is_null());
    let actual = match (&doc, &data) {
        (Some(doc), Some(data)) => {
            let input = cost::CostInput {
                doc,
                operation_name: operation_name.as_deref(),
                variables: &variables,
            };
            if kind == "mutation" {
                requested
            } else {
                cost::cost(&input, cost_model(), Some(data)).min(requested)
            }
        }
        // Nothing executed (parse or validation error): Shopify charges nothing.
        _ => 0,
    };
    let status = shop
        .bucket
        .lock()
        .refund((requested - actual) as f64, Instant::now());
    log(Some(requested), Some(actual), false);
    if let Some(errors) = out.get_mut("errors").and_then(|e| e.as_array_mut()) {
        for e in errors.iter_mut() {
            *e = shopify_error(e.take());
        }
    }
    if let Value::Object(map) = &mut out {
        let mut ext = map
            .remove("extensions")
            .filter(|e| e.is_object())
            .unwrap_or_else(|| json!({}));
        if let (Value::Object(ext_map), Value::Object(cost)) = (
            &mut ext,
            cost_extension(Some(requested), Some(actual), status),
        ) {
            ext_map.extend(cost);
        }
        map.insert("extensions".into(), ext);
    }
    HttpResponse::Ok().json(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(valid_version("2026-07"));
        assert!(valid_version("unstable"));
        assert!(!valid_version("2026-08"));
        assert!(!valid_version("latest"));
    }

    #[test]
    fn unknown_field_uses_shopify_wording() {
        let e = shopify_error(json!({"message": "Unknown field \"foo\" on type \"Customer\"."}));
        assert_eq!(e["message"], "Field 'foo' doesn't exist on type 'Customer'");
        assert_eq!(e["extensions"]["code"], "undefinedField");
    }
}
