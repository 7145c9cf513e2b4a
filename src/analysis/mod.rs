//! The app side of the analytics: loading a shop's mirrored data into the pure core's inputs
//! ([`load`]), turning the core's output into segment facts ([`facts`]), the shop's loyalty
//! settings ([`settings`]), and storing what an analysis found ([`results`]).
//!
//! [`analyse`] runs the whole pipeline for one shop in memory; the segment job then plans and
//! pushes from its output (see `writeback`).

pub mod facts;
pub mod load;
pub mod money;
pub mod results;
pub mod settings;

use chrono::{DateTime, Utc};

use crate::core::analytics::{self, AnalysisError, AnalysisOptions, ShopAnalysis};
use crate::core::segments::{CustomerFacts, Membership, SegmentCatalog, ShopContext};
use crate::store::Db;
pub use load::{CustomerRow, ShopData};

/// One shop analysed: the analytics output, each customer's facts and segments.
pub struct Analysed {
    pub data: ShopData,
    pub analysis: ShopAnalysis,
    /// Index = the customer's dense index in `data.customers`.
    pub facts: Vec<CustomerFacts>,
    pub memberships: Vec<Membership>,
    pub context: ShopContext,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyseError {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("analysis: {0}")]
    Analysis(#[from] AnalysisError),
}

/// Loads the shop, runs the analytics and evaluates every customer's segments at `now`.
pub async fn analyse(
    db: &Db,
    shop_id: i64,
    catalog: &SegmentCatalog,
    now: DateTime<Utc>,
) -> Result<Analysed, AnalyseError> {
    let data = load::load_shop(db, shop_id).await?;
    let analysis = analytics::analyze_shop(&data.input, &AnalysisOptions::default(), now)?;
    let facts: Vec<CustomerFacts> = analysis
        .customers
        .iter()
        .map(|c| {
            let i = c.features.customer as usize;
            facts::customer_facts(&data.customers[i], &data.extras[i], &c.features, &c.score)
        })
        .collect();
    let context = ShopContext::compute(&facts, catalog.thresholds());
    let evaluator = catalog.evaluator(&context, now);
    let memberships = facts.iter().map(|f| evaluator.membership(f)).collect();
    Ok(Analysed {
        data,
        analysis,
        facts,
        memberships,
        context,
    })
}
