//! The bulk path for large shops: one `bulkOperationRunQuery` per resource, polled until it
//! completes, and its JSONL result streamed line by line (never loaded whole), applied in
//! batches. The checkpoint records the result URL and the lines applied, so a killed backfill
//! resumes in the same file.

use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Report, SyncError, add};
use crate::ingest::apply::apply;
use crate::platforms::shopify::client::ShopClient;
use crate::platforms::shopify::resources::Resource;
use crate::state::AppState;
use crate::store;
use crate::store::sync_state::{self, Checkpoint};

const BATCH: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
struct BulkCursor {
    url: String,
    lines: u64,
}

/// A bulk export started for a resource, or the result file a killed backfill was reading.
pub enum Export {
    /// Started by this backfill: wait for the operation with this id.
    Started(String),
    /// Resumed: the result file and the lines already applied.
    Resumed { url: String, lines: u64 },
}

/// Starts the resource's export, unless its checkpoint says a result is being read already.
/// The platform runs several exports of a shop at once (Shopify: five since 2026-01), so the
/// backfill starts every resource's before reading any.
pub async fn start(
    client: &ShopClient<'_>,
    resource: Resource,
    cp: &Checkpoint,
) -> Result<Export, SyncError> {
    let resume = cp
        .cursor
        .as_deref()
        .and_then(|c| serde_json::from_str::<BulkCursor>(c).ok());
    Ok(match resume {
        Some(c) => Export::Resumed {
            url: c.url,
            lines: c.lines,
        },
        None => Export::Started(start_query(client, resource).await?),
    })
}

/// Waits for the export and applies its result, line by line, in batches with their checkpoint.
pub async fn run(
    state: &AppState,
    client: &ShopClient<'_>,
    shop_id: i64,
    resource: Resource,
    export: Export,
    cp: &mut Checkpoint,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Report, SyncError> {
    let (url, skip) = match export {
        Export::Resumed { url, lines } => (url, lines),
        Export::Started(id) => match wait(client, &id).await? {
            Some(url) => (url, 0),
            None => return Ok(Report::default()),
        },
    };
    let resp = state
        .http
        .get(&url)
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .map_err(|e| SyncError::Data(format!("bulk result download failed: {e}")))?;
    if !resp.status().is_success() {
        return Err(SyncError::Data(format!(
            "bulk result download answered {}",
            resp.status()
        )));
    }
    let mut reader = Reader {
        state,
        shop_id,
        resource,
        cp,
        url: &url,
        skip,
        line_no: 0,
        batch: Vec::with_capacity(BATCH),
        report: Report::default(),
        progress,
    };
    let mut stream = resp.bytes_stream();
    let mut pending: Vec<u8> = Vec::with_capacity(1 << 16);
    while let Some(chunk) = stream.next().await {
        pending.extend_from_slice(
            &chunk.map_err(|e| SyncError::Data(format!("bulk result stream: {e}")))?,
        );
        let mut start = 0;
        while let Some(len) = pending[start..].iter().position(|b| *b == b'\n') {
            reader.line(&pending[start..start + len]).await?;
            start += len + 1;
        }
        pending.drain(..start);
    }
    reader.line(&pending).await?;
    reader.commit().await?;
    Ok(reader.report)
}

/// Reads the result file line by line, applying batches with their checkpoint.
struct Reader<'a> {
    state: &'a AppState,
    shop_id: i64,
    resource: Resource,
    cp: &'a mut Checkpoint,
    url: &'a str,
    skip: u64,
    line_no: u64,
    batch: Vec<crate::model::Event>,
    report: Report,
    progress: &'a (dyn Fn(u64) + Send + Sync),
}

impl Reader<'_> {
    async fn line(&mut self, line: &[u8]) -> Result<(), SyncError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.line_no += 1;
        if self.line_no <= self.skip {
            return Ok(());
        }
        let n = self.line_no;
        let v: Value = serde_json::from_slice(line)
            .map_err(|e| SyncError::Data(format!("bulk line {n}: {e}")))?;
        // Children of nested connections carry `__parentId`; our queries have none.
        if v.get("__parentId").is_none() {
            self.batch.push(
                self.resource
                    .to_event(&v)
                    .map_err(|e| SyncError::Data(format!("bulk line {n}: {e}")))?,
            );
        }
        if self.batch.len() >= BATCH {
            self.commit().await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), SyncError> {
        let tx = store::write_tx(&self.state.db).await?;
        let applied = apply(&tx, self.shop_id, &self.batch).await?;
        self.cp.fetched += self.batch.len() as i64;
        self.cp.cursor = Some(
            serde_json::to_string(&BulkCursor {
                url: self.url.to_string(),
                lines: self.line_no,
            })
            .expect("serialisable"),
        );
        sync_state::save(&tx, self.shop_id, self.resource.name(), self.cp).await?;
        tx.commit().await?;
        // Statistics as the tables grow: at 10,000 and 50,000 records, then every 200,000.
        let before = self.report.fetched;
        let after = before + self.batch.len() as u64;
        let crossed = |mark: u64| before < mark && after >= mark;
        if crossed(10_000) || crossed(50_000) || before / 200_000 != after / 200_000 {
            store::analyze_shop_tables(&self.state.db).await?;
        }
        self.report.fetched += self.batch.len() as u64;
        add(&mut self.report.changed, applied);
        self.batch.clear();
        (self.progress)(self.cp.fetched as u64);
        Ok(())
    }
}

/// Starts the bulk query; returns the operation's id.
async fn start_query(client: &ShopClient<'_>, resource: Resource) -> Result<String, SyncError> {
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
        return Err(SyncError::Data(format!(
            "bulk operation refused: {}",
            Value::Array(errors)
        )));
    }
    Ok(r.data
        .pointer("/bulkOperationRunQuery/bulkOperation/id")
        .and_then(Value::as_str)
        .ok_or_else(|| SyncError::Data("bulk operation without id".into()))?
        .to_string())
}

/// Polls the operation by id (with several running, `currentBulkOperation` names only the
/// latest) until it completes; returns the result URL (None when the query matched nothing).
async fn wait(client: &ShopClient<'_>, id: &str) -> Result<Option<String>, SyncError> {
    let mut wait = Duration::from_millis(200);
    loop {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
        let r = client
            .run(
                "query($id: ID!) { bulkOperation(id: $id) { id status errorCode objectCount url } }",
                json!({ "id": id }),
                1.0,
            )
            .await?;
        let op = r.data.get("bulkOperation").cloned().unwrap_or(Value::Null);
        match op.get("status").and_then(Value::as_str).unwrap_or("") {
            "COMPLETED" => {
                return Ok(op.get("url").and_then(Value::as_str).map(str::to_string));
            }
            "FAILED" | "CANCELED" | "EXPIRED" => {
                return Err(SyncError::Data(format!("bulk operation {id} ended {op}")));
            }
            "" if op.is_null() => {
                return Err(SyncError::Data(format!("bulk operation {id} is unknown")));
            }
            _ => {}
        }
    }
}
