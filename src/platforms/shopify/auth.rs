//! Installing the app into a shop, and keeping its token valid.
//!
//! Standalone install (authorization-code grant): the install request's query HMAC and
//! timestamp are checked and the shop domain validated; a nonce is stored and also set in a
//! signed, short-lived cookie; the merchant goes to the shop's authorize page. The callback
//! checks cookie, nonce (single use), HMAC, shop and timestamp, all before any outbound request,
//! then exchanges the code, checks the granted scopes, stores the token encrypted, registers
//! webhooks and enqueues the backfill.
//!
//! Embedded (managed install): a verified App Bridge session token is exchanged for an offline
//! token. Offline tokens are requested as expiring ones and refreshed before they expire or when
//! the API refuses them mid-run, one refresh per shop at a time across instances.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use serde::Deserialize;
use serde_json::json;

use super::client::ShopClient;
use super::manifest::scopes_cover;
use super::{PLATFORM, Shopify, shop_base_url, shop_domain, signature};
use crate::platforms::CallError;
use crate::platforms::{Platform, TokenError};
use crate::platforms::tokens::mark_if_token_is;
use crate::store::entities::shop;
use crate::store::{self, shops, stmt};

/// How far a signed query's timestamp may be from our clock (shopify-api-js uses 90 s).
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 90;
/// How long the OAuth state cookie and its nonce live: long enough to read a consent page.
pub const STATE_TTL_SECS: i64 = 600;
pub const STATE_COOKIE: &str = "lifecycle_oauth_state";
/// Refresh an expiring token this long before it expires.
const REFRESH_MARGIN_SECS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the shop did not accept the request: {0}")]
    Upstream(String),
    /// The token endpoint answered an error status.
    #[error("the token request was answered {status}: {detail}")]
    Refused {
        status: u16,
        detail: String,
        /// The answer's `Retry-After`, if it gave a usable one.
        retry_after: Option<std::time::Duration>,
    },
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

pub type Query = Vec<(String, String)>;

fn param<'a>(q: &'a Query, key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Checks what every signed Shopify query must have: a valid shop, a fresh timestamp and a
/// valid HMAC. Returns the normalised shop domain.
pub fn verify_signed_query(
    state: &Shopify,
    q: &Query,
    now: DateTime<Utc>,
) -> Result<String, AuthError> {
    let shop = param(q, "shop")
        .ok_or_else(|| AuthError::BadRequest("`shop` is missing".into()))
        .and_then(|s| shop_domain(s).map_err(|e| AuthError::BadRequest(format!("`shop`: {e}"))))?;
    let ts: i64 = param(q, "timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| AuthError::BadRequest("`timestamp` is missing or not a number".into()))?;
    if (now.timestamp() - ts).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(AuthError::BadRequest(
            "the request is too old (timestamp outside the allowed window)".into(),
        ));
    }
    if !signature::verify_query(&state.app.secrets, q) {
        return Err(AuthError::BadRequest(
            "the request's HMAC signature is not valid".into(),
        ));
    }
    Ok(shop)
}

const STATE_LABEL: &str = "oauth-state";

/// The state cookie: the nonce and the shop, signed, expiring.
pub fn state_cookie_value(secret: &str, nonce: &str, shop: &str, expires: DateTime<Utc>) -> String {
    crate::signed::sign_expiring(secret, STATE_LABEL, &format!("{nonce}|{shop}"), expires)
}

/// Verifies a state cookie and returns (nonce, shop).
pub fn read_state_cookie(
    secrets: &[String],
    value: &str,
    now: DateTime<Utc>,
) -> Option<(String, String)> {
    let payload = crate::signed::verify_expiring(secrets, STATE_LABEL, value, now)?;
    let (nonce, shop) = payload.split_once('|')?;
    Some((nonce.to_string(), shop.to_string()))
}

/// What the install request resolves to: where to send the merchant, and the cookie to set.
pub struct InstallStart {
    pub shop: String,
    pub authorize_url: String,
    pub cookie_value: String,
}

const BEGIN_LABEL: &str = "oauth-begin";
/// The query parameter of the install request that continues, at the top level, an install
/// started inside the admin iframe.
pub const BEGIN_PARAM: &str = "begin";

/// An install request from inside the admin iframe cannot set the state cookie (a third-party
/// context) nor show Shopify's authorize page (which refuses to be framed), so it leaves the
/// iframe first. Its signed query is checked here; the top-level request then carries this
/// value instead: the shop, signed by the app, expiring with the state cookie's lifetime. It
/// only starts an install of that shop, which the merchant still has to approve.
pub fn begin_value(state: &Shopify, q: &Query) -> Result<(String, String), AuthError> {
    let now = Utc::now();
    let shop = verify_signed_query(state, q, now)?;
    let value = crate::signed::sign_expiring(
        state.app.secret(),
        BEGIN_LABEL,
        &shop,
        now + Duration::seconds(STATE_TTL_SECS),
    );
    Ok((shop, value))
}

/// The shop of an install request: its `begin` value (see [`begin_value`]) or its signed query.
fn install_shop(state: &Shopify, q: &Query, now: DateTime<Utc>) -> Result<String, AuthError> {
    match param(q, BEGIN_PARAM) {
        Some(v) => crate::signed::verify_expiring(&state.app.secrets, BEGIN_LABEL, v, now)
            .and_then(|shop| shop_domain(&shop).ok())
            .ok_or_else(|| {
                AuthError::BadRequest(
                    "the install link is invalid or expired; open Lifecycle from the shop admin again"
                        .into(),
                )
            }),
        None => verify_signed_query(state, q, now),
    }
}

pub fn redirect_uri(state: &Shopify) -> String {
    format!("{}/auth/shopify/callback", state.app_url())
}

pub async fn begin_install(state: &Shopify, q: &Query) -> Result<InstallStart, AuthError> {
    let now = Utc::now();
    let shop = install_shop(state, q, now)?;
    let nonce = crate::secrets::random_secret(32);
    let backend = state.db.get_database_backend();
    state
        .db
        .execute_raw(stmt(
            backend,
            "INSERT INTO oauth_nonces (nonce, shop_domain, created_at) VALUES (?, ?, ?)",
            vec![nonce.clone().into(), shop.clone().into(), now.into()],
        ))
        .await?;
    let base = shop_base_url(state.config.api_origin.as_deref(), &shop);
    let mut url = url::Url::parse(&format!("{base}/admin/oauth/authorize"))
        .map_err(|e| AuthError::BadRequest(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("client_id", &state.app.client_id)
        .append_pair("scope", &state.manifest.access_scopes.scopes)
        .append_pair("redirect_uri", &redirect_uri(state))
        .append_pair("state", &nonce);
    let expires = now + Duration::seconds(STATE_TTL_SECS);
    Ok(InstallStart {
        cookie_value: state_cookie_value(state.app.secret(), &nonce, &shop, expires),
        shop,
        authorize_url: url.to_string(),
    })
}

/// Checks the callback completely, consuming the nonce; returns the shop and the code.
pub async fn verify_callback(
    state: &Shopify,
    q: &Query,
    cookie: Option<&str>,
) -> Result<(String, String), AuthError> {
    let now = Utc::now();
    let shop = verify_signed_query(state, q, now)?;
    let given_state =
        param(q, "state").ok_or_else(|| AuthError::BadRequest("`state` is missing".into()))?;
    let code = param(q, "code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AuthError::BadRequest("`code` is missing".into()))?;
    let cookie = cookie.ok_or_else(|| {
        AuthError::BadRequest("the OAuth state cookie is missing; start the install again".into())
    })?;
    let (nonce, cookie_shop) =
        read_state_cookie(&state.app.secrets, cookie, now).ok_or_else(|| {
            AuthError::BadRequest("the OAuth state cookie is invalid or expired".into())
        })?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        nonce.as_bytes(),
        given_state.as_bytes(),
    )) || cookie_shop != shop
    {
        return Err(AuthError::BadRequest(
            "`state` does not match this browser's install".into(),
        ));
    }
    // Single use: only the first callback with this nonce gets through.
    let backend = state.db.get_database_backend();
    let used = state
        .db
        .execute_raw(stmt(
            backend,
            "UPDATE oauth_nonces SET used_at = ? WHERE nonce = ? AND shop_domain = ? AND used_at IS NULL AND created_at > ?",
            vec![now.into(), nonce.into(), shop.clone().into(), (now - Duration::seconds(STATE_TTL_SECS)).into()],
        ))
        .await?;
    if used.rows_affected() != 1 {
        return Err(AuthError::BadRequest(
            "this install link was already used or has expired".into(),
        ));
    }
    Ok((shop, code.to_string()))
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

async fn token_request(
    state: &Shopify,
    shop: &str,
    body: serde_json::Value,
) -> Result<TokenResponse, AuthError> {
    let base = shop_base_url(state.config.api_origin.as_deref(), shop);
    let resp = state
        .http
        .post(format!("{base}/admin/oauth/access_token"))
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .map_err(|e| AuthError::Upstream(format!("token request failed: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        let retry_after = crate::platforms::retry_after::retry_after(
            resp.headers()
                .get("Retry-After")
                .and_then(|v| v.to_str().ok()),
            MAX_REFRESH_WAIT,
            Utc::now(),
        );
        let text = resp.text().await.unwrap_or_default();
        return Err(AuthError::Refused {
            retry_after,
            status: status.as_u16(),
            detail: text.chars().take(200).collect(),
        });
    }
    resp.json()
        .await
        .map_err(|e| AuthError::Upstream(format!("token response unreadable: {e}")))
}

fn grant_of(state: &Shopify, shop: &str, t: TokenResponse) -> shops::TokenGrant {
    let credentials = crate::platforms::Credentials {
        access_token: t.access_token,
        refresh_token: t.refresh_token,
    };
    shops::TokenGrant {
        credentials: credentials.seal(&state.cipher, shop),
        expires_at: t.expires_in.map(|s| Utc::now() + Duration::seconds(s)),
        scopes: t.scope,
    }
}

/// Exchanges the authorization code and completes the install.
pub async fn complete_install(
    state: &Shopify,
    shop: &str,
    code: &str,
) -> Result<shop::Model, AuthError> {
    let token = token_request(
        state,
        shop,
        json!({
            "client_id": state.app.client_id,
            "client_secret": state.app.secret(),
            "code": code,
            "expiring": "1",
        }),
    )
    .await?;
    finish_install(state, shop, token).await
}

/// Managed install / embedded admin: exchanges a verified session token for an offline token.
pub async fn token_exchange(
    state: &Shopify,
    shop: &str,
    session_token: &str,
) -> Result<shop::Model, AuthError> {
    let token = token_request(
        state,
        shop,
        json!({
            "client_id": state.app.client_id,
            "client_secret": state.app.secret(),
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": session_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
            "expiring": "1",
        }),
    )
    .await?;
    finish_install(state, shop, token).await
}

/// Managed install: Shopify installed the app without calling it and opens it in the admin
/// with a session token. The first load of a shop that is not installed here, or whose grant
/// was refused since (`needs_reauth`), exchanges that token and installs the shop: webhooks and
/// backfill, as after OAuth. One exchange per shop runs at a time in this process; a load that
/// waited for it finds the shop installed and does not exchange again.
pub async fn install_by_session_token(
    state: &Shopify,
    token: &str,
) -> Result<(), crate::platforms::InstallRefused> {
    use crate::platforms::InstallRefused;
    let session = super::session_token::verify(token, &state.app.client_id, &state.app.secrets)
        .map_err(|e| InstallRefused::Refused(e.to_string()))?;
    let lock = {
        let mut locks = state.exchange_locks.lock().expect("exchange locks");
        locks.entry(session.shop.clone()).or_default().clone()
    };
    let _guard = lock.lock().await;
    let current = shops::find(&state.db, PLATFORM, &session.shop)
        .await
        .map_err(|e| InstallRefused::Internal(e.to_string()))?;
    if current.is_some_and(|s| s.status == shops::INSTALLED) {
        return Ok(());
    }
    match token_exchange(state, &session.shop, token).await {
        Ok(_) => Ok(()),
        Err(e @ AuthError::Forbidden(_)) => Err(InstallRefused::Forbidden(e.to_string())),
        Err(e @ AuthError::BadRequest(_)) => Err(InstallRefused::Refused(e.to_string())),
        Err(e @ AuthError::Refused { status, .. }) if (400..500).contains(&status) => {
            Err(InstallRefused::Refused(e.to_string()))
        }
        Err(e @ (AuthError::Refused { .. } | AuthError::Upstream(_))) => {
            Err(InstallRefused::Unavailable(e.to_string()))
        }
        Err(AuthError::Db(e)) => Err(InstallRefused::Internal(e.to_string())),
    }
}

async fn finish_install(
    state: &Shopify,
    shop: &str,
    token: TokenResponse,
) -> Result<shop::Model, AuthError> {
    let required = state.manifest.required_scopes();
    if !scopes_cover(&token.scope, &required) {
        return Err(AuthError::Forbidden(format!(
            "the shop granted `{}` but Lifecycle needs `{}`",
            token.scope,
            required.join(",")
        )));
    }
    let plain = token.access_token.clone();
    let grant = grant_of(state, shop, token);
    let all_orders = |scopes: &str| state.history_limit(scopes).is_none();
    let before = shops::find(&state.db, PLATFORM, shop).await?;
    let tx = store::write_tx(&state.db).await?;
    let model = shops::upsert_installed(&tx, PLATFORM, shop, grant).await?;
    // A grant that now shows every order where the last showed 60 days: the next backfill reads
    // the orders again, from the start.
    if before.is_some_and(|b| !all_orders(&b.scopes)) && all_orders(&model.scopes) {
        store::sync_state::save(
            &tx,
            model.id,
            crate::platforms::Resource::Orders.name(),
            &store::sync_state::Checkpoint::default(),
        )
        .await?;
    }
    crate::triggers::installed(&tx, &model).await?;
    tx.commit().await?;
    register_webhooks(state, model.id, shop, &plain).await?;
    tracing::info!(%shop, "installed");
    Ok(model)
}

/// Registers the topics the manifest cannot deliver itself (`Manifest::api_topics`); an existing
/// subscription for the same topic and address is left as it is, so a re-install does not
/// duplicate deliveries. API subscriptions of manifest topics at our address (made by earlier
/// versions) are deleted: each would deliver every event a second time.
pub async fn register_webhooks(
    state: &Shopify,
    shop_id: i64,
    shop: &str,
    token: &str,
) -> Result<(), AuthError> {
    let client = client_with_token(state, shop, token.to_string()).refreshing(state, shop_id);
    let callback = format!("{}/webhooks/shopify", state.app_url());
    let existing = client
        .run("{ webhookSubscriptions(first: 100) { nodes { id topic endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } } } } }", json!({}), 102.0)
        .await
        .map_err(|e| AuthError::Upstream(e.to_string()))?;
    let have: Vec<(String, String, String)> = existing
        .data
        .pointer("/webhookSubscriptions/nodes")
        .and_then(|n| n.as_array())
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| {
                    let id = n.get("id")?.as_str()?.to_string();
                    let topic = n.get("topic")?.as_str()?.to_string();
                    let url = n.pointer("/endpoint/callbackUrl")?.as_str()?.to_string();
                    Some((id, topic, url))
                })
                .collect()
        })
        .unwrap_or_default();
    let enum_of = |topic: &str| topic.to_ascii_uppercase().replace('/', "_");
    let app_specific: Vec<String> = state
        .manifest
        .app_specific_topics()
        .iter()
        .map(|t| enum_of(t))
        .collect();
    for (id, topic, _) in have
        .iter()
        .filter(|(_, t, u)| *u == callback && app_specific.contains(t))
    {
        let r = client
            .run(
                "mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId userErrors { field message } } }",
                json!({ "id": id }),
                10.0,
            )
            .await
            .map_err(|e| AuthError::Upstream(e.to_string()))?;
        tracing::info!(%shop, %topic, result = %r.data, "removed an API subscription the manifest already delivers");
    }
    for topic in state.manifest.api_topics() {
        let enum_name = enum_of(&topic);
        if have.iter().any(|(_, t, u)| *t == enum_name && *u == callback) {
            continue;
        }
        let r = client
            .run(
                "mutation($topic: WebhookSubscriptionTopic!, $url: URL!) { webhookSubscriptionCreate(topic: $topic, webhookSubscription: { callbackUrl: $url, format: JSON }) { webhookSubscription { id } userErrors { field message } } }",
                json!({ "topic": enum_name, "url": callback }),
                10.0,
            )
            .await
            .map_err(|e| AuthError::Upstream(e.to_string()))?;
        let errors = r
            .data
            .pointer("/webhookSubscriptionCreate/userErrors")
            .and_then(|e| e.as_array())
            .cloned()
            .unwrap_or_default();
        let taken = errors.iter().all(|e| {
            e.get("message")
                .and_then(|m| m.as_str())
                .is_some_and(|m| m.contains("already been taken"))
        });
        if !errors.is_empty() && !taken {
            return Err(AuthError::Upstream(format!(
                "webhook registration for {topic} failed: {}",
                serde_json::Value::Array(errors)
            )));
        }
    }
    Ok(())
}

fn client_with_token<'a>(state: &'a Shopify, shop: &str, token: String) -> ShopClient<'a> {
    let base = shop_base_url(state.config.api_origin.as_deref(), shop);
    ShopClient::new(
        &state.http,
        ShopClient::endpoint_for(&base, &state.config.api_version),
        shop.to_string(),
        token,
        &state.buckets,
    )
}

/// A client for an installed shop with a valid token, refreshing it first when it is about to
/// expire. A call answered 401 mid-run (an expiring token outlived) refreshes the grant and is
/// sent again: see [`token_after_refusal`].
pub async fn client_for<'a>(
    state: &'a Shopify,
    shop_id: i64,
) -> Result<ShopClient<'a>, TokenError> {
    let shop = shops::get(&state.db, shop_id)
        .await?
        .ok_or_else(|| TokenError::NotInstalled(shop_id.to_string()))?;
    let shop = if needs_refresh(&shop) {
        refresh(state, shop_id, |s, _| needs_refresh(s)).await?
    } else {
        shop
    };
    let token = crate::platforms::usable_token(&state.env, &shop)?;
    Ok(client_with_token(state, &shop.domain, token).refreshing(state, shop_id))
}

/// Only an expiring grant has an expiry (and a refresh token with it).
fn needs_refresh(shop: &shop::Model) -> bool {
    shop.credentials.is_some()
        && shop
            .token_expires_at
            .is_some_and(|t| t <= Utc::now() + Duration::seconds(REFRESH_MARGIN_SECS))
}

/// The token to send instead of `refused`, which the API answered 401: the one stored now if
/// another caller (of any instance) already replaced it, else a refreshed one. `None` when the
/// grant cannot be refreshed (a non-expiring token): the 401 stands. A refresh the platform
/// definitely refuses condemns the grant ([`TokenError::NeedsReauth`]); one it cannot answer
/// now (429, 5xx, no answer) is [`TokenError::Refresh`], to be retried later.
pub async fn token_after_refusal(
    state: &Shopify,
    shop_id: i64,
    refused: &str,
) -> Result<Option<String>, TokenError> {
    let shop = shops::get(&state.db, shop_id)
        .await?
        .ok_or_else(|| TokenError::NotInstalled(shop_id.to_string()))?;
    let credentials = crate::platforms::usable_credentials(&state.env, &shop)?;
    if credentials.access_token != refused {
        return Ok(Some(credentials.access_token));
    }
    if credentials.refresh_token.is_none() {
        return Ok(None);
    }
    let shop = refresh(state, shop_id, |_, c| c.access_token == refused).await?;
    crate::platforms::usable_token(&state.env, &shop).map(Some)
}

/// The shop lease (table `shop_leases`) held by the one instance refreshing a shop's grant.
const REFRESH_LEASE: &str = "token_refresh";
/// Long enough for every try of one refresh ([`REFRESH_ATTEMPTS`], waits capped at
/// [`MAX_REFRESH_WAIT`]); the lease is renewed while the holder lives, and expires if it dies.
const REFRESH_LEASE_SECS: i64 = 60;
/// How often a caller waiting for another instance's refresh looks for its result.
const REFRESH_POLL: std::time::Duration = std::time::Duration::from_millis(100);
/// Tries of one refresh answered 429, 5xx or not at all.
const REFRESH_ATTEMPTS: u32 = 6;
const MAX_REFRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Refreshes the shop's grant while `stale` says the stored one needs it. One refresh per shop
/// at a time across instances: the refresher holds the shop's `token_refresh` lease, and the
/// others wait for the stored credentials to change (or the lease to end) and use what it
/// stored. Shopify revokes a refresh token when it is used, so two refreshes racing would
/// condemn the grant.
async fn refresh(
    state: &Shopify,
    shop_id: i64,
    stale: impl Fn(&shop::Model, &crate::platforms::Credentials) -> bool,
) -> Result<shop::Model, TokenError> {
    // Callers of this process queue here rather than poll the database.
    let lock = {
        let mut locks = state.refresh_locks.lock().expect("refresh locks");
        locks.entry(shop_id).or_default().clone()
    };
    let _guard = lock.lock().await;
    let holder = uuid::Uuid::new_v4().to_string();
    loop {
        let current = shops::get(&state.db, shop_id)
            .await?
            .ok_or_else(|| TokenError::NotInstalled(shop_id.to_string()))?;
        let credentials = crate::platforms::usable_credentials(&state.env, &current)?;
        if !stale(&current, &credentials) {
            return Ok(current);
        }
        let held = store::leases::with_lease(
            &state.db,
            shop_id,
            REFRESH_LEASE,
            &holder,
            Duration::seconds(REFRESH_LEASE_SECS),
            refresh_holding_lease(state, shop_id, &stale),
        )
        .await?;
        match held {
            store::leases::Held::Done(result) => return result,
            store::leases::Held::Busy => tokio::time::sleep(REFRESH_POLL).await,
            store::leases::Held::Lost => {
                return Err(TokenError::Refresh("the refresh lease was lost".into()));
            }
        }
    }
}

/// The refresh itself, under the lease: the grant is read again (the last holder may have
/// refreshed it just now), the refresh token sent, and the result stored only over the
/// credentials it replaces.
async fn refresh_holding_lease(
    state: &Shopify,
    shop_id: i64,
    stale: &impl Fn(&shop::Model, &crate::platforms::Credentials) -> bool,
) -> Result<shop::Model, TokenError> {
    let current = shops::get(&state.db, shop_id)
        .await?
        .ok_or_else(|| TokenError::NotInstalled(shop_id.to_string()))?;
    let credentials = crate::platforms::usable_credentials(&state.env, &current)?;
    if !stale(&current, &credentials) {
        return Ok(current);
    }
    let stored = current.credentials.clone().unwrap_or_default();
    let refresh_token = credentials
        .refresh_token
        .ok_or_else(|| TokenError::NeedsReauth(format!("{}: no refresh token", current.domain)))?;
    let body = json!({
        "client_id": state.app.client_id,
        "client_secret": state.app.secret(),
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    });
    let mut attempt = 0;
    let token = loop {
        attempt += 1;
        match token_request(state, &current.domain, body.clone()).await {
            Ok(t) => break t,
            // A definite no: the refresh token is revoked or expired, the grant is gone.
            Err(
                e @ AuthError::Refused {
                    status: 400 | 401, ..
                },
            ) => {
                mark_if_token_is(&state.db, current.id, &stored).await?;
                return Err(TokenError::NeedsReauth(format!("{}: {e}", current.domain)));
            }
            // Not now: throttled, a server error, no answer. A refresh token replayed shortly
            // after a lost answer gets the same answer, so trying again is safe.
            Err(
                e @ (AuthError::Refused {
                    status: 429 | 500..=599,
                    ..
                }
                | AuthError::Upstream(_)),
            ) if attempt < REFRESH_ATTEMPTS => {
                let wait = match &e {
                    AuthError::Refused {
                        retry_after: Some(d),
                        ..
                    } => *d,
                    _ => std::time::Duration::from_millis(250 << attempt.min(5)),
                }
                .min(MAX_REFRESH_WAIT);
                tracing::info!(shop = %current.domain, attempt, wait_ms = wait.as_millis() as u64, error = %e, "token refresh not answered; trying again");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(TokenError::Refresh(e.to_string())),
        }
    };
    let grant = grant_of(state, &current.domain, token);
    if shops::update_token(&state.db, current.id, grant, Some(&stored)).await? {
        tracing::info!(shop = %current.domain, "access token refreshed");
    } else {
        tracing::warn!(shop = %current.domain, "the grant changed while it was refreshed; keeping the stored one");
    }
    shops::get(&state.db, current.id)
        .await?
        .ok_or_else(|| TokenError::NotInstalled(current.domain.clone()))
}

impl From<CallError> for AuthError {
    fn from(e: CallError) -> Self {
        AuthError::Upstream(e.to_string())
    }
}
