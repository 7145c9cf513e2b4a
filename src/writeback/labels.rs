//! Label pushes: a difference goes as batched calls ([`tags::push_aliased`]) or, where the
//! platform has bulk writes and the push is large enough, as bulk calls ([`bulk::push`]).

use chrono::{DateTime, Utc};

use super::tags::{self, TagStats, TagWork};
use super::{Stop, WritebackError, bulk, client_or_stop};
use crate::state::AppState;

/// Sends the changes: as bulk calls where the platform has them and the push is large enough
/// (`BulkLabels::min_writes`), else in batches of ordinary calls.
pub async fn push(
    state: &AppState,
    shop_id: i64,
    run_id: Option<i64>,
    works: &[TagWork],
    now: DateTime<Utc>,
) -> Result<(TagStats, Option<Stop>), WritebackError> {
    let writes: usize = works.iter().map(|w| tags::ops_of(w).len()).sum();
    let bulk_from = match client_or_stop(state, shop_id).await? {
        Ok(client) => client.bulk_labels().map(|b| b.min_writes()),
        Err(stop) => return Ok((TagStats::default(), Some(stop))),
    };
    if bulk_from.is_some_and(|min| writes >= min) {
        bulk::push(state, shop_id, run_id, works, now).await
    } else {
        tags::push_aliased(state, shop_id, run_id, works, now).await
    }
}
