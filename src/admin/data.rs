//! The admin's read models: what the pages and the JSON API show. Every query filters by
//! `shop_id`; a shop that has just been installed (nothing synced, no analysis) gives empty
//! but valid models.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Utc};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};
use serde::Serialize;
use utoipa::ToSchema;

use crate::analysis::load::{load_customer, load_shop};
use crate::analysis::money;
use crate::analysis::results::load_analysis;
use crate::core::analytics::{
    ClvCacHealth, Maturity, MaturityStage, MonthlyPoint, ShopMetrics, compute_features,
    customer_features, score_customer,
};
use crate::core::segments::{CustomerFacts, SegmentCatalog, SegmentId};
use crate::settings::LoyaltySettings;
use crate::store::{Db, stmt};

pub(crate) async fn rows(
    db: &Db,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(stmt(db.get_database_backend(), sql, values))
        .await
}

/// Runs a query and reads every row with `view`.
async fn list<T>(
    db: &Db,
    sql: &str,
    values: Vec<Value>,
    view: fn(&QueryResult) -> Result<T, DbErr>,
) -> Result<Vec<T>, DbErr> {
    rows(db, sql, values).await?.iter().map(view).collect()
}

async fn scalar(db: &Db, sql: &str, values: Vec<Value>) -> Result<i64, DbErr> {
    Ok(match rows(db, sql, values).await?.first() {
        Some(r) => r.try_get::<Option<i64>>("", "n")?.unwrap_or(0),
        None => 0,
    })
}

/// Money for display in the shop's currency, thousands grouped: `12,345.67 USD`. Every money
/// figure the admin (and the demo's report) shows goes through here, so they all read alike.
pub fn format_money(minor: i64, currency: &str) -> String {
    let plain = crate::core::loyalty::minor_units_to_decimal(minor, money::exponent(currency));
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", plain.as_str()),
    };
    let (whole, frac) = digits.split_at(digits.find('.').unwrap_or(digits.len()));
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if currency.is_empty() {
        format!("{sign}{grouped}{frac}")
    } else {
        format!("{sign}{grouped}{frac} {currency}")
    }
}

/// Money held in major units (averages, model figures, settings), rounded to the currency's
/// minor unit and shown as [`format_money`] does.
pub fn format_major(value: f64, currency: &str) -> String {
    let scale = 10f64.powi(money::exponent(currency) as i32);
    format_money((value * scale).round() as i64, currency)
}

// ---------------------------------------------------------------- overview

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Overview {
    pub shop: String,
    /// The currency of the analysis (the shop's most used order currency).
    pub currency: String,
    pub customers: i64,
    pub orders: i64,
    /// Net revenue (totals less refunds) of orders that were not cancelled, in minor units.
    pub revenue_minor: i64,
    pub analysed_at: Option<DateTime<Utc>>,
    pub customers_with_orders: Option<u64>,
    pub average_predicted_clv: Option<f64>,
    /// Monthly retention figures, oldest first.
    pub monthly: Vec<MonthlyRow>,
    pub clv_distribution: Vec<Bucket>,
    /// The RFM grid: R (1–5) × FM (1–5, the rounded-up mean of F and M).
    pub rfm_grid: Vec<RfmCell>,
    pub maturity: Option<MaturityView>,
    /// Set when the merchant entered a customer acquisition cost (`cac` in settings).
    pub clv_cac: Option<ClvCacView>,
    pub last_sync: Option<RunView>,
    pub last_push: Option<RunView>,
    /// Why the shop's plan refused Lifecycle's labels at the last push (an Ecwid plan without
    /// customer groups); everything else still works.
    pub labels_unavailable: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonthlyRow {
    /// First day of the month, `YYYY-MM-DD`.
    pub month: String,
    pub orders: u64,
    pub revenue: f64,
    pub retention_rate_pct: Option<f64>,
    pub churn_rate_pct: Option<f64>,
    pub repeat_rate_pct: Option<f64>,
    pub average_order_value: Option<f64>,
    /// Set on a month the analysis saw only part of (the current one): the last day of the
    /// month it covers. Its figures are not comparable with whole months.
    pub partial_to_day: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Bucket {
    /// Lower bound, major units (inclusive).
    pub from: f64,
    /// Upper bound, major units (exclusive; the last bucket includes everything above).
    pub to: f64,
    pub customers: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RfmCell {
    pub r: u8,
    pub fm: u8,
    pub customers: i64,
    pub revenue_minor: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MaturityView {
    pub stage: String,
    pub retention_share_pct: u8,
    pub age_days: i64,
    pub sales_per_day: f64,
    pub meaning: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClvCacView {
    pub cac: f64,
    pub ratio: f64,
    pub health: String,
    pub meaning: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunView {
    pub kind: String,
    pub status: String,
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

pub fn stage_meaning(stage: MaturityStage) -> &'static str {
    match stage {
        MaturityStage::JustStarted => {
            "No sales yet: put your effort into acquiring first customers."
        }
        MaturityStage::GainingTraction => {
            "Early sales: keep most effort on acquisition, start welcoming first-time buyers back."
        }
        MaturityStage::Consistent => {
            "Steady sales: a repeat-purchase programme now pays; about a third of marketing on retention."
        }
        MaturityStage::Established => {
            "An established shop: half of the effort on keeping and growing existing customers."
        }
        MaturityStage::WellEstablished => {
            "A mature shop: most revenue should come from returning customers; lead with retention."
        }
    }
}

fn health_meaning(h: ClvCacHealth) -> (&'static str, &'static str) {
    match h {
        ClvCacHealth::LosingMoney => (
            "losing money",
            "Each new customer costs more than they bring: lower acquisition cost or raise retention.",
        ),
        ClvCacHealth::BelowTarget => (
            "below target",
            "Customers pay back, but under the 3:1 that leaves room for growth.",
        ),
        ClvCacHealth::Healthy => ("healthy", "Around 3:1 to 5:1: a healthy balance."),
        ClvCacHealth::UnderInvesting => (
            "under-investing",
            "Above 5:1: acquisition is probably under-funded; you could grow faster.",
        ),
    }
}

fn opt_json<T: serde::de::DeserializeOwned>(r: &QueryResult, col: &str) -> Option<T> {
    let text: Option<String> = r.try_get("", col).ok().flatten();
    text.and_then(|t| serde_json::from_str(&t).ok())
}

/// Reads `cac` (major units of the shop currency) from the shop's settings, if set.
pub fn settings_cac(settings: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(settings).ok()?;
    v.get("cac")?.as_f64().filter(|c| c.is_finite() && *c > 0.0)
}

pub async fn overview(
    db: &Db,
    shop_id: i64,
    domain: &str,
    settings: &str,
) -> Result<Overview, DbErr> {
    let customers = scalar(
        db,
        "SELECT COUNT(*) AS n FROM customers WHERE shop_id = ? AND deleted_at IS NULL",
        vec![shop_id.into()],
    )
    .await?;
    let orders = scalar(
        db,
        "SELECT COUNT(*) AS n FROM orders WHERE shop_id = ? AND deleted_at IS NULL",
        vec![shop_id.into()],
    )
    .await?;
    let analysis = rows(
        db,
        "SELECT metrics, maturity, monthly, currency, analysed_at FROM shop_analyses WHERE shop_id = ?",
        vec![shop_id.into()],
    )
    .await?;
    let a = analysis.first();
    let currency: String = match a {
        Some(r) => r.try_get("", "currency")?,
        None => main_currency(db, shop_id).await?,
    };
    let revenue_minor = scalar(
        db,
        "SELECT CAST(SUM(total_minor - refunded_minor) AS BIGINT) AS n FROM orders \
         WHERE shop_id = ? AND currency = ? AND cancelled_at IS NULL AND deleted_at IS NULL",
        vec![shop_id.into(), currency.clone().into()],
    )
    .await?;
    let metrics: Option<ShopMetrics> = a.and_then(|r| opt_json(r, "metrics"));
    let maturity: Option<Maturity> = a.and_then(|r| opt_json(r, "maturity"));
    let monthly: Vec<MonthlyPoint> = a.and_then(|r| opt_json(r, "monthly")).unwrap_or_default();
    let analysed_at: Option<DateTime<Utc>> = match a {
        Some(r) => Some(r.try_get("", "analysed_at")?),
        None => None,
    };
    let average_clv = metrics.as_ref().and_then(|m| m.average_predicted_clv);
    let clv_cac = match (settings_cac(settings), average_clv) {
        (Some(cac), Some(clv)) => {
            let ratio = clv / cac;
            let (health, meaning) = health_meaning(ClvCacHealth::of(ratio));
            Some(ClvCacView {
                cac,
                ratio,
                health: health.into(),
                meaning: meaning.into(),
            })
        }
        _ => None,
    };
    Ok(Overview {
        shop: domain.to_string(),
        customers,
        orders,
        revenue_minor,
        analysed_at,
        customers_with_orders: metrics.as_ref().map(|m| m.customers_with_orders),
        average_predicted_clv: average_clv,
        monthly: monthly
            .iter()
            .map(|p| MonthlyRow {
                month: p.month.to_string(),
                orders: p.metrics.orders,
                revenue: p.metrics.revenue,
                retention_rate_pct: p.metrics.customer_retention_rate_pct,
                churn_rate_pct: p.metrics.churn_rate_pct,
                repeat_rate_pct: p.metrics.repeat_purchase_rate_pct,
                average_order_value: p.metrics.average_order_value,
                partial_to_day: partial_to_day(p),
            })
            .collect(),
        clv_distribution: clv_distribution(db, shop_id, &currency).await?,
        rfm_grid: rfm_grid(db, shop_id, &currency).await?,
        maturity: maturity.map(|m| MaturityView {
            stage: serde_json::to_value(m.stage)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            retention_share_pct: m.retention_share_pct,
            age_days: m.age_days,
            sales_per_day: m.sales_per_day,
            meaning: stage_meaning(m.stage).into(),
        }),
        clv_cac,
        last_sync: last_sync(db, shop_id).await?,
        last_push: last_push(db, shop_id, None).await?,
        labels_unavailable: labels_unavailable(db, shop_id).await?,
        currency,
    })
}

/// The day a month's figures stop at when the analysis ended inside that month.
fn partial_to_day(p: &MonthlyPoint) -> Option<u32> {
    let next = p.month.checked_add_months(chrono::Months::new(1))?;
    let next = next.and_hms_opt(0, 0, 0)?.and_utc();
    (p.metrics.end < next).then(|| p.metrics.end.day())
}

async fn main_currency(db: &Db, shop_id: i64) -> Result<String, DbErr> {
    let r = rows(
        db,
        "SELECT currency, COUNT(*) AS n FROM orders WHERE shop_id = ? GROUP BY currency ORDER BY n DESC LIMIT 1",
        vec![shop_id.into()],
    )
    .await?;
    Ok(match r.first() {
        Some(r) => r.try_get("", "currency")?,
        None => "USD".into(),
    })
}

/// Ten equal buckets up to the 95th percentile, the long tail folded into the last one so a
/// few very large customers do not squash the chart.
async fn clv_distribution(db: &Db, shop_id: i64, currency: &str) -> Result<Vec<Bucket>, DbErr> {
    let rs = rows(
        db,
        "SELECT clv_minor FROM customer_scores WHERE shop_id = ? AND clv_minor IS NOT NULL",
        vec![shop_id.into()],
    )
    .await?;
    let exp = money::exponent(currency);
    let mut values: Vec<f64> = rs
        .iter()
        .filter_map(|r| r.try_get::<i64>("", "clv_minor").ok())
        .map(|m| money::to_major(m, exp).max(0.0))
        .collect();
    Ok(histogram(&mut values, 10))
}

pub fn histogram(values: &mut [f64], buckets: usize) -> Vec<Bucket> {
    if values.is_empty() || buckets == 0 {
        return Vec::new();
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let p95 = values[((values.len() - 1) as f64 * 0.95).round() as usize];
    let top = nice_ceiling(p95.max(1.0));
    let width = top / buckets as f64;
    let mut out: Vec<Bucket> = (0..buckets)
        .map(|i| Bucket {
            from: width * i as f64,
            to: width * (i + 1) as f64,
            customers: 0,
        })
        .collect();
    for v in values.iter() {
        let i = ((v / width).floor() as usize).min(buckets - 1);
        out[i].customers += 1;
    }
    out
}

/// The smallest 1, 2 or 5 × 10^k at or above `v`: round axis labels.
pub fn nice_ceiling(v: f64) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

async fn rfm_grid(db: &Db, shop_id: i64, currency: &str) -> Result<Vec<RfmCell>, DbErr> {
    let rs = rows(
        db,
        "SELECT s.rfm_r AS r, s.rfm_f AS f, s.rfm_m AS m, COUNT(*) AS n, \
         CAST(SUM(COALESCE(o.net, 0)) AS BIGINT) AS revenue \
         FROM customer_scores s LEFT JOIN (SELECT customer_platform_id, SUM(total_minor - refunded_minor) AS net \
         FROM orders WHERE shop_id = ? AND currency = ? AND cancelled_at IS NULL AND deleted_at IS NULL \
         GROUP BY customer_platform_id) o ON o.customer_platform_id = s.customer_platform_id \
         WHERE s.shop_id = ? GROUP BY s.rfm_r, s.rfm_f, s.rfm_m",
        vec![shop_id.into(), currency.into(), shop_id.into()],
    )
    .await?;
    let mut grid: BTreeMap<(u8, u8), (i64, i64)> = BTreeMap::new();
    for r in &rs {
        let rr = r.try_get::<i16>("", "r")?.clamp(1, 5) as u8;
        let f = r.try_get::<i16>("", "f")?.clamp(1, 5) as u8;
        let m = r.try_get::<i16>("", "m")?.clamp(1, 5) as u8;
        let fm = (f + m).div_ceil(2);
        let e = grid.entry((rr, fm)).or_default();
        e.0 += r.try_get::<i64>("", "n")?;
        e.1 += r.try_get::<Option<i64>>("", "revenue")?.unwrap_or(0);
    }
    Ok(grid
        .into_iter()
        .map(|((r, fm), (customers, revenue_minor))| RfmCell {
            r,
            fm,
            customers,
            revenue_minor,
        })
        .collect())
}

const SYNC_RUNS: &str = "SELECT kind, status, error, started_at, finished_at FROM sync_runs \
     WHERE shop_id = ? ORDER BY id DESC";

fn sync_run_view(r: &QueryResult) -> Result<RunView, DbErr> {
    Ok(RunView {
        kind: r.try_get("", "kind")?,
        status: r.try_get("", "status")?,
        dry_run: false,
        started_at: r.try_get("", "started_at")?,
        finished_at: r.try_get("", "finished_at")?,
        error: r.try_get("", "error")?,
    })
}

pub async fn last_sync(db: &Db, shop_id: i64) -> Result<Option<RunView>, DbErr> {
    let sql = format!("{SYNC_RUNS} LIMIT 1");
    Ok(list(db, &sql, vec![shop_id.into()], sync_run_view)
        .await?
        .into_iter()
        .next())
}

/// The last segment run; `dry_run` = Some(x) picks only runs of that mode.
pub async fn last_push(
    db: &Db,
    shop_id: i64,
    dry_run: Option<bool>,
) -> Result<Option<RunView>, DbErr> {
    Ok(last_run(db, shop_id, dry_run).await?.map(|(_, v, _)| v))
}

/// Why the shop's plan refused labels at the last push that was not a dry run, if it did.
pub async fn labels_unavailable(db: &Db, shop_id: i64) -> Result<Option<String>, DbErr> {
    Ok(last_run(db, shop_id, Some(false))
        .await?
        .and_then(|(_, _, summary)| {
            summary
                .pointer("/tags/plan_limit")?
                .as_str()
                .map(str::to_string)
        }))
}

/// A segment run: its id, the run, and its summary (null when unreadable).
fn segment_run(r: &QueryResult) -> Result<(i64, RunView, serde_json::Value), DbErr> {
    let summary: String = r.try_get("", "summary")?;
    Ok((
        r.try_get("", "id")?,
        RunView {
            // A merchant's dry run records `admin:{token}`; the token is not for display.
            kind: r
                .try_get::<String>("", "trigger")?
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string(),
            status: r.try_get("", "status")?,
            dry_run: r.try_get("", "dry_run")?,
            started_at: r.try_get("", "started_at")?,
            finished_at: r.try_get("", "finished_at")?,
            error: r.try_get("", "error")?,
        },
        serde_json::from_str(&summary).unwrap_or(serde_json::Value::Null),
    ))
}

async fn last_run(
    db: &Db,
    shop_id: i64,
    dry_run: Option<bool>,
) -> Result<Option<(i64, RunView, serde_json::Value)>, DbErr> {
    last_run_where(db, shop_id, dry_run, None).await
}

/// The shop's last run, of one mode and of one trigger when given.
async fn last_run_where(
    db: &Db,
    shop_id: i64,
    dry_run: Option<bool>,
    trigger: Option<&str>,
) -> Result<Option<(i64, RunView, serde_json::Value)>, DbErr> {
    let mut values: Vec<Value> = vec![shop_id.into()];
    let mut filter = String::new();
    if let Some(d) = dry_run {
        values.push(d.into());
        filter.push_str(" AND dry_run = ?");
    }
    if let Some(t) = trigger {
        values.push(t.into());
        filter.push_str(" AND trigger = ?");
    }
    let sql = format!(
        "SELECT id, trigger, dry_run, status, summary, error, started_at, finished_at FROM segment_runs \
         WHERE shop_id = ?{filter} ORDER BY id DESC LIMIT 1"
    );
    Ok(list(db, &sql, values, segment_run)
        .await?
        .into_iter()
        .next())
}

// ---------------------------------------------------------------- segments

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SegmentView {
    pub key: String,
    pub builtin: bool,
    /// The rule of a custom segment.
    pub rule: Option<String>,
    /// Pushed to the shop as a tag.
    pub published: bool,
    /// Members at the last analysis.
    pub size: u64,
    /// Members at each of the last finished runs, oldest first.
    pub trend: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SegmentsView {
    pub scored_customers: u64,
    pub segments: Vec<SegmentView>,
    /// The first invalid part of the stored settings, if any (then the list is the defaults).
    pub settings_error: Option<String>,
}

pub async fn segments(db: &Db, shop_id: i64, settings: &str) -> Result<SegmentsView, DbErr> {
    let (settings, settings_error) = match LoyaltySettings::from_shop_json(settings) {
        Ok(s) => (s, None),
        Err(e) => (LoyaltySettings::default(), Some(e.to_string())),
    };
    let (catalog, settings_error) = match settings.validate() {
        Ok(c) => (c, settings_error),
        Err(e) => (
            LoyaltySettings::default()
                .validate()
                .map_err(|e| DbErr::Custom(e.to_string()))?,
            Some(e.to_string()),
        ),
    };
    let rs = rows(
        db,
        "SELECT segments FROM customer_scores WHERE shop_id = ?",
        vec![shop_id.into()],
    )
    .await?;
    let mut sizes: HashMap<String, u64> = HashMap::new();
    for r in &rs {
        let text: String = r.try_get("", "segments")?;
        for key in serde_json::from_str::<Vec<String>>(&text).unwrap_or_default() {
            *sizes.entry(key).or_default() += 1;
        }
    }
    // Trend: each finished run's summary counts members per segment key.
    let runs = rows(
        db,
        "SELECT summary FROM segment_runs WHERE shop_id = ? AND status = 'done' ORDER BY id DESC LIMIT 12",
        vec![shop_id.into()],
    )
    .await?;
    let mut history: Vec<BTreeMap<String, u64>> = runs
        .iter()
        .filter_map(|r| r.try_get::<String>("", "summary").ok())
        .filter_map(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .filter_map(|v| serde_json::from_value(v.get("segments")?.clone()).ok())
        .collect();
    history.reverse();
    let rules: HashMap<&str, &str> = settings
        .segments
        .custom
        .iter()
        .map(|c| (c.key.as_str(), c.rule.as_str()))
        .collect();
    let segments = catalog
        .ids()
        .map(|id| {
            let key = catalog.key(id).to_string();
            SegmentView {
                builtin: matches!(id, SegmentId::Builtin(_)),
                rule: rules.get(key.as_str()).map(|r| r.to_string()),
                published: catalog.published(id),
                size: sizes.get(&key).copied().unwrap_or(0),
                trend: history
                    .iter()
                    .map(|h| h.get(&key).copied().unwrap_or(0))
                    .collect(),
                key,
            }
        })
        .collect();
    Ok(SegmentsView {
        scored_customers: rs.len() as u64,
        segments,
        settings_error,
    })
}

/// Every customer's facts, scored with the shop's last fitted model (no refit), so a preview
/// sees what the next run would see. Empty before the first analysis.
pub async fn shop_facts(
    db: &Db,
    shop_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, CustomerFacts)>, DbErr> {
    let Some(stored) = load_analysis(db, shop_id).await? else {
        return Ok(Vec::new());
    };
    let data = load_shop(db, shop_id).await?;
    let features = compute_features(&data.input, now, stored.model.time_unit);
    let ids: HashMap<String, i64> = rows(
        db,
        "SELECT id, platform_id FROM customers WHERE shop_id = ?",
        vec![shop_id.into()],
    )
    .await?
    .iter()
    .filter_map(|r| {
        Some((
            r.try_get("", "platform_id").ok()?,
            r.try_get("", "id").ok()?,
        ))
    })
    .collect();
    Ok(features
        .iter()
        .filter_map(|f| {
            let i = f.customer as usize;
            let (row, extras) = (data.customers.get(i)?, data.extras.get(i)?);
            let score = score_customer(f, &stored.model, now);
            let facts = crate::analysis::facts::customer_facts(row, extras, f, &score);
            Some((ids.get(&row.platform_id).copied().unwrap_or(0), facts))
        })
        .collect())
}

// ---------------------------------------------------------------- customers

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerRowView {
    pub id: i64,
    pub platform_id: String,
    pub email: Option<String>,
    pub name: String,
    pub rfm_group: Option<String>,
    pub churn_risk: Option<String>,
    pub clv_minor: Option<i64>,
    /// P10 and P90 of the predicted CLV over the fitted parameters' uncertainty.
    pub clv_p10_minor: Option<i64>,
    pub clv_p90_minor: Option<i64>,
    pub currency: Option<String>,
}

fn name_of(first: Option<String>, last: Option<String>) -> String {
    [first, last]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Customers matching `q` (e-mail or name, case-insensitive), highest predicted value first.
pub async fn customers(
    db: &Db,
    shop_id: i64,
    q: Option<&str>,
    limit: u64,
) -> Result<Vec<CustomerRowView>, DbErr> {
    let pattern = format!("%{}%", q.unwrap_or("").trim().to_lowercase());
    list(
        db,
        "SELECT c.id, c.platform_id, c.email, c.first_name, c.last_name, s.rfm_group, s.churn_risk, \
         s.clv_minor, s.clv_p10_minor, s.clv_p90_minor, s.currency FROM customers c LEFT JOIN customer_scores s \
         ON s.shop_id = c.shop_id AND s.customer_platform_id = c.platform_id \
         WHERE c.shop_id = ? AND c.deleted_at IS NULL AND c.redacted_at IS NULL AND \
         (LOWER(COALESCE(c.email, '')) LIKE ? OR LOWER(COALESCE(c.first_name, '') || ' ' || COALESCE(c.last_name, '')) LIKE ?) \
         ORDER BY CASE WHEN s.clv_minor IS NULL THEN 1 ELSE 0 END, s.clv_minor DESC, c.id LIMIT ?",
        vec![
            shop_id.into(),
            pattern.clone().into(),
            pattern.into(),
            (limit as i64).into(),
        ],
        customer_row_view,
    )
    .await
}

fn customer_row_view(r: &QueryResult) -> Result<CustomerRowView, DbErr> {
    Ok(CustomerRowView {
        id: r.try_get("", "id")?,
        platform_id: r.try_get("", "platform_id")?,
        email: r.try_get("", "email")?,
        name: name_of(r.try_get("", "first_name")?, r.try_get("", "last_name")?),
        rfm_group: r.try_get("", "rfm_group")?,
        churn_risk: r.try_get("", "churn_risk")?,
        clv_minor: r.try_get("", "clv_minor")?,
        clv_p10_minor: r.try_get("", "clv_p10_minor")?,
        clv_p90_minor: r.try_get("", "clv_p90_minor")?,
        currency: r.try_get("", "currency")?,
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerDetail {
    pub id: i64,
    pub platform_id: String,
    pub email: Option<String>,
    pub name: String,
    pub created_at: Option<DateTime<Utc>>,
    /// Tags as the shop last reported them.
    pub tags: Vec<String>,
    /// Our tags last confirmed pushed.
    pub pushed_tags: Vec<String>,
    pub features: Option<FeaturesView>,
    pub scores: Option<ScoresView>,
    pub segments: Vec<String>,
    pub codes: Vec<CodeView>,
    pub orders: Vec<OrderView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeaturesView {
    pub number_of_orders: u32,
    pub amount_spent: f64,
    pub average_order_value: f64,
    pub first_order_date: Option<DateTime<Utc>>,
    pub last_order_date: Option<DateTime<Utc>>,
    pub abandoned_checkout_date: Option<DateTime<Utc>>,
    pub discount_order_share: f64,
    pub refunds_or_cancellations: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScoresView {
    pub rfm_r: i16,
    pub rfm_f: i16,
    pub rfm_m: i16,
    pub rfm_group: String,
    pub p_alive: Option<f64>,
    pub clv_minor: Option<i64>,
    /// P10 and P90 of the predicted CLV over the fitted parameters' uncertainty (set by the
    /// shop's analysis; cleared when one customer is re-scored in between).
    pub clv_p10_minor: Option<i64>,
    pub clv_p90_minor: Option<i64>,
    pub currency: String,
    pub churn_risk: Option<String>,
    pub scored_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CodeView {
    pub code: String,
    pub offer: String,
    pub state: String,
    pub reason: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub customer_platform_id: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub total_minor: i64,
    pub refunded_minor: i64,
    pub currency: String,
    pub discount_codes: Vec<String>,
    pub financial_status: Option<String>,
    pub cancelled: bool,
}

const CODES: &str = "SELECT code, offer, state, reason, starts_at, ends_at, customer_platform_id \
     FROM discount_codes WHERE shop_id = ?";

fn code_view(r: &QueryResult) -> Result<CodeView, DbErr> {
    Ok(CodeView {
        code: r.try_get("", "code")?,
        offer: r.try_get("", "offer")?,
        state: r.try_get("", "state")?,
        reason: r.try_get("", "reason")?,
        starts_at: r.try_get("", "starts_at")?,
        ends_at: r.try_get("", "ends_at")?,
        customer_platform_id: r.try_get("", "customer_platform_id")?,
    })
}

fn scores_view(s: &QueryResult) -> Result<ScoresView, DbErr> {
    Ok(ScoresView {
        rfm_r: s.try_get("", "rfm_r")?,
        rfm_f: s.try_get("", "rfm_f")?,
        rfm_m: s.try_get("", "rfm_m")?,
        rfm_group: s.try_get("", "rfm_group")?,
        p_alive: s.try_get("", "p_alive")?,
        clv_minor: s.try_get("", "clv_minor")?,
        clv_p10_minor: s.try_get("", "clv_p10_minor")?,
        clv_p90_minor: s.try_get("", "clv_p90_minor")?,
        currency: s.try_get("", "currency")?,
        churn_risk: s.try_get("", "churn_risk")?,
        scored_at: s.try_get("", "scored_at")?,
    })
}

fn order_view(o: &QueryResult) -> Result<OrderView, DbErr> {
    let codes: String = o.try_get("", "discount_codes")?;
    Ok(OrderView {
        name: o.try_get("", "name")?,
        created_at: o.try_get("", "platform_created_at")?,
        total_minor: o.try_get("", "total_minor")?,
        refunded_minor: o.try_get("", "refunded_minor")?,
        currency: o.try_get("", "currency")?,
        discount_codes: serde_json::from_str(&codes).unwrap_or_default(),
        financial_status: o.try_get("", "financial_status")?,
        cancelled: o
            .try_get::<Option<DateTime<Utc>>>("", "cancelled_at")?
            .is_some(),
    })
}

/// One customer of this shop; `None` when the id is not one of its customers.
pub async fn customer(db: &Db, shop_id: i64, id: i64) -> Result<Option<CustomerDetail>, DbErr> {
    let rs = rows(
        db,
        "SELECT id, platform_id, email, first_name, last_name, tags, platform_created_at FROM customers \
         WHERE shop_id = ? AND id = ? AND deleted_at IS NULL",
        vec![shop_id.into(), id.into()],
    )
    .await?;
    let Some(c) = rs.first() else {
        return Ok(None);
    };
    let platform_id: String = c.try_get("", "platform_id")?;
    let tags: Option<String> = c.try_get("", "tags")?;
    let scores = rows(
        db,
        "SELECT rfm_r, rfm_f, rfm_m, rfm_group, p_alive, clv_minor, clv_p10_minor, clv_p90_minor, currency, churn_risk, segments, scored_at \
         FROM customer_scores WHERE shop_id = ? AND customer_platform_id = ?",
        vec![shop_id.into(), platform_id.clone().into()],
    )
    .await?;
    let (scores, segments) = match scores.first() {
        Some(s) => {
            let segs: String = s.try_get("", "segments")?;
            (
                Some(scores_view(s)?),
                serde_json::from_str(&segs).unwrap_or_default(),
            )
        }
        None => (None, Vec::new()),
    };
    let pushed = crate::writeback::store::load_pushed(db, shop_id, Some(&platform_id))
        .await?
        .remove(&platform_id)
        .map(|p| p.tags)
        .unwrap_or_default();
    let codes = list(
        db,
        &format!("{CODES} AND customer_platform_id = ? ORDER BY id DESC"),
        vec![shop_id.into(), platform_id.clone().into()],
        code_view,
    )
    .await?;
    let orders = list(
        db,
        "SELECT name, platform_created_at, total_minor, refunded_minor, currency, discount_codes, \
         financial_status, cancelled_at FROM orders WHERE shop_id = ? AND customer_platform_id = ? \
         AND deleted_at IS NULL ORDER BY platform_created_at DESC LIMIT 200",
        vec![shop_id.into(), platform_id.clone().into()],
        order_view,
    )
    .await?;
    let features = customer_features_view(db, shop_id, &platform_id).await?;
    Ok(Some(CustomerDetail {
        id,
        email: c.try_get("", "email")?,
        name: name_of(c.try_get("", "first_name")?, c.try_get("", "last_name")?),
        created_at: c.try_get("", "platform_created_at")?,
        tags: tags
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
        pushed_tags: pushed,
        features,
        scores,
        segments,
        codes,
        orders,
        platform_id,
    }))
}

/// The customer's features now, computed as re-scoring does.
async fn customer_features_view(
    db: &Db,
    shop_id: i64,
    platform_id: &str,
) -> Result<Option<FeaturesView>, DbErr> {
    // Features need the model's time unit; before the first analysis there is none.
    let Some(stored) = load_analysis(db, shop_id).await? else {
        return Ok(None);
    };
    let Some(data) = load_customer(db, shop_id, platform_id).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    let f = customer_features(
        0,
        &data.input.orders,
        &data.input.abandoned_checkouts,
        now,
        stored.model.time_unit,
    );
    let score = score_customer(&f, &stored.model, now);
    let facts =
        crate::analysis::facts::customer_facts(&data.customers[0], &data.extras[0], &f, &score);
    Ok(Some(FeaturesView {
        number_of_orders: facts.number_of_orders,
        amount_spent: facts.amount_spent,
        average_order_value: facts.average_order_value,
        first_order_date: facts.first_order_date,
        last_order_date: facts.last_order_date,
        abandoned_checkout_date: facts.abandoned_checkout_date,
        discount_order_share: facts.discount_order_share,
        refunds_or_cancellations: facts.refunds_or_cancellations,
    }))
}

// ---------------------------------------------------------------- activity

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Activity {
    pub webhooks_by_topic: Vec<TopicCount>,
    pub webhook_failures: Vec<WebhookFailure>,
    pub jobs_by_state: Vec<StateCount>,
    pub jobs: Vec<JobView>,
    pub audit: Vec<AuditView>,
    pub codes: Vec<CodeView>,
    pub privacy_requests: Vec<PrivacyView>,
    pub sync_runs: Vec<RunView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopicCount {
    pub topic: String,
    pub state: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookFailure {
    pub id: i64,
    pub topic: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StateCount {
    pub state: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    pub run_id: Option<i64>,
    pub customer_platform_id: String,
    pub action: String,
    pub detail: String,
    pub reason: String,
    pub dry_run: bool,
    pub outcome: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PrivacyView {
    pub id: i64,
    pub kind: String,
    pub customer_platform_id: Option<String>,
    pub summary: String,
    pub received_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Until when the customer's data export can be downloaded (data requests only).
    pub expires_at: Option<DateTime<Utc>>,
}

const AUDIT: &str = "SELECT run_id, customer_platform_id, action, detail, reason, dry_run, outcome, at \
     FROM writeback_audit WHERE shop_id = ?";

fn audit_view(r: &QueryResult) -> Result<AuditView, DbErr> {
    Ok(AuditView {
        run_id: r.try_get("", "run_id")?,
        customer_platform_id: r.try_get("", "customer_platform_id")?,
        action: r.try_get("", "action")?,
        detail: r.try_get("", "detail")?,
        reason: r.try_get("", "reason")?,
        dry_run: r.try_get("", "dry_run")?,
        outcome: r.try_get("", "outcome")?,
        at: r.try_get("", "at")?,
    })
}

fn topic_count(r: &QueryResult) -> Result<TopicCount, DbErr> {
    Ok(TopicCount {
        topic: r.try_get("", "topic")?,
        state: r.try_get("", "state")?,
        count: r.try_get("", "n")?,
    })
}

fn webhook_failure(r: &QueryResult) -> Result<WebhookFailure, DbErr> {
    Ok(WebhookFailure {
        id: r.try_get("", "id")?,
        topic: r.try_get("", "topic")?,
        state: r.try_get("", "state")?,
        attempts: r.try_get("", "attempts")?,
        last_error: r.try_get("", "last_error")?,
        received_at: r.try_get("", "created_at")?,
    })
}

fn state_count(r: &QueryResult) -> Result<StateCount, DbErr> {
    Ok(StateCount {
        state: r.try_get("", "state")?,
        count: r.try_get("", "n")?,
    })
}

fn job_view(r: &QueryResult) -> Result<JobView, DbErr> {
    Ok(JobView {
        id: r.try_get("", "id")?,
        kind: r.try_get("", "kind")?,
        state: r.try_get("", "state")?,
        attempts: r.try_get("", "attempts")?,
        max_attempts: r.try_get("", "max_attempts")?,
        last_error: r.try_get("", "last_error")?,
        created_at: r.try_get("", "created_at")?,
        updated_at: r.try_get("", "updated_at")?,
    })
}

fn privacy_view(r: &QueryResult) -> Result<PrivacyView, DbErr> {
    Ok(PrivacyView {
        id: r.try_get("", "id")?,
        kind: r.try_get("", "kind")?,
        customer_platform_id: r.try_get("", "customer_platform_id")?,
        summary: r.try_get("", "summary")?,
        received_at: r.try_get("", "received_at")?,
        completed_at: r.try_get("", "completed_at")?,
        expires_at: r.try_get("", "expires_at")?,
    })
}

pub async fn activity(db: &Db, shop_id: i64) -> Result<Activity, DbErr> {
    let id = || -> Vec<Value> { vec![shop_id.into()] };
    Ok(Activity {
        webhooks_by_topic: list(
            db,
            "SELECT topic, state, COUNT(*) AS n FROM webhook_inbox WHERE shop_id = ? GROUP BY topic, state ORDER BY topic, state",
            id(),
            topic_count,
        )
        .await?,
        webhook_failures: list(
            db,
            "SELECT id, topic, state, attempts, last_error, created_at FROM webhook_inbox \
             WHERE shop_id = ? AND (last_error IS NOT NULL OR state IN ('dead', 'failed')) ORDER BY id DESC LIMIT 50",
            id(),
            webhook_failure,
        )
        .await?,
        jobs_by_state: list(
            db,
            "SELECT state, COUNT(*) AS n FROM jobs WHERE shop_id = ? GROUP BY state ORDER BY state",
            id(),
            state_count,
        )
        .await?,
        // Running, failing and dead jobs first, then the most recent others.
        jobs: list(
            db,
            "SELECT id, kind, state, attempts, max_attempts, last_error, created_at, updated_at FROM jobs \
             WHERE shop_id = ? ORDER BY CASE state WHEN 'dead' THEN 0 WHEN 'failed' THEN 1 WHEN 'running' THEN 2 \
             WHEN 'queued' THEN 3 ELSE 4 END, id DESC LIMIT 25",
            id(),
            job_view,
        )
        .await?,
        audit: list(
            db,
            &format!("{AUDIT} ORDER BY id DESC LIMIT 100"),
            id(),
            audit_view,
        )
        .await?,
        codes: list(
            db,
            &format!("{CODES} ORDER BY id DESC LIMIT 50"),
            id(),
            code_view,
        )
        .await?,
        privacy_requests: list(
            db,
            "SELECT id, kind, customer_platform_id, summary, received_at, completed_at, \
             CASE WHEN expires_at > ? AND export <> ? THEN expires_at END AS expires_at FROM privacy_requests \
             WHERE shop_id = ? ORDER BY id DESC LIMIT 50",
            vec![
                Utc::now().into(),
                crate::store::privacy::NO_EXPORT.into(),
                shop_id.into(),
            ],
            privacy_view,
        )
        .await?,
        sync_runs: list(db, &format!("{SYNC_RUNS} LIMIT 10"), id(), sync_run_view).await?,
    })
}

// ---------------------------------------------------------------- the last plan

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanView {
    pub run: Option<RunView>,
    pub run_id: Option<i64>,
    /// The run's summary (customers, segments, tag changes, codes planned).
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
    /// Planned writes (at most 200 shown).
    pub items: Vec<AuditView>,
    pub total_items: i64,
}

/// The last dry run and what it planned.
pub async fn last_plan(db: &Db, shop_id: i64) -> Result<PlanView, DbErr> {
    plan_of(db, shop_id, last_run(db, shop_id, Some(true)).await?).await
}

/// The dry run a trigger started and what it planned (an empty plan until it has run).
pub async fn plan_of_trigger(db: &Db, shop_id: i64, trigger: &str) -> Result<PlanView, DbErr> {
    plan_of(
        db,
        shop_id,
        last_run_where(db, shop_id, Some(true), Some(trigger)).await?,
    )
    .await
}

async fn plan_of(
    db: &Db,
    shop_id: i64,
    run: Option<(i64, RunView, serde_json::Value)>,
) -> Result<PlanView, DbErr> {
    let Some((run_id, run, summary)) = run else {
        return Ok(PlanView {
            run: None,
            run_id: None,
            summary: serde_json::Value::Null,
            items: Vec::new(),
            total_items: 0,
        });
    };
    let items = list(
        db,
        &format!("{AUDIT} AND run_id = ? ORDER BY id LIMIT 200"),
        vec![shop_id.into(), run_id.into()],
        audit_view,
    )
    .await?;
    let total_items = scalar(
        db,
        "SELECT COUNT(*) AS n FROM writeback_audit WHERE shop_id = ? AND run_id = ?",
        vec![shop_id.into(), run_id.into()],
    )
    .await?;
    Ok(PlanView {
        run: Some(run),
        run_id: Some(run_id),
        summary,
        items,
        total_items,
    })
}

/// The segment catalog of stored settings, or the message of what makes them invalid.
pub fn catalog_of(settings: &str) -> Result<(LoyaltySettings, SegmentCatalog), String> {
    let s = LoyaltySettings::from_shop_json(settings).map_err(|e| e.to_string())?;
    let c = s.validate().map_err(|e| e.to_string())?;
    Ok((s, c))
}
