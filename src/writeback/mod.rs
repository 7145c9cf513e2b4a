//! Writing what the analytics found back into the shop: customer labels ([`tags`]) and
//! personal discount codes with their customer fields ([`codes`]), through the shop's
//! platform API (`platforms::ShopApi`), every write audited ([`store`]). [`segment`] is the scheduled job
//! (analyse → segments → plan → push) and `lifecycle segment`; [`rescore`] the near-real-time
//! job after a webhook.

pub mod bulk;
pub mod codes;
pub mod labels;
pub mod rescore;
pub mod segment;
pub mod store;
pub mod tags;

use crate::analysis::AnalyseError;
use crate::platforms::{BulkError, CallError, ShopApi, TokenError, mark_needs_reauth};
use crate::queue::JobError;
use crate::settings::SettingsError;
use crate::state::AppState;

pub use segment::{Summary, run_segment};

#[derive(Debug, thiserror::Error)]
pub enum WritebackError {
    #[error("no shop {0}")]
    UnknownShop(String),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Analyse(#[from] AnalyseError),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A bulk mutation failed as a whole (or its result could not be read): nothing it did
    /// was confirmed, and a retry re-plans from what was.
    #[error("bulk mutation: {0}")]
    Bulk(String),
    /// Another run of the shop that sends writes holds its lease.
    #[error("another run of this shop is under way; try again when it has ended")]
    Busy,
    /// The run's shop lease went unrenewed past its expiry and was taken over.
    #[error("the run lost the shop's lease")]
    LeaseLost,
    #[error("shop {shop_id}: {error}")]
    Client {
        shop_id: i64,
        error: CallError,
        /// The token the call was made with, to tell a revoked token from a replaced one.
        token: CallToken,
    },
}

/// A token carried by an error; never printed.
pub struct CallToken(String);

impl std::fmt::Debug for CallToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallToken(..)")
    }
}

impl WritebackError {
    pub fn from_client(error: CallError, shop_id: i64, client: &dyn ShopApi) -> WritebackError {
        WritebackError::Client {
            shop_id,
            error,
            token: CallToken(client.token()),
        }
    }

    pub fn from_bulk(error: BulkError, shop_id: i64, client: &dyn ShopApi) -> WritebackError {
        match error {
            BulkError::Call(e) => WritebackError::from_client(e, shop_id, client),
            BulkError::Failed(msg) => WritebackError::Bulk(msg),
        }
    }

    /// Turns the error into a job outcome; a 401 marks the shop for re-authorisation unless
    /// the token has been replaced since the call, in which case the job simply retries.
    pub async fn into_job_error(self, state: &AppState) -> JobError {
        match &self {
            WritebackError::Client {
                shop_id,
                error: CallError::Unauthorized,
                token,
            } => match mark_needs_reauth(&state.env, *shop_id, &token.0).await {
                Ok(true) => JobError::permanent(self),
                Ok(false) => JobError::retry(self),
                Err(e) => JobError::retry(e),
            },
            WritebackError::Client { error, .. } if error.is_transient() => JobError::retry(self),
            WritebackError::Db(_)
            | WritebackError::Bulk(_)
            | WritebackError::Busy
            | WritebackError::LeaseLost
            | WritebackError::Token(TokenError::Refresh(_)) => JobError::retry(self),
            WritebackError::Analyse(AnalyseError::Db(_)) => JobError::retry(self),
            _ => JobError::permanent(self),
        }
    }
}

/// The shop's tag plan, as its platform can hold labels: every published segment as a tag, or,
/// where a customer has one group, only the segments of the label the merchant chose.
pub(crate) fn tag_planner<'c>(
    state: &AppState,
    platform: &str,
    catalog: &'c crate::core::segments::SegmentCatalog,
    settings: &crate::settings::LoyaltySettings,
) -> crate::core::loyalty::TagPlanner<'c> {
    let planner = crate::core::loyalty::TagPlanner::new(catalog, settings.tag_prefix.clone());
    let one_group = state
        .platforms
        .get(platform)
        .is_some_and(|p| p.capabilities().labels == crate::platforms::Labelling::OneGroup);
    if one_group {
        let label = settings.group_label;
        planner.only(move |id| label.drives(id))
    } else {
        planner
    }
}

/// Why a push stopped before the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    Uninstalled,
    NeedsReauth,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stop::Uninstalled => "the shop uninstalled the app",
            Stop::NeedsReauth => "the shop needs to re-authorise the app",
        })
    }
}

/// A client for the next batch, or why there must be no next batch. Each call reads the
/// shop's row, so an uninstall is seen before the next write.
pub(crate) async fn client_or_stop(
    state: &AppState,
    shop_id: i64,
) -> Result<Result<Box<dyn ShopApi + '_>, Stop>, WritebackError> {
    match state.platforms.api(&state.db, shop_id).await {
        Ok(c) => Ok(Ok(c)),
        Err(TokenError::NotInstalled(_)) => Ok(Err(Stop::Uninstalled)),
        Err(TokenError::NeedsReauth(_)) => Ok(Err(Stop::NeedsReauth)),
        Err(e) => Err(e.into()),
    }
}
