//! Fault knobs, set through `PUT /_sandbox/faults`, that make the sandbox misbehave the way a
//! real platform sometimes does.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Share (0–1) of Admin API requests answered with a 5xx.
    #[serde(default)]
    pub error_rate: f64,
    /// Added latency for every Admin API request.
    #[serde(default)]
    pub latency_ms: u64,
    /// Empty every bucket and hold it empty for this many seconds (applied once when set).
    #[serde(default)]
    pub throttle_storm: Option<f64>,
    /// Share (0–1) of webhook deliveries sent twice (same `X-Shopify-Webhook-Id`).
    #[serde(default)]
    pub duplicate_rate: f64,
    /// Hold each delivery for a random delay up to this many ms so they arrive out of order.
    #[serde(default)]
    pub reorder: Option<u64>,
    /// Share (0–1) of webhook deliveries silently never sent.
    #[serde(default)]
    pub drop_rate: f64,
    /// Lifetime in seconds of the expiring access tokens issued while set (Shopify: 3600).
    #[serde(default)]
    pub token_ttl_secs: Option<u64>,
    /// Admin API calls each expiring access token issued while set answers; the next is
    /// refused 401 as with an expired token.
    #[serde(default)]
    pub token_calls: Option<u64>,
    /// Statuses (429 or 5xx) the token endpoint answers the next refresh-token requests with,
    /// one each, in order, before it answers normally again. A 429 carries `Retry-After: 1`.
    #[serde(default)]
    pub refresh_errors: Vec<u16>,
}

impl Faults {
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("error_rate", self.error_rate),
            ("duplicate_rate", self.duplicate_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be between 0 and 1, got {v}"));
            }
        }
        if let Some(s) = self.throttle_storm
            && !(s.is_finite() && (0.0..=3600.0).contains(&s))
        {
            return Err(format!("throttle_storm must be 0–3600 seconds, got {s}"));
        }
        if let Some(s) = self
            .refresh_errors
            .iter()
            .find(|s| !(*s == &429 || (500..=599).contains(*s)))
        {
            return Err(format!(
                "refresh_errors must be 429 or 5xx statuses, got {s}"
            ));
        }
        if self.token_calls == Some(0) || self.token_ttl_secs == Some(0) {
            return Err("token_calls and token_ttl_secs must be at least 1".into());
        }
        if self.latency_ms > 60_000 {
            return Err("latency_ms must be at most 60000".into());
        }
        Ok(())
    }
}

/// True with probability `p`.
pub fn chance(p: f64) -> bool {
    p > 0.0 && rand::random::<f64>() < p
}
