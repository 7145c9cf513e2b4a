//! `Retry-After` as platforms send it, and as they might: delay seconds (Ecwid and Shopify send
//! whole or fractional seconds) or an HTTP date. Anything else (negative, NaN, infinite, text)
//! is unreadable, and a reading beyond `max` is taken as `max`: a header never panics a client
//! nor parks it for a day.

use std::time::Duration;

/// The wait a `Retry-After` value asks for at `now`, at most `max`; None when unreadable.
pub fn retry_after(
    value: Option<&str>,
    max: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let v = value?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(max.as_secs_f64())));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = (at.with_timezone(&chrono::Utc) - now)
        .to_std()
        .unwrap_or(Duration::ZERO);
    Some(wait.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_values_are_unreadable_and_large_ones_capped() {
        let (max, now) = (Duration::from_secs(60), chrono::Utc::now());
        let at = |v: &str| retry_after(Some(v), max, now);
        assert_eq!(at("3"), Some(Duration::from_secs(3)));
        assert_eq!(at(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(at("0"), Some(Duration::ZERO));
        // "1e400" parses as infinity.
        for bad in ["-1", "NaN", "inf", "-inf", "soon", "", "1e400"] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
        assert_eq!(at("1e9"), Some(max));
        assert_eq!(retry_after(None, max, now), None);
        let later = (now + chrono::Duration::seconds(10)).to_rfc2822();
        let wait = at(&later).unwrap();
        assert!(
            wait <= Duration::from_secs(10) && wait >= Duration::from_secs(9),
            "{wait:?}"
        );
        let past = (now - chrono::Duration::seconds(10)).to_rfc2822();
        assert_eq!(at(&past), Some(Duration::ZERO));
        let far = (now + chrono::Duration::days(1)).to_rfc2822();
        assert_eq!(at(&far), Some(max));
    }
}
