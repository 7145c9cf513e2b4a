//! HTTP routes and the one mapping from errors to HTTP responses.

pub mod health;
pub mod webhooks;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};

use crate::state::AppState;

/// Health, every platform's install routes (`/auth/{platform}/...`) and the webhooks of every
/// platform (`/webhooks/{platform}`). The admin sits above these and is wired by the server.
pub fn configure(cfg: &mut web::ServiceConfig, state: &AppState) {
    health::configure(cfg);
    for platform in state.platforms.all() {
        platform.clone().routes(cfg);
    }
    webhooks::configure(cfg);
}

/// Every error a route can return. Bad input gets a clear message and a 4xx; only our own
/// failures are 5xx, and their details go to the log, not to the caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Unavailable(String),
    /// Too busy to store the request now; the caller should retry after the given seconds.
    #[error("{message}")]
    Busy { message: String, retry_after: u32 },
    #[error("internal error")]
    Internal(String),
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::Internal(format!("database: {e}"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(error = %detail, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::Busy { retry_after, .. } = self {
            response.insert_header(("Retry-After", retry_after.to_string()));
        }
        response.json(serde_json::json!({ "error": self.to_string() }))
    }
}
