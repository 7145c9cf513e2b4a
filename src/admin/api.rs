//! The JSON API behind the admin pages. Every handler takes an [`AdminSession`], so the shop
//! is always the session's; bodies are parsed here so bad JSON gets a clear 400 in the same
//! `{"error": ...}` shape as every other refusal.

use actix_web::{HttpResponse, delete, get, post, put, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::auth::AdminSession;
use super::data::{self, PlanView};
use super::reads::{
    SettingsView, customer_detail, parse_id, settings_object, settings_view, shop_settings,
};
use crate::core::segments::{CustomSegmentDef, Segment};
use crate::routes::ApiError;
use crate::settings::LoyaltySettings;
use crate::state::AppState;
use crate::store::shops;
use crate::writeback::WritebackError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(overview)
        .service(segments)
        .service(validate_rule)
        .service(preview)
        .service(save_segment)
        .service(delete_segment)
        .service(get_settings)
        .service(put_settings)
        .service(dry_run)
        .service(dry_run_status)
        .service(plan)
        .service(customers)
        .service(customer)
        .service(activity)
        .service(retry_job);
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

#[utoipa::path(get, path = "/api/overview", tag = "admin",
    responses((status = 200, body = data::Overview), (status = 401), (status = 403)))]
#[get("/api/overview")]
async fn overview(s: AdminSession, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let settings = shop_settings(&state, s.shop_id).await?;
    let o = data::overview(&state.db, s.shop_id, &s.domain, &settings).await?;
    Ok(HttpResponse::Ok().json(o))
}

#[utoipa::path(get, path = "/api/segments", tag = "segments",
    responses((status = 200, body = data::SegmentsView), (status = 401)))]
#[get("/api/segments")]
async fn segments(s: AdminSession, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let settings = shop_settings(&state, s.shop_id).await?;
    Ok(HttpResponse::Ok().json(data::segments(&state.db, s.shop_id, &settings).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RuleInput {
    pub rule: String,
}

/// Where a rule is wrong: `start..end` are character offsets into the rule (for highlighting),
/// `column` the 1-based character position the message names.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleErrorView {
    pub column: usize,
    pub start: usize,
    pub end: usize,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleCheck {
    pub valid: bool,
    /// The rule as it will be stored and shown (canonical form), when valid.
    pub canonical: Option<String>,
    pub error: Option<RuleErrorView>,
}

pub fn check_rule(rule: &str) -> RuleCheck {
    match Segment::compile(rule) {
        Ok(seg) => RuleCheck {
            valid: true,
            canonical: Some(seg.to_string()),
            error: None,
        },
        Err(e) => {
            // Byte offsets to character offsets, so the browser can index the string.
            let chars = |b: usize| {
                rule.get(..b.min(rule.len()))
                    .map_or(b, |s| s.chars().count())
            };
            RuleCheck {
                valid: false,
                canonical: None,
                error: Some(RuleErrorView {
                    column: e.column,
                    start: chars(e.span.start),
                    end: chars(e.span.end).max(chars(e.span.start) + 1),
                    message: e.message,
                }),
            }
        }
    }
}

/// Validates a rule as the merchant types; always 200 with `valid` and the error's place.
#[utoipa::path(post, path = "/api/segments/validate", tag = "segments", request_body = RuleInput,
    responses((status = 200, body = RuleCheck), (status = 400), (status = 401)))]
#[post("/api/segments/validate")]
async fn validate_rule(_s: AdminSession, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let input: RuleInput = parse(&body)?;
    Ok(HttpResponse::Ok().json(check_rule(&input.rule)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewCustomer {
    pub id: i64,
    pub platform_id: String,
    pub email: Option<String>,
    pub number_of_orders: u32,
    pub amount_spent: f64,
    pub rfm_group: String,
    pub churn_risk: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    /// Customers the rule matches now.
    pub count: usize,
    /// Customers it was evaluated over.
    pub total: usize,
    /// False before the shop's first analysis (then nothing can be evaluated yet).
    pub analysed: bool,
    pub sample: Vec<PreviewCustomer>,
}

const SAMPLE: usize = 10;

/// Count and a sample of the customers a rule matches, over the last analysis's model.
#[utoipa::path(post, path = "/api/segments/preview", tag = "segments", request_body = RuleInput,
    responses((status = 200, body = Preview), (status = 400, description = "the rule is invalid"), (status = 401)))]
#[post("/api/segments/preview")]
async fn preview(
    s: AdminSession,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let input: RuleInput = parse(&body)?;
    let segment = Segment::compile(&input.rule).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let analysed = crate::analysis::results::load_analysis(&state.db, s.shop_id)
        .await?
        .is_some();
    // Loading and scoring the whole shop takes seconds at a million customers: it runs on
    // the workers' runtime, so the HTTP threads keep answering webhooks meanwhile.
    let (db, shop_id) = (state.db.clone(), s.shop_id);
    let (count, total, mut sample) = state
        .off_the_request_threads(async move {
            let now = Utc::now();
            let facts = data::shop_facts(&db, shop_id, now).await?;
            let bound = segment.at(now);
            let mut count = 0;
            let mut sample = Vec::new();
            for (id, f) in &facts {
                if bound.matches(f) {
                    count += 1;
                    if sample.len() < SAMPLE {
                        sample.push(PreviewCustomer {
                            id: *id,
                            platform_id: f.customer_id.clone(),
                            email: None,
                            number_of_orders: f.number_of_orders,
                            amount_spent: (f.amount_spent * 100.0).round() / 100.0,
                            rfm_group: f.rfm_group.as_str().to_string(),
                            churn_risk: f.churn_risk.to_string(),
                        });
                    }
                }
            }
            Ok::<_, sea_orm::DbErr>((count, facts.len(), sample))
        })
        .await
        .map_err(|e| ApiError::Internal(format!("the preview stopped: {e}")))??;
    fill_emails(&state, s.shop_id, &mut sample).await?;
    Ok(HttpResponse::Ok().json(Preview {
        count,
        total,
        analysed,
        sample,
    }))
}

async fn fill_emails(
    state: &AppState,
    shop_id: i64,
    sample: &mut [PreviewCustomer],
) -> Result<(), ApiError> {
    for c in sample.iter_mut() {
        let r = data::rows(
            &state.db,
            "SELECT email FROM customers WHERE shop_id = ? AND id = ?",
            vec![shop_id.into(), c.id.into()],
        )
        .await?;
        c.email = r
            .first()
            .and_then(|r| r.try_get::<Option<String>>("", "email").ok().flatten());
    }
    Ok(())
}

/// Top-level settings keys the admin may write; others belong to no one and are refused.
/// [`SettingsPatch`] documents each for the OpenAPI document: keep the two in step.
const WRITABLE: [&str; 7] = [
    "segments",
    "offers",
    "tag_prefix",
    "dry_run",
    "schedule",
    "cac",
    "group_label",
];

/// The body of `PUT /api/settings`: any of these top-level keys (null removes one).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // the OpenAPI document's description of the body, read as a JSON object
pub struct SettingsPatch {
    /// Segment settings: thresholds and custom segments.
    #[schema(value_type = Option<Object>)]
    segments: Option<Value>,
    /// Offer settings, by offer.
    #[schema(value_type = Option<Object>)]
    offers: Option<Value>,
    /// The prefix of every label Lifecycle writes (no commas).
    tag_prefix: Option<String>,
    /// Plan and record, send nothing.
    dry_run: Option<bool>,
    /// The shop's own run schedule: a five-field cron in UTC, at most one run an hour.
    schedule: Option<String>,
    /// The cost of acquiring one customer (positive), for CLV : CAC.
    cac: Option<f64>,
    /// Where a customer has one group (Ecwid): whether it is their loyalty tier (the default)
    /// or their lifecycle stage. Ignored where a customer has any number of tags.
    group_label: Option<crate::settings::GroupLabel>,
}

/// Checks merged settings the way the jobs will read them, and the admin's own keys.
fn validate_settings(merged: &Map<String, Value>) -> Result<(), ApiError> {
    match merged.get("group_label") {
        None | Some(Value::Null) => {}
        Some(v) => {
            if v.as_str()
                .and_then(crate::settings::GroupLabel::parse)
                .is_none()
            {
                let known: Vec<String> = crate::settings::GroupLabel::ALL
                    .iter()
                    .map(|l| format!("\"{}\" for the customer's {}", l.key(), l.noun()))
                    .collect();
                return Err(ApiError::BadRequest(format!(
                    "group_label {v} is not a label a customer group can follow; use {}",
                    known.join(" or ")
                )));
            }
        }
    }
    let text = Value::Object(merged.clone()).to_string();
    LoyaltySettings::from_shop_json(&text)
        .and_then(|s| s.validate().map(|_| ()))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    match merged.get("cac") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_f64() {
            Some(c) if c.is_finite() && c > 0.0 => {}
            _ => {
                return Err(ApiError::BadRequest(
                    "cac must be a positive number (the cost of acquiring one customer)".into(),
                ));
            }
        },
    }
    match merged.get("schedule") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.trim().is_empty() => {}
        Some(Value::String(s)) => {
            if s.split_whitespace().count() != 5 || s.parse::<croner::Cron>().is_err() {
                return Err(ApiError::BadRequest(format!(
                    "schedule `{s}` is not a 5-field cron expression (minute hour day month weekday)"
                )));
            }
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                "schedule must be a 5-field cron string".into(),
            ));
        }
    }
    Ok(())
}

/// Merges `patch` into the stored settings, validates and saves. Returns the new settings.
pub async fn update_settings(
    state: &AppState,
    shop_id: i64,
    patch: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    if let Some(k) = patch.keys().find(|k| !WRITABLE.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown setting `{k}`; settable: {}",
            WRITABLE.join(", ")
        )));
    }
    let mut merged = settings_object(&shop_settings(state, shop_id).await?);
    for (k, v) in patch {
        if v.is_null() {
            merged.remove(&k);
        } else {
            merged.insert(k, v);
        }
    }
    validate_settings(&merged)?;
    shops::save_settings(&state.db, shop_id, &Value::Object(merged.clone())).await?;
    Ok(merged)
}

#[utoipa::path(get, path = "/api/settings", tag = "settings",
    responses((status = 200, body = SettingsView), (status = 401)))]
#[get("/api/settings")]
async fn get_settings(
    s: AdminSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let text = shop_settings(&state, s.shop_id).await?;
    Ok(HttpResponse::Ok().json(settings_view(&text)))
}

/// Replaces the given top-level settings (`segments`, `offers`, `tag_prefix`, `dry_run`,
/// `schedule`, `cac`, `group_label`; null removes one). Invalid settings are refused with 400
/// and the reason.
#[utoipa::path(put, path = "/api/settings", tag = "settings",
    request_body(content = SettingsPatch, description = "top-level keys to replace"),
    responses((status = 200, body = SettingsView), (status = 400, description = "invalid settings, with the reason"), (status = 401)))]
#[put("/api/settings")]
async fn put_settings(
    s: AdminSession,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let patch: Map<String, Value> = parse(&body)?;
    let merged = update_settings(&state, s.shop_id, patch).await?;
    Ok(HttpResponse::Ok().json(settings_view(&Value::Object(merged).to_string())))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SegmentInput {
    pub key: String,
    pub rule: String,
    #[serde(default = "yes")]
    pub publish_as_tag: bool,
}

fn yes() -> bool {
    true
}

/// The segment settings as stored now.
async fn current_segments(
    state: &AppState,
    shop_id: i64,
) -> Result<crate::core::segments::SegmentSettings, ApiError> {
    // Through the object reading, so unreadable stored settings count as empty, as on save.
    let stored = settings_object(&shop_settings(state, shop_id).await?);
    LoyaltySettings::from_shop_json(&Value::Object(stored).to_string())
        .map(|s| s.segments)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Saves changed segment settings (validated like any settings change) and answers with the
/// segment list they give.
async fn save_segments(
    state: &AppState,
    shop_id: i64,
    segs: &crate::core::segments::SegmentSettings,
) -> Result<HttpResponse, ApiError> {
    let patch = Map::from_iter([(
        "segments".to_string(),
        serde_json::to_value(segs).map_err(|e| ApiError::Internal(e.to_string()))?,
    )]);
    let merged = update_settings(state, shop_id, patch).await?;
    let view = data::segments(&state.db, shop_id, &Value::Object(merged).to_string()).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Adds a custom segment, or replaces the one with the same key.
#[utoipa::path(post, path = "/api/segments", tag = "segments", request_body = SegmentInput,
    responses((status = 200, body = data::SegmentsView), (status = 400, description = "invalid key or rule"), (status = 401)))]
#[post("/api/segments")]
async fn save_segment(
    s: AdminSession,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let input: SegmentInput = parse(&body)?;
    let mut segs = current_segments(&state, s.shop_id).await?;
    let def = CustomSegmentDef {
        key: input.key.trim().to_string(),
        rule: input.rule,
        publish_as_tag: input.publish_as_tag,
    };
    match segs.custom.iter_mut().find(|c| c.key == def.key) {
        Some(existing) => *existing = def,
        None => segs.custom.push(def),
    }
    save_segments(&state, s.shop_id, &segs).await
}

#[utoipa::path(delete, path = "/api/segments/{key}", tag = "segments",
    params(("key" = String, Path, description = "custom segment key")),
    responses((status = 200, body = data::SegmentsView), (status = 400, description = "an offer still uses it"), (status = 404)))]
#[delete("/api/segments/{key}")]
async fn delete_segment(
    s: AdminSession,
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut segs = current_segments(&state, s.shop_id).await?;
    let before = segs.custom.len();
    segs.custom.retain(|c| c.key != *key);
    if segs.custom.len() == before {
        return Err(ApiError::NotFound(format!("no custom segment `{key}`")));
    }
    save_segments(&state, s.shop_id, &segs).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunResult {
    /// What the run found and planned.
    #[schema(value_type = Object)]
    pub summary: Value,
    pub plan: PlanView,
}

impl From<WritebackError> for ApiError {
    fn from(e: WritebackError) -> Self {
        match e {
            WritebackError::Settings(e) => ApiError::BadRequest(e.to_string()),
            WritebackError::UnknownShop(s) => ApiError::NotFound(format!("no shop {s}")),
            WritebackError::Db(e) => ApiError::from(e),
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

/// A dry run asked for: where to follow it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunRequested {
    /// Names the request in `GET /api/dry-run/{token}`.
    pub token: String,
    pub status_url: String,
}

/// Where a dry run is, and once done what it found and planned.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunStatus {
    /// `queued`, `running`, `done` or `dead` (then `error` says why).
    pub state: String,
    pub error: Option<String>,
    /// Once done: the run's summary and plan.
    pub result: Option<DryRunResult>,
}

/// Queues a dry run: analyse, segment and plan without sending anything. It runs as a job
/// (a whole shop is not analysed on the threads that answer webhooks); follow it at
/// `status_url`. Asked again while one is waiting or running, answers with that one.
#[utoipa::path(post, path = "/api/dry-run", tag = "settings",
    responses((status = 202, body = DryRunRequested), (status = 400, description = "stored settings are invalid"), (status = 401)))]
#[post("/api/dry-run")]
async fn dry_run(s: AdminSession, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let shop = shops::get(&state.db, s.shop_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such shop".into()))?;
    // Refused now rather than dead later.
    LoyaltySettings::from_shop_json(&shop.settings)
        .and_then(|s| s.validate())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let token = crate::triggers::dry_run_requested(&state.db, s.shop_id).await?;
    Ok(HttpResponse::Accepted().json(DryRunRequested {
        status_url: format!("/api/dry-run/{token}"),
        token,
    }))
}

/// A dry run this shop asked for: its state and, once done, its summary and plan.
#[utoipa::path(get, path = "/api/dry-run/{token}", tag = "settings",
    params(("token" = String, Path, description = "the token `POST /api/dry-run` returned")),
    responses((status = 200, body = DryRunStatus), (status = 404, description = "no such dry run in this shop"), (status = 401)))]
#[get("/api/dry-run/{token}")]
async fn dry_run_status(
    s: AdminSession,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = token.into_inner();
    let not_found = || ApiError::NotFound(format!("no dry run {token} in this shop"));
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let key = crate::triggers::dry_run_key(s.shop_id, &token);
    let job = crate::store::jobs::find_by_dedupe(&state.db, s.shop_id, &key)
        .await?
        .ok_or_else(not_found)?;
    let result = if job.state == crate::store::jobs::DONE {
        let trigger = crate::triggers::dry_run_trigger(&token);
        let view = data::plan_of_trigger(&state.db, s.shop_id, &trigger).await?;
        Some(DryRunResult {
            summary: view.summary.clone(),
            plan: view,
        })
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(DryRunStatus {
        state: job.state,
        error: job.last_error,
        result,
    }))
}

#[utoipa::path(get, path = "/api/plan", tag = "settings",
    responses((status = 200, body = PlanView), (status = 401)))]
#[get("/api/plan")]
async fn plan(s: AdminSession, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(data::last_plan(&state.db, s.shop_id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CustomerQuery {
    /// Part of an e-mail address or name.
    pub q: Option<String>,
}

#[utoipa::path(get, path = "/api/customers", tag = "customers", params(CustomerQuery),
    responses((status = 200, body = Vec<data::CustomerRowView>), (status = 401)))]
#[get("/api/customers")]
async fn customers(
    s: AdminSession,
    state: web::Data<AppState>,
    q: web::Query<CustomerQuery>,
) -> Result<HttpResponse, ApiError> {
    let list = data::customers(&state.db, s.shop_id, q.q.as_deref(), 100).await?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(get, path = "/api/customers/{id}", tag = "customers",
    params(("id" = i64, Path, description = "Lifecycle's customer id")),
    responses((status = 200, body = data::CustomerDetail), (status = 404), (status = 401)))]
#[get("/api/customers/{id}")]
async fn customer(
    s: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let c = customer_detail(&state, s.shop_id, &id).await?;
    Ok(HttpResponse::Ok().json(c))
}

#[utoipa::path(get, path = "/api/activity", tag = "activity",
    responses((status = 200, body = data::Activity), (status = 401)))]
#[get("/api/activity")]
async fn activity(s: AdminSession, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(data::activity(&state.db, s.shop_id).await?))
}

/// Moves a dead job of this shop back to the queue.
#[utoipa::path(post, path = "/api/jobs/{id}/retry", tag = "activity",
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200), (status = 404, description = "no dead job with that id in this shop"), (status = 401)))]
#[post("/api/jobs/{id}/retry")]
async fn retry_job(
    s: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id("job", &id)?;
    if !crate::store::jobs::retry_dead(&state.db, s.shop_id, id).await? {
        return Err(ApiError::NotFound(format!("no dead job {id} in this shop")));
    }
    Ok(HttpResponse::Ok().json(json!({ "retried": id })))
}

/// The paths of this API, for the OpenAPI document `openapi` assembles and serves at
/// `/api/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Lifecycle admin API", description = "The JSON API behind the merchant's admin pages. Authenticate with an App Bridge session token (`Authorization: Bearer`) or the `lifecycle_session` cookie set after install."),
    paths(overview, segments, validate_rule, preview, save_segment, delete_segment, get_settings,
          put_settings, dry_run, dry_run_status, plan, customers, customer, activity, retry_job),
    security(("session_token" = []), ("session_cookie" = [])),
    tags((name = "admin", description = "Shop figures"), (name = "segments"), (name = "settings"),
         (name = "customers"), (name = "activity"))
)]
pub struct ApiDoc;
