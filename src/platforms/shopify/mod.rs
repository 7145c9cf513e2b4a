//! Shopify: install (OAuth and session tokens), webhooks, the Admin GraphQL client, and the
//! writes (tags, discount codes, metafields), behind the platform seam.

mod api;
pub mod auth;
pub mod bulk_tags;
pub mod client;
pub mod config;
pub mod events;
mod export;
pub mod manifest;
pub mod resources;
mod routes;
pub mod session_token;
pub mod signature;
mod webhook;
pub mod writes;

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use super::{
    Capabilities, CodeScope, DecodeError, Embedding, Env, HistoryLimit, Labelling, Platform, Plugin, RateLimit,
    ShopApi, TokenError, Verified, WebhookData, WebhookError,
};
use crate::core::analytics::readers::ExportColumns;
use crate::model::Event;
use config::ShopifyConfig;

pub const PLATFORM: &str = "shopify";

/// The admin's orders export (Orders > Export, CSV), for `lifecycle analyze`.
pub const ORDERS_EXPORT: ExportColumns = ExportColumns {
        order: "Name",
        email: "Email",
        created_at: "Created at",
        total: "Total",
        cancelled_at: "Cancelled at",
        refunded: "Refunded Amount",
        discount_code: "Discount Code",
    };

/// The app's Shopify credentials, resolved at start-up.
pub struct ShopifyApp {
    pub client_id: String,
    /// Current secret first, then the previous one during a rotation.
    pub secrets: Vec<String>,
}

impl ShopifyApp {
    pub fn secret(&self) -> &str {
        &self.secrets[0]
    }
}

/// Shopify as this process knows it: credentials, settings, the manifest, and each shop's
/// rate-limit bucket and token-refresh lock.
pub struct Shopify {
    pub env: Env,
    pub config: ShopifyConfig,
    pub app: ShopifyApp,
    /// Each shop's rate-limit bucket as this process models it.
    pub buckets: client::Buckets,
    /// One token refresh in flight per shop.
    pub refresh_locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// One managed install (session token exchange) in flight per shop domain.
    pub exchange_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The app manifest (topics, scopes).
    pub manifest: manifest::Manifest,
    capabilities: Capabilities,
}

impl Deref for Shopify {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

impl Shopify {
    /// Shopify with these settings; a missing client secret is generated for this process,
    /// loudly (signatures then cannot verify).
    pub fn new(env: Env, config: ShopifyConfig) -> Shopify {
        let secret = match &config.client_secret {
            Some(s) => s.clone(),
            None => {
                tracing::warn!(
                    "LIFECYCLE_SHOPIFY_CLIENT_SECRET is not set: generated one for this process; Shopify signatures will not verify"
                );
                crate::secrets::random_secret(32)
            }
        };
        let mut secrets = vec![secret];
        secrets.extend(config.previous_client_secret.clone());
        Shopify {
            app: ShopifyApp {
                client_id: config.client_id.clone(),
                secrets,
            },
            env,
            config,
            buckets: Default::default(),
            refresh_locks: Default::default(),
            exchange_locks: Default::default(),
            manifest: manifest::Manifest::load(),
            capabilities: Capabilities {
                labels: Labelling::Tags,
                codes: CodeScope::OneCustomer,
                webhooks: WebhookData::Full,
                bulk_export: true,
                incremental: true,
                rate_limit: RateLimit::CostBucket,
                label_word: "tag",
                code_note: "Each code works only for its customer, once.",
            },
        }
    }

    pub fn app_url(&self) -> &str {
        &self.env.app_url
    }
}

impl Plugin for Shopify {
    const NAME: &'static str = PLATFORM;
    type Settings = ShopifyConfig;
    const ORDER_EXPORTS: &'static [(&'static str, ExportColumns)] = &[("shopify-orders", ORDERS_EXPORT)];
    fn build(env: Env, settings: ShopifyConfig) -> Self {
        Shopify::new(env, settings)
    }
}

#[async_trait::async_trait]
impl Platform for Shopify {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn normalize_shop(&self, raw: &str) -> Option<String> {
        normalize_shop(raw)
    }

    fn routes(self: Arc<Self>, cfg: &mut actix_web::web::ServiceConfig) {
        routes::configure(self, cfg);
    }

    fn verify_webhook(
        &self,
        req: &actix_web::HttpRequest,
        body: &[u8],
    ) -> Result<Verified, WebhookError> {
        webhook::verify(&self.app.secrets, req, body)
    }

    fn decode(&self, topic: &str, body: &[u8]) -> Result<Vec<Event>, DecodeError> {
        events::decode(topic, body).map_err(|e| DecodeError(e.to_string()))
    }

    async fn api<'a>(&'a self, shop_id: i64) -> Result<Box<dyn ShopApi + 'a>, TokenError> {
        let client = auth::client_for(self, shop_id).await?;
        Ok(Box::new(api::ShopifyApi { client }))
    }

    fn session_token_shop(&self, token: &str) -> Option<Result<String, String>> {
        Some(
            session_token::verify(token, &self.app.client_id, &self.app.secrets)
                .map(|s| s.shop)
                .map_err(|e| e.to_string()),
        )
    }

    async fn install_by_session_token(
        &self,
        token: &str,
    ) -> Option<Result<(), super::InstallRefused>> {
        Some(auth::install_by_session_token(self, token).await)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    /// Shopify requires embedded apps to allow framing by the shop and the unified admin only.
    fn history_limit(&self, granted: &str) -> Option<HistoryLimit> {
        (!manifest::scopes_cover(granted, &[manifest::ALL_ORDERS.to_string()])).then(|| {
            HistoryLimit {
                days: manifest::ORDER_WINDOW_DAYS,
                remedy: format!(
                    "Shopify shows an app orders older than {} days only with the `{}` \
                     permission; once Shopify has approved it for Lifecycle, open Lifecycle \
                     again from your Shopify admin to grant it",
                    manifest::ORDER_WINDOW_DAYS,
                    manifest::ALL_ORDERS
                ),
            }
        })
    }

    fn frame_ancestors(&self, shop: &str) -> Option<String> {
        Some(format!("https://{shop} https://admin.shopify.com"))
    }

    fn embedding(&self) -> Option<Embedding> {
        Some(Embedding {
            head: maud::html! {
                meta name="shopify-api-key" content=(self.app.client_id);
                script src="https://cdn.shopify.com/shopifyapp-bridge/app-bridge.js" {}
                script { (maud::PreEscaped("window.lifecycleToken = function () { return shopify.idToken(); };")) }
            },
        })
    }
}

/// Why a text is not a Shopify shop domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShopDomainError {
    #[error("the shop domain is not a host name: {0}")]
    Hostname(#[from] crate::platforms::hostname::HostnameError),
    #[error("the shop domain must have the form {{name}}.myshopify.com")]
    NotMyshopify,
}

/// Validates and normalises a shop domain: a DNS host name (`platforms::hostname`: characters,
/// label and total lengths) of the form `{name}.myshopify.com`, lowercased. Anything else
/// (another host, a port, a path, userinfo, a sub-subdomain, a percent-escape, Unicode) is
/// refused. The one check behind the install, the OAuth callback, session tokens and webhook
/// headers.
pub fn shop_domain(raw: &str) -> Result<String, ShopDomainError> {
    let shop = crate::platforms::hostname::hostname(raw.trim())?;
    match shop.strip_suffix(".myshopify.com") {
        Some(name) if !name.is_empty() && !name.contains('.') => Ok(shop),
        _ => Err(ShopDomainError::NotMyshopify),
    }
}

/// [`shop_domain`], for callers that only need to know whether it is one.
pub fn normalize_shop(raw: &str) -> Option<String> {
    shop_domain(raw).ok()
}

/// Where the app reaches a shop: `https://{shop}` on the real platform, `{origin}/{shop}` when
/// an API origin is configured (the sandbox). Only the base URL differs; the requests are the same.
pub fn shop_base_url(origin: Option<&str>, shop: &str) -> String {
    match origin {
        Some(o) => format!("{}/{shop}", o.trim_end_matches('/')),
        None => format!("https://{shop}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_domains() {
        assert_eq!(
            normalize_shop("Demo-1.MyShopify.com").as_deref(),
            Some("demo-1.myshopify.com")
        );
        for bad in [
            "evil.com",
            "x.myshopify.com.evil.com",
            "x.myshopify.com@evil.com",
            "-x.myshopify.com",
            "x.myshopify.com:443",
            "x.myshopify.com/admin",
            ".myshopify.com",
            "x_y.myshopify.com",
            "x.y.myshopify.com",
            "https://x.myshopify.com",
            "x.myshopify.com.",
            "%2e.myshopify.com",
            "\u{212A}.myshopify.com",
            "",
        ] {
            assert_eq!(normalize_shop(bad), None, "{bad}");
        }
        let longest = format!("{}.myshopify.com", "a".repeat(63));
        assert_eq!(normalize_shop(&longest).as_deref(), Some(longest.as_str()));
        assert_eq!(
            shop_domain(&format!("a{longest}")),
            Err(ShopDomainError::Hostname(
                crate::platforms::hostname::HostnameError::LabelTooLong
            ))
        );
    }
}
