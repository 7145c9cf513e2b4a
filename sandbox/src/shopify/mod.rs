//! The Shopify flavour of the sandbox: OAuth and the install link (`oauth`), the Admin GraphQL
//! API with cost-based throttling (`graphql`), bulk operations and staged uploads (`bulk`,
//! `staged`), and webhooks signed over their body with Shopify's retry schedule (`webhooks`).
//! Shop-scoped URLs `https://{shop}/X` are served at `{base}/{shop}/X`.

pub mod bulk;
pub mod graphql;
pub mod oauth;
pub mod shop;
pub mod signing;
pub mod staged;
pub mod webhooks;

use crate::control::{ApiError, body, shop_of};
use crate::state::{AppCredentials, Flavour, Shop, ShopFlavour, State};
use crate::store::{Change, Plan};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use signing::{SessionClaims, sign_session_token};
use std::any::Any;
use std::sync::Arc;

pub use shop::{API_VERSION, NAME, ShopifyShop};

/// Scopes granted by managed install / token exchange when the app asks for none.
pub const DEFAULT_SCOPES: &str =
    "read_customers,write_customers,read_orders,read_all_orders,read_discounts,write_discounts";

/// The app's credentials unless configured.
pub fn default_app() -> AppCredentials {
    AppCredentials {
        client_id: "sandbox-client-id".into(),
        client_secret: "sandbox-client-secret".into(),
        scopes: DEFAULT_SCOPES.into(),
        withheld_scopes: String::new(),
    }
}

/// `lifecycle sandbox` flags of the Shopify flavour.
#[derive(Debug, Clone, clap::Args)]
pub struct ShopifyArgs {
    #[arg(
        long,
        env = "LIFECYCLE_SHOPIFY_CLIENT_ID",
        default_value = "sandbox-client-id"
    )]
    pub client_id: String,
    #[arg(
        long,
        env = "LIFECYCLE_SHOPIFY_CLIENT_SECRET",
        default_value = "sandbox-client-secret",
        hide_env_values = true
    )]
    pub client_secret: String,
}

impl ShopifyArgs {
    pub fn app(&self) -> AppCredentials {
        AppCredentials {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            scopes: DEFAULT_SCOPES.into(),
            withheld_scopes: String::new(),
        }
    }
}

/// The Shopify flavour, app-wide.
pub struct Shopify;

impl Shopify {
    /// The flavour, with its GraphQL schema and cost model built (once per process).
    pub fn new() -> Shopify {
        graphql::schema();
        graphql::cost_model();
        Shopify
    }
}

impl Default for Shopify {
    fn default() -> Self {
        Shopify::new()
    }
}

impl Flavour for Shopify {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn app_prefix(&self) -> &'static str {
        ""
    }
    fn api_plan(&self, requested: Option<&str>, default: Plan) -> Result<Plan, String> {
        match requested {
            Some(p) => p.parse::<Plan>(),
            None => Ok(default),
        }
    }
    fn domain_for(&self, name: &str) -> Option<String> {
        Some(domain_for(name))
    }
    fn adopt(&self, _state: &State, shop: &mut Shop, _plan: Option<&str>) -> Result<(), String> {
        let domain = domain_for(&shop.info.name);
        shop.info.email = format!("owner@{domain}");
        shop.info.domain = domain;
        shop.flavour = Box::new(ShopifyShop::default());
        Ok(())
    }
}

/// A Shopify shop's key: `{name}.myshopify.com`.
pub fn domain_for(name: &str) -> String {
    format!("{name}.myshopify.com")
}

impl ShopFlavour for ShopifyShop {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn install_url(&self, state: &State, shop: &Shop) -> Option<String> {
        oauth::install_url(state, shop)
    }
    fn summary(&self, v: &mut Value) {
        v["platform"] = json!(NAME);
    }
    fn set_plan(&self, _plan: &str) -> Result<(), String> {
        Err("only an Ecwid store's plan can be changed".into())
    }
    fn checkout_row(&self, _id: u64, row: &mut Value) {
        row["ecwid_cart_id"] = Value::Null;
    }
    fn created_order(&self, _id: u64, row: &mut Value) {
        row["ecwid_id"] = Value::Null;
    }
    fn emit(&self, state: &State, shop: &Arc<Shop>, changes: Vec<Change>) {
        webhooks::emit(state, shop, changes);
    }
    fn shutdown(&self, shop: &Shop) {
        // Result files live in the temp dir; do not leave them behind a stopped sandbox.
        bulk::discard_results(shop);
        self.staged.lock().clear();
    }
}

/// Shopify's routes: OAuth and the Admin API under `/{shop}/admin/`, and its control API
/// extras (session tokens, bulk result files, staged uploads).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/_sandbox/bulk/{shop}/{file}", web::get().to(bulk_result))
        .route("/_sandbox/staged_uploads/", web::post().to(staged::upload))
        .route(
            "/_sandbox/shops/{shop}/session_token",
            web::post().to(session_token),
        )
        .route(
            "/_sandbox/shops/{shop}/revoke_tokens",
            web::post().to(revoke_tokens),
        )
        .route(
            "/_sandbox/shops/{shop}/expire_tokens",
            web::post().to(expire_tokens),
        )
        .route(
            "/{shop}/admin/oauth/authorize",
            web::get().to(oauth::authorize),
        )
        .route(
            "/{shop}/admin/oauth/authorize",
            web::post().to(oauth::authorize_confirm),
        )
        .route(
            "/{shop}/admin/oauth/access_token",
            web::post().to(oauth::access_token),
        )
        .route(
            "/{shop}/admin/api/{version}/graphql.json",
            web::post().to(graphql::handle),
        );
}

type Res = Result<HttpResponse, ApiError>;
type St = web::Data<Arc<State>>;

#[derive(Deserialize, Default)]
pub struct SessionTokenReq {
    #[serde(default)]
    user_id: Option<String>,
}

pub async fn session_token(state: St, path: web::Path<String>, b: web::Bytes) -> Res {
    let shop = shop_of(&state, &path)?;
    let req: SessionTokenReq = body(&b)?;
    let app = state.app.read().app(NAME).clone();
    let claims = SessionClaims::new(
        &shop.info.domain,
        &app.client_id,
        req.user_id.as_deref().unwrap_or("42"),
        Utc::now().timestamp(),
    );
    let token = sign_session_token(&app.client_secret, &claims);
    Ok(HttpResponse::Ok().json(json!({"token": token, "claims": claims})))
}

/// The shop revokes every token it gave the app while the app stays installed (Shopify's
/// managed install keeps it; the merchant opening the app again grants a new token by
/// exchange). The app's next call with its stored token gets a 401.
pub async fn revoke_tokens(state: St, path: web::Path<String>) -> Res {
    let shop = shop_of(&state, &path)?;
    let mut auth = shop.auth.lock();
    let revoked = auth.tokens.len();
    auth.tokens.clear();
    auth.refresh.clear();
    auth.codes.clear();
    Ok(HttpResponse::Ok().json(json!({ "revoked": revoked })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExpireReq {
    /// Revoke the refresh token too: the grant is gone, a refresh is refused `invalid_grant`.
    #[serde(default)]
    refresh: bool,
}

/// Ends the shop's expiring offline access tokens now, as an hour's wait would: the next call
/// with one is answered 401 and the grant's refresh token still works (unless revoked too).
pub async fn expire_tokens(state: St, path: web::Path<String>, b: web::Bytes) -> Res {
    let shop = shop_of(&state, &path)?;
    let req: ExpireReq = body(&b)?;
    let mut auth = shop.auth.lock();
    if req.refresh {
        auth.refresh.clear();
    }
    let mut expired = 0;
    for t in auth.tokens.values_mut().filter(|t| t.expiring) {
        t.calls_left = Some(0);
        expired += 1;
    }
    Ok(HttpResponse::Ok().json(json!({ "expired": expired })))
}

pub async fn bulk_result(state: St, path: web::Path<(String, String)>) -> Res {
    let (domain, file) = path.into_inner();
    let shop = shop_of(&state, &domain)?;
    let id: u64 = file
        .strip_suffix(".jsonl")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::NotFound("no such result".into()))?;
    let result = shop
        .flavour_as::<ShopifyShop>()
        .and_then(|s| {
            s.bulk
                .lock()
                .iter()
                .find(|o| o.id == id)
                .and_then(|o| o.result.clone())
        })
        .ok_or_else(|| ApiError::NotFound("no such result".into()))?;
    let body = bulk::FileBody::open(result)
        .await
        .map_err(|e| ApiError::NotFound(format!("the result is no longer available: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/jsonl")
        .body(body))
}
