//! The app side of the analytics: loading a shop's mirrored data into the pure core's inputs
//! ([`load`]), turning the core's output into segment facts ([`facts`]), and storing what an
//! analysis found ([`results`]). The shop's loyalty settings are `crate::settings`.
//!
//! [`analyse`] runs the whole pipeline for one shop in memory; the segment job then plans and
//! pushes from its output (see `writeback`).

pub mod facts;
pub mod load;
pub mod model_card;
pub mod money;
pub mod results;

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
    /// The model report card of the same data and the customers' CLV ranges.
    pub assessment: model_card::Assessment,
    /// Time spent reading the shop from the database, and computing.
    pub load_time: std::time::Duration,
    pub compute_time: std::time::Duration,
    /// This analysis's place among those the process holds at once (see [`SLOTS`]); freed when
    /// the analysis is dropped. Declared last, so it is dropped after the data it guards.
    _slot: Slot,
}

/// A place among the analyses held at once. On release, the heap the analysis freed goes back
/// to the OS: glibc keeps freed memory in the arena of the thread that allocated it, so runs
/// landing on different runtime threads each left a whole shop's worth resident (measured at
/// 1,000,000 customers: 2.4 GiB held between runs, and a second run's peak 3.9 GiB where the
/// first's was 2.9 GiB).
struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only hands glibc's free pages back to the kernel.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyseError {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("analysis: {0}")]
    Analysis(#[from] AnalysisError),
    #[error("the analysis thread pool stopped")]
    PoolStopped,
}

/// Whole-shop analyses held in memory at once. A shop's analysis is by far the largest thing
/// the app holds (about 1 GiB at 1,000,000 customers), so with many shops due at the same
/// time, memory is bounded by the largest shop in flight, not by the number of shops; the
/// computation itself is parallel on rayon's shared pool.
pub const SLOTS: usize = 1;

fn slots() -> std::sync::Arc<tokio::sync::Semaphore> {
    static SEMAPHORE: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
        std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(SLOTS)));
    SEMAPHORE.clone()
}

/// Loads the shop, runs the analytics and evaluates every customer's segments at `now`. Waits
/// for a free slot first; the CPU-bound part runs on rayon's pool, never on the async
/// runtime's threads (which also drive the job workers' database connections).
pub async fn analyse(
    db: &Db,
    shop_id: i64,
    catalog: &SegmentCatalog,
    now: DateTime<Utc>,
) -> Result<Analysed, AnalyseError> {
    let slot = slots()
        .acquire_owned()
        .await
        .map_err(|_| AnalyseError::PoolStopped)?;
    let started = std::time::Instant::now();
    let data = load::load_shop(db, shop_id).await?;
    let load_time = started.elapsed();
    let catalog = catalog.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(compute(data, &catalog, now));
    });
    let (data, analysis, facts, memberships, context, assessment) =
        rx.await.map_err(|_| AnalyseError::PoolStopped)??;
    Ok(Analysed {
        data,
        analysis,
        facts,
        memberships,
        context,
        assessment,
        load_time,
        compute_time: started.elapsed() - load_time,
        _slot: Slot { _permit: slot },
    })
}

type Computed = (
    ShopData,
    ShopAnalysis,
    Vec<CustomerFacts>,
    Vec<Membership>,
    ShopContext,
    model_card::Assessment,
);

fn compute(
    data: ShopData,
    catalog: &SegmentCatalog,
    now: DateTime<Utc>,
) -> Result<Computed, AnalyseError> {
    use rayon::prelude::*;
    let opts = AnalysisOptions::default();
    let analysis = analytics::analyze_shop(&data.input, &opts, now)?;
    let assessment = model_card::assess(&data.input, &analysis, &opts)?;
    let facts: Vec<CustomerFacts> = analysis
        .customers
        .par_iter()
        .map(|c| {
            let i = c.features.customer as usize;
            facts::customer_facts(&data.customers[i], &data.extras[i], &c.features, &c.score)
        })
        .collect();
    let context = ShopContext::compute(&facts, catalog.thresholds());
    let evaluator = catalog.evaluator(&context, now);
    let memberships = facts.par_iter().map(|f| evaluator.membership(f)).collect();
    Ok((data, analysis, facts, memberships, context, assessment))
}
