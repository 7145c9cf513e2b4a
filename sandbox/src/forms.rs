//! Request bodies as the platforms' token endpoints take them.

use actix_web::HttpRequest;
use serde_json::Value;
use std::collections::HashMap;

/// Reads form or JSON bodies into flat string pairs.
pub fn body_params(req: &HttpRequest, body: &[u8]) -> Result<HashMap<String, String>, String> {
    let is_json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
        let obj = v.as_object().ok_or("the JSON body must be an object")?;
        Ok(obj
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect())
    } else {
        Ok(url::form_urlencoded::parse(body).into_owned().collect())
    }
}
