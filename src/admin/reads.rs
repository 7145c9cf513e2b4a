//! What the admin pages and the JSON API both read for a request: the shop's stored settings
//! (as text, as a JSON object, and as the settings view with defaults filled in) and the
//! customer a path names. Answers are [`ApiError`]s, so a page and an API call refuse alike.

use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::data;
use crate::routes::ApiError;
use crate::settings::LoyaltySettings;
use crate::state::AppState;
use crate::store::shops;

/// A path id as a number, or a 400 naming what it should have been.
pub(super) fn parse_id(what: &str, id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::BadRequest(format!("{what} id `{id}` is not a number")))
}

/// The shop's customer at the path id; 400 for a non-number, 404 for another shop's.
pub(super) async fn customer_detail(
    state: &AppState,
    shop_id: i64,
    id: &str,
) -> Result<data::CustomerDetail, ApiError> {
    let id = parse_id("customer", id)?;
    data::customer(&state.db, shop_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no customer {id} in this shop")))
}

pub(super) async fn shop_settings(state: &AppState, shop_id: i64) -> Result<String, ApiError> {
    Ok(shops::get(&state.db, shop_id)
        .await?
        .map(|s| s.settings)
        .unwrap_or_default())
}

/// Reads the stored settings as a JSON object (anything else counts as empty).
pub(super) fn settings_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    /// The settings as stored (only what the merchant changed).
    #[schema(value_type = Object)]
    pub stored: Value,
    /// Every loyalty setting with its default filled in.
    #[schema(value_type = Object)]
    pub effective: Value,
    /// Why the stored settings are invalid, if they are.
    pub error: Option<String>,
}

pub fn settings_view(stored_text: &str) -> SettingsView {
    let stored = Value::Object(settings_object(stored_text));
    let (parsed, error) = match data::catalog_of(stored_text) {
        Ok((s, _)) => (s, None),
        Err(e) => (LoyaltySettings::default(), Some(e)),
    };
    let mut effective = json!({
        "segments": parsed.segments,
        "offers": parsed.offers,
        "tag_prefix": parsed.tag_prefix.as_str(),
        "dry_run": parsed.dry_run,
        "group_label": parsed.group_label,
    });
    for k in ["schedule", "cac"] {
        if let Some(v) = stored.get(k) {
            effective[k] = v.clone();
        }
    }
    SettingsView {
        stored,
        effective,
        error,
    }
}
