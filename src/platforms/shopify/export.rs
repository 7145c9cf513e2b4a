//! Whole-resource exports as Shopify bulk queries: `bulkOperationRunQuery`, polled by id until
//! it completes; the result is a JSONL file the sync streams.

use std::time::Duration;

use serde_json::{Value, json};

use super::client::ShopClient;
use super::resources::{Gql, Resource};
use crate::platforms::BulkError;

/// Starts the bulk query; returns the operation's id.
pub(super) async fn start_query(
    client: &ShopClient<'_>,
    resource: Resource,
) -> Result<String, BulkError> {
    let r = client
        .run(
            "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id status } userErrors { field message } } }",
            json!({ "q": resource.bulk_query() }),
            10.0,
        )
        .await?;
    let errors = r
        .data
        .pointer("/bulkOperationRunQuery/userErrors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !errors.is_empty() {
        return Err(BulkError::Failed(format!(
            "bulk operation refused: {}",
            Value::Array(errors)
        )));
    }
    Ok(r.data
        .pointer("/bulkOperationRunQuery/bulkOperation/id")
        .and_then(Value::as_str)
        .ok_or_else(|| BulkError::Failed("bulk operation without id".into()))?
        .to_string())
}

/// Polls a bulk operation by id (with several running, `currentBulkOperation` names only the
/// latest), with doubling pauses from `first_pause` up to 5 s, until it reaches a terminal
/// status; returns the operation. Counts its requests.
pub(super) async fn poll(
    client: &ShopClient<'_>,
    id: &str,
    first_pause: Duration,
    requests: &mut usize,
) -> Result<Value, BulkError> {
    let mut pause = first_pause;
    loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
        let r = client
            .run(
                "query($id: ID!) { bulkOperation(id: $id) { id status errorCode objectCount url } }",
                json!({ "id": id }),
                1.0,
            )
            .await?;
        *requests += 1;
        let op = r.data.get("bulkOperation").cloned().unwrap_or(Value::Null);
        match op.get("status").and_then(Value::as_str) {
            Some("CREATED" | "RUNNING" | "CANCELING") => {}
            Some(_) => return Ok(op),
            None => {
                return Err(BulkError::Failed(format!(
                    "bulk operation {id} is unknown: {op}"
                )));
            }
        }
    }
}

/// Waits for an export; returns the result URL (None when the query matched nothing).
pub(super) async fn wait(client: &ShopClient<'_>, id: &str) -> Result<Option<String>, BulkError> {
    let op = poll(client, id, Duration::from_millis(200), &mut 0).await?;
    match op.get("status").and_then(Value::as_str) {
        Some("COMPLETED") => Ok(op.get("url").and_then(Value::as_str).map(str::to_string)),
        _ => Err(BulkError::Failed(format!("bulk operation {id} ended {op}"))),
    }
}
