//! Near-real-time re-scoring: after a webhook changes a customer or their orders, that
//! customer is scored again with the shop's last fitted model and segment context, and the
//! tag difference is pushed. Jobs are debounced per customer: every event in the same
//! ten-second window shares one job that runs when the window closes.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use super::store;
use super::tags::{self, TagStats};
use super::{Stop, WritebackError};
use crate::analysis::facts::customer_facts;
use crate::analysis::load::load_customer;
use crate::analysis::results::{self, ScoreRow};
use crate::core::analytics::{customer_features, score_customer};
use crate::queue::{JobError, JobResult};
use crate::settings::LoyaltySettings;
use crate::state::AppState;
use crate::store::entities::job;
use crate::store::shops;
use crate::triggers::{self, RescorePayload};

/// What re-scoring one customer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rescored {
    /// False when there was nothing to score against (no analysis yet, unknown customer,
    /// uninstalled shop).
    pub scored: bool,
    pub segments: Vec<String>,
    pub tags: TagStats,
    pub changed: bool,
    pub stopped: Option<Stop>,
}

/// Whether a full segment run that sends writes is alive for the shop (it holds the shop's run
/// lease; a dead one's lease expires). Its push confirms each customer only after the shop
/// answered (for a bulk push, after a whole operation), so planning one of its customers
/// meanwhile would send again what it is about to confirm.
async fn full_run_in_progress(
    db: &impl ConnectionTrait,
    shop_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    crate::store::leases::is_held(db, shop_id, super::segment::RUN_LEASE, now).await
}

/// The job handler (kind `rescore`, payload `{"customer": platform id}`). During a full run the
/// job comes back a window later instead: the run pushes the customer's planned change, and the
/// later re-score sends whatever newer data changed after it.
pub async fn job(state: AppState, job: job::Model, payload: RescorePayload) -> JobResult {
    let Some(shop_id) = job.shop_id else {
        return Err(JobError::permanent("rescore job without a shop"));
    };
    let customer = payload.customer.as_str();
    let now = Utc::now();
    if full_run_in_progress(&state.db, shop_id, now).await? {
        triggers::rescore_later(&state.db, shop_id, customer, now).await?;
        return Ok(());
    }
    match rescore(&state, shop_id, customer, Utc::now()).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.into_job_error(&state).await),
    }
}

/// Re-scores one customer at `now` and pushes their tag change.
pub async fn rescore(
    state: &AppState,
    shop_id: i64,
    customer: &str,
    now: DateTime<Utc>,
) -> Result<Rescored, WritebackError> {
    let mut out = Rescored::default();
    let Some(shop) = shops::get(&state.db, shop_id).await? else {
        return Ok(out);
    };
    if shop.status != shops::INSTALLED {
        out.stopped = Some(Stop::Uninstalled);
        return Ok(out);
    }
    let settings = LoyaltySettings::from_shop_json(&shop.settings)?;
    let catalog = settings.validate()?;
    // Before the first full run there is no model: the full run will tag everyone.
    let Some(stored) = results::load_analysis(&state.db, shop_id).await? else {
        return Ok(out);
    };
    let Some(data) = load_customer(&state.db, shop_id, customer).await? else {
        return Ok(out);
    };
    let features = customer_features(
        0,
        &data.input.orders,
        &data.input.abandoned_checkouts,
        now,
        stored.model.time_unit,
    );
    let score = score_customer(&features, &stored.model, now);
    let facts = customer_facts(&data.customers[0], &data.extras[0], &features, &score);
    let membership = catalog.evaluator(&stored.context, now).membership(&facts);
    out.scored = true;
    out.segments = results::segment_keys(&catalog, &membership);
    results::save_scores(
        &state.db,
        shop_id,
        &catalog,
        &stored.currency,
        &[ScoreRow {
            facts: &facts,
            rfm: (score.rfm.r, score.rfm.f, score.rfm.m),
            has_prediction: score.prediction.is_some(),
            membership: &membership,
            clv_range: None,
        }],
        now,
    )
    .await?;

    let planner = super::tag_planner(state, &shop.platform, &catalog, &settings);
    let pushed = store::load_pushed(&state.db, shop_id, Some(customer)).await?;
    let Some(work) = tags::plan_customer(
        &planner,
        customer,
        &data.customers[0].tags,
        pushed.get(customer),
        &membership,
    ) else {
        return Ok(out);
    };
    out.changed = true;
    if settings.dry_run {
        let audit = tags::audit_rows(&work, "planned");
        store::audit(&state.db, shop_id, None, true, &audit, now).await?;
        return Ok(out);
    }
    let (stats, stop) =
        super::labels::push(state, shop_id, None, std::slice::from_ref(&work), now).await?;
    out.tags = stats;
    out.stopped = stop;
    Ok(out)
}
