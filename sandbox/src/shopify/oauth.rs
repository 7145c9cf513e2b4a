//! OAuth: the authorize step (consent page or auto-approve redirect), the token endpoint with
//! the authorization-code, token-exchange and refresh-token grants, and the signed install URL.

use crate::auth_state::{AccessToken, AuthCode, RefreshToken, new_token};
use crate::forms::body_params;
use crate::shopify::signing::{host_param, query_hmac, verify_session_token};
use crate::state::{Shop, State};
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// A refresh token may be replayed this long after first use and gets the same answer.
const REFRESH_RETRY_WINDOW_SECS: u64 = 60;
const ACCESS_TOKEN_TTL: i64 = 3600;
const REFRESH_TOKEN_TTL: i64 = 7_776_000;
const ONLINE_TOKEN_TTL: i64 = 86_399;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const OFFLINE_TOKEN_TYPE: &str = "urn:shopify:params:oauth:token-type:offline-access-token";
const ONLINE_TOKEN_TYPE: &str = "urn:shopify:params:oauth:token-type:online-access-token";

fn page(status: actix_web::http::StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">{body}</body></html>"
        ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn oauth_error(msg: &str) -> HttpResponse {
    page(
        actix_web::http::StatusCode::BAD_REQUEST,
        "Oauth error",
        &format!(
            "<h1>Oauth error invalid_request</h1><p>{}</p>",
            html_escape(msg)
        ),
    )
}

/// The signed query Shopify appends when it sends a merchant to an app (install, callback).
pub fn signed_query(secret: &str, mut params: Vec<(String, String)>) -> String {
    let hmac = query_hmac(secret, &params);
    params.push(("hmac".into(), hmac));
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish()
}

/// `{app_url}/auth/shopify/install?shop=..&timestamp=..&hmac=..`, as the app store sends it.
pub fn install_url(state: &State, shop: &Shop) -> Option<String> {
    let app = state.app.read();
    let base = app.app_url.as_ref()?.trim_end_matches('/').to_string();
    let q = signed_query(
        &app.app(super::shop::NAME).client_secret,
        vec![
            ("shop".into(), shop.info.domain.clone()),
            ("timestamp".into(), Utc::now().timestamp().to_string()),
        ],
    );
    Some(format!("{base}/auth/shopify/install?{q}"))
}

struct AuthorizeParams {
    client_id: String,
    scope: String,
    redirect_uri: String,
    state: Option<String>,
    online: bool,
}

fn read_params(pairs: &[(String, String)]) -> Result<AuthorizeParams, String> {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Ok(AuthorizeParams {
        client_id: get("client_id").ok_or("client_id is missing")?,
        scope: get("scope").unwrap_or_default(),
        redirect_uri: get("redirect_uri").ok_or("redirect_uri is missing")?,
        state: get("state"),
        online: pairs
            .iter()
            .any(|(k, v)| (k == "grant_options[]" || k == "grant_options") && v == "per-user"),
    })
}

fn check_app(state: &State, p: &AuthorizeParams) -> Result<(), String> {
    let app = state.app.read();
    if p.client_id != app.app(super::shop::NAME).client_id {
        return Err(format!("The api_key '{}' is invalid", p.client_id));
    }
    let Some(app_url) = &app.app_url else {
        return Err("The app has no app_url yet (POST /_sandbox/app)".into());
    };
    if !p.redirect_uri.starts_with(app_url.trim_end_matches('/')) {
        return Err("The redirect_uri is not whitelisted".into());
    }
    Ok(())
}

/// Issues a code and sends the merchant back to the app, signed as Shopify does.
fn approve(state: &State, shop: &Shop, p: AuthorizeParams) -> HttpResponse {
    let code = hex::encode(uuid::Uuid::new_v4().as_bytes());
    let scope = {
        let app = state.app.read();
        let app = app.app(super::shop::NAME);
        app.grantable(if p.scope.is_empty() {
            &app.scopes
        } else {
            &p.scope
        })
    };
    shop.auth.lock().codes.insert(
        code.clone(),
        AuthCode {
            scope,
            online: p.online,
            expires_at: Utc::now() + Duration::minutes(10),
        },
    );
    let mut params = vec![
        ("code".to_string(), code),
        ("host".to_string(), host_param(&shop.info.name)),
        ("shop".to_string(), shop.info.domain.clone()),
        ("timestamp".to_string(), Utc::now().timestamp().to_string()),
    ];
    if let Some(s) = p.state {
        params.push(("state".into(), s));
    }
    let secret = state
        .app
        .read()
        .app(super::shop::NAME)
        .client_secret
        .clone();
    let q = signed_query(&secret, params);
    let sep = if p.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    HttpResponse::Found()
        .insert_header(("Location", format!("{}{sep}{q}", p.redirect_uri)))
        .finish()
}

pub async fn authorize(
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let Some(shop) = state.shop(&path) else {
        return HttpResponse::NotFound().body("There's no shop at this address.");
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    log_authorize(&shop, &req);
    let p = match read_params(&pairs).and_then(|p| check_app(&state, &p).map(|_| p)) {
        Ok(p) => p,
        Err(e) => return oauth_error(&e),
    };
    if state.app.read().auto_approve {
        return approve(&state, &shop, p);
    }
    let hidden: String = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(k),
                html_escape(v)
            )
        })
        .collect();
    let scopes: String = p
        .scope
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!("<li>{}</li>", html_escape(s.trim())))
        .collect();
    page(
        actix_web::http::StatusCode::OK,
        "Install app",
        &format!(
            "<h1>Install app on {}</h1><p>The app asks for:</p><ul>{scopes}</ul>\
             <form method=\"post\">{hidden}<button type=\"submit\">Install app</button></form>",
            html_escape(&shop.info.name)
        ),
    )
}

/// The authorize page in the shop's request log (kind `authorize`, path only), so a test can
/// tell whether an install went through OAuth at all.
fn log_authorize(shop: &Shop, req: &HttpRequest) {
    shop.log_request(crate::state::RequestLog {
        time: Utc::now(),
        kind: "authorize".into(),
        status: 200,
        method: Some(req.method().to_string()),
        path: Some(req.path().to_string()),
        ..Default::default()
    });
}

/// The consent page's "Install app" button.
pub async fn authorize_confirm(
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(shop) = state.shop(&path) else {
        return HttpResponse::NotFound().body("There's no shop at this address.");
    };
    log_authorize(&shop, &req);
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    match read_params(&pairs).and_then(|p| check_app(&state, &p).map(|_| p)) {
        Ok(p) => approve(&state, &shop, p),
        Err(e) => oauth_error(&e),
    }
}

fn token_error(status: u16, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("valid status"))
        .json(json!({"error": error, "error_description": description}))
}

fn issue_offline(state: &State, shop: &Shop, scope: &str, expiring: bool) -> Value {
    let (ttl, calls) = {
        let f = state.faults.read();
        (
            f.token_ttl_secs.map_or(ACCESS_TOKEN_TTL, |s| s as i64),
            f.token_calls,
        )
    };
    let mut auth = shop.auth.lock();
    auth.installed = true;
    auth.scope = scope.to_string();
    let token = new_token("at");
    if !expiring {
        auth.tokens.insert(
            token.clone(),
            AccessToken {
                scope: scope.into(),
                expires_at: None,
                expiring: false,
                calls_left: None,
            },
        );
        return json!({"access_token": token, "scope": scope});
    }
    auth.drop_expiring();
    let now = Utc::now();
    auth.tokens.insert(
        token.clone(),
        AccessToken {
            scope: scope.into(),
            expires_at: Some(now + Duration::seconds(ttl)),
            expiring: true,
            calls_left: calls,
        },
    );
    let refresh = new_token("rt");
    auth.refresh.insert(
        refresh.clone(),
        RefreshToken {
            scope: scope.into(),
            expires_at: now + Duration::seconds(REFRESH_TOKEN_TTL),
            used: None,
        },
    );
    json!({
        "access_token": token,
        "scope": scope,
        "expires_in": ttl,
        "refresh_token": refresh,
        "refresh_token_expires_in": REFRESH_TOKEN_TTL,
    })
}

fn issue_online(shop: &Shop, scope: &str, user_id: u64) -> Value {
    let mut auth = shop.auth.lock();
    auth.installed = true;
    let token = new_token("ot");
    auth.tokens.insert(
        token.clone(),
        AccessToken {
            scope: scope.into(),
            expires_at: Some(Utc::now() + Duration::seconds(ONLINE_TOKEN_TTL)),
            expiring: false,
            calls_left: None,
        },
    );
    json!({
        "access_token": token,
        "scope": scope,
        "expires_in": ONLINE_TOKEN_TTL,
        "associated_user_scope": scope,
        "associated_user": {
            "id": user_id,
            "first_name": "Sandbox",
            "last_name": "Owner",
            "email": format!("owner@{}", shop.info.domain),
            "email_verified": true,
            "account_owner": true,
            "locale": "en",
            "collaborator": false
        }
    })
}

pub async fn access_token(
    state: web::Data<Arc<State>>,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(shop) = state.shop(&path) else {
        return HttpResponse::NotFound().json(json!({"errors": "Not Found"}));
    };
    let p = match body_params(&req, &body) {
        Ok(p) => p,
        Err(e) => return token_error(400, "invalid_request", &e),
    };
    let response = grant(&state, &shop, &p);
    // Token requests are in the shop's request log too (kind `token`, the grant type as
    // the root field), so tests can count refreshes and exchanges like API calls.
    let grant_type = p
        .get("grant_type")
        .map(String::as_str)
        .filter(|g| !g.is_empty())
        .unwrap_or("authorization_code");
    shop.log_request(crate::state::RequestLog {
        time: Utc::now(),
        kind: "token".into(),
        root_fields: vec![grant_type.to_string()],
        status: response.status().as_u16(),
        method: Some("POST".into()),
        path: Some(req.path().to_string()),
        ..Default::default()
    });
    response
}

/// The token endpoint's answer to one request's parameters.
fn grant(state: &State, shop: &Shop, p: &HashMap<String, String>) -> HttpResponse {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let (client_id, client_secret, app_scopes) = {
        let app = state.app.read();
        let app = app.app(super::shop::NAME);
        (
            app.client_id.clone(),
            app.client_secret.clone(),
            app.grantable(&app.scopes),
        )
    };
    if get("client_id") != client_id || get("client_secret") != client_secret {
        return token_error(401, "invalid_client", "Client credentials are invalid");
    }
    let expiring = matches!(get("expiring"), "1" | "true");
    match get("grant_type") {
        "" | "authorization_code" => {
            let code = get("code");
            let record = shop.auth.lock().codes.remove(code);
            match record {
                Some(c) if c.expires_at > Utc::now() => {
                    let resp = if c.online {
                        issue_online(shop, &c.scope, 42)
                    } else {
                        issue_offline(state, shop, &c.scope, expiring)
                    };
                    HttpResponse::Ok().json(resp)
                }
                _ => token_error(
                    400,
                    "invalid_request",
                    "The authorization code was not found or was already used",
                ),
            }
        }
        TOKEN_EXCHANGE => {
            let subject = get("subject_token");
            match get("subject_token_type") {
                ID_TOKEN => {
                    let claims = match verify_session_token(&client_secret, &client_id, subject) {
                        Ok(c) => c,
                        Err(e) => return token_error(400, "invalid_subject_token", &e.to_string()),
                    };
                    if claims.dest != format!("https://{}", shop.info.domain) {
                        return token_error(
                            400,
                            "invalid_subject_token",
                            "The session token was issued for another shop",
                        );
                    }
                    let scope = {
                        let auth = shop.auth.lock();
                        if auth.scope.is_empty() {
                            app_scopes.clone()
                        } else {
                            auth.scope.clone()
                        }
                    };
                    let requested = get("requested_token_type");
                    if requested == ONLINE_TOKEN_TYPE {
                        let user = claims.sub.parse().unwrap_or(42);
                        HttpResponse::Ok().json(issue_online(shop, &scope, user))
                    } else if requested.is_empty() || requested == OFFLINE_TOKEN_TYPE {
                        HttpResponse::Ok().json(issue_offline(state, shop, &scope, expiring))
                    } else {
                        token_error(400, "invalid_request", "Unknown requested_token_type")
                    }
                }
                OFFLINE_TOKEN_TYPE => {
                    // Migration of a non-expiring offline token to an expiring one (irreversible).
                    if !expiring {
                        return token_error(
                            400,
                            "invalid_request",
                            "Migration requires expiring=1",
                        );
                    }
                    let old = shop.auth.lock().tokens.get(subject).cloned();
                    match old {
                        Some(t) if !t.expiring && t.expires_at.is_none() => {
                            shop.auth.lock().tokens.remove(subject);
                            HttpResponse::Ok().json(issue_offline(state, shop, &t.scope, true))
                        }
                        _ => token_error(
                            400,
                            "invalid_subject_token",
                            "The offline access token is invalid",
                        ),
                    }
                }
                _ => token_error(400, "invalid_request", "Unsupported subject_token_type"),
            }
        }
        "refresh_token" => {
            // A platform that cannot answer now: the refresh token stays unused.
            let failure = {
                let mut f = state.faults.write();
                (!f.refresh_errors.is_empty()).then(|| f.refresh_errors.remove(0))
            };
            if let Some(status) = failure {
                let mut r = token_error(status, "temporarily_unavailable", "Try again later");
                if status == 429 {
                    r.headers_mut().insert(
                        actix_web::http::header::RETRY_AFTER,
                        actix_web::http::header::HeaderValue::from_static("1"),
                    );
                }
                return r;
            }
            let rt = get("refresh_token").to_string();
            let now = Utc::now();
            let record = shop.auth.lock().refresh.get(&rt).cloned();
            match record {
                None => token_error(400, "invalid_grant", "The refresh token is invalid"),
                Some(r) if r.expires_at <= now => {
                    token_error(400, "invalid_grant", "The refresh token has expired")
                }
                Some(RefreshToken {
                    used: Some((at, resp)),
                    ..
                }) => {
                    if at.elapsed().as_secs() < REFRESH_RETRY_WINDOW_SECS {
                        HttpResponse::Ok().json(resp)
                    } else {
                        token_error(400, "invalid_grant", "The refresh token was already used")
                    }
                }
                Some(r) => {
                    let resp = issue_offline(state, shop, &r.scope, true);
                    // issue_offline replaced the grant; keep the old refresh token for retries.
                    shop.auth.lock().refresh.insert(
                        rt,
                        RefreshToken {
                            used: Some((Instant::now(), resp.clone())),
                            ..r
                        },
                    );
                    HttpResponse::Ok().json(resp)
                }
            }
        }
        other => token_error(
            400,
            "unsupported_grant_type",
            &format!("grant_type '{other}' is not supported"),
        ),
    }
}
