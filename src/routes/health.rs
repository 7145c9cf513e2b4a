//! Liveness, readiness and metrics.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::state::AppState;
use crate::store;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

/// The process is alive.
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The webhook writer runs, the database answers and every migration is applied. Otherwise
/// 503 with the reason. `intake_restarts` counts the writer's restarts after a failure.
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let health = state.intake.health();
    let restarts = health.restarts();
    let not_ready = |reason: &str| {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "not ready", "reason": reason, "intake_restarts": restarts,
        }))
    };
    if let Some(problem) = health.state().problem() {
        return not_ready(problem);
    }
    match store::migrations_applied(&state.db).await {
        Ok(true) => HttpResponse::Ok()
            .json(serde_json::json!({ "status": "ready", "intake_restarts": restarts })),
        Ok(false) => not_ready("migrations pending"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            not_ready("database unreachable")
        }
    }
}

/// Prometheus text; with `LIFECYCLE_METRICS_TOKEN` set, only for its bearer.
#[get("/metrics")]
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Some(token) = &state.config.metrics_token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !bearer_matches(given, token) {
            return Err(ApiError::Unauthorized(
                "/metrics needs `Authorization: Bearer <LIFECYCLE_METRICS_TOKEN>`".into(),
            ));
        }
    }
    let live = crate::metrics::Live {
        intake_restarts: state.intake.health().restarts(),
    };
    let body = state.metrics.render(&state.db, live).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body))
}

/// Whether an `Authorization` header value carries `token` as its bearer. The comparison is of
/// the two values' SHA-256 digests in constant time, so it reveals neither the token's bytes
/// nor its length.
fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    let Some((scheme, given)) = header.and_then(|h| h.trim().split_once(' ')) else {
        return false;
    };
    let given = Sha256::digest(given.trim().as_bytes());
    let expected = Sha256::digest(token.as_bytes());
    scheme.eq_ignore_ascii_case("bearer") && bool::from(given[..].ct_eq(&expected[..]))
}

#[cfg(test)]
mod tests {
    use super::bearer_matches;

    #[test]
    fn only_the_exact_bearer_token_matches() {
        let t = "s3cret-token";
        assert!(bearer_matches(Some("Bearer s3cret-token"), t));
        assert!(bearer_matches(Some("bearer s3cret-token"), t));
        for wrong in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Bearer s3cret-toke"),
            Some("Bearer s3cret-token2"),
            Some("Basic s3cret-token"),
            Some("s3cret-token"),
        ] {
            assert!(!bearer_matches(wrong, t), "{wrong:?}");
        }
    }
}
