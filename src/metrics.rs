//! Prometheus text at `/metrics`: request counters kept in memory, queue gauges read from the
//! database (so they are right across instances). The gauges are cached for `TABLE_TTL`, so
//! scrapes, however frequent or concurrent, read the tables at most once per window; the body
//! says how many times they were read (`lifecycle_metrics_table_reads_total`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::store::Db;
use crate::store::jobs::{Queue, counts_by_state};

/// How long the table-derived gauges are served from the cache.
pub const TABLE_TTL: Duration = Duration::from_secs(3);

#[derive(Default)]
pub struct Metrics {
    requests: [AtomicU64; 5],
    pub webhooks_accepted: AtomicU64,
    pub webhooks_rejected: AtomicU64,
    /// Answered 503 with `Retry-After`: the inbox could not take them in time.
    pub webhooks_deferred: AtomicU64,
    /// The last reading of the tables; one scrape refills it while the others wait for it.
    tables: tokio::sync::Mutex<Option<TableFigures>>,
    table_reads: AtomicU64,
}

/// Rows by state of the two queues, as read at `at`.
struct TableFigures {
    at: Instant,
    jobs: Vec<(String, i64)>,
    inbox: Vec<(String, i64)>,
}

/// What the process knows without the database, given to `render`.
pub struct Live {
    /// Restarts of the webhook writer after a failure.
    pub intake_restarts: u64,
}

impl Metrics {
    pub fn record_status(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.requests[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Times the queue tables have been read for `/metrics` since the process started.
    pub fn table_reads(&self) -> u64 {
        self.table_reads.load(Ordering::Relaxed)
    }

    pub async fn render(&self, db: &Db, live: Live) -> Result<String, sea_orm::DbErr> {
        let mut out = String::new();
        out.push_str("# HELP lifecycle_http_requests_total HTTP responses by status class.\n");
        out.push_str("# TYPE lifecycle_http_requests_total counter\n");
        for (i, c) in self.requests.iter().enumerate() {
            out.push_str(&format!(
                "lifecycle_http_requests_total{{class=\"{}xx\"}} {}\n",
                i + 1,
                c.load(Ordering::Relaxed)
            ));
        }
        out.push_str("# HELP lifecycle_webhooks_total Webhooks by outcome.\n# TYPE lifecycle_webhooks_total counter\n");
        out.push_str(&format!(
            "lifecycle_webhooks_total{{outcome=\"accepted\"}} {}\nlifecycle_webhooks_total{{outcome=\"rejected\"}} {}\n\
             lifecycle_webhooks_total{{outcome=\"deferred\"}} {}\n",
            self.webhooks_accepted.load(Ordering::Relaxed),
            self.webhooks_rejected.load(Ordering::Relaxed),
            self.webhooks_deferred.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "# HELP lifecycle_intake_restarts_total Restarts of the webhook writer after a failure.\n\
             # TYPE lifecycle_intake_restarts_total counter\nlifecycle_intake_restarts_total {}\n",
            live.intake_restarts
        ));
        let mut cache = self.tables.lock().await;
        let fresh = cache.as_ref().is_some_and(|t| t.at.elapsed() < TABLE_TTL);
        if !fresh {
            *cache = Some(TableFigures {
                jobs: counts_by_state(db, Queue::Jobs).await?,
                inbox: counts_by_state(db, Queue::Inbox).await?,
                at: Instant::now(),
            });
            self.table_reads.fetch_add(1, Ordering::Relaxed);
        }
        out.push_str(&format!(
            "# HELP lifecycle_jobs Jobs by state (read at most every {} s).\n# TYPE lifecycle_jobs gauge\n",
            TABLE_TTL.as_secs()
        ));
        for (state, n) in cache.iter().flat_map(|t| &t.jobs) {
            out.push_str(&format!("lifecycle_jobs{{state=\"{state}\"}} {n}\n"));
        }
        out.push_str("# HELP lifecycle_inbox Webhook inbox rows by state (queued = depth).\n# TYPE lifecycle_inbox gauge\n");
        for (state, n) in cache.iter().flat_map(|t| &t.inbox) {
            out.push_str(&format!("lifecycle_inbox{{state=\"{state}\"}} {n}\n"));
        }
        out.push_str(&format!(
            "# HELP lifecycle_metrics_table_reads_total Times the gauges above were read from the database.\n\
             # TYPE lifecycle_metrics_table_reads_total counter\nlifecycle_metrics_table_reads_total {}\n",
            self.table_reads()
        ));
        Ok(out)
    }
}
