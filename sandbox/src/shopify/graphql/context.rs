//! What a request's resolvers share: the shop and sandbox, and a bulk run's paging state.

use crate::state::{Shop, State};
use async_graphql::Context;
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Request-scoped data: the shop, the sandbox, and whether this is a bulk run (no page limits).
pub struct Ctx {
    pub shop: Arc<Shop>,
    pub state: Arc<State>,
    pub api_version: String,
    pub bulk: bool,
    /// Validate a bulk query without reading data: connections come back empty.
    pub dry_run: bool,
    /// Set for a streamed bulk run: root connections are read a page per pass.
    pub bulk_pager: Option<Arc<BulkPager>>,
    /// Runs a request against the Admin schema (for resolvers and bulk runs that run GraphQL
    /// themselves).
    pub execute: Execute,
}

/// Runs a request against the Admin schema.
pub type Execute = Arc<
    dyn Fn(async_graphql::Request) -> BoxFuture<'static, async_graphql::Response> + Send + Sync,
>;

pub fn ctx<'a>(c: &Context<'a>) -> &'a Ctx {
    c.data_unchecked::<Ctx>()
}

/// How far back an app sees orders without `read_all_orders`.
pub const ORDER_WINDOW_DAYS: i64 = 60;

impl Ctx {
    /// The oldest creation time of an order the app may see: none with `read_all_orders`
    /// granted, otherwise 60 days ago (Shopify's default window).
    pub fn orders_from(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let all = self
            .shop
            .auth
            .lock()
            .scope
            .split(',')
            .any(|s| s.trim() == "read_all_orders");
        (!all).then(|| chrono::Utc::now() - chrono::Duration::days(ORDER_WINDOW_DAYS))
    }
}

/// Whether `order` is inside the window that starts at `from` (see [`Ctx::orders_from`]).
pub fn visible(
    from: Option<chrono::DateTime<chrono::Utc>>,
    order: &crate::store::model::Order,
) -> bool {
    from.is_none_or(|t| order.created_at >= t)
}

/// Walks the root connections of a bulk query a page per pass, so a run never holds more than
/// one page of root objects (with their children) in memory. The root resolvers consult it
/// through [`crate::shopify::graphql::paging::root`], keyed by response key (alias or field name).
pub struct BulkPager {
    pub page: usize,
    roots: Mutex<HashMap<String, RootState>>,
}

enum RootState {
    After(String),
    Done,
}

/// Where a root connection continues in this pass.
pub enum Resume {
    Start,
    After(String),
    Done,
}

impl BulkPager {
    pub fn new(page: usize) -> Self {
        BulkPager {
            page: page.max(1),
            roots: Mutex::new(HashMap::new()),
        }
    }

    pub fn resume(&self, key: &str) -> Resume {
        match self.roots.lock().get(key) {
            None => Resume::Start,
            Some(RootState::After(c)) => Resume::After(c.clone()),
            Some(RootState::Done) => Resume::Done,
        }
    }

    /// Records how far `key` got: the cursor of its last edge, and whether more follow.
    pub fn advance(&self, key: &str, last: Option<String>, has_next: bool) {
        let state = match last {
            Some(c) if has_next => RootState::After(c),
            _ => RootState::Done,
        };
        self.roots.lock().insert(key.to_string(), state);
    }

    /// Whether another pass has rows to read.
    pub fn unfinished(&self) -> bool {
        self.roots
            .lock()
            .values()
            .any(|s| matches!(s, RootState::After(_)))
    }
}
