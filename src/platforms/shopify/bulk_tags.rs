//! Label writes as Shopify bulk mutations: the JSONL of variables is staged, the mutation
//! run and polled, and its result streamed back line by line, each line's verdict read by its
//! `__lineNumber`. One bulk mutation runs per shop at a time: one left running by someone
//! else (or by a crashed earlier attempt) is waited out.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::client::{ShopClient, StagedTarget};
use super::writes::{MUTATION_COST, user_errors};
use crate::platforms::{BulkError as Failure, Verdicts};

/// Tag writes from which a push goes as bulk mutations. The aliased path spends 10 points a
/// write: 250 writes are 2,500 points, which a standard 2,000-point bucket restoring 100/s
/// absorbs in about 5 s of refills, so below this the aliased requests finish within a few
/// refills. Above it each write costs the bucket more time (10,000 writes: ~100 s at the floor)
/// while a bulk mutation costs ~10 points per operation plus a few polls, whatever its size.
pub const BULK_MIN_WRITES: usize = 250;

/// Variables per operation, under Shopify's 100 MB upload limit with room to spare; a larger
/// push runs as several operations in turn.
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// How often a run waits for a bulk mutation left running by someone else (or by a crashed
/// earlier attempt of this push) before giving the job back to retry.
const BUSY_RETRIES: u32 = 20;

pub(super) const ADD: &str = "mutation call($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { userErrors { field message } } }";
const REMOVE: &str = "mutation call($id: ID!, $tags: [String!]!) { tagsRemove(id: $id, tags: $tags) { userErrors { field message } } }";

/// Stages, runs and waits for one bulk mutation, and reads its result.
pub(super) async fn run(
    client: &ShopClient<'_>,
    add: bool,
    lines: &[&str],
    requests: &mut usize,
) -> Result<Verdicts, Failure> {
    let mutation = if add { ADD } else { REMOVE };
    let mut body = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        body.extend_from_slice(line.as_bytes());
        body.push(b'\n');
    }
    let r = client
        .run(
            "mutation { stagedUploadsCreate(input: [{resource: BULK_MUTATION_VARIABLES, filename: \"tags.jsonl\", mimeType: \"text/jsonl\", httpMethod: POST}]) { stagedTargets { url parameters { name value } } userErrors { field message } } }",
            json!({}),
            MUTATION_COST,
        )
        .await?;
    *requests += 1;
    let staged = r
        .data
        .get("stagedUploadsCreate")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(msg) = user_errors(&staged) {
        return Err(Failure::Failed(format!(
            "stagedUploadsCreate refused: {msg}"
        )));
    }
    let target = staged
        .pointer("/stagedTargets/0")
        .and_then(|t| {
            Some(StagedTarget {
                url: t.get("url")?.as_str()?.to_string(),
                parameters: t
                    .get("parameters")?
                    .as_array()?
                    .iter()
                    .filter_map(|p| {
                        Some((
                            p.get("name")?.as_str()?.to_string(),
                            p.get("value")?.as_str()?.to_string(),
                        ))
                    })
                    .collect(),
            })
        })
        .ok_or_else(|| Failure::Failed("stagedUploadsCreate returned no target".into()))?;
    let key = target
        .parameters
        .iter()
        .find(|(n, _)| n == "key")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| Failure::Failed("the staged target has no key parameter".into()))?;
    client
        .upload_staged(&target, "tags.jsonl", "text/jsonl", &body)
        .await
        .map_err(|e| Failure::Failed(e.to_string()))?;
    drop(body);

    let id = start(client, mutation, &key, requests).await?;
    let op = wait(client, &id, requests).await?;
    match op.get("status").and_then(Value::as_str) {
        Some("COMPLETED") => {}
        _ => return Err(Failure::Failed(format!("bulk mutation {id} ended {op}"))),
    }
    let Some(url) = op.get("url").and_then(Value::as_str) else {
        return Ok(vec![None; lines.len()]);
    };
    let root = if add { "tagsAdd" } else { "tagsRemove" };
    read_result(client, url, root, lines.len()).await
}

/// `bulkOperationRunMutation`; waits out a bulk mutation already running for the shop.
async fn start(
    client: &ShopClient<'_>,
    mutation: &str,
    key: &str,
    requests: &mut usize,
) -> Result<String, Failure> {
    for _ in 0..BUSY_RETRIES {
        let r = client
            .run(
                "mutation($m: String!, $p: String!) { bulkOperationRunMutation(mutation: $m, stagedUploadPath: $p) { bulkOperation { id status } userErrors { field message code } } }",
                json!({ "m": mutation, "p": key }),
                MUTATION_COST,
            )
            .await?;
        *requests += 1;
        let payload = r
            .data
            .get("bulkOperationRunMutation")
            .cloned()
            .unwrap_or(Value::Null);
        let busy = payload
            .get("userErrors")
            .and_then(Value::as_array)
            .is_some_and(|e| {
                e.iter()
                    .any(|e| e.get("code").and_then(Value::as_str) == Some("OPERATION_IN_PROGRESS"))
            });
        if busy {
            let current = client
                .run(
                    "{ currentBulkOperation(type: MUTATION) { id status } }",
                    json!({}),
                    1.0,
                )
                .await?;
            *requests += 1;
            if let Some(id) = current
                .data
                .pointer("/currentBulkOperation/id")
                .and_then(Value::as_str)
            {
                wait(client, id, requests).await?;
            }
            continue;
        }
        if let Some(msg) = user_errors(&payload) {
            return Err(Failure::Failed(format!(
                "bulkOperationRunMutation refused: {msg}"
            )));
        }
        return payload
            .pointer("/bulkOperation/id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                Failure::Failed("bulkOperationRunMutation returned no operation".into())
            });
    }
    Err(Failure::Failed(
        "another bulk mutation kept the shop busy".into(),
    ))
}

/// Waits for a bulk mutation to reach a terminal status.
async fn wait(client: &ShopClient<'_>, id: &str, requests: &mut usize) -> Result<Value, Failure> {
    super::export::poll(client, id, Duration::from_millis(50), requests).await
}

/// Streams the result JSONL and reads each line's verdict by its `__lineNumber`.
async fn read_result(
    client: &ShopClient<'_>,
    url: &str,
    root: &str,
    lines: usize,
) -> Result<Verdicts, Failure> {
    let resp = client
        .download(url)
        .await
        .map_err(|e| Failure::Failed(e.to_string()))?;
    let mut out: Verdicts = vec![None; lines];
    let mut verdict = |raw: &[u8]| -> Result<(), Failure> {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(raw)
            .map_err(|e| Failure::Failed(format!("unreadable result line: {e}")))?;
        let Some(n) = v.get("__lineNumber").and_then(Value::as_u64) else {
            return Err(Failure::Failed(format!(
                "result line without __lineNumber: {v}"
            )));
        };
        let slot = out
            .get_mut(n as usize)
            .ok_or_else(|| Failure::Failed(format!("result for line {n} of {lines}")))?;
        let errors = v
            .get("errors")
            .and_then(Value::as_array)
            .filter(|e| !e.is_empty());
        let payload = v.pointer(&format!("/data/{root}")).filter(|p| !p.is_null());
        *slot = Some(match (errors, payload) {
            (Some(errors), _) => Err(errors
                .iter()
                .filter_map(|e| e.get("message").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("; ")),
            (None, Some(p)) => user_errors(p).map_or(Ok(()), Err),
            (None, None) => Err("no result for this write".to_string()),
        });
        Ok(())
    };
    let mut stream = resp.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Failure::Failed(format!("result download: {e}")))?;
        pending.extend_from_slice(&chunk);
        let mut from = 0;
        for end in memchr_all(&pending) {
            verdict(&pending[from..end])?;
            from = end + 1;
        }
        pending.drain(..from);
    }
    verdict(&pending)?;
    Ok(out)
}

/// Positions of the newlines in `buf`.
fn memchr_all(buf: &[u8]) -> Vec<usize> {
    buf.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect()
}
