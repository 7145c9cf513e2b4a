//! Stores what an analysis found: each customer's scores and segments (`customer_scores`) and
//! the shop's model, figures and segment context (`shop_analyses`), which near-real-time
//! re-scoring reads back.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Value};

use super::money;
use crate::core::analytics::uncertainty::ClvRange;
use crate::core::analytics::{FittedModel, ShopAnalysis};
use crate::core::segments::{CustomerFacts, Membership, SegmentCatalog, ShopContext};
use crate::store::stmt;

/// Rows per multi-row statement (14 values each): well under SQLite's parameter limit.
const CHUNK: usize = 200;

/// One customer's stored scores.
pub struct ScoreRow<'a> {
    pub facts: &'a CustomerFacts,
    pub rfm: (u8, u8, u8),
    pub has_prediction: bool,
    pub membership: &'a Membership,
    /// P10-P90 of the predicted CLV (major units), from the whole-shop run; None where not
    /// computed (re-scoring one customer moves the point value, so it clears the range).
    pub clv_range: Option<ClvRange>,
}

/// The segment keys of a membership, built-ins first.
pub fn segment_keys(catalog: &SegmentCatalog, m: &Membership) -> Vec<String> {
    m.ids().map(|id| catalog.key(id).to_string()).collect()
}

/// Upserts scores and segments for the given customers.
pub async fn save_scores(
    db: &impl ConnectionTrait,
    shop_id: i64,
    catalog: &SegmentCatalog,
    currency: &str,
    rows: &[ScoreRow<'_>],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let exp = money::exponent(currency);
    let cols = "shop_id, customer_platform_id, rfm_r, rfm_f, rfm_m, rfm_group, p_alive, clv_minor, \
                clv_p10_minor, clv_p90_minor, currency, churn_risk, segments, scored_at";
    for chunk in rows.chunks(CHUNK) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 14);
        for r in chunk {
            let f = r.facts;
            values.extend([
                shop_id.into(),
                f.customer_id.clone().into(),
                i16::from(r.rfm.0).into(),
                i16::from(r.rfm.1).into(),
                i16::from(r.rfm.2).into(),
                f.rfm_group.as_str().into(),
                r.has_prediction.then_some(f.p_alive).into(),
                r.has_prediction
                    .then(|| money::to_minor(f.predicted_clv, exp))
                    .flatten()
                    .into(),
                r.clv_range.and_then(|c| money::to_minor(c.p10, exp)).into(),
                r.clv_range.and_then(|c| money::to_minor(c.p90, exp)).into(),
                currency.into(),
                r.has_prediction.then(|| f.churn_risk.to_string()).into(),
                serde_json::to_string(&segment_keys(catalog, r.membership))
                    .unwrap_or_else(|_| "[]".into())
                    .into(),
                now.into(),
            ]);
        }
        let placeholders =
            vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO customer_scores ({cols}) VALUES {placeholders} \
             ON CONFLICT (shop_id, customer_platform_id) DO UPDATE SET rfm_r = excluded.rfm_r, \
             rfm_f = excluded.rfm_f, rfm_m = excluded.rfm_m, rfm_group = excluded.rfm_group, \
             p_alive = excluded.p_alive, clv_minor = excluded.clv_minor, \
             clv_p10_minor = excluded.clv_p10_minor, clv_p90_minor = excluded.clv_p90_minor, currency = excluded.currency, \
             churn_risk = excluded.churn_risk, segments = excluded.segments, scored_at = excluded.scored_at"
        );
        db.execute_raw(stmt(db.get_database_backend(), &sql, values))
            .await?;
    }
    Ok(())
}

/// Removes the scores of customers that are no longer in the shop's data.
pub async fn prune_scores(
    db: &impl ConnectionTrait,
    shop_id: i64,
    scored_at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let r = db
        .execute_raw(stmt(
            db.get_database_backend(),
            "DELETE FROM customer_scores WHERE shop_id = ? AND scored_at < ?",
            vec![shop_id.into(), scored_at.into()],
        ))
        .await?;
    Ok(r.rows_affected())
}

fn json(v: &impl serde::Serialize) -> Value {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "null".into())
        .into()
}

/// Upserts the shop's analysis.
pub async fn save_analysis(
    db: &impl ConnectionTrait,
    shop_id: i64,
    analysis: &ShopAnalysis,
    context: &ShopContext,
    currency: &str,
) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        db.get_database_backend(),
        "INSERT INTO shop_analyses (shop_id, model, metrics, maturity, monthly, context, currency, analysed_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (shop_id) DO UPDATE SET model = excluded.model, \
         metrics = excluded.metrics, maturity = excluded.maturity, monthly = excluded.monthly, \
         context = excluded.context, currency = excluded.currency, analysed_at = excluded.analysed_at",
        vec![
            shop_id.into(),
            json(&analysis.model),
            json(&analysis.metrics),
            json(&analysis.maturity),
            json(&analysis.monthly),
            json(context),
            currency.into(),
            analysis.now.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// What re-scoring one customer needs from the last analysis.
#[derive(Debug, Clone)]
pub struct StoredAnalysis {
    pub model: FittedModel,
    pub context: ShopContext,
    pub currency: String,
    pub analysed_at: DateTime<Utc>,
}

/// The shop's last analysis; `None` before the first run. Unreadable JSON (a model written by
/// an incompatible version) is reported as an error rather than silently ignored.
pub async fn load_analysis(
    db: &impl ConnectionTrait,
    shop_id: i64,
) -> Result<Option<StoredAnalysis>, DbErr> {
    let Some(r) = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "SELECT model, context, currency, analysed_at FROM shop_analyses WHERE shop_id = ?",
            vec![shop_id.into()],
        ))
        .await?
    else {
        return Ok(None);
    };
    let parse = |col: &str, text: String| {
        DbErr::Custom(format!("shop_analyses.{col} is not readable: {text}"))
    };
    let model: String = r.try_get("", "model")?;
    let context: String = r.try_get("", "context")?;
    Ok(Some(StoredAnalysis {
        model: serde_json::from_str(&model).map_err(|e| parse("model", e.to_string()))?,
        context: serde_json::from_str(&context).map_err(|e| parse("context", e.to_string()))?,
        currency: r.try_get("", "currency")?,
        analysed_at: r.try_get("", "analysed_at")?,
    }))
}
