//! Shop platforms: the seam between Lifecycle and each platform it installs into.
//!
//! A platform ([`Platform`]) owns its install routes, verifies and decodes its webhooks, and
//! hands out a client of one shop's API ([`ShopApi`]): paged and incremental reads, an optional
//! bulk export, label write-back and personal discount codes. What differs between platforms
//! and matters to the rest of the app is said by [`Capabilities`]. Everything else about a
//! platform lives in its own folder; the composition root registers each one in a line.

pub mod hostname;
pub mod retry_after;
mod tokens;

use std::sync::Arc;

use actix_web::{HttpRequest, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::analytics::readers::ExportColumns;
use crate::core::loyalty::{CustomerField, OfferValue};
use crate::model::{DataEvent, Event};
use crate::secrets::Cipher;
use crate::store::Db;

pub use tokens::{
    Credentials, TokenError, mark_needs_reauth, seal_legacy, usable_credentials, usable_token,
};

/// What a platform's folder gives the registry: its name, its settings (flags and
/// `LIFECYCLE_<NAME>_*` variables, defined in its folder) and how it is built from them.
pub trait Plugin: Platform + Sized {
    const NAME: &'static str;
    type Settings: clap::Args + clap::FromArgMatches + Clone + std::fmt::Debug + AppSettings;
    /// The orders exports of this platform that `lifecycle analyze` reads, by `--format` name.
    const ORDER_EXPORTS: &'static [(&'static str, ExportColumns)] = &[];
    fn build(env: Env, settings: Self::Settings) -> Self;
}

/// A platform's settings as far as the demo and a sandbox care: the app's credentials there.
pub trait AppSettings {
    fn app_credentials(&mut self) -> AppCredentials<'_>;
}

/// Expands the list of platforms into their modules, their settings and their registration.
macro_rules! registered {
    ($($module:ident :: $platform:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// Every platform's settings, each defined in its own folder.
        #[derive(Debug, Clone, clap::Args)]
        pub struct PlatformsConfig {
            $(
                #[command(flatten)]
                pub $module: <$module::$platform as Plugin>::Settings,
            )+
        }

        impl PlatformsConfig {
            /// The names of the registered platforms, in order (the first is the default).
            pub const NAMES: &'static [&'static str] =
                &[$(<$module::$platform as Plugin>::NAME),+];

            /// The app credentials of the platform called `name`.
            pub fn credentials_of(&mut self, name: &str) -> Option<AppCredentials<'_>> {
                $(
                    if name == <$module::$platform as Plugin>::NAME {
                        return Some(self.$module.app_credentials());
                    }
                )+
                None
            }

            /// Every registered platform, built from its settings.
            pub fn build(&self, env: &Env) -> Platforms {
                let mut p = Platforms::default();
                $(
                    p.register(Arc::new(<$module::$platform as Plugin>::build(
                        env.clone(),
                        self.$module.clone(),
                    )));
                )+
                p
            }
        }

        /// The orders exports `lifecycle analyze` reads, by the `--format` name of each.
        pub fn order_exports() -> impl Iterator<Item = (&'static str, ExportColumns)> {
            [$(<$module::$platform as Plugin>::ORDER_EXPORTS),+]
                .into_iter()
                .flatten()
                .copied()
        }
    };
}

// The platforms Lifecycle installs into, one line each (a folder beside this file holds all of
// a platform); the first is the default of the commands that name a shop. From this list come
// the settings (`Config::platforms`), the names and the registered `Platforms`.
registered! {
    shopify::Shopify,
    ecwid::Ecwid,
}

/// What every platform's code shares with the app: the database, the token cipher, the HTTP
/// client for platform APIs, this app's public URL and the keys of the admin's session cookie.
#[derive(Clone)]
pub struct Env {
    pub db: Db,
    pub cipher: Cipher,
    pub http: reqwest::Client,
    /// Where platforms reach this app (OAuth redirects, webhooks), without a trailing slash.
    pub app_url: String,
    /// The app's own session-cookie keys (the signing one first), never a platform's secret.
    pub session_keys: Arc<[String]>,
}

/// How a platform can hold Lifecycle's labels on a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Labelling {
    /// Any number of tags per customer (Shopify).
    Tags,
    /// One group per customer (Ecwid, BigCommerce).
    OneGroup,
    /// Key-value metadata on the customer (WooCommerce).
    Metadata,
}

/// How narrowly a personal discount code can be restricted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeScope {
    /// Only the one customer can redeem it.
    OneCustomer,
    /// Anyone holding it can redeem it once: its secrecy carries the restriction.
    SingleUseOnly,
}

/// Whether webhooks carry the record or only its id (then a queued step fetches it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookData {
    Full,
    IdsOnly,
}

/// How the platform limits API calls.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimit {
    /// A leaky bucket of query cost points (Shopify's GraphQL).
    CostBucket,
    /// A number of requests per minute per token.
    RequestsPerMinute(u32),
}

/// What differs between platforms, for the parts of the app that must care.
#[derive(Debug, Clone, Serialize)]
pub struct Capabilities {
    pub labels: Labelling,
    pub codes: CodeScope,
    pub webhooks: WebhookData,
    pub bulk_export: bool,
    /// Reads can be filtered by "updated since".
    pub incremental: bool,
    pub rate_limit: RateLimit,
    /// The merchant's words for a label and for a code restriction, for the admin.
    pub label_word: &'static str,
    pub code_note: &'static str,
}

impl Capabilities {
    /// Each capability in the merchant's words, for the admin.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let labels = match self.labels {
            Labelling::Tags => format!("as {}s, any number per customer", self.label_word),
            Labelling::OneGroup => format!(
                "as the customer's {}, one per customer; a customer in one of yours is left alone",
                self.label_word
            ),
            Labelling::Metadata => format!("as {} metadata on the customer", self.label_word),
        };
        let codes = match self.codes {
            CodeScope::OneCustomer => "restricted to their customer, single use",
            CodeScope::SingleUseOnly => "single use and unguessable, not tied to a customer",
        };
        let webhooks = match self.webhooks {
            WebhookData::Full => "carry the changed record",
            WebhookData::IdsOnly => "name the changed record; Lifecycle reads it through the API",
        };
        let backfill = if self.bulk_export {
            "a bulk export for large shops, pages for small ones"
        } else {
            "page by page"
        };
        let sync = if self.incremental {
            "reads only what changed since the last sync"
        } else {
            "reads the whole shop each time"
        };
        let limit = match self.rate_limit {
            RateLimit::CostBucket => {
                "a bucket of query cost points that refills each second".into()
            }
            RateLimit::RequestsPerMinute(n) => format!("{n} requests a minute"),
        };
        vec![
            ("Lifecycle's labels", labels),
            ("Personal codes", codes.into()),
            ("Webhooks", webhooks.into()),
            ("First sync", backfill.into()),
            ("Later syncs", sync.into()),
            ("API limit", limit),
        ]
    }
}

pub use crate::model::Resource;

/// One page of a paged read: its records as canonical events, and where the next page starts.
#[derive(Debug, Default)]
pub struct Page {
    pub events: Vec<DataEvent>,
    /// None on the last page.
    pub next: Option<String>,
}

/// Why a call to a shop's API failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the shop refused our access token (401)")]
    Unauthorized,
    #[error("the shop forbids this request (403): {0}")]
    Forbidden(String),
    /// The shop's plan does not include the feature (Ecwid answers 402).
    #[error("the shop's plan does not include this: {0}")]
    PlanLimit(String),
    /// Errors the platform reported in a successful HTTP answer (GraphQL's `errors`).
    #[error("the platform reported errors: {0}")]
    Remote(String),
    /// The platform refused a request with an HTTP status that has no variant of its own
    /// (a 4xx other than 401, 402, 403 and 429): callers match on `status`, never on text.
    #[error("{request} answered {status}: {body}")]
    Status {
        /// What was asked (a path or an operation), for the message.
        request: String,
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted { attempts: u32, last: String },
    #[error("unexpected response: {0}")]
    Protocol(String),
}

impl CallError {
    /// Whether the job that hit this error should be retried later.
    pub fn is_transient(&self) -> bool {
        matches!(self, CallError::Exhausted { .. })
    }
}

/// One label write: add or remove these labels on one customer.
#[derive(Debug, Clone)]
pub struct LabelOp {
    pub customer: String,
    pub add: bool,
    pub labels: Vec<String>,
}

/// A personal discount code to create.
#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    pub title: &'a str,
    pub code: &'a str,
    pub customer: &'a str,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub value: &'a OfferValue,
}

/// What creating a discount code came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created {
        platform_id: String,
    },
    /// The code already exists: our earlier attempt made it (codes are derived per customer,
    /// offer and period, and unguessable), so it counts as created.
    Taken,
    Rejected(String),
}

/// The verdict of each write of a bulk call: `Ok` applied, `Err` refused with the platform's
/// message, `None` when the result does not mention it.
pub type Verdicts = Vec<Option<Result<(), String>>>;

/// Why a bulk call failed as a whole: nothing it did is confirmed.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("{0}")]
    Failed(String),
}

/// A bulk export of a whole resource (Shopify's bulk operations).
#[async_trait::async_trait]
pub trait BulkExport: Send + Sync {
    /// Starts the export; returns its id.
    async fn start_export(&self, resource: Resource) -> Result<String, BulkError>;
    /// Waits for the export; returns its result's URL (None when it matched nothing).
    async fn wait_export(&self, id: &str) -> Result<Option<String>, BulkError>;
    /// Opens a result file for streaming.
    async fn download(&self, url: &str) -> Result<reqwest::Response, BulkError>;
    /// One line of a result file: the record as an event, or None for a line that is not one.
    fn export_line(
        &self,
        resource: Resource,
        line: &serde_json::Value,
    ) -> Result<Option<DataEvent>, String>;
}

/// Label writes as bulk calls, for large pushes.
#[async_trait::async_trait]
pub trait BulkLabels: Send + Sync {
    /// Pushes from this many writes on go as bulk calls.
    fn min_writes(&self) -> usize;
    /// The largest upload one bulk call takes, in bytes.
    fn upload_limit(&self) -> usize;
    /// A write as one line of a bulk upload.
    fn line(&self, op: &LabelOp) -> String;
    /// Runs one bulk call of lines that all add (or all remove); counts its requests.
    async fn run(
        &self,
        add: bool,
        lines: &[&str],
        requests: &mut usize,
    ) -> Result<Verdicts, BulkError>;
}

/// A client of one installed shop's API, with a valid credential.
#[async_trait::async_trait]
pub trait ShopApi: Send + Sync {
    /// The credential the calls are made with now (a client may refresh a refused one
    /// mid-run), to tell a revoked one from a replaced one.
    fn token(&self) -> String;
    /// How many records the shop has, when the platform says.
    async fn count(&self, resource: Resource) -> Result<Option<u64>, CallError>;
    /// One page of records, updated at or after `since` when given, from `cursor`.
    async fn page(
        &self,
        resource: Resource,
        since: Option<DateTime<Utc>>,
        cursor: Option<&str>,
    ) -> Result<Page, CallError>;
    fn bulk_export(&self) -> Option<&dyn BulkExport> {
        None
    }
    /// One record by its id, for webhooks that name records without carrying them; None when
    /// the platform no longer has it.
    async fn fetch(
        &self,
        resource: Resource,
        _platform_id: &str,
    ) -> Result<Option<DataEvent>, CallError> {
        Err(CallError::Protocol(format!(
            "this platform's webhooks carry their {}",
            resource.name()
        )))
    }
    /// Label writes per call of [`ShopApi::labels`].
    fn labels_per_call(&self) -> usize;
    /// Applies label writes; per write, `None` when applied or the platform's refusal. Labels
    /// that start with `prefix` are Lifecycle's; anything else on the customer is the
    /// merchant's and is left alone.
    async fn labels(&self, ops: &[LabelOp], prefix: &str)
    -> Result<Vec<Option<String>>, CallError>;
    fn bulk_labels(&self) -> Option<&dyn BulkLabels> {
        None
    }
    /// Creates a personal discount code, restricted as narrowly as the platform allows.
    async fn create_code(&self, code: &NewCode<'_>) -> Result<CreateOutcome, CallError>;
    /// Sets fields on the customer (the code and its expiry, for the shop's own emails);
    /// `Some(message)` when the platform refused them.
    async fn set_customer_fields(
        &self,
        customer: &str,
        fields: &[CustomerField],
    ) -> Result<Option<String>, CallError>;
    /// Removes the app from the shop, where the platform lets an app do that itself.
    async fn uninstall(&self) -> Result<Removal, CallError>;
}

/// What asking the platform to remove the app came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The platform removed the app; its own uninstall notice may still follow.
    Removed,
    /// The platform has no call for it: the merchant removes the app there, as this says.
    ByMerchant(&'static str),
}

/// A verified webhook delivery, ready for the inbox.
#[derive(Debug)]
pub struct Verified {
    pub shop_key: String,
    pub topic: String,
    /// The platform's delivery id: the inbox's deduplication key.
    pub delivery_id: String,
    pub event_id: Option<String>,
    pub api_version: Option<String>,
    pub triggered_at: Option<DateTime<Utc>>,
    /// Privacy requests still apply to a shop that has uninstalled.
    pub applies_when_uninstalled: bool,
}

/// Why a webhook was refused before anything was stored.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Missing or wrong signature: 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// Missing header or malformed value: 400.
    #[error("{0}")]
    Malformed(String),
}

/// A stored delivery that cannot become events (it will not be retried).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Why installing by a session token did not complete.
#[derive(Debug, thiserror::Error)]
pub enum InstallRefused {
    /// The platform refused to exchange the token (no such shop, the app is not installed).
    #[error("{0}")]
    Refused(String),
    /// The shop's grant does not cover what the app needs.
    #[error("{0}")]
    Forbidden(String),
    /// The platform could not be reached or answered an error; trying again may work.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// The admin's view of an embedded platform admin.
pub struct Embedding {
    /// Markup for the page head that lets a page ask the platform for a session token
    /// (`window.lifecycleToken()` returns a promise of one).
    pub head: maud::Markup,
}

/// A platform that shows an app only recent orders: every lifetime figure is computed on the
/// last `days` days and is partial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLimit {
    pub days: u32,
    /// What the merchant can do about it, in the platform's words.
    pub remedy: String,
}

/// One shop platform.
#[async_trait::async_trait]
pub trait Platform: Send + Sync + 'static {
    /// The name in URLs (`/auth/{name}/...`, `/webhooks/{name}`), shop rows and inbox rows.
    fn name(&self) -> &'static str;
    fn capabilities(&self) -> &Capabilities;
    /// The shop key as the platform names shops, normalised; None for anything else.
    fn normalize_shop(&self, raw: &str) -> Option<String>;
    /// Registers the platform's install routes.
    fn routes(self: Arc<Self>, cfg: &mut web::ServiceConfig);
    /// Verifies a webhook on its raw bytes.
    fn verify_webhook(&self, req: &HttpRequest, body: &[u8]) -> Result<Verified, WebhookError>;
    /// Turns a stored delivery into canonical events.
    fn decode(&self, topic: &str, body: &[u8]) -> Result<Vec<Event>, DecodeError>;
    /// A client of an installed shop's API.
    async fn api<'a>(&'a self, shop_id: i64) -> Result<Box<dyn ShopApi + 'a>, TokenError>;
    /// The shop key a platform session token names, when the platform issues them.
    fn session_token_shop(&self, _token: &str) -> Option<Result<String, String>> {
        None
    }
    /// Installs (or re-authorises) the shop a session token names by exchanging the token for
    /// an access token, as a platform with managed install expects of the app's first embedded
    /// load: the platform installed the app without calling it. None when the platform has no
    /// such grant. The token must already have been verified (`session_token_shop`).
    async fn install_by_session_token(&self, _token: &str) -> Option<Result<(), InstallRefused>> {
        None
    }
    /// How the admin runs inside the platform's own admin, when it does.
    fn embedding(&self) -> Option<Embedding> {
        None
    }
    /// The origins that may frame the admin pages of `shop` (a CSP `frame-ancestors` source
    /// list), when the platform embeds the admin; None: only the app itself.
    fn frame_ancestors(&self, _shop: &str) -> Option<String> {
        None
    }
    /// How much order history a shop's grant (`granted`, its scopes as stored at install)
    /// shows the app, when the platform holds some of it back.
    fn history_limit(&self, _granted: &str) -> Option<HistoryLimit> {
        None
    }
    /// The platform as its own type, for code that knows which platform it holds (its own
    /// tests and tools).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// The registered platforms.
#[derive(Clone, Default)]
pub struct Platforms(Vec<Arc<dyn Platform>>);

impl Platforms {
    pub fn register(&mut self, platform: Arc<dyn Platform>) {
        self.0.push(platform);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Platform>> {
        self.0.iter().find(|p| p.name() == name)
    }

    /// The registered platform of type `P`.
    pub fn find<P: Platform>(&self) -> Option<&P> {
        self.0.iter().find_map(|p| p.as_any().downcast_ref::<P>())
    }

    pub fn all(&self) -> &[Arc<dyn Platform>] {
        &self.0
    }

    /// The first registered platform: the default of commands that name a shop.
    pub fn default_name(&self) -> &'static str {
        self.0.first().map_or("", |p| p.name())
    }

    /// The platform of a stored shop.
    pub async fn of_shop(&self, db: &Db, shop_id: i64) -> Result<&Arc<dyn Platform>, TokenError> {
        let shop = crate::store::shops::get(db, shop_id)
            .await?
            .ok_or_else(|| TokenError::NotInstalled(shop_id.to_string()))?;
        self.get(&shop.platform)
            .ok_or_else(|| TokenError::UnknownPlatform(shop.platform.clone()))
    }

    /// A client of the shop's API, through its platform.
    pub async fn api<'a>(
        &'a self,
        db: &Db,
        shop_id: i64,
    ) -> Result<Box<dyn ShopApi + 'a>, TokenError> {
        self.of_shop(db, shop_id).await?.api(shop_id).await
    }
}

/// Where the app reaches a platform: the real origin, or a configured one (the sandbox) to
/// which the same requests go.
pub fn origin_or(configured: Option<&str>, real: &str) -> String {
    configured.unwrap_or(real).trim_end_matches('/').to_string()
}

/// A request's query string as pairs.
pub fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// A request header's trimmed, non-empty text.
pub fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Whether this app's public URL is HTTPS (cookies are then `Secure`).
pub fn secure(env: &Env) -> bool {
    env.app_url.starts_with("https://")
}

/// The admin's session cookie (outside the platform's own admin: sandbox, local use).
pub const SESSION_COOKIE: &str = "lifecycle_session";
const SESSION_LABEL: &str = "session";
pub const SESSION_TTL_HOURS: i64 = 12;

/// The signed session cookie for a merchant of `shop` on `platform`, set after an install;
/// signed with the app's own session key.
pub fn session_cookie(
    env: &Env,
    platform: &dyn Platform,
    shop: &str,
) -> actix_web::cookie::Cookie<'static> {
    use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
    let value = crate::signed::sign_expiring(
        &env.session_keys[0],
        SESSION_LABEL,
        &format!("{}/{shop}", platform.name()),
        Utc::now() + chrono::Duration::hours(SESSION_TTL_HOURS),
    );
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(secure(env))
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::hours(SESSION_TTL_HOURS))
        .finish()
}

/// The (platform, shop) of a valid session cookie, signed with one of the app's session keys
/// (the signature covers the platform's name too).
pub fn read_session(
    platforms: &Platforms,
    keys: &[String],
    value: &str,
    now: DateTime<Utc>,
) -> Option<(String, String)> {
    let payload = crate::signed::verify_expiring(keys, SESSION_LABEL, value, now)?;
    let (name, shop) = payload.split_once('/')?;
    platforms.get(name)?;
    Some((name.to_string(), shop.to_string()))
}

/// One platform's app credentials and where its API is, as the demo and a sandbox set them.
pub struct AppCredentials<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a mut Option<String>,
    pub api_origin: &'a mut Option<String>,
}
