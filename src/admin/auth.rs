//! Who is asking: the shop of a platform session token (an embedded admin) or of the signed
//! session cookie set after install (outside the platform's admin). The shop always comes from the
//! session, never from the request: a `?shop=` naming another shop is refused with 403.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use chrono::Utc;

use crate::platforms::{InstallRefused, SESSION_COOKIE, read_session};
use crate::routes::ApiError;
use crate::state::AppState;
use crate::store::shops;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    SessionToken,
    Cookie,
}

/// An authenticated admin caller: one installed shop.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub shop_id: i64,
    pub platform: String,
    pub domain: String,
    pub via: Via,
}

fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The session token a request carries: `Authorization: Bearer` wins over `id_token`.
fn session_token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let header = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok());
    Ok(match header {
        Some(h) => Some(
            h.strip_prefix("Bearer ")
                .map(|t| t.trim().to_string())
                .ok_or_else(|| {
                    ApiError::Unauthorized("Authorization must be `Bearer <session token>`".into())
                })?,
        ),
        None => query_value(req, "id_token"),
    })
}

/// The (platform, shop) a request's credentials name, before looking the shop up. A session
/// token in `Authorization: Bearer` wins; a page load inside the admin carries it as
/// `id_token`.
pub fn session_shop(
    req: &HttpRequest,
    state: &AppState,
) -> Result<(String, String, Via), ApiError> {
    if let Some(token) = session_token(req)? {
        // Each platform that issues session tokens verifies its own; the first that accepts
        // the token names the shop.
        let mut refusal = "no platform issues session tokens".to_string();
        for platform in state.platforms.all() {
            match platform.session_token_shop(&token) {
                Some(Ok(shop)) => {
                    return Ok((platform.name().to_string(), shop, Via::SessionToken));
                }
                Some(Err(e)) => refusal = e,
                None => {}
            }
        }
        return Err(ApiError::Unauthorized(refusal));
    }
    let cookie = req.cookie(SESSION_COOKIE).ok_or_else(|| {
        ApiError::Unauthorized(
            "not signed in: open Lifecycle from the shop admin, or install it again".into(),
        )
    })?;
    let (platform, shop) = read_session(
        &state.platforms,
        &state.env.session_keys,
        cookie.value(),
        Utc::now(),
    )
    .ok_or_else(|| ApiError::Unauthorized("the session has expired or is invalid".into()))?;
    Ok((platform, shop, Via::Cookie))
}

/// Authenticates a request and resolves its shop. A valid session token of a shop that is not
/// installed here, or whose grant the platform refused since, installs it first (managed
/// install: the platform installed the app without calling it, and this is its first load).
pub async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<AdminSession, ApiError> {
    let (platform_name, domain, via) = session_shop(req, state)?;
    if via == Via::Cookie {
        cross_site_guard(req)?;
    }
    let platform = state
        .platforms
        .get(&platform_name)
        .ok_or_else(|| ApiError::Unauthorized(format!("no platform `{platform_name}`")))?;
    if let Some(asked) = query_value(req, "shop") {
        // Compare normalised keys so `Shop.myshopify.com` is the same shop.
        if platform.normalize_shop(&asked).as_deref() != Some(domain.as_str()) {
            return Err(ApiError::Forbidden(
                "this session belongs to another shop".into(),
            ));
        }
    }
    let mut found = shops::find(&state.db, &platform_name, &domain).await?;
    if via == Via::SessionToken && found.as_ref().is_none_or(|s| s.status != shops::INSTALLED) {
        let token = session_token(req)?.unwrap_or_default();
        if let Some(installed) = platform.install_by_session_token(&token).await {
            installed.map_err(|e| match e {
                InstallRefused::Refused(m) => ApiError::Unauthorized(format!(
                    "{domain} has not installed Lifecycle (the shop refused the session token: {m})"
                )),
                InstallRefused::Forbidden(m) => {
                    ApiError::Forbidden(format!("{domain}: the install did not complete: {m}"))
                }
                InstallRefused::Unavailable(m) => ApiError::Unavailable(format!(
                    "{domain}: the install did not complete, try again: {m}"
                )),
                InstallRefused::Internal(m) => ApiError::Internal(m),
            })?;
            found = shops::find(&state.db, &platform_name, &domain).await?;
        }
    }
    let shop = found
        .filter(|s| shops::is_installed(&s.status))
        .ok_or_else(|| ApiError::Unauthorized(format!("{domain} has not installed Lifecycle")))?;
    Ok(AdminSession {
        shop_id: shop.id,
        platform: platform_name,
        domain: shop.domain,
        via,
    })
}

/// A cookie rides along on requests other sites make, so a change made with the cookie must
/// be a JSON request (which a foreign page cannot send without a CORS preflight we never
/// grant) and, when the browser names its origin, come from this host.
fn cross_site_guard(req: &HttpRequest) -> Result<(), ApiError> {
    use actix_web::http::Method;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let json =
        header("Content-Type").is_some_and(|c| c.trim_start().starts_with("application/json"));
    if !json {
        return Err(ApiError::Forbidden(
            "changes must be sent as application/json from the admin pages".into(),
        ));
    }
    if let (Some(origin), Some(host)) = (header("Origin"), header("Host")) {
        let origin_host = url::Url::parse(&origin).ok().map(|u| match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_string(),
        });
        if origin_host.as_deref() != Some(host.as_str()) {
            return Err(ApiError::Forbidden(format!(
                "request from another site ({origin}) refused"
            )));
        }
    }
    Ok(())
}

impl FromRequest for AdminSession {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::Internal("app state missing".into()))?
                .clone();
            authenticate(&req, &state).await
        })
    }
}
