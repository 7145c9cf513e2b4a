//! The per app+shop leaky bucket of the GraphQL Admin API (reference §3.1). Costs are reserved
//! before execution and the unused part refunded after it.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Bucket {
    pub max: f64,
    pub rate: f64,
    available: f64,
    last: Instant,
    /// While set and in the future, the bucket does not refill (a throttle-storm fault).
    storm_until: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}

impl Bucket {
    pub fn new(max: f64, rate: f64, now: Instant) -> Self {
        Bucket {
            max,
            rate,
            available: max,
            last: now,
            storm_until: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        let from = match self.storm_until {
            Some(end) if now < end => {
                self.last = now;
                return;
            }
            Some(end) => {
                self.storm_until = None;
                end.max(self.last)
            }
            None => self.last,
        };
        let elapsed = now.saturating_duration_since(from).as_secs_f64();
        self.available = (self.available + elapsed * self.rate).min(self.max);
        self.last = now;
    }

    /// Reserves `cost`, or returns the status without changing anything if it does not fit.
    pub fn try_take(&mut self, cost: f64, now: Instant) -> Result<ThrottleStatus, ThrottleStatus> {
        self.refill(now);
        if cost > self.available {
            return Err(self.status_now());
        }
        self.available -= cost;
        Ok(self.status_now())
    }

    pub fn refund(&mut self, amount: f64, now: Instant) -> ThrottleStatus {
        self.refill(now);
        self.available = (self.available + amount.max(0.0)).min(self.max);
        self.status_now()
    }

    pub fn status(&mut self, now: Instant) -> ThrottleStatus {
        self.refill(now);
        self.status_now()
    }

    fn status_now(&self) -> ThrottleStatus {
        ThrottleStatus {
            maximum_available: self.max,
            // Shopify reports whole points.
            currently_available: self.available.floor(),
            restore_rate: self.rate,
        }
    }

    /// Empties the bucket and stops refilling for `dur`.
    pub fn storm(&mut self, dur: Duration, now: Instant) {
        self.refill(now);
        self.available = 0.0;
        self.last = now;
        self.storm_until = Some(now + dur);
    }

    pub fn set_plan(&mut self, max: f64, rate: f64, now: Instant) {
        self.refill(now);
        self.max = max;
        self.rate = rate;
        self.available = self.available.min(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaks_and_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2000.0, 100.0, t0);
        assert!(b.try_take(1500.0, t0).is_ok());
        let s = b.try_take(1000.0, t0).unwrap_err();
        assert_eq!(s.currently_available, 500.0);
        // (1000 - 500) / 100 = 5 s later it fits.
        assert!(
            b.try_take(1000.0, t0 + Duration::from_millis(4900))
                .is_err()
        );
        assert!(b.try_take(1000.0, t0 + Duration::from_secs(5)).is_ok());
        let s = b.refund(10_000.0, t0 + Duration::from_secs(5));
        assert_eq!(s.currently_available, 2000.0);
    }

    #[test]
    fn storm_holds_bucket_empty() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2000.0, 100.0, t0);
        b.storm(Duration::from_secs(3), t0);
        assert!(b.try_take(1.0, t0 + Duration::from_secs(2)).is_err());
        assert_eq!(
            b.status(t0 + Duration::from_secs(4)).currently_available,
            100.0
        );
    }
}
