//! Shopify's settings (`LIFECYCLE_SHOPIFY_*`).

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct ShopifyConfig {
    /// Shopify app client id (API key).
    #[arg(
        id = "shopify_client_id",
        long = "shopify-client-id",
        env = "LIFECYCLE_SHOPIFY_CLIENT_ID",
        default_value = "lifecycle-local"
    )]
    pub client_id: String,

    /// Shopify app client secret. Generated per process when unset.
    #[arg(
        id = "shopify_client_secret",
        long = "shopify-client-secret",
        env = "LIFECYCLE_SHOPIFY_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,

    /// The previous client secret, still accepted for webhooks and session tokens after a rotation.
    #[arg(
        id = "shopify_previous_client_secret",
        long = "shopify-previous-client-secret",
        env = "LIFECYCLE_SHOPIFY_PREVIOUS_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub previous_client_secret: Option<String>,

    /// Where Shopify shop URLs point. Unset: the real `https://{shop}`. Set (e.g. to the sandbox,
    /// `http://127.0.0.1:9000`): the same requests go to `{origin}/{shop}/...`.
    #[arg(
        id = "shopify_api_origin",
        long = "shopify-api-origin",
        env = "LIFECYCLE_SHOPIFY_API_ORIGIN"
    )]
    pub api_origin: Option<String>,

    /// Shopify Admin API version used for requests and webhook subscriptions.
    #[arg(
        id = "shopify_api_version",
        long = "shopify-api-version",
        env = "LIFECYCLE_SHOPIFY_API_VERSION",
        default_value = "2026-07"
    )]
    pub api_version: String,
}

impl crate::platforms::AppSettings for ShopifyConfig {
    fn app_credentials(&mut self) -> crate::platforms::AppCredentials<'_> {
        crate::platforms::AppCredentials {
            client_id: &self.client_id,
            client_secret: &mut self.client_secret,
            api_origin: &mut self.api_origin,
        }
    }
}
