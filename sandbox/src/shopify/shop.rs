//! What the Shopify flavour keeps per shop: bulk operations and staged uploads, and the temp
//! files that hold their data.

use crate::state::Shop;
use async_graphql::Enum;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const NAME: &str = "shopify";

/// The API version the sandbox reports for app-level (TOML) webhook subscriptions.
pub const API_VERSION: &str = "2026-07";

/// What a Shopify shop holds beside the shared model: its bulk operations and staged uploads.
#[derive(Default)]
pub struct ShopifyShop {
    pub bulk: Mutex<Vec<BulkOperation>>,
    /// Staged upload targets for bulk mutations, oldest first.
    pub staged: Mutex<Vec<Staged>>,
}

impl ShopifyShop {
    /// The Shopify part of `shop` (which must be a Shopify shop).
    pub fn of(shop: &Shop) -> &ShopifyShop {
        shop.flavour_as::<ShopifyShop>()
            .expect("a Shopify-flavoured shop")
    }
}

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
    pub kind: BulkOperationType,
    pub status: BulkOperationStatus,
    pub error_code: Option<BulkOperationErrorCode>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub object_count: u64,
    pub root_object_count: u64,
    pub file_size: Option<u64>,
    pub url: Option<String>,
    pub query: String,
    /// The JSONL on disk, shared with downloads in flight.
    pub result: Option<Arc<ResultFile>>,
}

impl BulkOperation {
    /// A new operation, not yet started.
    pub fn created(id: u64, kind: BulkOperationType, query: String) -> Self {
        BulkOperation {
            id,
            kind,
            status: BulkOperationStatus::Created,
            error_code: None,
            created_at: Utc::now(),
            completed_at: None,
            object_count: 0,
            root_object_count: 0,
            file_size: None,
            url: None,
            query,
            result: None,
        }
    }
}

/// A file in the temp directory (a bulk result or a staged upload). It is removed when the last
/// handle goes: the operation was dropped (with its shop or the sandbox) or expired, and any
/// download or run in flight has ended.
#[derive(Debug)]
pub struct ResultFile {
    path: PathBuf,
    size: u64,
}

impl ResultFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for ResultFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove bulk result");
        }
    }
}

/// Creates a fresh file under the temp directory; the guard deletes it on any failure.
pub fn create_temp(
    what: &str,
    domain: &str,
    id: u64,
) -> std::io::Result<(ResultFile, std::fs::File)> {
    let name = format!(
        "lifecycle-sandbox-{what}-{}-{id}-{}.jsonl",
        domain.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        uuid::Uuid::new_v4().simple()
    );
    let path = std::env::temp_dir().join(name);
    // create_new: never write through a file someone else put there.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((ResultFile { path, size: 0 }, file))
}

impl ResultFile {
    /// Records bytes appended through the file handle.
    pub fn grew(&mut self, n: u64) {
        self.size += n;
    }
}

/// An issued target: the parameters the upload must echo, and the file once uploaded.
#[derive(Debug)]
pub struct Staged {
    pub key: String,
    pub params: Vec<(String, String)>,
    pub file: Option<Arc<ResultFile>>,
}
