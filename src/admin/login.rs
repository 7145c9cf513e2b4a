//! Sign-in links: `lifecycle demo` prints one so the person at the terminal opens the admin of
//! the demo shop already signed in. A link names one shop, is signed with the app's session key,
//! expires after [`LINK_TTL_MINUTES`] and works once (its nonce is spent in `login_links`); a
//! good one sets the session cookie and goes on to the admin. The token rides in the `token`
//! query parameter, which the request log redacts.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use super::frame::{document, html_response};
use crate::platforms::session_cookie;
use crate::state::AppState;
use crate::store::{shops, stmt};

/// How long a printed link stays good.
pub const LINK_TTL_MINUTES: i64 = 15;
const LABEL: &str = "login-link";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(login);
}

/// A link that signs its first visitor in to `shop_id`'s admin until `expires`.
pub async fn link(state: &AppState, shop_id: i64, expires: DateTime<Utc>) -> Result<String, DbErr> {
    let nonce = crate::secrets::random_secret(16);
    let db = &state.env.db;
    db.execute_raw(stmt(
        db.get_database_backend(),
        "INSERT INTO login_links (nonce, shop_id, created_at) VALUES (?, ?, ?)",
        vec![nonce.clone().into(), shop_id.into(), Utc::now().into()],
    ))
    .await?;
    let token = crate::signed::sign_expiring(
        &state.env.session_keys[0],
        LABEL,
        &format!("{nonce}/{shop_id}"),
        expires,
    );
    let mut url = url::Url::parse(&format!("{}/admin/login", state.env.app_url))
        .map_err(|e| DbErr::Custom(format!("app url: {e}")))?;
    url.query_pairs_mut().append_pair("token", &token);
    Ok(url.to_string())
}

/// [`link`] with the usual lifetime.
pub async fn fresh_link(state: &AppState, shop_id: i64) -> Result<String, DbErr> {
    link(
        state,
        shop_id,
        Utc::now() + Duration::minutes(LINK_TTL_MINUTES),
    )
    .await
}

/// The shop a link signs in to, spending the link: None for a bad, expired or used one.
async fn redeem(state: &AppState, token: &str) -> Result<Option<i64>, DbErr> {
    let now = Utc::now();
    let Some(payload) = crate::signed::verify_expiring(&state.env.session_keys, LABEL, token, now)
    else {
        return Ok(None);
    };
    let Some((nonce, shop_id)) = payload
        .split_once('/')
        .and_then(|(n, s)| Some((n.to_string(), s.parse::<i64>().ok()?)))
    else {
        return Ok(None);
    };
    let db = &state.env.db;
    let spent = db
        .execute_raw(stmt(
            db.get_database_backend(),
            "UPDATE login_links SET used_at = ? WHERE nonce = ? AND shop_id = ? AND used_at IS NULL",
            vec![now.into(), nonce.into(), shop_id.into()],
        ))
        .await?;
    Ok((spent.rows_affected() == 1).then_some(shop_id))
}

#[get("/admin/login")]
async fn login(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let token = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let shop = match redeem(&state, &token).await {
        Ok(Some(id)) => shops::get(&state.env.db, id).await,
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    match shop {
        Ok(Some(shop)) if shops::is_installed(&shop.status) => {
            if let Some(platform) = state.platforms.get(&shop.platform) {
                return HttpResponse::SeeOther()
                    .cookie(session_cookie(&state.env, platform.as_ref(), &shop.domain))
                    .insert_header(("Location", "/admin"))
                    .insert_header(("Cache-Control", "no-store"))
                    .finish();
            }
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "sign-in link"),
    }
    let body = maud::html! {
        main class="page narrow" {
            div class="card" {
                h1 { "Sign-in link not valid" }
                p class="error-text" {
                    "This sign-in link is not valid: it has expired, was used already or was changed."
                }
                p class="muted" { "Run " code { "lifecycle demo" } " again for a new one, or open Lifecycle from your shop's admin." }
            }
        }
    };
    html_response(
        StatusCode::UNAUTHORIZED,
        document("Lifecycle: sign-in link", None, false, body),
        "frame-ancestors 'self'",
    )
}
