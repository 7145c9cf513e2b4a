//! Liveness, readiness and metrics.

use actix_web::{HttpResponse, get, web};

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

#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = state.metrics.render(&state.db).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body))
}
