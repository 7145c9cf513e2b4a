//! Ecwid's OAuth, served at the sandbox root as `my.ecwid.com` serves it: the authorize step
//! (always approved) and the code exchange. A code is single use and lives five minutes; a
//! second exchange is refused and disables the token the first one issued. Tokens do not
//! expire while the app is installed.

use super::model::EcwidShop;
use crate::auth_state::{AccessToken, AuthCode};
use crate::state::{Shop, State};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

const CODE_TTL_MINUTES: i64 = 5;

fn bad_request(msg: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": "invalid_request", "error_description": msg}))
}

fn token_error(status: u16, error: &str, msg: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("valid status"))
        .json(json!({"error": error, "error_description": msg}))
}

/// The scopes granted for a request: what the app asked for that the store grants (all the
/// store grants when the app asked for nothing, as an App Market install).
fn granted(state: &State, requested: &str) -> String {
    let grants = {
        let app = state.app.read();
        let app = app.app(super::model::NAME);
        app.grantable(&app.scopes)
    };
    if requested.trim().is_empty() {
        return grants;
    }
    let grants: Vec<&str> = grants.split_whitespace().collect();
    let mut out: Vec<&str> = requested
        .split_whitespace()
        .filter(|s| grants.contains(s))
        .collect();
    out.dedup();
    out.join(" ")
}

/// Issues a fresh code for `shop`.
pub fn issue_code(state: &State, shop: &Shop, requested_scope: &str) -> String {
    let code = hex::encode(uuid::Uuid::new_v4().as_bytes());
    let mut auth = shop.auth.lock();
    // Listing shops issues App Market codes; expired ones are of no use to anybody.
    let now = Utc::now();
    auth.codes.retain(|_, c| c.expires_at > now);
    auth.codes.insert(
        code.clone(),
        AuthCode {
            scope: granted(state, requested_scope),
            online: false,
            expires_at: now + Duration::minutes(CODE_TTL_MINUTES),
        },
    );
    code
}

/// The App Market's install redirect: `{app_url}/auth/ecwid/callback?code=CODE`.
pub fn install_url(state: &State, shop: &Shop) -> Option<String> {
    let base = state.app.read().app_url.clone()?;
    let code = issue_code(state, shop, "");
    Some(format!(
        "{}/auth/ecwid/callback?code={code}",
        base.trim_end_matches('/')
    ))
}

/// The Ecwid shop a request names, or the most recently created one.
fn pick_store(state: &State, store_id: Option<&str>) -> Result<Arc<Shop>, String> {
    let shops = state.shops.read();
    let mut ecwid = shops.values().filter(|s| EcwidShop::of(s).is_some());
    match store_id {
        Some(id) => ecwid
            .find(|s| s.info.domain == id)
            .cloned()
            .ok_or_else(|| format!("store {id} does not exist")),
        None => ecwid
            .max_by_key(|s| EcwidShop::of(s).map_or(0, |e| e.store_id))
            .cloned()
            .ok_or_else(|| "the sandbox has no Ecwid store".to_string()),
    }
}

fn check_redirect(state: &State, redirect_uri: &str) -> Result<(), String> {
    let app = state.app.read();
    let Some(app_url) = &app.app_url else {
        return Err("the app has no app_url yet (POST /_sandbox/app)".into());
    };
    if !redirect_uri.starts_with(app_url.trim_end_matches('/')) {
        return Err(format!(
            "redirect_uri '{redirect_uri}' does not match the app's registered URL"
        ));
    }
    Ok(())
}

/// `GET /api/oauth/authorize?client_id&redirect_uri&response_type=code&scope[&store_id]`.
pub async fn authorize(state: web::Data<Arc<State>>, req: HttpRequest) -> HttpResponse {
    let q: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    for k in ["client_id", "redirect_uri", "response_type", "scope"] {
        if q.get(k).is_none_or(|v| v.is_empty()) {
            return bad_request(&format!("the '{k}' parameter is missing"));
        }
    }
    if q["client_id"] != state.app.read().app(super::model::NAME).client_id {
        return bad_request(&format!("unknown client_id '{}'", q["client_id"]));
    }
    if q["response_type"] != "code" {
        return bad_request("response_type must be 'code'");
    }
    if let Err(e) = check_redirect(&state, &q["redirect_uri"]) {
        return bad_request(&e);
    }
    let shop = match pick_store(&state, q.get("store_id").map(String::as_str)) {
        Ok(s) => s,
        Err(e) => return bad_request(&e),
    };
    let code = issue_code(&state, &shop, &q["scope"]);
    let uri = &q["redirect_uri"];
    let sep = if uri.contains('?') { '&' } else { '?' };
    HttpResponse::Found()
        .insert_header(("Location", format!("{uri}{sep}code={code}")))
        .finish()
}

/// `GET` (or `POST` form) `/api/oauth/token`: the code exchange. Every exchange is in a store's
/// request log (kind `token`), so tests can tell whether the app made one: in the log of the
/// store the code was issued to, or, for a code no store issued, in every store's log (the
/// sandbox cannot tell which store it was meant for).
pub async fn token(
    state: web::Data<Arc<State>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let (response, store) = exchange(&state, &req, &body);
    let logged: Vec<Arc<Shop>> = state
        .shops
        .read()
        .values()
        .filter(|s| {
            EcwidShop::of(s).is_some() && store.as_ref().is_none_or(|id| *id == s.info.domain)
        })
        .cloned()
        .collect();
    for shop in logged {
        shop.log_request(crate::state::RequestLog {
            time: Utc::now(),
            kind: "token".into(),
            root_fields: vec!["authorization_code".into()],
            status: response.status().as_u16(),
            method: Some(req.method().to_string()),
            path: Some(req.path().to_string()),
            ..Default::default()
        });
    }
    response
}

/// The token endpoint's answer, and the store the code belongs to when one does.
fn exchange(state: &State, req: &HttpRequest, body: &web::Bytes) -> (HttpResponse, Option<String>) {
    let mut p: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    if !body.is_empty() {
        match crate::forms::body_params(req, body) {
            Ok(b) => p.extend(b),
            Err(e) => return (bad_request(&e), None),
        }
    }
    for k in [
        "client_id",
        "client_secret",
        "code",
        "redirect_uri",
        "grant_type",
    ] {
        if p.get(k).is_none_or(|v| v.is_empty()) {
            return (
                bad_request(&format!("the '{k}' parameter is missing")),
                None,
            );
        }
    }
    if p["grant_type"] != "authorization_code" {
        return (
            token_error(
                400,
                "unsupported_grant_type",
                "grant_type must be authorization_code",
            ),
            None,
        );
    }
    {
        let app = state.app.read();
        let app = app.app(super::model::NAME);
        if p["client_id"] != app.client_id || p["client_secret"] != app.client_secret {
            return (
                token_error(401, "invalid_client", "wrong client_id or client_secret"),
                None,
            );
        }
    }
    if let Err(e) = check_redirect(state, &p["redirect_uri"]) {
        return (bad_request(&e), None);
    }
    let code = &p["code"];
    let shops: Vec<Arc<Shop>> = state
        .shops
        .read()
        .values()
        .filter(|s| EcwidShop::of(s).is_some())
        .cloned()
        .collect();
    for shop in shops {
        let eco = EcwidShop::of(&shop).expect("filtered");
        let mut auth = shop.auth.lock();
        let mut st = eco.state.lock();
        if let Some(token) = st.used_codes.get(code) {
            // "In case of second attempt, the previously provided access token is
            // automatically disabled."
            auth.tokens.remove(token);
            return (
                token_error(
                    400,
                    "invalid_grant",
                    "the code was already exchanged; the token it gave is disabled",
                ),
                Some(shop.info.domain.clone()),
            );
        }
        let Some(grant) = auth.codes.remove(code) else {
            continue;
        };
        if grant.expires_at <= Utc::now() {
            return (
                token_error(400, "invalid_grant", "the code has expired"),
                Some(shop.info.domain.clone()),
            );
        }
        let token = format!("secure_sbx_{}", uuid::Uuid::new_v4().simple());
        auth.tokens.insert(
            token.clone(),
            AccessToken {
                scope: grant.scope.clone(),
                expires_at: None,
                expiring: false,
                calls_left: None,
            },
        );
        auth.installed = true;
        auth.scope = grant.scope.clone();
        st.used_codes.insert(code.clone(), token.clone());
        return (
            HttpResponse::Ok().json(json!({
                "access_token": token,
                "token_type": "bearer",
                "scope": grant.scope,
                "store_id": eco.store_id,
            })),
            Some(shop.info.domain.clone()),
        );
    }
    (
        token_error(400, "invalid_grant", "unknown authorization code"),
        None,
    )
}
