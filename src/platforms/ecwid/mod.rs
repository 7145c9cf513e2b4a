//! Ecwid (Lightspeed E-Series): install by authorization code, webhooks that name records
//! (signed over their id and time, not their body), the REST API at 600 requests a minute per
//! token, and write-back as one customer group per customer and single-use coupons.

mod api;
pub mod auth;
pub mod client;
pub mod config;
mod paging;
pub mod resources;
mod routes;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{
    Capabilities, CodeScope, DecodeError, Env, Labelling, Platform, Plugin, RateLimit, ShopApi, TokenError,
    Verified, WebhookData, WebhookError,
};
use crate::model::Event;
use crate::store::shops;
use config::EcwidConfig;

pub const PLATFORM: &str = "ecwid";
const REAL_API_ORIGIN: &str = "https://app.ecwid.com";
const REAL_OAUTH_ORIGIN: &str = "https://my.ecwid.com";

/// Ecwid as this process knows it.
pub struct Ecwid {
    pub env: Env,
    pub config: EcwidConfig,
    secrets: Vec<String>,
    pacer: Arc<client::Pacer>,
    /// Each store's currency (its profile's), read once per process.
    currencies: Mutex<HashMap<String, crate::model::Currency>>,
    /// Each store's customer groups by name, as last read or created.
    groups: Mutex<HashMap<String, HashMap<String, u64>>>,
    capabilities: Capabilities,
}

impl Ecwid {
    pub fn new(env: Env, config: EcwidConfig) -> Ecwid {
        let secret = config.client_secret.clone().unwrap_or_else(|| {
            tracing::warn!(
                "LIFECYCLE_ECWID_CLIENT_SECRET is not set: generated one for this process; Ecwid signatures will not verify"
            );
            crate::secrets::random_secret(32)
        });
        Ecwid {
            env,
            config,
            secrets: vec![secret],
            pacer: Default::default(),
            currencies: Default::default(),
            groups: Default::default(),
            capabilities: Capabilities {
                labels: Labelling::OneGroup,
                codes: CodeScope::SingleUseOnly,
                webhooks: WebhookData::IdsOnly,
                bulk_export: false,
                incremental: true,
                rate_limit: RateLimit::RequestsPerMinute(client::REQUESTS_PER_MINUTE),
                label_word: "customer group",
                code_note: "Ecwid cannot tie a coupon to one customer: each code is single-use and unguessable, so only the customer who receives it can use it.",
            },
        }
    }

    fn secret(&self) -> &str {
        &self.secrets[0]
    }

    fn api_origin(&self) -> String {
        super::origin_or(self.config.api_origin.as_deref(), REAL_API_ORIGIN)
    }

    fn oauth_origin(&self) -> String {
        super::origin_or(self.config.api_origin.as_deref(), REAL_OAUTH_ORIGIN)
    }
}

impl Plugin for Ecwid {
    const NAME: &'static str = PLATFORM;
    type Settings = EcwidConfig;
    fn build(env: Env, settings: EcwidConfig) -> Self {
        Ecwid::new(env, settings)
    }
}

#[async_trait::async_trait]
impl Platform for Ecwid {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Ecwid names a store by its number.
    fn normalize_shop(&self, raw: &str) -> Option<String> {
        let raw = raw.trim();
        (!raw.is_empty() && raw.len() <= 20 && raw.bytes().all(|b| b.is_ascii_digit()))
            .then(|| raw.trim_start_matches('0').to_string())
            .filter(|s| !s.is_empty())
    }

    fn routes(self: Arc<Self>, cfg: &mut actix_web::web::ServiceConfig) {
        routes::configure(self, cfg);
    }

    fn verify_webhook(
        &self,
        req: &actix_web::HttpRequest,
        body: &[u8],
    ) -> Result<Verified, WebhookError> {
        webhook::verify(&self.secrets, req, body, chrono::Utc::now())
    }

    fn decode(&self, topic: &str, body: &[u8]) -> Result<Vec<Event>, DecodeError> {
        webhook::decode(topic, body)
    }

    async fn api<'a>(&'a self, shop_id: i64) -> Result<Box<dyn ShopApi + 'a>, TokenError> {
        let shop = shops::get(&self.env.db, shop_id)
            .await?
            .ok_or_else(|| TokenError::NotInstalled(shop_id.to_string()))?;
        let token = super::usable_token(&self.env, &shop)?;
        Ok(Box::new(api::EcwidApi {
            ecwid: self,
            store: shop.domain.clone(),
            client: client::StoreClient {
                http: &self.env.http,
                base: format!("{}/api/v3/{}", self.api_origin(), shop.domain),
                token,
                pacer: &self.pacer,
            },
        }))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
