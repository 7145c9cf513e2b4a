//! The Ecwid REST client. Ecwid allows 600 requests a minute per token and answers 429 with
//! `Retry-After` beyond it, so every request to a store takes the next free slot of its token
//! (one per 100 ms, shared by every caller in this process) and a 429 pushes the token's
//! slots back by what Ecwid asked. 5xx and network errors are retried with backoff; 401, 402
//! and 403 are reported as what they mean.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::platforms::CallError;

/// Requests per minute Ecwid allows one token.
pub const REQUESTS_PER_MINUTE: u32 = 600;
/// The largest page Ecwid gives.
pub const PAGE_LIMIT: u64 = 100;
const MAX_ATTEMPTS: u32 = 8;
/// A `Retry-After` beyond this (or unreadable) is taken as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Each token's next free request slot.
#[derive(Default)]
pub struct Pacer {
    next: Mutex<HashMap<String, Instant>>,
}

impl Pacer {
    fn interval() -> Duration {
        Duration::from_secs(60) / REQUESTS_PER_MINUTE
    }

    /// Reserves the token's next slot; returns how long to wait for it.
    fn reserve(&self, token: &str, now: Instant) -> Duration {
        let mut next = self.next.lock().expect("pacer lock");
        let slot = next.get(token).copied().unwrap_or(now).max(now);
        next.insert(token.to_string(), slot + Self::interval());
        slot - now
    }

    /// Ecwid said to wait: no request of this token before `now + wait`.
    fn hold(&self, token: &str, now: Instant, wait: Duration) {
        let mut next = self.next.lock().expect("pacer lock");
        let until = now + wait;
        let slot = next.entry(token.to_string()).or_insert(until);
        *slot = (*slot).max(until);
    }
}

/// `Retry-After` as a wait, at most `MAX_RETRY_AFTER`; an unreadable one waits a second.
pub fn retry_after(value: Option<&str>) -> Duration {
    crate::platforms::retry_after::retry_after(value, MAX_RETRY_AFTER, chrono::Utc::now())
        .unwrap_or(Duration::from_secs(1))
}

/// A client of one store's API.
pub struct StoreClient<'a> {
    pub http: &'a reqwest::Client,
    /// `{origin}/api/v3/{store_id}`.
    pub base: String,
    pub token: String,
    pub pacer: &'a Arc<Pacer>,
}

impl StoreClient<'_> {
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, CallError> {
        self.send(reqwest::Method::GET, path, query, None)
            .await?
            .ok_or_else(|| CallError::Protocol(format!("{path} answered 404")))
    }

    /// A GET that may find nothing (404).
    pub async fn get_opt(&self, path: &str) -> Result<Option<Value>, CallError> {
        self.send(reqwest::Method::GET, path, &[], None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Option<Value>, CallError> {
        self.send(reqwest::Method::PUT, path, &[], Some(body)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Option<Value>, CallError> {
        self.send(reqwest::Method::POST, path, &[], Some(body))
            .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>, CallError> {
        let url = format!("{}{path}", self.base);
        let mut last = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let wait = self.pacer.reserve(&self.token, Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.token)
                .query(query);
            if let Some(b) = body {
                request = request.json(b);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{path}: {e}");
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            match status {
                200..=299 => {
                    let text = response.text().await.map_err(|e| {
                        CallError::Protocol(format!("{path}: unreadable response: {e}"))
                    })?;
                    if text.trim().is_empty() {
                        return Ok(Some(Value::Null));
                    }
                    return serde_json::from_str(&text).map(Some).map_err(|e| {
                        CallError::Protocol(format!("{path}: response is not JSON: {e}"))
                    });
                }
                401 => return Err(CallError::Unauthorized),
                402 => return Err(CallError::PlanLimit(error_message(response).await)),
                403 => return Err(CallError::Forbidden(excerpt(response).await)),
                404 => return Ok(None),
                429 => {
                    let wait = retry_after(
                        response
                            .headers()
                            .get("Retry-After")
                            .and_then(|v| v.to_str().ok()),
                    );
                    self.pacer.hold(&self.token, Instant::now(), wait);
                    last = format!("{path}: 429, retry after {wait:?}");
                }
                500..=599 => {
                    last = format!("{path}: HTTP {status}");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                _ => {
                    return Err(CallError::Status {
                        request: path.to_string(),
                        status,
                        body: excerpt(response).await,
                    });
                }
            }
        }
        Err(CallError::Exhausted {
            attempts: MAX_ATTEMPTS,
            last,
        })
    }
}

async fn excerpt(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    text.chars().take(300).collect()
}

/// Ecwid's own words for a refusal (`errorMessage`), else the start of the body.
async fn error_message(response: reqwest::Response) -> String {
    let text = excerpt(response).await;
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("errorMessage")?.as_str().map(str::to_string))
        .unwrap_or(text)
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * (1u64 << attempt.min(6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_a_tenth_of_a_second_apart_per_token() {
        let p = Pacer::default();
        let now = Instant::now();
        assert_eq!(p.reserve("a", now), Duration::ZERO);
        assert_eq!(p.reserve("a", now), Duration::from_millis(100));
        assert_eq!(p.reserve("a", now), Duration::from_millis(200));
        assert_eq!(
            p.reserve("b", now),
            Duration::ZERO,
            "tokens are paced apart"
        );
        // 600 requests at one instant take a minute of slots.
        let q = Pacer::default();
        let last = (0..600).map(|_| q.reserve("t", now)).last().unwrap();
        assert_eq!(last, Duration::from_millis(59_900));
        p.hold("a", now, Duration::from_secs(5));
        assert_eq!(p.reserve("a", now), Duration::from_secs(5));
    }

    /// A one-route HTTP server that answers every request with `status` and `body`.
    async fn answering(status: u16, body: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                // Read the whole request (headers and the body they announce) before answering.
                let mut seen = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = socket.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let answer = format!(
                    "HTTP/1.1 {status} Whatever\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{addr}/api/v3/1")
    }

    #[tokio::test]
    async fn refusals_carry_their_http_status() {
        let http = reqwest::Client::new();
        let pacer = Arc::new(Pacer::default());
        for status in [400u16, 409, 422] {
            let client = StoreClient {
                http: &http,
                base: answering(status, r#"{"errorMessage":"no"}"#).await,
                token: format!("t-{status}"),
                pacer: &pacer,
            };
            let e = client
                .post("/discount_coupons", &serde_json::json!({"code": "X"}))
                .await
                .unwrap_err();
            match &e {
                CallError::Status {
                    request,
                    status: got,
                    body,
                } => {
                    assert_eq!(*got, status);
                    assert_eq!(request, "/discount_coupons");
                    assert!(body.contains("errorMessage"), "{body}");
                }
                other => panic!("{status}: expected CallError::Status, got {other:?}"),
            }
            assert!(!e.is_transient(), "a refusal is final");
        }
        let unauthorized = StoreClient {
            http: &http,
            base: answering(401, "{}").await,
            token: "t-401".into(),
            pacer: &pacer,
        };
        assert!(matches!(
            unauthorized.get_opt("/profile").await,
            Err(CallError::Unauthorized)
        ));
        let missing = StoreClient {
            http: &http,
            base: answering(404, "{}").await,
            token: "t-404".into(),
            pacer: &pacer,
        };
        assert!(matches!(missing.get_opt("/profile").await, Ok(None)));
    }

    #[test]
    fn malformed_retry_after_never_panics() {
        assert_eq!(retry_after(Some("3")), Duration::from_secs(3));
        for bad in [Some("-1"), Some("NaN"), Some("soon"), Some(""), None] {
            assert_eq!(retry_after(bad), Duration::from_secs(1), "{bad:?}");
        }
        assert_eq!(retry_after(Some("1e9")), MAX_RETRY_AFTER);
    }
}
