//! Turns a claimed inbox row into canonical events and applies them. A payload that cannot be
//! decoded fails permanently: the row is kept as `failed` with the reason and the queue moves on.

use crate::jobs::{JobError, JobResult};
use crate::model::Event;
use crate::platforms::shopify;
use crate::state::AppState;
use crate::store::entities::{inbox, shop};
use crate::store::{self, jobs as q, privacy, shops};

pub async fn process(state: AppState, row: inbox::Model) -> JobResult {
    let events = match row.platform.as_str() {
        shopify::PLATFORM => {
            shopify::events::decode(&row.topic, &row.body).map_err(JobError::permanent)?
        }
        other => {
            return Err(JobError::Permanent(format!(
                "no decoder for platform `{other}`"
            )));
        }
    };
    let shop = match row.shop_id {
        Some(id) => shops::get(&state.db, id).await?,
        None => None,
    };
    let Some(shop) = shop else {
        return Err(JobError::Permanent(format!(
            "shop `{}` is unknown",
            row.shop_domain
        )));
    };
    apply_events(&state, &shop, events).await
}

/// Applies decoded events for a shop: data through `ingest::apply`, shop lifecycle and privacy
/// requests through their own store functions, all in one write transaction.
pub async fn apply_events(state: &AppState, shop: &shop::Model, events: Vec<Event>) -> JobResult {
    let installed = shops::is_installed(&shop.status);
    let tx = store::write_tx(&state.db).await?;
    let mut data = Vec::new();
    for event in events {
        match event {
            Event::AppUninstalled => {
                shops::mark_uninstalled(&tx, shop.id).await?;
                let cancelled = q::cancel_for_shop(&tx, shop.id).await?;
                tracing::info!(shop = %shop.domain, cancelled, "app uninstalled: token erased, jobs cancelled");
            }
            Event::CustomerDataRequested(req) => {
                privacy::export_customer(&tx, shop.id, &req).await?
            }
            Event::CustomerRedactRequested(req) => {
                privacy::redact_customer(&tx, shop.id, &req).await?
            }
            Event::ShopRedactRequested => privacy::redact_shop(&tx, shop.id).await?,
            Event::BulkOperationFinished {
                operation_id,
                status,
            } => {
                tracing::info!(shop = %shop.domain, %operation_id, %status, "bulk operation finished");
            }
            other if installed => data.push(other),
            _ => tracing::info!(shop = %shop.domain, "shop is not installed: data event ignored"),
        }
    }
    if !data.is_empty() {
        super::apply::apply(&tx, shop.id, &data).await?;
        // Near-real-time re-scoring of the customers these events touch (issue 7).
        crate::writeback::rescore::enqueue_for_events(&tx, shop.id, &data, chrono::Utc::now())
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
