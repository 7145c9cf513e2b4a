//! The merchant's pages, rendered on the server with maud. They work without JavaScript
//! (figures, charts, tables); the small script only adds the rule editor's live checks,
//! previews, saving and the dry-run and retry buttons. Inside the Shopify admin (`host` or
//! `embedded` in the query) the page also loads App Bridge, whose session token every JSON
//! call then carries; elsewhere the session cookie serves.

use actix_web::{HttpRequest, HttpResponse, get, web};
use maud::{Markup, PreEscaped, html};

use super::charts;
use super::data::{self, format_major, format_money};
use super::frame::{Ctx, NAV, capitalise, layout, pct, render, when};
use super::reads;
use crate::core::loyalty::OfferKind;
use crate::platforms::HistoryLimit;
use crate::routes::ApiError;
use crate::state::AppState;

const CSS: &str = include_str!("static/admin.css");
const JS: &str = include_str!("static/admin.js");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(overview)
        .service(segments)
        .service(offers)
        .service(customers)
        .service(customer)
        .service(activity)
        .service(css)
        .service(js);
}

#[get("/admin/static/admin.css")]
async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(CSS)
}

#[get("/admin/static/admin.js")]
async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(JS)
}

fn badge(status: &str) -> Markup {
    let kind = match status {
        "done" | "confirmed" | "sent" | "completed" | "installed" => "ok",
        "failed" | "dead" | "stopped" => "bad",
        "running" | "queued" | "planned" | "created" => "info",
        _ => "neutral",
    };
    html! { span class=(format!("badge {kind}")) { (status) } }
}

fn run_line(label: &str, run: &Option<data::RunView>) -> Markup {
    html! {
        div class="run" {
            span class="muted" { (label) }
            @match run {
                Some(r) => {
                    span { (r.kind) @if r.dry_run { " (dry run)" } }
                    (badge(&r.status))
                    span class="muted" { (when(Some(r.started_at))) }
                    @if let Some(e) = &r.error { span class="error-text" { (e) } }
                }
                None => { span class="muted" { "never" } }
            }
        }
    }
}

// ---------------------------------------------------------------- overview

#[get("/admin")]
async fn overview(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    render(&req, &state, |ctx| overview_page(ctx, &state)).await
}

async fn overview_page(ctx: Ctx, state: &AppState) -> Result<HttpResponse, ApiError> {
    let settings = reads::shop_settings(state, ctx.session.shop_id).await?;
    let o = data::overview(
        &state.db,
        ctx.session.shop_id,
        &ctx.session.domain,
        &settings,
    )
    .await?;
    let history = history_limit(state, &ctx).await?;
    let cur = o.currency.clone();
    // Months as `YYYY-MM` on the charts' axes; the current month says it is partial, so its
    // lower counts do not read as a collapse.
    let month = |m: &data::MonthlyRow| {
        let ym = m.month.get(..7).unwrap_or(&m.month);
        match m.partial_to_day {
            Some(day) => format!("{ym} (partial, to day {day})"),
            None => ym.to_string(),
        }
    };
    let partial = o.monthly.last().is_some_and(|m| m.partial_to_day.is_some());
    let series = |f: fn(&data::MonthlyRow) -> Option<f64>| -> Vec<(String, Option<f64>)> {
        o.monthly.iter().map(|m| (month(m), f(m))).collect()
    };
    let clv_bars: Vec<(String, f64)> = o
        .clv_distribution
        .iter()
        .map(|b| (charts::fmt_num(b.from), b.customers as f64))
        .collect();
    let revenue: Vec<(String, f64)> = o.monthly.iter().map(|m| (month(m), m.revenue)).collect();
    let cells: Vec<(u8, u8, i64, String)> = o
        .rfm_grid
        .iter()
        .map(|c| (c.r, c.fm, c.customers, format_money(c.revenue_minor, &cur)))
        .collect();
    let body = html! {
        @if o.analysed_at.is_none() {
            div class="banner" {
                strong { "No analysis yet. " }
                "Lifecycle is importing your customers and orders; figures and charts appear after the first analysis."
            }
        }
        @if let Some(why) = &o.labels_unavailable {
            (labels_unavailable_banner(&ctx, why))
        }
        @if let Some(h) = &history { (partial_history_banner(h)) }
        section class="tiles" aria-label="Key figures" {
            div class="tile" { div class="label" { "Customers" } div class="value" id="kpi-customers" { (o.customers) } }
            div class="tile" { div class="label" { "Orders" } div class="value" id="kpi-orders" { (o.orders) } }
            div class="tile" { div class="label" { "Revenue (net)" (partial_mark(&history)) } div class="value" { (format_money(o.revenue_minor, &cur)) } }
            div class="tile" { div class="label" { "Average predicted CLV" (partial_mark(&history)) } div class="value" {
                (o.average_predicted_clv.map(|v| format_major(v, &cur)).unwrap_or_else(|| "—".into())) } }
        }
        div class="grid2" {
            section class="card" {
                h2 { "Maturity stage" }
                @match &o.maturity {
                    Some(m) => {
                        p class="big" { (capitalise(&m.stage.replace('_', " ").to_lowercase())) }
                        p { "Recommended share of marketing on retention: " strong { (m.retention_share_pct) "%" } }
                        p class="muted" { (m.meaning) }
                        p class="muted small" { "Shop age " (m.age_days) " days · " (format!("{:.1}", m.sales_per_day)) " orders/day over the last 30 days" }
                    }
                    None => { p class="muted" { "Appears after the first analysis." } }
                }
            }
            section class="card" {
                h2 { "CLV : CAC" }
                @match &o.clv_cac {
                    Some(c) => {
                        p class="big" { (format!("{:.1} : 1", c.ratio)) " " span class="badge neutral" { (c.health) } }
                        p class="muted" { (c.meaning) }
                        p class="muted small" id="cac" { "CAC " (format_major(c.cac, &cur)) }
                    }
                    None => { p class="muted" { "Enter your customer acquisition cost under " a href=(ctx.link("/admin/offers")) { (ctx.nav_label(NAV[2].1)) } " to compare it with predicted CLV." } }
                }
                h2 { "Sync and push" }
                (run_line("Last sync", &o.last_sync))
                (run_line("Last push", &o.last_push))
            }
        }
        div class="grid2" {
            section class="card" { h2 { "Monthly retention rate" } (charts::line_chart("Customer retention rate by month", "%", &series(|m| m.retention_rate_pct), partial)) }
            section class="card" { h2 { "Monthly churn rate" } (charts::line_chart("Churn rate by month", "%", &series(|m| m.churn_rate_pct), partial)) }
            section class="card" { h2 { "Monthly repeat purchase rate" } (charts::line_chart("Repeat purchase rate by month", "%", &series(|m| m.repeat_rate_pct), partial)) }
            section class="card" { h2 { "Average order value by month" } (charts::line_chart(&format!("Average order value by month ({cur})"), "", &series(|m| m.average_order_value), partial)) }
            section class="card" { h2 { "Revenue by month" } (charts::bar_chart(&format!("Revenue by month ({cur})"), "", &revenue)) }
            section class="card" { h2 { "Predicted CLV distribution" } (charts::bar_chart(&format!("Customers by predicted CLV ({cur}, bucket start)"), "", &clv_bars)) }
        }
        @if let Some(m) = o.monthly.last().filter(|_| partial) {
            p class="muted small" id="partial-month" { (month(m)) ": the month so far, drawn apart from the whole months (hollow point)." }
        }
        section class="card" {
            h2 { "RFM grid" }
            p class="muted small" { "Rows: recency score (5 = bought most recently). Columns: the mean of frequency and monetary scores. Each cell shows customers and their net revenue." }
            (charts::rfm_heatmap(&cells))
        }
        p class="muted small" { "Analysed " (when(o.analysed_at)) }
    };
    Ok(layout(&ctx, "/admin", "Overview", body))
}

// ---------------------------------------------------------------- segments

#[get("/admin/segments")]
async fn segments(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    render(&req, &state, |ctx| segments_page(ctx, &state)).await
}

const RULE_HELP: &str = "Attributes: number_of_orders, amount_spent, average_order_value, first_order_date, \
last_order_date, abandoned_checkout_date, customer_added_date, customer_tags, email_domain, rfm_group, \
churn_risk, predicted_clv, p_alive, discount_order_share, refunds_or_cancellations. Combine with AND, OR, \
NOT and parentheses. Dates: -90d, -4w, -3m, 2024-01-31.";

async fn segments_page(ctx: Ctx, state: &AppState) -> Result<HttpResponse, ApiError> {
    let settings = reads::shop_settings(state, ctx.session.shop_id).await?;
    let v = data::segments(&state.db, ctx.session.shop_id, &settings).await?;
    let body = html! {
        @if let Some(e) = &v.settings_error { div class="banner bad" { "Stored settings are invalid: " (e) } }
        section class="card" id="rule-editor" {
            h2 { "New custom segment" }
            div class="field" {
                // Where a customer has one group, only the tier or stage segments become it.
                label for="segment-key" { @if ctx.one_group { "Key" } @else { "Key (also the " (ctx.label_word) ")" } }
                input id="segment-key" type="text" placeholder="vip-lapsed" autocomplete="off" spellcheck="false";
            }
            div class="field" {
                label for="rule-input" { "Rule" }
                input id="rule-input" class="mono" type="text" autocomplete="off" spellcheck="false"
                    placeholder="number_of_orders >= 2 AND last_order_date < -90d"
                    aria-describedby="rule-error rule-help";
                pre id="rule-marker" class="mono marker" aria-hidden="true" {}
                p id="rule-error" class="error-text" role="alert" hidden {}
                p id="rule-ok" class="ok-text" hidden {}
                p id="rule-help" class="muted small" { (RULE_HELP) }
            }
            div class="actions" {
                button id="preview-btn" type="button" class="secondary" { "Preview" }
                button id="save-segment" type="button" { "Save segment" }
                span id="segment-status" class="status" role="status" {}
            }
            div id="preview" hidden {
                p id="preview-count" class="big" {}
                table id="preview-sample" class="table" {
                    thead { tr { th { "Customer" } th { "Orders" } th { "Spent" } th { "RFM group" } th { "Churn risk" } } }
                    tbody {}
                }
            }
        }
        section class="card" {
            h2 { "Segments" }
            p class="muted small" { (v.scored_customers) " customers scored at the last analysis. Trend: members at each of the last runs." }
            table class="table" id="segments-table" {
                thead { tr { th { "Segment" } th { "Type" } th class="num" { "Members" } th { "Trend" } th { (capitalise(ctx.label_word)) } th {} } }
                tbody {
                    @for s in &v.segments {
                        tr data-key=(s.key) {
                            td { code { (s.key) } @if let Some(r) = &s.rule { div class="muted small mono" { (r) } } }
                            td { @if s.builtin { "built-in" } @else { "custom" } }
                            td class="num" { (s.size) }
                            td { (charts::sparkline(&format!("{} members by run", s.key), &s.trend)) }
                            td { @if s.published { "pushed" } @else { span class="muted" { "not pushed" } } }
                            td { @if !s.builtin { button type="button" class="link delete-segment" data-key=(s.key) { "Delete" } } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(&ctx, "/admin/segments", "Segments", body))
}

// ---------------------------------------------------------------- offers and tags

#[get("/admin/offers")]
async fn offers(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    render(&req, &state, |ctx| offers_page(ctx, &state)).await
}

fn num_field(label: &str, name: &str, value: String, help: &str) -> Markup {
    html! {
        div class="field" {
            label { (label)
                input type="number" min="0" step="any" name=(name) value=(value);
            }
            @if !help.is_empty() { span class="muted small" { (help) } }
        }
    }
}

/// The shop's plan refused Lifecycle's labels (an Ecwid plan without customer groups): say so
/// in the platform's words, and that the rest goes on.
/// The order history the shop's platform holds back from Lifecycle, if any.
async fn history_limit(state: &AppState, ctx: &Ctx) -> Result<Option<HistoryLimit>, ApiError> {
    let Some(shop) = crate::store::shops::get(&state.db, ctx.session.shop_id).await? else {
        return Ok(None);
    };
    Ok(state
        .platforms
        .get(&ctx.session.platform)
        .and_then(|p| p.history_limit(&shop.scopes)))
}

fn partial_history_banner(h: &HistoryLimit) -> Markup {
    html! {
        div class="banner bad" id="partial-history" {
            strong { "Partial history: only the last " (h.days) " days of orders. " }
            "Lifetime figures (revenue, CLV, RFM groups, retention) are computed on that window, so they are partial. "
            (h.remedy) "."
        }
    }
}

/// A figure's marker when it is computed on a partial history.
fn partial_mark(h: &Option<HistoryLimit>) -> Markup {
    html! {
        @if let Some(h) = h {
            " " span class="badge warn partial" title=(format!("computed on the last {} days of orders only", h.days)) { "partial" }
        }
    }
}

fn labels_unavailable_banner(ctx: &Ctx, why: &str) -> Markup {
    let word = ctx.label_word;
    html! {
        div class="banner bad" id="labels-unavailable" {
            strong { "Your plan does not include " (word) "s. " }
            "Lifecycle cannot put customers into " (word) "s until the plan includes them (the shop said: " (why) "). "
            "Segments, personal codes and everything else keep working, and each run checks again."
        }
    }
}

/// What the shop's platform allows, which shapes the labels, the codes and how current the
/// figures are.
fn platform_facts(caps: &crate::platforms::Capabilities) -> Markup {
    html! {
        section class="card" id="platform-facts" {
            h2 { "What your platform allows" }
            dl class="facts" {
                @for (term, fact) in caps.facts() { dt { (term) } dd { (fact) } }
            }
        }
    }
}

async fn offers_page(ctx: Ctx, state: &AppState) -> Result<HttpResponse, ApiError> {
    let settings = reads::shop_settings(state, ctx.session.shop_id).await?;
    let view = reads::settings_view(&settings);
    let eff = &view.effective;
    let plan = data::last_plan(&state.db, ctx.session.shop_id).await?;
    let currency = crate::analysis::results::load_analysis(&state.db, ctx.session.shop_id)
        .await?
        .map(|a| a.currency)
        .unwrap_or_else(|| "USD".into());
    let exp = crate::analysis::money::exponent(&currency);
    let tiers = &eff["segments"]["thresholds"]["tiers"];
    // The platform's words: tags or a customer group, and how narrowly a code is restricted.
    let caps = state
        .platforms
        .get(&ctx.session.platform)
        .map(|p| p.capabilities().clone());
    let label_word = ctx.label_word;
    let one_group = ctx.one_group;
    let labels_unavailable = data::labels_unavailable(&state.db, ctx.session.shop_id).await?;
    let body = html! {
        @if let Some(e) = &view.error { div class="banner bad" { "Stored settings are invalid: " (e) } }
        @if let Some(why) = &labels_unavailable { (labels_unavailable_banner(&ctx, why)) }
        script type="application/json" id="settings-data" { (PreEscaped(eff.to_string().replace("</", "<\\/"))) }
        form id="settings-form" data-currency=(currency) data-exponent=(exp) onsubmit="return false" {
            section class="card" {
                h2 { "Offers" }
                p class="muted small" { "Personal, single-use discount codes for the customers of the chosen segments. Each offer has its own value, expiry, cooldown and budget per run." }
                @if let Some(c) = &caps { p class="muted small" id="code-note" { (c.code_note) } }
                div class="offers" {
                    @for kind in OfferKind::ALL {
                        @let o = &eff["offers"][kind.key()];
                        @let fixed = o["value"]["type"] == "fixed_amount";
                        fieldset class="offer" data-offer=(kind.key()) {
                            legend { (o["title"].as_str().unwrap_or(kind.key())) }
                            label class="toggle" {
                                input type="checkbox" name="enabled" checked[o["enabled"].as_bool().unwrap_or(false)];
                                " Enabled"
                            }
                            div class="field" {
                                label { "Value"
                                    select name="value_type" {
                                        option value="percentage" selected[!fixed] { "% off" }
                                        option value="fixed_amount" selected[fixed] { (currency) " off" }
                                    }
                                }
                                input type="number" min="0" step="any" name="value" aria-label="Value amount"
                                    value=(if fixed { crate::core::loyalty::minor_units_to_decimal(o["value"]["amount_minor"].as_i64().unwrap_or(0), exp) } else { o["value"]["percent"].to_string() });
                            }
                            (num_field("Expires after (days)", "expiry_days", o["expiry_days"].to_string(), ""))
                            (num_field("Cooldown (days)", "cooldown_days", o["cooldown_days"].to_string(), "before the same customer gets this offer again"))
                            (num_field("Budget per run (codes)", "budget_per_run", o["budget_per_run"].to_string(), ""))
                            (num_field("Control group (%)", "control_percent", o["control_percent"].to_string(), "0-50: held out, no code, to measure the offer's effect"))
                            (num_field("From day", "min_days_since_trigger", o["min_days_since_trigger"].to_string(), "days since the trigger"))
                            (num_field("Until day", "max_days_since_trigger", o["max_days_since_trigger"].as_u64().map(|v| v.to_string()).unwrap_or_default(), "empty: no limit"))
                            div class="field" {
                                label { "Segments"
                                    input type="text" name="segments" value=(o["segments"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default());
                                }
                            }
                            div class="field" { label { "Title" input type="text" name="title" value=(o["title"].as_str().unwrap_or("")); } }
                        }
                    }
                }
            }
            div class="grid2" {
                section class="card" {
                    h2 { (capitalise(label_word)) "s and schedule" }
                    @if one_group {
                        p class="muted small" id="label-note" { "Each customer is in one " (label_word) ": Lifecycle puts them in the group of their loyalty tier (or lifecycle stage), named with the prefix below, and leaves customers in your own groups alone." }
                    }
                    div class="field" { label { (capitalise(label_word)) " prefix" input type="text" name="tag_prefix" id="tag-prefix" value=(eff["tag_prefix"].as_str().unwrap_or("")); } }
                    // Only where a customer has one group: which label it follows.
                    @if one_group {
                        div class="field" {
                            label { "Each customer's " (label_word) " follows their"
                                select name="group_label" id="group-label" {
                                    @for l in crate::settings::GroupLabel::ALL {
                                        option value=(l.key()) selected[eff["group_label"] == l.key()] { (l.describe()) }
                                    }
                                }
                            }
                        }
                    }
                    div class="field" {
                        label { "Schedule (cron: minute hour day month weekday)"
                            input type="text" name="schedule" id="schedule" class="mono" placeholder="0 3 * * *" value=(eff["schedule"].as_str().unwrap_or(""));
                        }
                        span class="muted small" { "Empty: the app's nightly default." }
                    }
                    label class="toggle" { input type="checkbox" name="dry_run" id="dry-run-toggle" checked[eff["dry_run"].as_bool().unwrap_or(false)]; " Dry run: plan and record, send nothing to the shop" }
                    div class="field" {
                        label { "Customer acquisition cost (" (currency) ")" input type="number" min="0" step="any" name="cac" id="cac" value=(eff["cac"].as_f64().map(|v| v.to_string()).unwrap_or_default()); }
                        span class="muted small" { "Optional: shows CLV : CAC on the overview." }
                    }
                }
                section class="card" {
                    h2 { "Loyalty tiers" }
                    div class="field" {
                        label { "Measured on"
                            select name="tier_basis" id="tier-basis" {
                                option value="amount_spent" selected[tiers["basis"] == "amount_spent"] { "amount spent" }
                                option value="predicted_clv" selected[tiers["basis"] == "predicted_clv"] { "predicted CLV" }
                            }
                        }
                    }
                    @for t in ["bronze", "silver", "gold", "platinum"] {
                        (num_field(&format!("{} from ({currency})", capitalise(t)), &format!("tier_{t}"), tiers[format!("{t}_min")].to_string(), ""))
                    }
                }
            }
            div class="actions sticky" {
                button type="button" id="save-settings" { "Save settings" }
                span id="settings-status" class="status" role="status" {}
            }
        }
        section class="card" id="plan-card" data-labels=(ctx.labels()) {
            h2 { "Dry run" }
            p class="muted" { "Analyse and plan now without sending anything, then review the " (ctx.labels()) " and codes that would be pushed." }
            div class="actions" {
                button type="button" id="dry-run-btn" class="secondary" { "Run a dry run" }
                span id="dry-run-status" class="status" role="status" {}
            }
            (plan_view(&ctx, &plan))
        }
        @if let Some(c) = &caps { (platform_facts(c)) }
    };
    let title = ctx.nav_label(NAV[2].1);
    Ok(layout(&ctx, "/admin/offers", &title, body))
}

fn plan_view(ctx: &Ctx, plan: &data::PlanView) -> Markup {
    let s = &plan.summary;
    html! {
        div id="plan" {
            @match &plan.run {
                None => { p class="muted" id="plan-empty" { "No dry run yet." } }
                Some(run) => {
                    h3 { "Last plan " span class="muted small" { (when(Some(run.started_at))) } " " (badge(&run.status)) }
                    @if let Some(e) = &run.error { p class="error-text" { (e) } }
                    dl class="facts" id="plan-summary" {
                        dt { "Customers analysed" } dd { (s["customers"]) }
                        dt { "Customers whose " (ctx.labels()) " change" } dd id="plan-tag-changes" { (s["tag_changes"]) }
                        dt { "Codes planned" } dd id="plan-codes" { (s["codes_planned"]) }
                        dt { "Held out (control groups, no code)" } dd id="plan-held-out" { (s["held_out"]) }
                        dt { "Planned writes" } dd id="plan-total" { (plan.total_items) }
                    }
                    @if plan.items.is_empty() {
                        p class="muted" { "Nothing to change: the shop already matches." }
                    } @else {
                        table class="table" id="plan-items" {
                            thead { tr { th { "Customer" } th { "Action" } th { (capitalise(ctx.label_word)) " or code" } th { "Because of" } } }
                            tbody {
                                @for i in &plan.items {
                                    tr { td class="mono small" { (short_id(&i.customer_platform_id)) } td { (i.action) } td { code { (i.detail) } } td { (i.reason) } }
                                }
                            }
                        }
                        @if plan.total_items > plan.items.len() as i64 {
                            p class="muted small" { "Showing " (plan.items.len()) " of " (plan.total_items) "." }
                        }
                    }
                }
            }
        }
    }
}

fn short_id(gid: &str) -> &str {
    gid.rsplit('/').next().unwrap_or(gid)
}

// ---------------------------------------------------------------- customers

#[derive(serde::Deserialize)]
struct Search {
    q: Option<String>,
}

#[get("/admin/customers")]
async fn customers(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let q = web::Query::<Search>::from_query(req.query_string())
        .map(|q| q.into_inner().q)
        .unwrap_or(None);
    render(&req, &state, |ctx| customers_page(ctx, &state, q)).await
}

async fn customers_page(
    ctx: Ctx,
    state: &AppState,
    q: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let list = data::customers(&state.db, ctx.session.shop_id, q.as_deref(), 100).await?;
    let body = html! {
        form method="get" class="search" role="search" {
            @for (k, v) in url::form_urlencoded::parse(ctx.keep.trim_start_matches('?').as_bytes()) {
                input type="hidden" name=(k) value=(v);
            }
            input type="search" name="q" value=(q.clone().unwrap_or_default()) placeholder="Search by e-mail or name" aria-label="Search customers";
            button type="submit" { "Search" }
            " "
            a href="/api/customers/export.csv" download="customers.csv" { "Export all as CSV" }
        }
        section class="card" {
            @if list.is_empty() {
                p class="muted" { "No customers yet." }
            } @else {
                table class="table" {
                    thead { tr { th { "Customer" } th { "E-mail" } th { "RFM group" } th { "Churn risk" } th class="num" { "Predicted CLV" } } }
                    tbody {
                        @for c in &list {
                            tr {
                                td { a href=(ctx.link(&format!("/admin/customers/{}", c.id))) { @if c.name.is_empty() { (short_id(&c.platform_id)) } @else { (c.name) } } }
                                td { (c.email.clone().unwrap_or_default()) }
                                td { (c.rfm_group.clone().unwrap_or_else(|| "—".into())) }
                                td { (c.churn_risk.clone().unwrap_or_else(|| "—".into())) }
                                td class="num" { (match (c.clv_minor, &c.currency) { (Some(v), Some(cur)) => format_money(v, cur), _ => "—".into() }) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(&ctx, "/admin/customers", "Customers", body))
}

#[get("/admin/customers/{id}")]
async fn customer(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    render(&req, &state, |ctx| customer_page(ctx, &state, &id)).await
}

async fn customer_page(ctx: Ctx, state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let c = reads::customer_detail(state, ctx.session.shop_id, id).await?;
    // The features are in the analysis currency, which the scores carry.
    let cur = c
        .scores
        .as_ref()
        .map(|s| s.currency.as_str())
        .or_else(|| c.orders.first().map(|o| o.currency.as_str()))
        .unwrap_or("");
    let title = if c.name.is_empty() {
        c.email
            .clone()
            .unwrap_or_else(|| short_id(&c.platform_id).to_string())
    } else {
        c.name.clone()
    };
    let body = html! {
        p class="muted" { (c.email.clone().unwrap_or_default()) " · " span class="mono small" { (c.platform_id) } " · customer since " (when(c.created_at)) }
        div class="grid2" {
            section class="card" {
                h2 { "Features" }
                @match &c.features {
                    Some(f) => {
                        dl class="facts" {
                            dt { "Orders" } dd { (f.number_of_orders) }
                            dt { "Amount spent" } dd { (format_major(f.amount_spent, cur)) }
                            dt { "Average order value" } dd { (format_major(f.average_order_value, cur)) }
                            dt { "First order" } dd { (when(f.first_order_date)) }
                            dt { "Last order" } dd { (when(f.last_order_date)) }
                            dt { "Abandoned checkout" } dd { (when(f.abandoned_checkout_date)) }
                            dt { "Orders with a discount" } dd { (pct(Some(f.discount_order_share * 100.0))) }
                            dt { "Refunds or cancellations" } dd { (f.refunds_or_cancellations) }
                        }
                    }
                    None => { p class="muted" { "Appears after the first analysis." } }
                }
            }
            section class="card" {
                h2 { "Scores" }
                @match &c.scores {
                    Some(s) => {
                        dl class="facts" {
                            dt { "RFM" } dd { (s.rfm_r) " / " (s.rfm_f) " / " (s.rfm_m) " · " (s.rfm_group) }
                            dt { "Probability active" } dd { (pct(s.p_alive.map(|p| p * 100.0))) }
                            dt { "Predicted CLV" } dd { (s.clv_minor.map(|v| format_money(v, &s.currency)).unwrap_or_else(|| "—".into())) }
                            @if let (Some(lo), Some(hi)) = (s.clv_p10_minor, s.clv_p90_minor) {
                                dt { "CLV range (P10–P90)" } dd id="clv-range" { (format_money(lo, &s.currency)) " – " (format_money(hi, &s.currency)) }
                            }
                            dt { "Churn risk" } dd { (s.churn_risk.clone().unwrap_or_else(|| "—".into())) }
                            dt { "Scored" } dd { (when(Some(s.scored_at))) }
                        }
                    }
                    None => { p class="muted" { "Not scored yet." } }
                }
                h2 { "Segments" }
                p { @for s in &c.segments { span class="chip" { (s) } " " } @if c.segments.is_empty() { span class="muted" { "none" } } }
                h2 { (ctx.labels_title()) }
                p { @for t in &c.tags { span class="chip" { (t) } " " } @if c.tags.is_empty() { span class="muted" { "none" } } }
                p class="muted small" { "Pushed by Lifecycle: " (if c.pushed_tags.is_empty() { "none".to_string() } else { c.pushed_tags.join(", ") }) }
            }
        }
        section class="card" {
            h2 { "Discount codes" }
            @if c.codes.is_empty() { p class="muted" { "None issued." } } @else {
                table class="table" { thead { tr { th { "Code" } th { "Offer" } th { "State" } th { "Because of" } th { "Valid until" } } }
                    tbody { @for k in &c.codes { tr { td { code { (k.code) } } td { (k.offer) } td { (badge(&k.state)) } td { (k.reason) } td { (when(Some(k.ends_at))) } } } } }
            }
        }
        section class="card" {
            h2 { "Order history" }
            @if c.orders.is_empty() { p class="muted" { "No orders." } } @else {
                table class="table" { thead { tr { th { "Order" } th { "Date" } th class="num" { "Total" } th class="num" { "Refunded" } th { "Codes" } th { "Status" } } }
                    tbody { @for o in &c.orders { tr {
                        td { (o.name.clone().unwrap_or_default()) }
                        td { (when(Some(o.created_at))) }
                        td class="num" { (format_money(o.total_minor, &o.currency)) }
                        td class="num" { @if o.refunded_minor > 0 { (format_money(o.refunded_minor, &o.currency)) } }
                        td { (o.discount_codes.join(", ")) }
                        td { @if o.cancelled { (badge("cancelled")) } @else { (o.financial_status.clone().unwrap_or_default()) } }
                    } } } }
            }
        }
    };
    Ok(layout(&ctx, "/admin/customers", &title, body))
}

// ---------------------------------------------------------------- activity

#[get("/admin/activity")]
async fn activity(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    render(&req, &state, |ctx| activity_page(ctx, &state)).await
}

async fn activity_page(ctx: Ctx, state: &AppState) -> Result<HttpResponse, ApiError> {
    let a = data::activity(&state.db, ctx.session.shop_id).await?;
    let mut topics: std::collections::BTreeMap<&str, Vec<(&str, i64)>> = Default::default();
    for t in &a.webhooks_by_topic {
        topics
            .entry(&t.topic)
            .or_default()
            .push((&t.state, t.count));
    }
    let body = html! {
        div class="grid2" {
            section class="card" {
                h2 { "Webhooks received" }
                @if topics.is_empty() { p class="muted" { "None yet." } } @else {
                    table class="table" id="webhook-topics" { thead { tr { th { "Topic" } th class="num" { "Received" } th { "By state" } } }
                        tbody { @for (topic, states) in &topics { tr {
                            td { code { (topic) } }
                            td class="num" { (states.iter().map(|s| s.1).sum::<i64>()) }
                            td { @for (s, n) in states { (badge(s)) " " (n) " " } }
                        } } } }
                }
            }
            section class="card" {
                h2 { "Jobs" }
                p { @for s in &a.jobs_by_state { (badge(&s.state)) " " (s.count) "  " } @if a.jobs_by_state.is_empty() { span class="muted" { "None yet." } } }
                h3 { "Syncs" }
                @for r in &a.sync_runs { (run_line(&r.kind, &Some(r.clone()))) }
                @if a.sync_runs.is_empty() { p class="muted" { "No sync yet." } }
            }
        }
        section class="card" {
            h2 { "Webhook failures" }
            @if a.webhook_failures.is_empty() { p class="muted" { "No failures." } } @else {
                table class="table" { thead { tr { th { "Received" } th { "Topic" } th { "State" } th class="num" { "Attempts" } th { "Reason" } } }
                    tbody { @for w in &a.webhook_failures { tr { td { (when(Some(w.received_at))) } td { code { (w.topic) } } td { (badge(&w.state)) } td class="num" { (w.attempts) } td class="error-text" { (w.last_error.clone().unwrap_or_default()) } } } } }
            }
        }
        section class="card" {
            h2 { "Recent jobs" }
            p class="muted small" { "Dead, failed and running jobs first; a dead job can be retried." }
            @if a.jobs.is_empty() { p class="muted" { "None yet." } } @else {
                table class="table" id="jobs" { thead { tr { th { "#" } th { "Kind" } th { "State" } th class="num" { "Attempts" } th { "Last error" } th { "Updated" } th {} } }
                    tbody { @for j in &a.jobs { tr {
                        td { (j.id) } td { code { (j.kind) } } td { (badge(&j.state)) } td class="num" { (j.attempts) "/" (j.max_attempts) }
                        td class="error-text" { (j.last_error.clone().unwrap_or_default()) }
                        td { (when(Some(j.updated_at))) }
                        td { @if j.state == "dead" { button type="button" class="secondary retry-job" data-id=(j.id) { "Retry" } } }
                    } } } }
            }
            span id="jobs-status" class="status" role="status" {}
        }
        section class="card" {
            h2 { "Pushes (audit)" }
            @if a.audit.is_empty() { p class="muted" { "Nothing pushed or planned yet." } } @else {
                table class="table" { thead { tr { th { "When" } th { "Customer" } th { "Action" } th { (capitalise(ctx.label_word)) " or code" } th { "Because of" } th { "Outcome" } } }
                    tbody { @for i in &a.audit { tr {
                        td { (when(Some(i.at))) } td class="mono small" { (short_id(&i.customer_platform_id)) } td { (i.action) @if i.dry_run { " (dry run)" } }
                        td { code { (i.detail) } } td { (i.reason) } td { (i.outcome) }
                    } } } }
            }
        }
        section class="card" {
            h2 { "Discount codes" }
            @if a.codes.is_empty() { p class="muted" { "None issued." } } @else {
                table class="table" { thead { tr { th { "Code" } th { "Offer" } th { "Customer" } th { "State" } th { "Valid until" } } }
                    tbody { @for k in &a.codes { tr { td { code { (k.code) } } td { (k.offer) } td class="mono small" { (short_id(&k.customer_platform_id)) } td { (badge(&k.state)) } td { (when(Some(k.ends_at))) } } } } }
            }
        }
        section class="card" {
            h2 { "Data requests and redactions" }
            @if a.privacy_requests.is_empty() { p class="muted" { "None received." } } @else {
                table class="table" { thead { tr { th { "Received" } th { "Kind" } th { "Customer" } th { "Done" } th { "Summary" } th { "Export" } } }
                    tbody { @for p in &a.privacy_requests { tr { td { (when(Some(p.received_at))) } td { (p.kind) } td class="mono small" { (p.customer_platform_id.as_deref().map(short_id).unwrap_or("—")) } td { (when(p.completed_at)) } td { (p.summary) }
                        td { @if let Some(until) = p.expires_at { a href=(format!("/api/data-requests/{}/export.json", p.id)) download="data-request.json" { "Download" } " (until " (when(Some(until))) ")" } }
                    } } } }
            }
        }
    };
    Ok(layout(&ctx, "/admin/activity", "Activity", body))
}
