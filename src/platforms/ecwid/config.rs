//! Ecwid's settings (`LIFECYCLE_ECWID_*`).

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct EcwidConfig {
    /// Ecwid app client id.
    #[arg(
        id = "ecwid_client_id",
        long = "ecwid-client-id",
        env = "LIFECYCLE_ECWID_CLIENT_ID",
        default_value = "lifecycle-local"
    )]
    pub client_id: String,

    /// Ecwid app client secret (it also signs Ecwid's webhooks). Generated per process when unset.
    #[arg(
        id = "ecwid_client_secret",
        long = "ecwid-client-secret",
        env = "LIFECYCLE_ECWID_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,

    /// Where Ecwid's API and OAuth endpoints are. Unset: the real `https://app.ecwid.com` (API)
    /// and `https://my.ecwid.com` (OAuth). Set (e.g. to the sandbox), both go to this origin.
    #[arg(
        id = "ecwid_api_origin",
        long = "ecwid-api-origin",
        env = "LIFECYCLE_ECWID_API_ORIGIN"
    )]
    pub api_origin: Option<String>,
}

impl crate::platforms::AppSettings for EcwidConfig {
    fn app_credentials(&mut self) -> crate::platforms::AppCredentials<'_> {
        crate::platforms::AppCredentials {
            client_id: &self.client_id,
            client_secret: &mut self.client_secret,
            api_origin: &mut self.api_origin,
        }
    }
}
