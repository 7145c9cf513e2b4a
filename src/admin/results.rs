//! The **Results** page (`/admin/results`), its JSON (`/api/results`) and CSV export
//! (`/api/results.csv`): each offer's customers with a code against its control group (see
//! `crate::experiments`). All three take the same optional period, `from` and `to` as
//! `YYYY-MM-DD` (assignments made from the start of `from` to the end of `to`).

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use super::auth::AdminSession;
use super::charts::{self, fmt_num};
use super::data::{format_major, format_money};
use super::frame::{Ctx, layout, render};
use crate::core::loyalty::experiment::{ExperimentVerdict, Interval};
use crate::core::loyalty::minor_units_to_decimal;
use crate::experiments::{self, ArmView, OfferResult, Period, Results};
use crate::routes::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(page).service(json).service(csv);
}

/// Unknown parameters are ignored: embedded admin links carry `shop`, `host` and more.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct PeriodQuery {
    /// First day of assignments included, `YYYY-MM-DD` (UTC).
    from: Option<String>,
    /// Last day of assignments included, `YYYY-MM-DD` (UTC).
    to: Option<String>,
}

fn day(what: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map(|d| Some(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()))
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "`{what}` must be a date like 2026-01-31, got `{v}`"
            ))
        })
}

impl PeriodQuery {
    fn period(&self) -> Result<Period, ApiError> {
        let from = day("from", &self.from)?;
        // `to` names a whole day.
        let to = day("to", &self.to)?.map(|t| t + Duration::days(1));
        if let (Some(f), Some(t)) = (from, to)
            && t <= f
        {
            return Err(ApiError::BadRequest("`to` is before `from`".into()));
        }
        Ok(Period { from, to })
    }
}

async fn load(state: &AppState, shop_id: i64, q: &PeriodQuery) -> Result<Results, ApiError> {
    let period = q.period()?;
    let currency = crate::analysis::results::load_analysis(&state.db, shop_id)
        .await?
        .map(|a| a.currency)
        .unwrap_or_else(|| "USD".into());
    Ok(experiments::results(&state.db, shop_id, &currency, period, Utc::now()).await?)
}

/// Each offer's treatment and control groups, the effect with 95 % intervals, the minimum
/// detectable effect and a verdict. Money in minor units of `currency`.
#[utoipa::path(get, path = "/api/results", tag = "results", params(PeriodQuery),
    responses((status = 200, body = Results), (status = 400, description = "a bad date"), (status = 401)))]
#[get("/api/results")]
async fn json(
    s: AdminSession,
    state: web::Data<AppState>,
    q: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(load(&state, s.shop_id, &q).await?))
}

/// Money for the CSV: plain decimals a spreadsheet reads (the page uses `format_money`).
fn money(minor: i64, currency: &str) -> String {
    minor_units_to_decimal(minor, crate::analysis::money::exponent(currency))
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.6}")).unwrap_or_default()
}

/// The CSV: one row per offer and group, the offer's effect repeated on both rows so each row
/// reads alone. Money as decimals of the currency; effects per customer.
pub fn to_csv(r: &Results) -> String {
    let mut out = String::from(
        "offer,group,customers,buyers,conversion_rate,orders,net_revenue,discounts,net_revenue_minus_discounts,currency,\
         conversion_difference,conversion_low,conversion_high,value_difference,value_low,value_high,\
         mde_conversion,mde_value,more_customers_needed,verdict\n",
    );
    for o in &r.offers {
        let e = &o.effect;
        let iv = |i: &Option<Interval>| {
            [
                opt(i.map(|i| i.estimate)),
                opt(i.map(|i| i.low)),
                opt(i.map(|i| i.high)),
            ]
            .join(",")
        };
        for (group, a) in [("treatment", &o.treatment), ("control", &o.control)] {
            out.push_str(&format!(
                "{},{group},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                o.offer,
                a.customers,
                a.buyers,
                opt(a.conversion_rate),
                a.orders,
                money(a.net_revenue_minor, &r.currency),
                money(a.discounts_minor, &r.currency),
                money(a.net_revenue_minus_discounts_minor, &r.currency),
                r.currency,
                iv(&e.conversion_difference),
                iv(&e.value_difference),
                opt(e.mde_conversion),
                opt(e.mde_value),
                e.more_customers_needed
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                verdict_key(e.verdict),
            ));
        }
    }
    out
}

fn verdict_key(v: ExperimentVerdict) -> &'static str {
    match v {
        ExperimentVerdict::Keep => "keep",
        ExperimentVerdict::NotYetConclusive => "not_yet_conclusive",
        ExperimentVerdict::CostsMoreThanItBrings => "costs_more_than_it_brings",
    }
}

/// The results as CSV (see `/api/results` for the figures' meaning).
#[utoipa::path(get, path = "/api/results.csv", tag = "results", params(PeriodQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400), (status = 401)))]
#[get("/api/results.csv")]
async fn csv(
    s: AdminSession,
    state: web::Data<AppState>,
    q: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let r = load(&state, s.shop_id, &q).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"lifecycle-results.csv\"",
        ))
        .body(to_csv(&r)))
}

#[derive(OpenApi)]
#[openapi(paths(json, csv), tags((name = "results", description = "Offers against their control groups")))]
pub struct ResultsApi;

// ---------------------------------------------------------------- page

#[get("/admin/results")]
async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<PeriodQuery>,
) -> HttpResponse {
    render(&req, &state, |ctx| {
        results_page(ctx, &state, q.into_inner())
    })
    .await
}

const CW: f64 = 560.0;
const ROW: f64 = 34.0;
const LABEL_W: f64 = 150.0;

/// Treatment minus control with its 95 % interval, one row per measure, each on its own
/// scale around a zero line: the effect is clear when a whole bar is on one side of zero.
fn interval_chart(title: &str, rows: &[(String, Interval, String)]) -> Markup {
    let h = ROW * rows.len() as f64 + 16.0;
    let (x0, x1) = (LABEL_W, CW - 16.0);
    let summary = rows
        .iter()
        .map(|(l, i, u)| {
            format!(
                "{l}: {}{u} (95 % {} to {}{u})",
                fmt_num(i.estimate),
                fmt_num(i.low),
                fmt_num(i.high)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    html! {
        svg class="chart" viewBox=(format!("0 0 {CW} {h}")) role="img" aria-label=(format!("{title}: {summary}")) {
            title { (title) }
            @for (k, (label, i, unit)) in rows.iter().enumerate() {
                @let span = i.low.abs().max(i.high.abs()).max(1e-9) * 1.15;
                @let x = |v: f64| x0 + (x1 - x0) * (v + span) / (2.0 * span);
                @let y = 12.0 + ROW * k as f64 + ROW / 2.0;
                text x="4" y=(format!("{:.1}", y + 4.0)) class="xlabel" { (label) }
                line x1=(format!("{:.1}", x(0.0))) x2=(format!("{:.1}", x(0.0))) y1=(format!("{:.1}", y - ROW / 2.0 + 2.0)) y2=(format!("{:.1}", y + ROW / 2.0 - 2.0)) class="grid" {}
                line x1=(format!("{:.1}", x(i.low))) x2=(format!("{:.1}", x(i.high))) y1=(format!("{y:.1}")) y2=(format!("{y:.1}")) class="line" {
                    title { (label) ": 95 % interval " (fmt_num(i.low)) (unit) " to " (fmt_num(i.high)) (unit) }
                }
                circle cx=(format!("{:.1}", x(i.estimate))) cy=(format!("{y:.1}")) r="4" class="dot" {
                    title { (label) ": " (fmt_num(i.estimate)) (unit) }
                }
            }
        }
    }
}

fn rate(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn verdict_text(v: ExperimentVerdict) -> (&'static str, &'static str) {
    match v {
        ExperimentVerdict::Keep => ("ok", "Keep: it brings more than its discounts cost"),
        ExperimentVerdict::NotYetConclusive => ("info", "Not yet conclusive"),
        ExperimentVerdict::CostsMoreThanItBrings => ("bad", "Costs more than it brings"),
    }
}

fn arm_row(name: &str, a: &ArmView, currency: &str) -> Markup {
    html! {
        tr {
            th scope="row" { (name) }
            td class="num" { (a.customers) }
            td class="num" { (a.buyers) }
            td class="num" { (rate(a.conversion_rate)) }
            td class="num" { (a.orders) }
            td class="num" { (format_money(a.net_revenue_minor, currency)) }
            td class="num" { (format_money(a.discounts_minor, currency)) }
            td class="num" { (format_money(a.net_revenue_minus_discounts_minor, currency)) }
        }
    }
}

fn offer_card(o: &OfferResult, currency: &str) -> Markup {
    let e = &o.effect;
    let (kind, verdict) = verdict_text(e.verdict);
    let per_customer =
        |minor: f64| minor / 10f64.powi(crate::analysis::money::exponent(currency) as i32);
    let mut intervals: Vec<(String, Interval, String)> = Vec::new();
    if let Some(i) = e.conversion_difference {
        let pp = |v: f64| v * 100.0;
        intervals.push((
            "Conversion".into(),
            Interval {
                estimate: pp(i.estimate),
                low: pp(i.low),
                high: pp(i.high),
                method: i.method,
            },
            " pp".into(),
        ));
    }
    for (label, i) in [
        ("Revenue / customer", e.revenue_difference),
        ("Value / customer", e.value_difference),
    ] {
        if let Some(i) = i {
            intervals.push((
                label.into(),
                Interval {
                    estimate: per_customer(i.estimate),
                    low: per_customer(i.low),
                    high: per_customer(i.high),
                    method: i.method,
                },
                format!(" {currency}"),
            ));
        }
    }
    let conversion_bars = vec![
        (
            "With code".to_string(),
            o.treatment.conversion_rate.unwrap_or(0.0) * 100.0,
        ),
        (
            "Control".to_string(),
            o.control.conversion_rate.unwrap_or(0.0) * 100.0,
        ),
    ];
    html! {
        section class="card" data-offer=(o.offer) {
            h2 { (o.offer.replace('_', " ")) " " span class=(format!("badge {kind}")) data-verdict=(verdict_key(e.verdict)) { (verdict) } }
            p class="muted small" {
                "Assigned " (o.first_assigned.format("%Y-%m-%d")) " to " (o.last_assigned.format("%Y-%m-%d"))
                "; " (o.redemptions) " code(s) redeemed"
                @if o.open_windows > 0 { "; " (o.open_windows) " window(s) still open (figures so far)" }
            }
            table class="table" {
                thead { tr { th { "Group" } th { "Customers" } th { "Buyers" } th { "Conversion" } th { "Orders" }
                    th { "Net revenue" } th { "Discounts" } th { "Net − discounts" } } }
                tbody {
                    (arm_row("With code", &o.treatment, currency))
                    (arm_row("Control (no code)", &o.control, currency))
                }
            }
            div class="grid2" {
                (charts::bar_chart("Conversion by group", "%", &conversion_bars))
                @if intervals.is_empty() {
                    p class="muted" { "The effect needs at least two customers in each group." }
                } @else {
                    (interval_chart("Effect of the code (with code − control), 95 % interval", &intervals))
                }
            }
            dl class="facts" {
                dt { "Minimum detectable effect" }
                dd { (e.mde_conversion.map(|v| format!("{:.1} pp conversion", v * 100.0)).unwrap_or_else(|| "—".into()))
                     " · " (e.mde_value.map(|v| format!("{} value per customer", format_major(per_customer(v), currency))).unwrap_or_else(|| "—".into())) }
                dt { "More customers needed" }
                dd { @match e.more_customers_needed {
                    Some(0) => "none: the result is conclusive",
                    Some(n) => { (n) " more in this split to conclude on the observed effect" }
                    None => "— (no difference observed yet)",
                } }
            }
        }
    }
}

async fn results_page(
    ctx: Ctx,
    state: &AppState,
    q: PeriodQuery,
) -> Result<HttpResponse, ApiError> {
    let r = load(state, ctx.session.shop_id, &q).await?;
    let csv_link = {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("from", &q.from), ("to", &q.to)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                s.append_pair(k, v);
            }
        }
        let qs = s.finish();
        if qs.is_empty() {
            "/api/results.csv".to_string()
        } else {
            format!("/api/results.csv?{qs}")
        }
    };
    let body = html! {
        section class="card" {
            p class="muted" {
                "Each offer holds out a control group: eligible customers drawn at random who get no code. "
                "Comparing the customers with a code to them over the code's window shows what the offer itself brought."
            }
            form method="get" action="/admin/results" class="actions" {
                label { "From " input type="date" name="from" value=(q.from.clone().unwrap_or_default()); }
                label { "To " input type="date" name="to" value=(q.to.clone().unwrap_or_default()); }
                button type="submit" class="secondary" { "Show" }
                a href=(csv_link) id="results-csv" { "Export CSV" }
            }
        }
        @if r.offers.is_empty() {
            section class="card" { p class="muted" { "No offer has been sent yet in this period: results appear after the first run that issues codes." } }
        }
        @for o in &r.offers { (offer_card(o, &r.currency)) }
    };
    Ok(layout(&ctx, "/admin/results", "Results", body))
}
