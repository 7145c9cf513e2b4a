//! Bulk query operations: the query runs in the background without page limits, and its result
//! is served as JSONL with nested connection children on their own lines (`__parentId`).

use crate::graphql::scalars::{DateTimeScalar, UnsignedInt64, Url};
use crate::graphql::types::Ctx;
use crate::state::{Shop, State};
use crate::store::Change;
use crate::webhooks::payloads::{gid, ts};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{Enum, ID, Object};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::sync::Arc;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BulkOperationStatus {
    Created,
    Running,
    Completed,
    Canceling,
    Canceled,
    Failed,
    Expired,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BulkOperationErrorCode {
    AccessDenied,
    InternalServerError,
    Timeout,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BulkOperationType {
    Query,
    Mutation,
}

#[derive(Debug, Clone)]
pub struct BulkOperation {
    pub id: u64,
    pub status: BulkOperationStatus,
    pub error_code: Option<BulkOperationErrorCode>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub object_count: u64,
    pub root_object_count: u64,
    pub file_size: Option<u64>,
    pub url: Option<String>,
    pub query: String,
    pub result: Option<Arc<String>>,
}

pub struct BulkOperationNode(pub BulkOperation);

#[Object(name = "BulkOperation")]
impl BulkOperationNode {
    async fn id(&self) -> ID {
        ID(gid("BulkOperation", self.0.id))
    }
    async fn status(&self) -> BulkOperationStatus {
        self.0.status
    }
    async fn error_code(&self) -> Option<BulkOperationErrorCode> {
        self.0.error_code
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> BulkOperationType {
        BulkOperationType::Query
    }
    async fn created_at(&self) -> DateTimeScalar {
        self.0.created_at.into()
    }
    async fn completed_at(&self) -> Option<DateTimeScalar> {
        self.0.completed_at.map(Into::into)
    }
    async fn object_count(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.object_count)
    }
    async fn root_object_count(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.root_object_count)
    }
    async fn file_size(&self) -> Option<UnsignedInt64> {
        self.0.file_size.map(UnsignedInt64)
    }
    async fn url(&self) -> Option<Url> {
        self.0.url.clone().map(Url)
    }
    async fn partial_data_url(&self) -> Option<Url> {
        None
    }
    async fn query(&self) -> &str {
        &self.0.query
    }
}

/// Shopify's static checks on a bulk query (reference §3.4).
pub fn validate(doc: &ExecutableDocument) -> Result<(), String> {
    let ops: Vec<_> = match &doc.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(m) => m.values().collect(),
    };
    if ops.len() != 1 {
        return Err("Bulk queries must contain exactly one operation".into());
    }
    let op = &ops[0].node;
    if op.ty != async_graphql::parser::types::OperationType::Query {
        return Err("Bulk operations must be queries".into());
    }
    let mut connections = 0;
    for sel in &op.selection_set.node.items {
        if let Selection::Field(f) = &sel.node {
            let name = f.node.name.node.as_str();
            if name == "node" || name == "nodes" {
                return Err(format!(
                    "Bulk queries cannot contain a top level `{name}` field."
                ));
            }
        }
    }
    count_connections(&op.selection_set.node, 0, &mut connections)?;
    if connections == 0 {
        return Err("Bulk queries must contain at least one connection.".into());
    }
    if connections > 5 {
        return Err("Bulk queries cannot contain more than 5 connections.".into());
    }
    Ok(())
}

fn is_connection_selection(set: &SelectionSet) -> bool {
    set.items.iter().any(|s| {
        matches!(&s.node, Selection::Field(f) if matches!(f.node.name.node.as_str(), "edges" | "nodes"))
    })
}

fn count_connections(set: &SelectionSet, depth: usize, n: &mut usize) -> Result<(), String> {
    for sel in &set.items {
        let Selection::Field(f) = &sel.node else {
            continue;
        };
        let child = &f.node.selection_set.node;
        if is_connection_selection(child) {
            *n += 1;
            if depth >= 2 {
                return Err(
                    "Bulk queries cannot contain connections nested more than 2 levels deep."
                        .into(),
                );
            }
            count_connections(child, depth + 1, n)?;
        } else {
            count_connections(child, depth, n)?;
        }
    }
    Ok(())
}

fn connection_items(v: &Value) -> Option<Vec<Value>> {
    let obj = v.as_object()?;
    if let Some(Value::Array(edges)) = obj.get("edges") {
        return Some(
            edges
                .iter()
                .filter_map(|e| e.get("node").cloned())
                .collect(),
        );
    }
    if let Some(Value::Array(nodes)) = obj.get("nodes") {
        return Some(nodes.clone());
    }
    None
}

fn emit_node(mut node: Map<String, Value>, parent: Option<&str>, out: &mut Vec<String>) {
    let nested: Vec<(String, Vec<Value>)> = node
        .iter()
        .filter_map(|(k, v)| connection_items(v).map(|items| (k.clone(), items)))
        .collect();
    for (k, _) in &nested {
        node.remove(k);
    }
    if let Some(p) = parent {
        node.insert("__parentId".into(), Value::String(p.to_string()));
    }
    let id = node.get("id").and_then(|v| v.as_str()).map(str::to_string);
    out.push(Value::Object(node).to_string());
    for (_, items) in nested {
        for child in items {
            if let Value::Object(c) = child {
                emit_node(c, id.as_deref(), out);
            }
        }
    }
}

/// Flattens a bulk result into JSONL lines; returns (lines, root object count).
pub fn flatten(data: &Value) -> (Vec<String>, u64) {
    let mut out = Vec::new();
    let mut roots = 0;
    if let Some(obj) = data.as_object() {
        for v in obj.values() {
            if let Some(items) = connection_items(v) {
                for item in items {
                    if let Value::Object(n) = item {
                        roots += 1;
                        emit_node(n, None, &mut out);
                    }
                }
            }
        }
    }
    (out, roots)
}

/// Runs a validated bulk query in the background and announces `bulk_operations/finish`.
pub fn spawn(state: Arc<State>, shop: Arc<Shop>, op_id: u64, query: String, api_version: String) {
    tokio::spawn(async move {
        set(&shop, op_id, |o| o.status = BulkOperationStatus::Running);
        let req = async_graphql::Request::new(query).data(Ctx {
            shop: shop.clone(),
            state: state.clone(),
            api_version,
            bulk: true,
            dry_run: false,
        });
        let resp = state.schema.execute(req).await;
        let now = Utc::now();
        if !resp.errors.is_empty() {
            tracing::warn!(errors = ?resp.errors, "bulk operation failed");
            set(&shop, op_id, |o| {
                o.status = BulkOperationStatus::Failed;
                o.error_code = Some(BulkOperationErrorCode::InternalServerError);
                o.completed_at = Some(now);
            });
        } else {
            let data = resp.data.into_json().unwrap_or(Value::Null);
            let (lines, roots) = flatten(&data);
            let mut body = lines.join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            let url = format!(
                "{}/_sandbox/bulk/{}/{}.jsonl",
                state.base_url(),
                shop.info.domain,
                op_id
            );
            let size = body.len() as u64;
            let count = lines.len() as u64;
            set(&shop, op_id, |o| {
                o.status = BulkOperationStatus::Completed;
                o.completed_at = Some(now);
                o.object_count = count;
                o.root_object_count = roots;
                o.file_size = (size > 0).then_some(size);
                // Shopify gives no URL for an empty result.
                o.url = (size > 0).then(|| url.clone());
                o.result = Some(Arc::new(body));
            });
        }
        let op = shop.bulk.lock().iter().find(|o| o.id == op_id).cloned();
        if let Some(op) = op {
            let status = format!("{:?}", op.status).to_lowercase();
            let payload = json!({
                "admin_graphql_api_id": gid("BulkOperation", op.id),
                "completed_at": op.completed_at.map(ts),
                "created_at": ts(op.created_at),
                "error_code": op.error_code.map(|e| format!("{e:?}").to_lowercase()),
                "status": status,
                "type": "query",
            });
            state.emit(
                &shop,
                vec![Change {
                    topic: "bulk_operations/finish",
                    payload,
                }],
            );
        }
    });
}

fn set(shop: &Shop, id: u64, f: impl FnOnce(&mut BulkOperation)) {
    if let Some(o) = shop.bulk.lock().iter_mut().find(|o| o.id == id) {
        f(o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_children_with_parent_ids() {
        let data = json!({"customers": {"edges": [
            {"node": {"id": "gid://shopify/Customer/1", "email": "a@x", "orders": {"edges": [
                {"node": {"id": "gid://shopify/Order/10"}}, {"node": {"id": "gid://shopify/Order/11"}}
            ]}}},
            {"node": {"id": "gid://shopify/Customer/2", "email": "b@x", "orders": {"edges": []}}}
        ]}});
        let (lines, roots) = flatten(&data);
        assert_eq!(roots, 2);
        assert_eq!(lines.len(), 4);
        let l1: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(l1["__parentId"], "gid://shopify/Customer/1");
        let l0: Value = serde_json::from_str(&lines[0]).unwrap();
        assert!(l0.get("orders").is_none());
    }

    #[test]
    fn rejects_queries_shopify_rejects() {
        let p = |q: &str| validate(&async_graphql::parser::parse_query(q).unwrap());
        assert!(p("{ customers { edges { node { id } } } }").is_ok());
        assert!(p("{ shop { name } }").is_err());
        assert!(p("{ nodes(ids: []) { id } }").is_err());
        assert!(p("mutation { tagsAdd(id: \"x\", tags: []) { userErrors { message } } }").is_err());
    }
}
