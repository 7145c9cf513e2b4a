//! Shopify behind the seam: the Admin GraphQL client as a `ShopApi`, with bulk exports and
//! bulk tag mutations.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::client::ShopClient;
use super::resources::{Gql, updated_since};
use super::{bulk_tags, export, writes};
use crate::core::loyalty::CustomerField;
use crate::model::DataEvent;
use crate::platforms::{
    BulkError, BulkExport, BulkLabels, CallError, CreateOutcome, LabelOp, NewCode, Page, Removal,
    Resource, ShopApi, Verdicts,
};

pub struct ShopifyApi<'a> {
    pub client: ShopClient<'a>,
}

#[async_trait::async_trait]
impl ShopApi for ShopifyApi<'_> {
    fn token(&self) -> String {
        self.client.token()
    }

    async fn count(&self, resource: Resource) -> Result<Option<u64>, CallError> {
        let r = self
            .client
            .run(&resource.count_query(), json!({}), 1.0)
            .await?;
        Ok(resource.count_of(&r.data).map(|n| n.max(0) as u64))
    }

    async fn page(
        &self,
        resource: Resource,
        since: Option<DateTime<Utc>>,
        cursor: Option<&str>,
    ) -> Result<Page, CallError> {
        let resp = self
            .client
            .run(
                &resource.page_query(),
                json!({ "after": cursor, "query": since.map(updated_since) }),
                resource.page_cost(),
            )
            .await?;
        let page = resource.page_of(&resp.data).ok_or_else(|| {
            CallError::Protocol(format!("no `{}` in the response", resource.name()))
        })?;
        let events = page
            .get("nodes")
            .and_then(Value::as_array)
            .map(|nodes| nodes.iter().map(|n| resource.to_event(n)).collect())
            .unwrap_or(Ok(Vec::new()))
            .map_err(CallError::Protocol)?;
        let has_next = page
            .pointer("/pageInfo/hasNextPage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let next = page
            .pointer("/pageInfo/endCursor")
            .and_then(Value::as_str)
            .filter(|_| has_next)
            .map(str::to_string);
        Ok(Page { events, next })
    }

    fn bulk_export(&self) -> Option<&dyn BulkExport> {
        Some(self)
    }

    fn labels_per_call(&self) -> usize {
        writes::FIELDS_PER_REQUEST
    }

    /// Tags: Lifecycle's own are added and removed by name, the merchant's are never named.
    async fn labels(
        &self,
        ops: &[LabelOp],
        _prefix: &str,
    ) -> Result<Vec<Option<String>>, CallError> {
        writes::tag_batch(&self.client, ops).await
    }

    fn bulk_labels(&self) -> Option<&dyn BulkLabels> {
        Some(self)
    }

    async fn create_code(&self, code: &NewCode<'_>) -> Result<CreateOutcome, CallError> {
        writes::create_code(&self.client, code).await
    }

    async fn uninstall(&self) -> Result<Removal, CallError> {
        writes::uninstall(&self.client).await
    }

    async fn set_customer_fields(
        &self,
        customer: &str,
        fields: &[CustomerField],
    ) -> Result<Option<String>, CallError> {
        writes::set_metafields(&self.client, customer, fields).await
    }
}

#[async_trait::async_trait]
impl BulkExport for ShopifyApi<'_> {
    async fn start_export(&self, resource: Resource) -> Result<String, BulkError> {
        export::start_query(&self.client, resource).await
    }

    async fn wait_export(&self, id: &str) -> Result<Option<String>, BulkError> {
        export::wait(&self.client, id).await
    }

    async fn download(&self, url: &str) -> Result<reqwest::Response, BulkError> {
        Ok(self.client.download(url).await?)
    }

    fn export_line(&self, resource: Resource, line: &Value) -> Result<Option<DataEvent>, String> {
        // Children of nested connections carry `__parentId`; our queries have none.
        if line.get("__parentId").is_some() {
            return Ok(None);
        }
        resource.to_event(line).map(Some)
    }
}

#[async_trait::async_trait]
impl BulkLabels for ShopifyApi<'_> {
    fn min_writes(&self) -> usize {
        bulk_tags::BULK_MIN_WRITES
    }

    fn upload_limit(&self) -> usize {
        bulk_tags::MAX_UPLOAD_BYTES
    }

    fn line(&self, op: &LabelOp) -> String {
        json!({ "id": op.customer, "tags": op.labels }).to_string()
    }

    async fn run(
        &self,
        add: bool,
        lines: &[&str],
        requests: &mut usize,
    ) -> Result<Verdicts, BulkError> {
        bulk_tags::run(&self.client, add, lines, requests).await
    }
}
