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

/// Whether a request comes from inside the admin iframe: Shopify says so with `embedded=1`,
/// the browser with `Sec-Fetch-Dest: iframe`.
fn in_iframe(req: &HttpRequest, q: &auth::Query) -> bool {
    q.iter().any(|(k, v)| k == "embedded" && v == "1")
        || req
            .headers()
            .get("Sec-Fetch-Dest")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"iframe"))
}

#[get("/auth/shopify/install")]
async fn install(
    req: HttpRequest,
    shopify: web::Data<Shopify>,
) -> Result<HttpResponse, InstallError> {
    let q = query_pairs(&req);
    if in_iframe(&req, &q) && !q.iter().any(|(k, _)| k == auth::BEGIN_PARAM) {
        // Leave the iframe first, setting nothing: the state cookie is set by the top-level
        // request, in a first-party context, as Shopify documents.
        let (shop, begin) = auth::begin_value(&shopify, &q)?;
        let mut top = url::Url::parse(&format!("{}/auth/shopify/install", shopify.app_url()))
            .map_err(|e| InstallError::Unauthorized(e.to_string()))?;
        top.query_pairs_mut().append_pair(auth::BEGIN_PARAM, &begin);
        return Ok(exit_iframe(&shopify, &shop, top.as_str()));
    }
    let start = auth::begin_install(&shopify, &q).await?;
    let cookie = Cookie::build(STATE_COOKIE, start.cookie_value)
        .path("/auth/shopify/callback")
        .http_only(true)
        .secure(secure(&shopify.env))
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(STATE_TTL_SECS))
        .finish();
    Ok(HttpResponse::Found()
        .cookie(cookie)
        .insert_header(("Location", start.authorize_url))
        .finish())
}

/// The page that takes the whole admin window to `to`: App Bridge's `open(url, "_top")`, with
/// a link for a browser without scripts. Framed only by the shop's admin.
fn exit_iframe(shopify: &Shopify, shop: &str, to: &str) -> HttpResponse {
    use crate::platforms::Platform;
    let head = shopify.embedding().map(|e| e.head);
    let target = serde_json::to_string(to).unwrap_or_default();
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Lifecycle" }
                @if let Some(head) = head { (head) }
            }
            body {
                p { "Taking you to " (shop) " to install Lifecycle…" }
                p { a id="top-level" href=(to) target="_top" { "Continue" } }
                script { (maud::PreEscaped(format!("window.open({target}, '_top');"))) }
            }
        }
    };
    let ancestors = shopify
        .frame_ancestors(shop)
        .unwrap_or_else(|| "'self'".into());
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Content-Security-Policy", format!("frame-ancestors {ancestors}")))
        .body(page.into_string())
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
