//! Structured logs with `tracing`: text for people, JSON for log pipelines.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second init (tests start several apps in one process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The root span of each HTTP request, as `tracing_actix_web`'s default one but with the query
/// values that are credentials (OAuth codes, session tokens, signatures, states) replaced by
/// `[redacted]`: every log line of the request carries its target.
pub struct RequestSpan;

/// Query parameters whose values never reach the logs.
const SECRET_PARAMS: [&str; 9] = [
    "code",
    "id_token",
    "session",
    "token",
    "access_token",
    "refresh_token",
    "hmac",
    "state",
    "signature",
];

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "default".to_string());
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %redacted_target(request.path(), request.query_string()),
            http.status_code = tracing::field::Empty,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        // A 503 with Retry-After is backpressure the platform retries (a flood the inbox
        // cannot take in time), not a failure of the app: a warning, not an ERROR line.
        if let Ok(resp) = outcome
            && resp.status() == actix_web::http::StatusCode::SERVICE_UNAVAILABLE
            && resp
                .headers()
                .contains_key(actix_web::http::header::RETRY_AFTER)
        {
            span.record("http.status_code", resp.status().as_u16());
            tracing::warn!(parent: &span, "answered 503 with Retry-After: too busy to store it now");
            return;
        }
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// `path?query` with the values of [`SECRET_PARAMS`] replaced; everything else as sent.
pub fn redacted_target(path: &str, query: &str) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            let name: String = url::form_urlencoded::parse(key.as_bytes())
                .map(|(k, _)| k.to_ascii_lowercase())
                .collect();
            if SECRET_PARAMS.contains(&name.as_str()) {
                format!("{key}=[redacted]")
            } else {
                pair.to_string()
            }
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_query_are_redacted() {
        let t = redacted_target(
            "/auth/platform/callback",
            "code=abc123&hmac=f00&shop=a.example.com&state=n0nce&timestamp=1",
        );
        assert!(
            !t.contains("abc123") && !t.contains("f00") && !t.contains("n0nce"),
            "{t}"
        );
        assert_eq!(
            t,
            "/auth/platform/callback?code=[redacted]&hmac=[redacted]&shop=a.example.com&state=[redacted]&timestamp=1"
        );
        // An encoded key is still recognised.
        assert_eq!(redacted_target("/x", "%63ode=abc"), "/x?%63ode=[redacted]");
        let t = redacted_target("/admin", "ID_TOKEN=eyJx.y.z&host=aG9zdA");
        assert!(!t.contains("eyJx"), "{t}");
        assert!(t.contains("host=aG9zdA"), "{t}");
        assert_eq!(redacted_target("/healthz", ""), "/healthz");
    }
}
