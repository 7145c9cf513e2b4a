//! The bulk path for a large tag push: the `tagsAdd` lines and the `tagsRemove` lines each go
//! as one bulk mutation (JSONL of variables, staged, run, polled, result streamed back line by
//! line), one after the other since a shop runs one bulk mutation at a time. A customer is
//! confirmed only by result lines without errors for all of its writes, through the same
//! record step as the aliased path; a line with errors is recorded as rejected. An operation
//! that fails as a whole confirms nothing and fails the push so the job retries: `tagsAdd` and
//! `tagsRemove` are idempotent and the retry re-plans from the confirmed state, so a crash
//! between a run and its confirmation converges too.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::shopify::{MUTATION_COST, user_errors};
use super::tags::{TagStats, TagWork, ops_of, record};
use super::{Stop, WritebackError, client_or_stop};
use crate::platforms::shopify::client::{ClientError, ShopClient, StagedTarget};
use crate::state::AppState;

/// Tag writes from which a push goes as bulk mutations. The aliased path spends 10 points a
/// write: 250 writes are 2,500 points, which a standard 2,000-point bucket restoring 100/s
/// absorbs in about 5 s of refills, so below this the aliased requests finish within a few
/// refills. Above it each write costs the bucket more time (10,000 writes: ~100 s at the floor)
/// while a bulk mutation costs ~10 points per operation plus a few polls, whatever its size.
pub const BULK_MIN_WRITES: usize = 250;

/// Variables per operation, under Shopify's 100 MB upload limit with room to spare; a larger
/// push runs as several operations in turn.
const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// How often a run waits for a bulk mutation left running by someone else (or by a crashed
/// earlier attempt of this push) before giving the job back to retry.
const BUSY_RETRIES: u32 = 20;

const ADD: &str = "mutation call($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { userErrors { field message } } }";
const REMOVE: &str = "mutation call($id: ID!, $tags: [String!]!) { tagsRemove(id: $id, tags: $tags) { userErrors { field message } } }";

fn bulk_error(e: impl std::fmt::Display) -> WritebackError {
    WritebackError::Bulk(e.to_string())
}

/// Pushes `works` as bulk mutations. `Err(Stop)` as in the aliased path: the shop went away
/// between operations.
pub async fn push(
    state: &AppState,
    shop_id: i64,
    run_id: Option<i64>,
    works: &[TagWork],
    now: DateTime<Utc>,
) -> Result<(TagStats, Option<Stop>), WritebackError> {
    let mut stats = TagStats::default();
    // Per customer: writes without a result line yet, and the first refusal.
    let mut outstanding: Vec<usize> = works.iter().map(|w| ops_of(w).len()).collect();
    let mut refused: Vec<Option<String>> = vec![None; works.len()];
    for add in [true, false] {
        let mut lines: Vec<(usize, String)> = Vec::new();
        for (i, w) in works.iter().enumerate() {
            for op in ops_of(w).into_iter().filter(|op| op.add == add) {
                lines.push((i, json!({ "id": op.customer, "tags": op.tags }).to_string()));
            }
        }
        for chunk in chunks(&lines, MAX_UPLOAD_BYTES) {
            let client = match client_or_stop(state, shop_id).await? {
                Ok(c) => c,
                Err(stop) => return Ok((stats, Some(stop))),
            };
            let mutation = if add { ADD } else { REMOVE };
            let results = run(&client, mutation, chunk, &mut stats)
                .await
                .map_err(|e| match e {
                    Failure::Client(e) => WritebackError::from_client(e, shop_id, &client),
                    Failure::Bulk(msg) => bulk_error(msg),
                })?;
            let mut done = Vec::new();
            let mut missing = 0;
            for (pos, (i, _)) in chunk.iter().enumerate() {
                match results.get(pos).cloned().flatten() {
                    Some(outcome) => {
                        if let Err(msg) = outcome {
                            refused[*i].get_or_insert(msg);
                        }
                        outstanding[*i] -= 1;
                        if outstanding[*i] == 0 {
                            done.push(*i);
                        }
                    }
                    None => missing += 1,
                }
            }
            let outcomes: Vec<_> = done
                .iter()
                .map(|&i| (&works[i], refused[i].as_deref()))
                .collect();
            record(state, shop_id, run_id, &outcomes, &mut stats, now).await?;
            if missing > 0 {
                return Err(bulk_error(format!(
                    "{missing} of {} lines have no result line",
                    chunk.len()
                )));
            }
        }
    }
    Ok((stats, None))
}

/// Splits the lines so no operation's file exceeds `limit` bytes (a longer line goes alone).
fn chunks(lines: &[(usize, String)], limit: usize) -> Vec<&[(usize, String)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (k, (_, line)) in lines.iter().enumerate() {
        if bytes + line.len() + 1 > limit && k > start {
            out.push(&lines[start..k]);
            (start, bytes) = (k, 0);
        }
        bytes += line.len() + 1;
    }
    if start < lines.len() {
        out.push(&lines[start..]);
    }
    out
}

enum Failure {
    Client(ClientError),
    Bulk(String),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

/// A result line's verdict: `Ok` applied, `Err` refused with the platform's message. `None`
/// for lines the result does not mention.
type Outcomes = Vec<Option<Result<(), String>>>;

/// Stages, runs and waits for one bulk mutation, and reads its result.
async fn run(
    client: &ShopClient<'_>,
    mutation: &str,
    lines: &[(usize, String)],
    stats: &mut TagStats,
) -> Result<Outcomes, Failure> {
    let mut body = Vec::with_capacity(lines.iter().map(|(_, l)| l.len() + 1).sum());
    for (_, line) in lines {
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
    stats.requests += 1;
    let staged = r
        .data
        .get("stagedUploadsCreate")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(msg) = user_errors(&staged) {
        return Err(Failure::Bulk(format!("stagedUploadsCreate refused: {msg}")));
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
        .ok_or_else(|| Failure::Bulk("stagedUploadsCreate returned no target".into()))?;
    let key = target
        .parameters
        .iter()
        .find(|(n, _)| n == "key")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| Failure::Bulk("the staged target has no key parameter".into()))?;
    client
        .upload_staged(&target, "tags.jsonl", "text/jsonl", &body)
        .await
        .map_err(|e| Failure::Bulk(e.to_string()))?;
    drop(body);

    let id = start(client, mutation, &key, stats).await?;
    let op = wait(client, &id, stats).await?;
    match op.get("status").and_then(Value::as_str) {
        Some("COMPLETED") => {}
        _ => return Err(Failure::Bulk(format!("bulk mutation {id} ended {op}"))),
    }
    stats.bulk_operations += 1;
    stats.writes += lines.len();
    let Some(url) = op.get("url").and_then(Value::as_str) else {
        return Ok(vec![None; lines.len()]);
    };
    let root = if mutation == ADD {
        "tagsAdd"
    } else {
        "tagsRemove"
    };
    read_result(client, url, root, lines.len()).await
}

/// `bulkOperationRunMutation`; waits out a bulk mutation already running for the shop.
async fn start(
    client: &ShopClient<'_>,
    mutation: &str,
    key: &str,
    stats: &mut TagStats,
) -> Result<String, Failure> {
    for _ in 0..BUSY_RETRIES {
        let r = client
            .run(
                "mutation($m: String!, $p: String!) { bulkOperationRunMutation(mutation: $m, stagedUploadPath: $p) { bulkOperation { id status } userErrors { field message code } } }",
                json!({ "m": mutation, "p": key }),
                MUTATION_COST,
            )
            .await?;
        stats.requests += 1;
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
            stats.requests += 1;
            if let Some(id) = current
                .data
                .pointer("/currentBulkOperation/id")
                .and_then(Value::as_str)
            {
                wait(client, id, stats).await?;
            }
            continue;
        }
        if let Some(msg) = user_errors(&payload) {
            return Err(Failure::Bulk(format!(
                "bulkOperationRunMutation refused: {msg}"
            )));
        }
        return payload
            .pointer("/bulkOperation/id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Failure::Bulk("bulkOperationRunMutation returned no operation".into()));
    }
    Err(Failure::Bulk(
        "another bulk mutation kept the shop busy".into(),
    ))
}

/// Polls the operation with backoff until it reaches a terminal status.
async fn wait(client: &ShopClient<'_>, id: &str, stats: &mut TagStats) -> Result<Value, Failure> {
    let mut pause = Duration::from_millis(50);
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
        stats.requests += 1;
        let op = r.data.get("bulkOperation").cloned().unwrap_or(Value::Null);
        match op.get("status").and_then(Value::as_str) {
            Some("CREATED" | "RUNNING" | "CANCELING") => {}
            Some(_) => return Ok(op),
            None => {
                return Err(Failure::Bulk(format!(
                    "bulk operation {id} is unknown: {op}"
                )));
            }
        }
    }
}

/// Streams the result JSONL and reads each line's verdict by its `__lineNumber`.
async fn read_result(
    client: &ShopClient<'_>,
    url: &str,
    root: &str,
    lines: usize,
) -> Result<Outcomes, Failure> {
    let resp = client
        .download(url)
        .await
        .map_err(|e| Failure::Bulk(e.to_string()))?;
    let mut out: Outcomes = vec![None; lines];
    let mut verdict = |raw: &[u8]| -> Result<(), Failure> {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(raw)
            .map_err(|e| Failure::Bulk(format!("unreadable result line: {e}")))?;
        let Some(n) = v.get("__lineNumber").and_then(Value::as_u64) else {
            return Err(Failure::Bulk(format!(
                "result line without __lineNumber: {v}"
            )));
        };
        let slot = out
            .get_mut(n as usize)
            .ok_or_else(|| Failure::Bulk(format!("result for line {n} of {lines}")))?;
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
        let chunk = chunk.map_err(|e| Failure::Bulk(format!("result download: {e}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_every_line_once_and_in_order() {
        let lines: Vec<(usize, String)> = (0..5).map(|i| (i, "x".repeat(10))).collect();
        assert_eq!(chunks(&lines, 1000).len(), 1);
        // 11 bytes a line with its newline: two fit in 25 bytes.
        let split = chunks(&lines, 25);
        assert_eq!(split.iter().map(|c| c.len()).collect::<Vec<_>>(), [2, 2, 1]);
        let order: Vec<usize> = split
            .iter()
            .flat_map(|c| c.iter().map(|(i, _)| *i))
            .collect();
        assert_eq!(order, [0, 1, 2, 3, 4]);
        assert_eq!(chunks(&lines, 5).len(), 5, "an oversized line goes alone");
        assert!(chunks(&[], 25).is_empty());
    }
}
