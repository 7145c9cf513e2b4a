//! Install routes: `/auth/shopify/install`, `/auth/shopify/callback` and
//! `/auth/shopify/token-exchange` (the embedded admin's managed install).

use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, get, post, web};

use super::Shopify;
use super::auth::{self, AuthError, STATE_COOKIE, STATE_TTL_SECS};
use super::session_token;
use crate::platforms::{query_pairs, secure, session_cookie};

pub fn configure(shopify: Arc<Shopify>, cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::from(shopify))
        .service(install)
        .service(callback)
        .service(exchange);
}

/// An install request that could not go on, as the merchant's browser is told.
#[derive(Debug, thiserror::Error)]
enum InstallError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Unauthorized(String),
}

impl ResponseError for InstallError {
    fn status_code(&self) -> StatusCode {
        match self {
            InstallError::Auth(AuthError::BadRequest(_)) => StatusCode::BAD_REQUEST,
            InstallError::Auth(AuthError::Forbidden(_)) => StatusCode::FORBIDDEN,
            InstallError::Auth(AuthError::Upstream(_) | AuthError::Refused { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            InstallError::Auth(AuthError::Db(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            InstallError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            InstallError::Auth(AuthError::Db(e)) => {
                tracing::error!(error = %e, "install failed");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        HttpResponse::build(self.status_code()).json(serde_json::json!({ "error": message }))
    }
}

#[get("/auth/shopify/install")]
async fn install(
    req: HttpRequest,
    shopify: web::Data<Shopify>,
) -> Result<HttpResponse, InstallError> {
    let start = auth::begin_install(&shopify, &query_pairs(&req)).await?;
    let cookie = Cookie::build(STATE_COOKIE, start.cookie_value)
        .path("/auth/shopify/callback")
        .http_only(true)
        .secure(secure(&shopify.env))
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(STATE_TTL_SECS))
        .finish();
    if start.embedded {
        // Inside the admin iframe a redirect to the authorize page is refused (X-Frame-Options),
        // so leave the iframe first.
        let url = serde_json::to_string(&start.authorize_url).unwrap_or_default();
        let html = format!(
            "<!doctype html><meta charset=utf-8><title>Lifecycle</title><p>Redirecting to {shop}…</p>\
             <script>window.top.location.href = {url};</script>",
            shop = html_escape(&start.shop)
        );
        return Ok(HttpResponse::Ok()
            .cookie(cookie)
            .content_type("text/html; charset=utf-8")
            .body(html));
    }
    Ok(HttpResponse::Found()
        .cookie(cookie)
        .insert_header(("Location", start.authorize_url))
        .finish())
}

#[get("/auth/shopify/callback")]
async fn callback(
    req: HttpRequest,
    shopify: web::Data<Shopify>,
) -> Result<HttpResponse, InstallError> {
    let cookie = req.cookie(STATE_COOKIE).map(|c| c.value().to_string());
    let (shop, code) =
        auth::verify_callback(&shopify, &query_pairs(&req), cookie.as_deref()).await?;
    auth::complete_install(&shopify, &shop, &code).await?;
    let mut clear = Cookie::build(STATE_COOKIE, "")
        .path("/auth/shopify/callback")
        .finish();
    clear.make_removal();
    Ok(HttpResponse::Found()
        .cookie(clear)
        .cookie(session_cookie(&shopify.env, shopify.as_ref(), &shop))
        .insert_header(("Location", format!("/admin?shop={shop}")))
        .finish())
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("Authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Managed install: the embedded admin sends its session token; we exchange it for an offline
/// token and install (or refresh) the shop.
#[post("/auth/shopify/token-exchange")]
async fn exchange(
    req: HttpRequest,
    shopify: web::Data<Shopify>,
) -> Result<HttpResponse, InstallError> {
    let token = bearer(&req).ok_or_else(|| {
        InstallError::Unauthorized("Authorization: Bearer <session token> is missing".into())
    })?;
    let session = session_token::verify(token, &shopify.app.client_id, &shopify.app.secrets)
        .map_err(|e| InstallError::Unauthorized(e.to_string()))?;
    let shop = auth::token_exchange(&shopify, &session.shop, token).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "shop": shop.domain, "status": shop.status })))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
