//! Install routes: `/auth/shopify/install`, `/auth/shopify/callback` and
//! `/auth/shopify/token-exchange` (the embedded admin's managed install).

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{Duration, Utc};

use super::ApiError;
use crate::platforms::shopify::auth::{self, AuthError, Query, STATE_COOKIE, STATE_TTL_SECS};
use crate::platforms::shopify::session_token;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "lifecycle_session";
pub const SESSION_LABEL: &str = "session";
pub const SESSION_TTL_HOURS: i64 = 12;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(install).service(callback).service(exchange);
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadRequest(m) => ApiError::BadRequest(m),
            AuthError::Forbidden(m) => ApiError::Forbidden(m),
            AuthError::Upstream(m) => ApiError::Unavailable(m),
            AuthError::Db(e) => ApiError::from(e),
        }
    }
}

fn query_pairs(req: &HttpRequest) -> Query {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

fn secure(state: &AppState) -> bool {
    state.config.app_url().starts_with("https://")
}

#[get("/auth/shopify/install")]
async fn install(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let start = auth::begin_install(&state, &query_pairs(&req)).await?;
    let cookie = Cookie::build(STATE_COOKIE, start.cookie_value)
        .path("/auth/shopify/callback")
        .http_only(true)
        .secure(secure(&state))
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
async fn callback(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let cookie = req.cookie(STATE_COOKIE).map(|c| c.value().to_string());
    let (shop, code) = auth::verify_callback(&state, &query_pairs(&req), cookie.as_deref()).await?;
    auth::complete_install(&state, &shop, &code).await?;
    let mut clear = Cookie::build(STATE_COOKIE, "")
        .path("/auth/shopify/callback")
        .finish();
    clear.make_removal();
    Ok(HttpResponse::Found()
        .cookie(clear)
        .cookie(session_cookie(&state, &shop))
        .insert_header(("Location", format!("/admin?shop={shop}")))
        .finish())
}

/// The signed session cookie that serves outside the Shopify admin (sandbox, local use).
pub fn session_cookie(state: &AppState, shop: &str) -> Cookie<'static> {
    let value = crate::signed::sign_expiring(
        state.shopify.secret(),
        SESSION_LABEL,
        shop,
        Utc::now() + Duration::hours(SESSION_TTL_HOURS),
    );
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(secure(state))
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::hours(SESSION_TTL_HOURS))
        .finish()
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
async fn exchange(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let token = bearer(&req).ok_or_else(|| {
        ApiError::Unauthorized("Authorization: Bearer <session token> is missing".into())
    })?;
    let session = session_token::verify(token, &state.shopify.client_id, &state.shopify.secrets)
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let shop = auth::token_exchange(&state, &session.shop, token).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "shop": shop.domain, "status": shop.status })))
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
