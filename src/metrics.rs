//! Prometheus text at `/metrics`: request counters kept in memory, queue gauges read from the
//! database at scrape time (so they are right across instances).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::Db;
use crate::store::jobs::{Queue, counts_by_state};

#[derive(Default)]
pub struct Metrics {
    requests: [AtomicU64; 5],
    pub webhooks_accepted: AtomicU64,
    pub webhooks_rejected: AtomicU64,
    /// Answered 503 with `Retry-After`: the inbox could not take them in time.
    pub webhooks_deferred: AtomicU64,
}

impl Metrics {
    pub fn record_status(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.requests[class].fetch_add(1, Ordering::Relaxed);
    }

    pub async fn render(&self, db: &Db) -> Result<String, sea_orm::DbErr> {
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
        out.push_str("# HELP lifecycle_jobs Jobs by state.\n# TYPE lifecycle_jobs gauge\n");
        for (state, n) in counts_by_state(db, Queue::Jobs).await? {
            out.push_str(&format!("lifecycle_jobs{{state=\"{state}\"}} {n}\n"));
        }
        out.push_str("# HELP lifecycle_inbox Webhook inbox rows by state (queued = depth).\n# TYPE lifecycle_inbox gauge\n");
        for (state, n) in counts_by_state(db, Queue::Inbox).await? {
            out.push_str(&format!("lifecycle_inbox{{state=\"{state}\"}} {n}\n"));
        }
        Ok(out)
    }
}
