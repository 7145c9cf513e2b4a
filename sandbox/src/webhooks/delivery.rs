//! Webhook delivery: POSTs with the headers (signature included) and retry policy a flavour
//! gives each delivery ([`Outgoing`]); the flavour's own module has its figures. Each shop has a bounded
//! number of deliveries in flight per address; the rest queue in the sandbox, as they do on the
//! platform. Faults can drop, duplicate or reorder.

use crate::faults::{Faults, chance};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryEntry {
    /// The delivery's id (the flavour's webhook id header).
    pub id: String,
    pub event_id: String,
    pub topic: String,
    pub address: String,
    /// pending | delivered | retrying | failed | dropped
    pub status: String,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub triggered_at: DateTime<Utc>,
    pub duplicated: bool,
    /// When the first copy was first sent (after any reorder hold): deliveries sent out of
    /// their triggering order show here.
    pub first_sent_at: Option<DateTime<Utc>>,
    /// How long each attempt took to be answered (or to fail), in milliseconds.
    pub latencies_ms: Vec<u32>,
}

#[derive(Debug, Default)]
pub struct DeliveryLog {
    entries: Mutex<Vec<DeliveryEntry>>,
}

impl DeliveryLog {
    fn push(&self, e: DeliveryEntry) -> usize {
        let mut v = self.entries.lock();
        v.push(e);
        v.len() - 1
    }
    fn update(&self, i: usize, f: impl FnOnce(&mut DeliveryEntry)) {
        if let Some(e) = self.entries.lock().get_mut(i) {
            f(e);
        }
    }
    pub fn snapshot(&self) -> Vec<DeliveryEntry> {
        self.entries.lock().clone()
    }

    /// Counts per topic, for pollers that only need to know whether a flood has settled
    /// (the whole log of a million-customer echo is hundreds of megabytes of JSON).
    pub fn summary(&self) -> BTreeMap<String, TopicSummary> {
        let mut out: BTreeMap<String, TopicSummary> = BTreeMap::new();
        for e in self.entries.lock().iter() {
            let t = out.entry(e.topic.clone()).or_default();
            t.total += 1;
            t.delivered += u64::from(e.status == "delivered");
        }
        out
    }
}

/// One topic's deliveries: all of them, and those answered 2xx.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TopicSummary {
    pub total: u64,
    pub delivered: u64,
}

#[derive(Clone)]
pub struct Dispatcher {
    /// One client per distinct connect timeout (reqwest sets it per client).
    clients: Arc<Mutex<std::collections::HashMap<Duration, reqwest::Client>>>,
    time_scale: f64,
    /// The server's runtime: deliveries started from a bulk run's own short-lived runtime
    /// must outlive it.
    runtime: tokio::runtime::Handle,
    /// Deliveries in flight per (shop, address).
    width: usize,
    lanes: Arc<Mutex<Lanes>>,
}

/// Delivery slots per (shop domain, address).
type Lanes = std::collections::HashMap<(String, String), Arc<tokio::sync::Semaphore>>;

/// How a platform delivers: its retry schedule, which answers count as delivered, its
/// client timeouts. The flavour supplies this; the machinery (lanes, faults, scaled waits,
/// the delivery log) is shared.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Unscaled seconds to wait before retry `n` (1-based).
    pub delay_secs: fn(u32) -> f64,
    /// Whether an HTTP status counts as delivered.
    pub delivered: fn(u16) -> bool,
    /// Connect timeout (the response timeout is `timeout`).
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

/// Called once when a delivery's last retry has failed (e.g. to drop the subscription).
pub type GiveUp = Box<dyn Fn() + Send + Sync>;

/// One event ready to go to one address: the flavour has built its body and headers.
pub struct Outgoing {
    pub topic: &'static str,
    pub body: Vec<u8>,
    pub address: String,
    /// Headers sent with every attempt (signature included).
    pub headers: Vec<(&'static str, String)>,
    /// Logged as the delivery's id; `event_id` is shared by the copies of one event.
    pub webhook_id: String,
    pub event_id: String,
    pub policy: RetryPolicy,
    pub on_give_up: Option<GiveUp>,
}

struct Attempt {
    log: Arc<DeliveryLog>,
    /// The shop's key: deliveries queue per (shop, address).
    shop: String,
    body: Arc<Vec<u8>>,
    address: String,
    headers: Vec<(&'static str, String)>,
    policy: RetryPolicy,
    on_give_up: Option<GiveUp>,
    log_index: usize,
}

impl Dispatcher {
    pub fn new(time_scale: f64, width: usize) -> Self {
        Dispatcher {
            clients: Default::default(),
            time_scale: if time_scale > 0.0 { time_scale } else { 1.0 },
            runtime: tokio::runtime::Handle::current(),
            width: width.max(1),
            lanes: Default::default(),
        }
    }

    /// The time scale retries run at (1 = real time).
    pub fn time_scale(&self) -> f64 {
        self.time_scale
    }

    fn client(&self, connect: Duration) -> reqwest::Client {
        self.clients
            .lock()
            .entry(connect)
            .or_insert_with(|| {
                reqwest::Client::builder()
                    .connect_timeout(connect)
                    .build()
                    .expect("a plain reqwest client builds")
            })
            .clone()
    }

    /// The (shop, address) lane's slots.
    fn lane(&self, a: &Attempt) -> Arc<tokio::sync::Semaphore> {
        self.lanes
            .lock()
            .entry((a.shop.clone(), a.address.clone()))
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.width)))
            .clone()
    }

    /// Queues one prepared delivery, applying the drop, duplicate and reorder faults.
    /// `log` is the shop's delivery log, `shop` its key.
    pub fn send_one(
        &self,
        log: Arc<DeliveryLog>,
        shop: &str,
        out: Outgoing,
        triggered_at: DateTime<Utc>,
        faults: &Faults,
    ) {
        let dropped = chance(faults.drop_rate);
        let duplicated = !dropped && chance(faults.duplicate_rate);
        let log_index = log.push(DeliveryEntry {
            id: out.webhook_id.clone(),
            event_id: out.event_id.clone(),
            topic: out.topic.to_string(),
            address: out.address.clone(),
            status: if dropped { "dropped" } else { "pending" }.to_string(),
            attempts: 0,
            last_status_code: None,
            last_error: None,
            triggered_at,
            duplicated,
            first_sent_at: None,
            latencies_ms: Vec::new(),
        });
        if dropped {
            return;
        }
        let attempt = Arc::new(Attempt {
            log,
            shop: shop.to_string(),
            body: Arc::new(out.body),
            address: out.address,
            headers: out.headers,
            policy: out.policy,
            on_give_up: out.on_give_up,
            log_index,
        });
        let hold = faults.reorder.filter(|ms| *ms > 0);
        let copies = if duplicated { 2 } else { 1 };
        for copy in 0..copies {
            let me = self.clone();
            let attempt = attempt.clone();
            self.runtime.spawn(async move {
                if let Some(ms) = hold {
                    let d = rand::random_range(0..=ms);
                    tokio::time::sleep(Duration::from_millis(d)).await;
                }
                // The duplicate is a bare resend; retries belong to the original.
                me.run(&attempt, copy == 0).await;
            });
        }
    }

    async fn send(&self, a: &Attempt) -> Result<u16, String> {
        let mut req = self
            .client(a.policy.connect_timeout)
            .post(&a.address)
            .timeout(a.policy.timeout)
            .header("Content-Type", "application/json");
        for (k, v) in &a.headers {
            req = req.header(*k, v);
        }
        let resp = req
            .body(a.body.as_ref().clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(resp.status().as_u16())
    }

    async fn run(&self, a: &Attempt, with_retries: bool) {
        let tries = if with_retries {
            a.policy.retries + 1
        } else {
            1
        };
        for n in 0..tries {
            if n > 0 {
                let secs = (a.policy.delay_secs)(n) / self.time_scale;
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            }
            let result = {
                // Waiting for a slot is not part of the attempt's timeout.
                let lane = self.lane(a);
                let _slot = lane.acquire().await;
                a.log.update(a.log_index, |e| {
                    e.first_sent_at.get_or_insert_with(Utc::now);
                });
                let started = std::time::Instant::now();
                let result = self.send(a).await;
                (result, started.elapsed())
            };
            let (result, took) = result;
            let ok = matches!(result, Ok(code) if (a.policy.delivered)(code));
            let last = n + 1 == tries;
            a.log.update(a.log_index, |e| {
                e.attempts += 1;
                e.latencies_ms
                    .push(u32::try_from(took.as_millis()).unwrap_or(u32::MAX));
                match &result {
                    Ok(code) => {
                        e.last_status_code = Some(*code);
                        e.last_error = None;
                    }
                    Err(err) => e.last_error = Some(err.clone()),
                }
                // A successful duplicate must not hide a failing original, nor the reverse.
                if ok {
                    e.status = "delivered".into();
                } else if e.status != "delivered" {
                    e.status = if last && with_retries {
                        "failed"
                    } else {
                        "retrying"
                    }
                    .into();
                }
            });
            if ok {
                return;
            }
        }
        if with_retries && let Some(give_up) = &a.on_give_up {
            give_up();
        }
    }
}
