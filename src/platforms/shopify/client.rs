//! The Admin GraphQL client. It keeps its own model of the shop's leaky bucket, fed by
//! `extensions.cost.throttleStatus` on every response: before a query it reserves the query's
//! cost, waiting exactly as long as the bucket needs to refill, so requests in flight together
//! never overdraw it. It retries `THROTTLED` (HTTP 200), 429 with `Retry-After`, 5xx and
//! timeouts with backoff. A 401 on an expiring grant's token (outlived by a long run) refreshes
//! the grant and sends the call again; a 401 that stands is reported so the caller can mark
//! the shop for re-auth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::platforms::{CallError, TokenError};

/// A `Retry-After` beyond this is taken as this: a throttled call waits, it does not park.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The bucket as we believe it is now.
#[derive(Debug)]
struct BucketState {
    maximum: f64,
    available: f64,
    restore_rate: f64,
    at: Instant,
}

/// One shop's leaky bucket, shared by every request to that shop from this process.
#[derive(Debug)]
pub struct Bucket {
    state: Mutex<BucketState>,
}

impl Default for Bucket {
    fn default() -> Self {
        // Shopify's standard plan until the first response says otherwise.
        Bucket {
            state: Mutex::new(BucketState {
                maximum: 2000.0,
                available: 2000.0,
                restore_rate: 100.0,
                at: Instant::now(),
            }),
        }
    }
}

impl Bucket {
    /// Reserves `cost` points at `now` and returns how long to wait before sending.
    fn reserve(&self, cost: f64, now: Instant) -> Duration {
        let mut s = self.state.lock().expect("bucket lock");
        let refilled =
            (s.available + now.duration_since(s.at).as_secs_f64() * s.restore_rate).min(s.maximum);
        let cost = cost.min(s.maximum);
        let wait = if refilled >= cost {
            0.0
        } else {
            (cost - refilled) / s.restore_rate
        };
        // The reservation may leave the modelled level negative: later callers wait for it.
        s.available = refilled - cost;
        s.at = now;
        wait_of(wait)
    }

    /// Returns points that a reservation did not use (actual < requested, or a refused query).
    fn refund(&self, points: f64) {
        let mut s = self.state.lock().expect("bucket lock");
        s.available = (s.available + points).min(s.maximum);
    }

    /// Takes the platform's word for the bucket, less what is reserved by requests still in flight.
    fn observe(
        &self,
        maximum: f64,
        currently_available: f64,
        restore_rate: f64,
        in_flight: f64,
        now: Instant,
    ) {
        // Figures from a response body: a reading that is not a bucket (NaN, infinite, a
        // maximum below one point) is ignored rather than let it stall or panic a wait.
        let readable = [maximum, currently_available, restore_rate]
            .iter()
            .all(|v| v.is_finite());
        if !readable || maximum < 1.0 {
            return;
        }
        let mut s = self.state.lock().expect("bucket lock");
        s.maximum = maximum;
        s.restore_rate = restore_rate.max(1.0);
        s.available = (currently_available - in_flight).clamp(-maximum, maximum);
        s.at = now;
    }

    pub fn snapshot(&self) -> (f64, f64, f64) {
        let s = self.state.lock().expect("bucket lock");
        (s.maximum, s.available, s.restore_rate)
    }
}

/// The longest wait the bucket model asks for: a full bucket at the lowest restore rate is 20
/// s on any Shopify plan, so a longer figure is a bad reading, not a reason to park a sync.
const MAX_BUCKET_WAIT_SECS: f64 = 300.0;

/// A modelled wait in seconds as a `Duration`: NaN and negatives are no wait, the rest is
/// capped (`Duration::from_secs_f64` panics on what does not fit).
fn wait_of(secs: f64) -> Duration {
    if secs.is_nan() {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(secs.clamp(0.0, MAX_BUCKET_WAIT_SECS))
}

/// Buckets per shop, shared across the process.
#[derive(Default)]
pub struct Buckets {
    map: Mutex<HashMap<String, Arc<Bucket>>>,
    in_flight: Mutex<HashMap<String, f64>>,
}

impl Buckets {
    pub fn get(&self, shop: &str) -> Arc<Bucket> {
        self.map
            .lock()
            .expect("buckets lock")
            .entry(shop.to_string())
            .or_default()
            .clone()
    }
    fn add_in_flight(&self, shop: &str, delta: f64) -> f64 {
        let mut m = self.in_flight.lock().expect("in-flight lock");
        let v = m.entry(shop.to_string()).or_insert(0.0);
        *v = (*v + delta).max(0.0);
        *v
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(20),
        }
    }
}

/// A client for one shop, with a valid access token.
pub struct ShopClient<'a> {
    pub http: &'a reqwest::Client,
    pub endpoint: String,
    pub shop: String,
    /// The token sent; replaced when a refused one is refreshed.
    token: Mutex<String>,
    /// Where a token answered 401 is exchanged for a fresh one (the shop's id with it).
    refresher: Option<(&'a super::Shopify, i64)>,
    pub buckets: &'a Buckets,
    pub retry: RetryPolicy,
}

/// A successful response: `data`, and the cost it reported.
#[derive(Debug)]
pub struct Response {
    pub data: Value,
    pub requested_cost: Option<f64>,
    pub actual_cost: Option<f64>,
}

impl<'a> ShopClient<'a> {
    pub fn new(
        http: &'a reqwest::Client,
        endpoint: String,
        shop: String,
        token: String,
        buckets: &'a Buckets,
    ) -> ShopClient<'a> {
        ShopClient {
            http,
            endpoint,
            shop,
            token: Mutex::new(token),
            refresher: None,
            buckets,
            retry: RetryPolicy::default(),
        }
    }

    /// A call answered 401 asks `auth::token_after_refusal` for the token to send instead, and
    /// is sent again with it.
    pub fn refreshing(mut self, state: &'a super::Shopify, shop_id: i64) -> ShopClient<'a> {
        self.refresher = Some((state, shop_id));
        self
    }

    /// The access token calls are sent with now.
    pub fn token(&self) -> String {
        self.token.lock().expect("token lock").clone()
    }

    pub fn endpoint_for(base_url: &str, api_version: &str) -> String {
        format!("{base_url}/admin/api/{api_version}/graphql.json")
    }

    /// Runs a query or mutation. `cost` is the requested cost we expect (Shopify computes it
    /// from the query; callers know their queries' shapes).
    pub async fn run(
        &self,
        query: &str,
        variables: Value,
        cost: f64,
    ) -> Result<Response, CallError> {
        let bucket = self.buckets.get(&self.shop);
        let mut attempt = 0;
        let mut last = String::new();
        while attempt < self.retry.max_attempts {
            attempt += 1;
            let wait = bucket.reserve(cost, Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            self.buckets.add_in_flight(&self.shop, cost);
            let token = self.token();
            let sent = self
                .http
                .post(&self.endpoint)
                .header("X-Shopify-Access-Token", &token)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await;
            let outcome = self.read(sent, &bucket, cost).await;
            self.buckets.add_in_flight(&self.shop, -cost);
            match outcome {
                Step::Done(r) => return Ok(r),
                Step::Fail(CallError::Unauthorized) => match self.refresher {
                    // An expiring token outlived by a long run: refreshed, and the call sent
                    // again (a refused call did nothing).
                    Some((state, shop_id)) => {
                        match super::auth::token_after_refusal(state, shop_id, &token).await {
                            Ok(Some(fresh)) => {
                                bucket.refund(cost);
                                *self.token.lock().expect("token lock") = fresh;
                                last = "the access token expired".into();
                            }
                            Ok(None) | Err(TokenError::NeedsReauth(_) | TokenError::NotInstalled(_)) => {
                                return Err(CallError::Unauthorized);
                            }
                            Err(e) => {
                                return Err(CallError::Exhausted {
                                    attempts: attempt,
                                    last: e.to_string(),
                                });
                            }
                        }
                    }
                    None => return Err(CallError::Unauthorized),
                },
                Step::Fail(e) => return Err(e),
                Step::RetryAfter(d, why) => {
                    last = why;
                    tracing::debug!(shop = %self.shop, attempt, wait_ms = d.as_millis() as u64, reason = %last, "retrying");
                    tokio::time::sleep(d).await;
                }
            }
        }
        Err(CallError::Exhausted {
            attempts: attempt,
            last,
        })
    }

    fn backoff(&self, attempt_hint: u32) -> Duration {
        let ms = self.retry.base.as_millis() as u64 * (1u64 << attempt_hint.min(10));
        let capped = ms.min(self.retry.cap.as_millis() as u64);
        let jitter = rand::random_range(0.8..1.2);
        Duration::from_millis((capped as f64 * jitter) as u64)
    }

    async fn read(
        &self,
        sent: Result<reqwest::Response, reqwest::Error>,
        bucket: &Bucket,
        cost: f64,
    ) -> Step {
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                bucket.refund(cost);
                return Step::RetryAfter(self.backoff(2), format!("request failed: {e}"));
            }
        };
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Step::Fail(CallError::Unauthorized);
        }
        if status == reqwest::StatusCode::FORBIDDEN {
            let body = resp.text().await.unwrap_or_default();
            return Step::Fail(CallError::Forbidden(body.chars().take(200).collect()));
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            bucket.refund(cost);
            // Malformed values (negative, NaN, text) fall back to the backoff.
            let retry_after = crate::platforms::retry_after::retry_after(
                resp.headers()
                    .get("Retry-After")
                    .and_then(|v| v.to_str().ok()),
                MAX_RETRY_AFTER,
                chrono::Utc::now(),
            );
            return Step::RetryAfter(
                retry_after.unwrap_or_else(|| self.backoff(2)),
                format!("HTTP {status}"),
            );
        }
        let body: Value = match resp.json().await {
            Ok(v) => v,
            Err(e) => {
                bucket.refund(cost);
                return Step::RetryAfter(self.backoff(2), format!("unreadable body: {e}"));
            }
        };
        let cost_info = body.pointer("/extensions/cost");
        let requested = cost_info
            .and_then(|c| c.get("requestedQueryCost"))
            .and_then(Value::as_f64);
        let actual = cost_info
            .and_then(|c| c.get("actualQueryCost"))
            .and_then(Value::as_f64);
        if let Some(t) = cost_info.and_then(|c| c.get("throttleStatus")) {
            let max = t.get("maximumAvailable").and_then(Value::as_f64);
            let avail = t.get("currentlyAvailable").and_then(Value::as_f64);
            let rate = t.get("restoreRate").and_then(Value::as_f64);
            if let (Some(max), Some(avail), Some(rate)) = (max, avail, rate) {
                let others = self.buckets.add_in_flight(&self.shop, 0.0) - cost;
                bucket.observe(max, avail, rate, others.max(0.0), Instant::now());
            }
        }
        let errors = body.get("errors").and_then(Value::as_array);
        if let Some(errors) = errors {
            let throttled = errors.iter().any(|e| {
                e.pointer("/extensions/code").and_then(Value::as_str) == Some("THROTTLED")
            });
            if throttled {
                // Wait for exactly the points we lack, from the platform's own figures.
                let need = requested.unwrap_or(cost);
                let (_, avail, rate) = bucket.snapshot();
                let wait = ((need - avail.max(0.0)) / rate).max(0.05);
                return Step::RetryAfter(wait_of(wait), "THROTTLED".into());
            }
            if body.get("data").is_none_or(Value::is_null) {
                return Step::Fail(CallError::Remote(Value::Array(errors.clone()).to_string()));
            }
        }
        Step::Done(Response {
            data: body.get("data").cloned().unwrap_or(Value::Null),
            requested_cost: requested,
            actual_cost: actual,
        })
    }
}

/// Where `stagedUploadsCreate` says to upload a file: the URL and the form parameters to echo.
#[derive(Debug, Clone)]
pub struct StagedTarget {
    pub url: String,
    pub parameters: Vec<(String, String)>,
}

impl ShopClient<'_> {
    /// Posts `body` to a staged upload target as a multipart form: every parameter, then the
    /// file. The target is the platform's storage, not the Admin API, so the access token is not
    /// sent. Network errors and 5xx are retried with the client's backoff.
    pub async fn upload_staged(
        &self,
        target: &StagedTarget,
        filename: &str,
        mime_type: &str,
        body: &[u8],
    ) -> Result<(), CallError> {
        self.storage("staged upload", || {
            let mut form = reqwest::multipart::Form::new();
            for (name, value) in &target.parameters {
                form = form.text(name.clone(), value.clone());
            }
            let file = reqwest::multipart::Part::bytes(body.to_vec())
                .file_name(filename.to_string())
                .mime_str(mime_type)
                .expect("a literal MIME type parses");
            self.http
                .post(&target.url)
                .multipart(form.part("file", file))
        })
        .await
        .map(drop)
    }

    /// Opens a file the platform links to (a bulk operation's result), for streaming. Storage
    /// again: no access token.
    pub async fn download(&self, url: &str) -> Result<reqwest::Response, CallError> {
        self.storage("download", || {
            self.http.get(url).timeout(Duration::from_secs(3600))
        })
        .await
    }

    /// Sends a storage request, retrying what may pass on a later try; a 4xx is final.
    async fn storage(
        &self,
        what: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CallError> {
        let mut last = String::new();
        for attempt in 1..=self.retry.max_attempts {
            match request().send().await {
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) if r.status().is_client_error() => {
                    let status = r.status().as_u16();
                    let body = r.text().await.unwrap_or_default();
                    return Err(CallError::Status {
                        request: what.to_string(),
                        status,
                        body: body.chars().take(300).collect(),
                    });
                }
                Ok(r) => last = format!("{what}: HTTP {}", r.status()),
                Err(e) => last = format!("{what} failed: {e}"),
            }
            if attempt < self.retry.max_attempts {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
        }
        Err(CallError::Exhausted {
            attempts: self.retry.max_attempts,
            last,
        })
    }
}

enum Step {
    Done(Response),
    Fail(CallError),
    RetryAfter(Duration, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_never_overdraw_and_wait_exactly() {
        // All reservations at one instant: the figures do not depend on the machine's speed.
        let b = Bucket::default();
        let now = Instant::now();
        assert_eq!(b.reserve(1500.0, now), Duration::ZERO);
        // 500 left: a second 1000-point query must wait for 500 points at 100/s.
        let w = b.reserve(1000.0, now);
        assert!((w.as_secs_f64() - 5.0).abs() < 0.05, "{w:?}");
        // A third now waits for the second's deficit too.
        let w = b.reserve(100.0, now);
        assert!((w.as_secs_f64() - 6.0).abs() < 0.05, "{w:?}");
    }

    #[test]
    fn hostile_bucket_figures_never_panic_nor_park_a_sync() {
        let now = Instant::now();
        for (max, avail, rate) in [
            (f64::NAN, 0.0, 100.0),
            (2000.0, f64::NEG_INFINITY, 100.0),
            (2000.0, 0.0, f64::INFINITY),
            (0.0, 0.0, 100.0),
            (-5.0, -5.0, -5.0),
        ] {
            let b = Bucket::default();
            b.observe(max, avail, rate, 0.0, now);
            // Ignored: the standard bucket stands.
            assert_eq!(
                b.snapshot(),
                (2000.0, 2000.0, 100.0),
                "{max} {avail} {rate}"
            );
        }
        // Readable but absurd: a huge deficit at the lowest rate is a capped wait.
        let b = Bucket::default();
        b.observe(1e300, -1e300, 0.0, 0.0, now);
        let w = b.reserve(1e300, now);
        assert_eq!(w, Duration::from_secs_f64(MAX_BUCKET_WAIT_SECS));
        assert_eq!(wait_of(f64::NAN), Duration::ZERO);
        assert_eq!(wait_of(-3.0), Duration::ZERO);
        assert_eq!(wait_of(f64::INFINITY), Duration::from_secs(300));
    }

    #[test]
    fn observation_replaces_the_model() {
        let b = Bucket::default();
        let now = Instant::now();
        b.observe(1000.0, 400.0, 50.0, 0.0, now);
        let w = b.reserve(500.0, now);
        assert!((w.as_secs_f64() - 2.0).abs() < 0.05, "{w:?}");
    }
}
