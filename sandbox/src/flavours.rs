//! The flavours the sandbox serves, listed once: the only module of the generic core that names
//! them. Everything else reaches a flavour through `state::Flavour` / `state::ShopFlavour`.

use crate::state::{AppCredentials, Flavour, FlavourSettings};
use crate::{ecwid, shopify};
use actix_web::web;
use std::sync::Arc;

/// Every flavour's name; the first is the default.
pub const NAMES: [&str; 2] = [shopify::NAME, ecwid::NAME];

/// The flavour of seeded shops unless configured.
pub const DEFAULT: &str = NAMES[0];

/// Whether `name` is a flavour (lower case).
pub fn known(name: &str) -> bool {
    NAMES.contains(&name)
}

/// The error for a name that is no flavour.
pub fn unknown(name: &str) -> String {
    format!("unknown platform '{name}' ({})", NAMES.join(", "))
}

/// Flavour `name`'s app credentials unless configured.
pub fn default_app(name: &str) -> Option<AppCredentials> {
    match name {
        shopify::NAME => Some(shopify::default_app()),
        ecwid::NAME => Some(ecwid::default_app()),
        _ => None,
    }
}

/// Builds flavour `name` for a run from its settings (its own type; absent: its defaults).
pub fn build(name: &str, settings: Option<&FlavourSettings>) -> Result<Arc<dyn Flavour>, String> {
    fn get<T: Clone + Default + 'static>(
        name: &str,
        s: Option<&FlavourSettings>,
    ) -> Result<T, String> {
        match s {
            None => Ok(T::default()),
            Some(s) => {
                s.0.downcast_ref::<T>()
                    .cloned()
                    .ok_or_else(|| format!("the settings given for '{name}' are not its settings"))
            }
        }
    }
    match name {
        shopify::NAME => Ok(Arc::new(shopify::Shopify::new())),
        ecwid::NAME => Ok(Arc::new(ecwid::Ecwid::new(get::<ecwid::Settings>(
            name, settings,
        )?)?)),
        other => Err(unknown(other)),
    }
}

/// Every flavour's HTTP routes (registered before the control API's scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    shopify::routes(cfg);
    ecwid::routes(cfg);
}

/// `lifecycle sandbox` flags of every flavour.
#[derive(Debug, Clone, clap::Args)]
pub struct FlavourArgs {
    #[command(flatten)]
    pub shopify: shopify::ShopifyArgs,
    #[command(flatten)]
    pub ecwid: ecwid::EcwidArgs,
}

impl FlavourArgs {
    /// App credentials by flavour name.
    pub fn apps(&self) -> Vec<(&'static str, AppCredentials)> {
        vec![
            (shopify::NAME, self.shopify.app()),
            (ecwid::NAME, self.ecwid.app()),
        ]
    }

    /// Settings by flavour name (flavours without settings are absent).
    pub fn settings(&self) -> Result<Vec<(&'static str, FlavourSettings)>, String> {
        Ok(vec![(
            ecwid::NAME,
            FlavourSettings::new(self.ecwid.settings()?),
        )])
    }
}
