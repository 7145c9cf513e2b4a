//! Bulk operations. A bulk query runs in the background without page limits, and its result is
//! served as JSONL with nested connection children on their own lines (`__parentId`). A bulk
//! mutation runs one mutation per line of a staged JSONL file of variables ([`crate::shopify::staged`])
//! through the same resolvers as a normal request, and its result has one line per input line
//! (`__lineNumber`, from 0 as on Shopify).

use super::shop::ShopifyShop;
pub use super::shop::{
    BulkOperation, BulkOperationErrorCode, BulkOperationStatus, BulkOperationType, ResultFile,
    create_temp,
};
use crate::shopify::graphql::context::{BulkPager, Ctx, Execute};
use crate::shopify::graphql::scalars::{DateTimeScalar, UnsignedInt64, Url};
use crate::state::{Shop, State};
use crate::store::Change;
use crate::store::payloads::{gid, ts};
use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{ID, Object};
use chrono::Utc;
use serde_json::{Map, Value, json};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, ReadBuf};

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
        self.0.kind
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

fn connection_items(v: Value) -> Result<Vec<Value>, Value> {
    let Value::Object(mut obj) = v else {
        return Err(v);
    };
    if let Some(Value::Array(edges)) = obj.remove("edges") {
        return Ok(edges
            .into_iter()
            .filter_map(|e| match e {
                Value::Object(mut e) => e.remove("node"),
                _ => None,
            })
            .collect());
    }
    if let Some(Value::Array(nodes)) = obj.remove("nodes") {
        return Ok(nodes);
    }
    Err(Value::Object(obj))
}

fn is_connection(v: &Value) -> bool {
    matches!(v.get("edges"), Some(Value::Array(_)))
        || matches!(v.get("nodes"), Some(Value::Array(_)))
}

fn emit_node(mut node: Map<String, Value>, parent: Option<&str>, out: &mut Vec<String>) {
    let keys: Vec<String> = node
        .iter()
        .filter(|(_, v)| is_connection(v))
        .map(|(k, _)| k.clone())
        .collect();
    let nested: Vec<Vec<Value>> = keys
        .iter()
        .filter_map(|k| node.remove(k))
        .filter_map(|v| connection_items(v).ok())
        .collect();
    if let Some(p) = parent {
        node.insert("__parentId".into(), Value::String(p.to_string()));
    }
    let id = node.get("id").and_then(|v| v.as_str()).map(str::to_string);
    out.push(Value::Object(node).to_string());
    for items in nested {
        for child in items {
            if let Value::Object(c) = child {
                emit_node(c, id.as_deref(), out);
            }
        }
    }
}

/// Flattens (a page of) a bulk result into JSONL lines; returns (lines, root object count).
pub fn flatten(data: Value) -> (Vec<String>, u64) {
    let mut out = Vec::new();
    let mut roots = 0;
    if let Value::Object(obj) = data {
        for (_, v) in obj {
            if let Ok(items) = connection_items(v) {
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

/// Root objects read per pass of a bulk query: what bounds a run's memory.
pub const BULK_PAGE: usize = 250;

/// How many finished results a shop keeps on disk; older ones expire (Shopify expires them
/// after a week; a sandbox that lives for minutes needs a count, not an age).
pub const KEPT_RESULTS: usize = 5;

struct Written {
    file: ResultFile,
    objects: u64,
    roots: u64,
}

/// Runs the query a page of roots at a time and appends each page's JSONL to a temp file.
async fn write_result(
    state: &Arc<State>,
    shop: &Arc<Shop>,
    op_id: u64,
    query: &str,
    api_version: &str,
    execute: &Execute,
    page: usize,
) -> Result<Written, String> {
    let (mut result, mut out) = result_writer(shop, op_id)?;
    let pager = Arc::new(BulkPager::new(page));
    let (mut objects, mut roots) = (0u64, 0u64);
    loop {
        let req = async_graphql::Request::new(query).data(Ctx {
            shop: shop.clone(),
            state: state.clone(),
            api_version: api_version.to_string(),
            bulk: true,
            dry_run: false,
            bulk_pager: Some(pager.clone()),
            execute: execute.clone(),
        });
        let resp = execute(req).await;
        if !resp.errors.is_empty() {
            return Err(format!("{:?}", resp.errors));
        }
        let data = resp
            .data
            .into_json()
            .map_err(|e| format!("result is not JSON: {e}"))?;
        let (lines, n) = flatten(data);
        roots += n;
        objects += lines.len() as u64;
        for line in lines {
            write_line(&mut out, &mut result, &line).await?;
        }
        if !pager.unfinished() {
            break;
        }
    }
    out.flush()
        .await
        .map_err(|e| format!("cannot write the result: {e}"))?;
    Ok(Written {
        file: result,
        objects,
        roots,
    })
}

type ResultWriter = tokio::io::BufWriter<tokio::fs::File>;

fn result_writer(shop: &Shop, op_id: u64) -> Result<(ResultFile, ResultWriter), String> {
    let (result, file) = create_temp("bulk", &shop.info.domain, op_id)
        .map_err(|e| format!("cannot create the result file: {e}"))?;
    let out = tokio::io::BufWriter::with_capacity(1 << 18, tokio::fs::File::from_std(file));
    Ok((result, out))
}

async fn write_line(
    out: &mut ResultWriter,
    result: &mut ResultFile,
    line: &str,
) -> Result<(), String> {
    let write_err = |e: std::io::Error| format!("cannot write the result: {e}");
    out.write_all(line.as_bytes()).await.map_err(write_err)?;
    out.write_all(b"\n").await.map_err(write_err)?;
    result.grew(line.len() as u64 + 1);
    Ok(())
}

/// The answer for one line of a bulk mutation's variables: the mutation's `data` and `errors`
/// as a normal request would return them (user errors are inside `data`).
async fn run_line(
    state: &Arc<State>,
    shop: &Arc<Shop>,
    mutation: &str,
    api_version: &str,
    execute: &Execute,
    line: &str,
) -> Value {
    let vars = match serde_json::from_str::<Value>(line) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return json!({"errors": [{"message": "The line is not a JSON object of variables."}]});
        }
        Err(e) => return json!({"errors": [{"message": format!("Invalid JSON: {e}")}]}),
    };
    let req = async_graphql::Request::new(mutation)
        .variables(async_graphql::Variables::from_json(vars))
        .data(Ctx {
            shop: shop.clone(),
            state: state.clone(),
            api_version: api_version.to_string(),
            bulk: false,
            dry_run: false,
            bulk_pager: None,
            execute: execute.clone(),
        });
    let resp = execute(req).await;
    let mut out = Map::new();
    if let Ok(data) = resp.data.into_json()
        && !data.is_null()
    {
        out.insert("data".into(), data);
    }
    if !resp.errors.is_empty() {
        let errors = resp
            .errors
            .iter()
            .map(|e| json!({"message": e.message}))
            .collect();
        out.insert("errors".into(), Value::Array(errors));
    }
    Value::Object(out)
}

/// Runs `mutation` once per line of the staged variables, one result line per input line.
async fn write_mutation_result(
    state: &Arc<State>,
    shop: &Arc<Shop>,
    op_id: u64,
    mutation: &str,
    variables: &Path,
    api_version: &str,
    execute: &Execute,
) -> Result<Written, String> {
    let (mut result, mut out) = result_writer(shop, op_id)?;
    let input = tokio::fs::File::open(variables)
        .await
        .map_err(|e| format!("cannot open the staged variables: {e}"))?;
    let mut lines = tokio::io::BufReader::new(input).split(b'\n');
    let mut number = 0u64;
    while let Some(raw) = lines
        .next_segment()
        .await
        .map_err(|e| format!("cannot read the staged variables: {e}"))?
    {
        let text = String::from_utf8_lossy(&raw);
        // A trailing newline or blank line is no call (Shopify skips them too).
        if text.trim().is_empty() {
            continue;
        }
        let mut answer = run_line(state, shop, mutation, api_version, execute, &text).await;
        answer["__lineNumber"] = json!(number);
        write_line(&mut out, &mut result, &answer.to_string()).await?;
        number += 1;
    }
    out.flush()
        .await
        .map_err(|e| format!("cannot write the result: {e}"))?;
    Ok(Written {
        file: result,
        objects: number,
        roots: number,
    })
}

/// What a bulk operation runs.
pub enum Job {
    Query(String),
    /// The mutation document and its staged JSONL of variables, one call per line.
    Mutation(String, Arc<ResultFile>),
}

/// Runs a validated bulk operation in the background and announces `bulk_operations/finish`.
/// `execute` runs a request against the Admin schema.
pub fn spawn(
    state: Arc<State>,
    shop: Arc<Shop>,
    op_id: u64,
    job: Job,
    api_version: String,
    execute: Execute,
) {
    let kind = match job {
        Job::Query(_) => "query",
        Job::Mutation(..) => "mutation",
    };
    tokio::spawn(async move {
        set(&shop, op_id, |o| o.status = BulkOperationStatus::Running);
        // The resolvers never yield, so a long run on this (HTTP worker's) runtime would stall
        // the API it shares it with; it gets a thread and a runtime of its own instead.
        let written = {
            let (state, shop) = (state.clone(), shop.clone());
            tokio::task::spawn_blocking(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the bulk runtime: {e}"))?
                    .block_on(async {
                        match &job {
                            Job::Query(query) => {
                                write_result(
                                    &state,
                                    &shop,
                                    op_id,
                                    query,
                                    &api_version,
                                    &execute,
                                    BULK_PAGE,
                                )
                                .await
                            }
                            Job::Mutation(mutation, vars) => {
                                write_mutation_result(
                                    &state,
                                    &shop,
                                    op_id,
                                    mutation,
                                    vars.path(),
                                    &api_version,
                                    &execute,
                                )
                                .await
                            }
                        }
                    })
            })
            .await
            .unwrap_or_else(|e| Err(format!("bulk run ended abnormally: {e}")))
        };
        let now = Utc::now();
        match written {
            Err(e) => {
                tracing::warn!(error = %e, "bulk operation failed");
                set(&shop, op_id, |o| {
                    o.status = BulkOperationStatus::Failed;
                    o.error_code = Some(BulkOperationErrorCode::InternalServerError);
                    o.completed_at = Some(now);
                });
            }
            Ok(w) => {
                let size = w.file.size();
                let url = format!(
                    "{}/_sandbox/bulk/{}/{}.jsonl",
                    state.base_url(),
                    shop.info.domain,
                    op_id
                );
                // Shopify gives no URL for an empty result; the empty file goes at once.
                let file = (size > 0).then(|| Arc::new(w.file));
                set(&shop, op_id, |o| {
                    o.status = BulkOperationStatus::Completed;
                    o.completed_at = Some(now);
                    o.object_count = w.objects;
                    o.root_object_count = w.roots;
                    o.file_size = (size > 0).then_some(size);
                    o.url = file.is_some().then_some(url);
                    o.result = file;
                });
                expire_old_results(&shop);
            }
        }
        let op = ShopifyShop::of(&shop)
            .bulk
            .lock()
            .iter()
            .find(|o| o.id == op_id)
            .cloned();
        if let Some(op) = op {
            let status = format!("{:?}", op.status).to_lowercase();
            let payload = json!({
                "admin_graphql_api_id": gid("BulkOperation", op.id),
                "completed_at": op.completed_at.map(ts),
                "created_at": ts(op.created_at),
                "error_code": op.error_code.map(|e| format!("{e:?}").to_lowercase()),
                "status": status,
                "type": kind,
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

/// Keeps the newest [`KEPT_RESULTS`] results; older ones expire and their files go.
fn expire_old_results(shop: &Shop) {
    let mut ops = ShopifyShop::of(shop).bulk.lock();
    let mut kept = 0;
    for o in ops.iter_mut().rev() {
        if o.result.is_none() {
            continue;
        }
        kept += 1;
        if kept > KEPT_RESULTS {
            o.status = BulkOperationStatus::Expired;
            o.url = None;
            o.result = None;
        }
    }
}

/// Drops every result file of `shop` (the sandbox is stopping); downloads in flight keep theirs
/// until they end.
pub fn discard_results(shop: &Shop) {
    for o in ShopifyShop::of(shop).bulk.lock().iter_mut() {
        o.result = None;
        o.url = None;
    }
}

fn set(shop: &Shop, id: u64, f: impl FnOnce(&mut BulkOperation)) {
    if let Some(o) = ShopifyShop::of(shop)
        .bulk
        .lock()
        .iter_mut()
        .find(|o| o.id == id)
    {
        f(o);
    }
}

/// Serves a result file in chunks with its length known up front; never reads it whole.
pub struct FileBody {
    file: tokio::fs::File,
    size: u64,
    remaining: u64,
    buf: Vec<u8>,
    // Holds the file on disk while the download runs, even if the operation expires meanwhile.
    _result: Arc<ResultFile>,
}

impl FileBody {
    const CHUNK: usize = 1 << 16;

    pub async fn open(result: Arc<ResultFile>) -> std::io::Result<Self> {
        let file = tokio::fs::File::open(result.path()).await?;
        Ok(FileBody {
            file,
            size: result.size(),
            remaining: result.size(),
            buf: vec![0; Self::CHUNK],
            _result: result,
        })
    }
}

impl MessageBody for FileBody {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.size)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = (this.remaining as usize).min(this.buf.len());
        let mut rb = ReadBuf::new(&mut this.buf[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "bulk result file is shorter than its recorded size",
                    ))));
                }
                this.remaining -= n as u64;
                Poll::Ready(Some(Ok(Bytes::copy_from_slice(rb.filled()))))
            }
        }
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
        let (lines, roots) = flatten(data);
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
