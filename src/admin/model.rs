//! The **Model** page (`/admin/model`) and its JSON (`/api/model`): the shop's latest model
//! report card (how right the predictions were over a holdout the model did not see), in plain
//! words, with its charts and figures, or why there is no card and what the segments use
//! meanwhile.

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::AdminSession;
use super::charts;
use super::data::format_major;
use super::frame::{Ctx, layout, pct, render, when};
use crate::analysis::model_card::{latest_card, verdict_key};
use crate::analysis::results::load_analysis;
use crate::core::analytics::backtest::{
    Accuracy, Backtest, MIN_TOP_20_REVENUE_SHARE, ReportCard, Shortfall, Verdict,
};
use crate::core::analytics::model::{Fallback, FallbackReason, ModelKind};
use crate::routes::ApiError;
use crate::state::AppState;
use crate::store::Db;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(model_api).service(model_page);
}

/// The shop's model report card.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelView {
    /// When the card was computed (the segment run's time); None before the first run.
    pub created_at: Option<DateTime<Utc>>,
    pub run_id: Option<i64>,
    /// Currency of the card's revenue figures (major units).
    pub currency: Option<String>,
    /// `good_enough_to_target`, `not_better_than_baseline`, `too_little_data`, or `none`
    /// before the first run.
    pub verdict: String,
    /// The verdict in plain words.
    pub verdict_text: String,
    /// What the segments use: the model's predictions or its heuristic fallbacks, and RFM.
    pub segments_use: String,
    /// The card as computed: calibration end and end, the calibration fit (`bgnbd`,
    /// `gamma_gamma`), `deciles`, `model` and `baseline` accuracy (mae, bias, spearman),
    /// `p_alive_reliability`, `brier`, top 10 %/20 % revenue shares; or the `reason` there is
    /// no card.
    #[schema(value_type = Option<Object>)]
    pub backtest: Option<Backtest>,
}

fn share(v: Option<f64>) -> String {
    pct(v.map(|v| v * 100.0))
}

fn shortfall_text(s: &Shortfall) -> String {
    match s {
        Shortfall::NoOrders => "There are no orders to check the predictions against yet.".into(),
        Shortfall::ShortHoldout {
            history_days,
            holdout_days,
            need_holdout_days,
        } => format!(
            "The shop's order history covers {history_days} days, so only {holdout_days} days \
             could be held out to check the predictions; at least {need_holdout_days} days are \
             needed (a quarter of the history is held out, so about {} days of orders).",
            u64::from(*need_holdout_days) * 4
        ),
        Shortfall::TooFewCustomers { have, need } => format!(
            "{have} customers had ordered before the checked period; at least {need} are needed."
        ),
        Shortfall::TooFewRepeatCustomers { have, need } => format!(
            "{have} customers had bought more than once before the checked period; at least \
             {need} are needed."
        ),
        Shortfall::ModelFallback { fallbacks } => format!(
            "The model could not be fitted on the history before the checked period ({}).",
            fallbacks_text(fallbacks)
        ),
    }
}

fn fallbacks_text(fallbacks: &[Fallback]) -> String {
    fallbacks
        .iter()
        .map(|f| {
            let model = match f.model {
                ModelKind::Purchase => "purchases",
                ModelKind::Spend => "spend",
            };
            let why = match &f.reason {
                FallbackReason::TooFewCustomers { have, need } => {
                    format!("{have} customers with orders, {need} needed")
                }
                FallbackReason::TooFewRepeatCustomers { have, need } => {
                    format!("{have} repeat customers, {need} needed")
                }
                FallbackReason::NotConverged => "the fit did not converge".into(),
                FallbackReason::InfiniteMeanSpend => "the spend fit has no finite mean".to_string(),
            };
            format!("{model}: {why}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn verdict_text(b: &Backtest) -> String {
    let days = |b: &Backtest| (b.end.date_naive() - b.calibration_end.date_naive()).num_days();
    match (&b.verdict, &b.card) {
        (Verdict::TooLittleData { reason }, _) => {
            format!(
                "Too little data for a report card. {}",
                shortfall_text(reason)
            )
        }
        (Verdict::GoodEnoughToTarget, Some(c)) => format!(
            "Good enough to target your top customers. Over the last {} days, which the model \
             did not see, its forecasts of who buys how often were closer than a simple rule \
             (each customer keeps their past purchase rate): off by {:.2} purchases per customer \
             against {:.2}. The top 20 % it picked brought {} of the revenue.",
            days(b),
            c.model.mae,
            c.baseline.mae,
            share(c.top_20_revenue_share)
        ),
        (_, Some(c)) => format!(
            "Not better than a simple rule yet. Over the last {} days, which the model did not \
             see, it was off by {:.2} purchases per customer against {:.2} for the rule that each \
             customer keeps their past purchase rate, and its top 20 % brought {} of the revenue \
             (a useful ranking brings at least {}). Use its predictions with care.",
            days(b),
            c.model.mae,
            c.baseline.mae,
            share(c.top_20_revenue_share),
            share(Some(MIN_TOP_20_REVENUE_SHARE))
        ),
        (_, None) => "No report card.".into(),
    }
}

/// The shop's latest card and what the segments use.
pub async fn model_view(db: &Db, shop_id: i64) -> Result<ModelView, sea_orm::DbErr> {
    let card = latest_card(db, shop_id).await?;
    let analysis = load_analysis(db, shop_id).await?;
    let segments_use = match &analysis {
        None => "Segments appear after the first analysis.".to_string(),
        Some(a) if a.model.fallbacks.is_empty() => {
            "Segments use the model's predictions (BG/NBD purchases, Gamma-Gamma spend) and \
             RFM groups."
                .to_string()
        }
        Some(a) => format!(
            "Segments use simple rules instead of the model (the shop's average purchase rate \
             and order value) and RFM groups, because the model's minimums are not met ({}).",
            fallbacks_text(&a.model.fallbacks)
        ),
    };
    Ok(match card {
        None => ModelView {
            created_at: None,
            run_id: None,
            currency: None,
            verdict: "none".into(),
            verdict_text: "No report card yet: it is computed with each analysis.".into(),
            segments_use,
            backtest: None,
        },
        Some(c) => ModelView {
            created_at: Some(c.created_at),
            run_id: Some(c.run_id),
            currency: Some(c.currency),
            verdict: verdict_key(&c.backtest),
            verdict_text: verdict_text(&c.backtest),
            segments_use,
            backtest: Some(c.backtest),
        },
    })
}

#[utoipa::path(get, path = "/api/model", tag = "model",
    responses((status = 200, body = ModelView), (status = 401), (status = 403)))]
#[get("/api/model")]
async fn model_api(s: AdminSession, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(model_view(&state.db, s.shop_id).await?))
}

/// The OpenAPI paths of this module, merged into the admin API's document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(model_api),
    tags((name = "model", description = "The model report card"))
)]
pub struct ModelDoc;

#[get("/admin/model")]
async fn model_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    render(&req, &state, |ctx| page(ctx, &state)).await
}

fn accuracy_rows(model: &Accuracy, baseline: &Accuracy) -> Markup {
    let num = |v: f64| format!("{v:.3}");
    let opt = |v: Option<f64>| v.map_or_else(|| "—".into(), num);
    html! {
        tr { th { "Mean absolute error (purchases per customer)" } td class="num" { (num(model.mae)) } td class="num" { (num(baseline.mae)) } }
        tr { th { "Bias (+ = forecast too high)" } td class="num" { (format!("{:+.3}", model.bias)) } td class="num" { (format!("{:+.3}", baseline.bias)) } }
        tr { th { "Rank correlation (Spearman)" } td class="num" { (opt(model.spearman)) } td class="num" { (opt(baseline.spearman)) } }
        tr { th { "Purchases forecast (actual " (format!("{:.0}", model.actual_total)) ")" } td class="num" { (format!("{:.0}", model.predicted_total)) } td class="num" { (format!("{:.0}", baseline.predicted_total)) } }
    }
}

fn card_body(b: &Backtest, c: &ReportCard, cur: &str) -> Markup {
    let purchases: Vec<(String, f64, f64)> = c
        .deciles
        .iter()
        .map(|d| {
            (
                d.decile.to_string(),
                d.predicted_purchases,
                d.actual_purchases,
            )
        })
        .collect();
    let revenue: Vec<(String, f64, f64)> = c
        .deciles
        .iter()
        .map(|d| (d.decile.to_string(), d.predicted_revenue, d.actual_revenue))
        .collect();
    let reliability: Vec<(f64, f64, usize)> = c
        .p_alive_reliability
        .iter()
        .filter_map(|r| Some((r.mean_predicted?, r.observed_share?, r.customers)))
        .collect();
    html! {
        section class="tiles" aria-label="Key figures" {
            div class="tile" { div class="label" { "Customers checked" } div class="value" { (c.customers) }
                @if let Some(sample) = &b.sample {
                    div class="muted small" id="card-sample" { "a random " (format!("{:.1}", sample.share * 100.0)) " % of " (sample.of_customers) " customers" }
                }
            }
            div class="tile" { div class="label" { "Top 10 % brought" } div class="value" id="top10" { (share(c.top_10_revenue_share)) } }
            div class="tile" { div class="label" { "Top 20 % brought" } div class="value" id="top20" { (share(c.top_20_revenue_share)) } }
            div class="tile" { div class="label" { "Brier score (P(active))" } div class="value" { (c.brier.map_or_else(|| "—".into(), |v| format!("{v:.3}"))) } }
        }
        div class="grid2" {
            section class="card" {
                h2 { "Predicted vs actual purchases by decile" }
                (charts::paired_bars("Holdout purchases per decile of predicted purchases (1 = highest)", ("predicted", "actual"), &purchases))
            }
            section class="card" {
                h2 { "Predicted vs actual revenue by decile" }
                (charts::paired_bars(&format!("Holdout revenue per decile ({cur})"), ("predicted", "actual"), &revenue))
            }
            section class="card" {
                h2 { "Calibration of P(active)" }
                p class="muted small" { "Customers grouped by their predicted probability of being active at the start of the checked period, against the share who bought again in it. On the dashed line the probabilities are exact." }
                (charts::reliability("Predicted P(active) against bought again", &reliability))
            }
            section class="card" {
                h2 { "Model against a simple rule" }
                p class="muted small" { "The simple rule: each customer keeps buying at their past rate." }
                table class="table" {
                    thead { tr { th {} th class="num" { "Model" } th class="num" { "Simple rule" } } }
                    tbody {
                        (accuracy_rows(&c.model, &c.baseline))
                        tr { th { "Top 10 % share of revenue" } td class="num" { (share(c.top_10_revenue_share)) } td class="num" { (share(c.baseline_top_10_revenue_share)) } }
                        tr { th { "Top 20 % share of revenue" } td class="num" { (share(c.top_20_revenue_share)) } td class="num" { (share(c.baseline_top_20_revenue_share)) } }
                    }
                }
            }
        }
        section class="card" {
            h2 { "Deciles" }
            table class="table" id="deciles" {
                thead { tr { th { "Decile" } th class="num" { "Customers" } th class="num" { "Predicted purchases" } th class="num" { "Actual purchases" } th class="num" { "Predicted revenue" } th class="num" { "Actual revenue" } } }
                tbody { @for d in &c.deciles { tr {
                    td { (d.decile) } td class="num" { (d.customers) }
                    td class="num" { (format!("{:.1}", d.predicted_purchases)) } td class="num" { (format!("{:.0}", d.actual_purchases)) }
                    td class="num" { (format_major(d.predicted_revenue, cur)) } td class="num" { (format_major(d.actual_revenue, cur)) }
                } } }
            }
        }
        @if let (Some(bg), Some(gg)) = (&b.bgnbd, &b.gamma_gamma) {
            p class="muted small" {
                "Fitted on the history up to " (when(Some(b.calibration_end))) ": BG/NBD r " (format!("{:.4}", bg.r)) ", α " (format!("{:.4}", bg.alpha)) ", a " (format!("{:.4}", bg.a)) ", b " (format!("{:.4}", bg.b))
                "; Gamma-Gamma p " (format!("{:.4}", gg.p)) ", q " (format!("{:.4}", gg.q)) ", γ " (format!("{:.4}", gg.gamma)) "."
            }
        }
    }
}

async fn page(ctx: Ctx, state: &AppState) -> Result<HttpResponse, ApiError> {
    let v = model_view(&state.db, ctx.session.shop_id).await?;
    let cur = v.currency.clone().unwrap_or_default();
    let body = html! {
        section class="card" {
            h2 { "Verdict" }
            p class="big" id="verdict" data-verdict=(v.verdict) { (v.verdict_text) }
            p id="segments-use" { (v.segments_use) }
            @if let Some(b) = &v.backtest {
                @if b.card.is_some() {
                    p class="muted small" { "Checked period: " (when(Some(b.calibration_end))) " to " (when(Some(b.end))) ". Computed " (when(v.created_at)) "." }
                }
            }
        }
        @if let Some(b) = &v.backtest {
            @if let Some(c) = &b.card { (card_body(b, c, &cur)) }
        }
    };
    Ok(layout(&ctx, "/admin/model", "Model", body))
}
