//! The bulk path for large shops, where the platform exports (`BulkExport`): one export per
//! resource, waited for, and its JSONL result streamed line by line (never loaded whole),
//! applied in batches. The checkpoint records the result URL and the lines applied, so a killed backfill
//! resumes in the same file.

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Report, SyncError, add};
use crate::ingest::apply::apply;
use crate::platforms::{BulkExport, Resource};
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
    client: &dyn BulkExport,
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
        None => Export::Started(client.start_export(resource).await?),
    })
}

/// Waits for the export and applies its result, line by line, in batches with their checkpoint.
pub async fn run(
    state: &AppState,
    client: &dyn BulkExport,
    shop_id: i64,
    resource: Resource,
    export: Export,
    cp: &mut Checkpoint,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Report, SyncError> {
    let (url, skip) = match export {
        Export::Resumed { url, lines } => (url, lines),
        Export::Started(id) => match client.wait_export(&id).await? {
            Some(url) => (url, 0),
            None => return Ok(Report::default()),
        },
    };
    let resp = client.download(&url).await?;
    let mut reader = Reader {
        state,
        client,
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
    client: &'a dyn BulkExport,
    shop_id: i64,
    resource: Resource,
    cp: &'a mut Checkpoint,
    url: &'a str,
    skip: u64,
    line_no: u64,
    batch: Vec<crate::model::DataEvent>,
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
        let event = self
            .client
            .export_line(self.resource, &v)
            .map_err(|e| SyncError::Data(format!("bulk line {n}: {e}")))?;
        self.batch.extend(event);
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
