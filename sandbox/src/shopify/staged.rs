//! Staged uploads for bulk mutations. `stagedUploadsCreate` hands out a target on the sandbox
//! itself, with the form parameters a storage bucket's signed POST policy carries; the upload
//! endpoint takes the multipart POST (every parameter, then `file`), checks the parameters are
//! the ones issued, streams the file to the temp directory up to Shopify's 100 MB limit, and
//! answers as the bucket would. `bulkOperationRunMutation` then names the file by its `key`.

pub use super::shop::Staged;
use super::shop::{ResultFile, ShopifyShop, create_temp};
use crate::state::{Shop, State};
use actix_multipart::Multipart;
use actix_web::{HttpResponse, web};
use base64::Engine;
use chrono::{Duration, Utc};
use futures_util::StreamExt;
use serde_json::json;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Shopify's limit on a bulk mutation's variables file (reference §3.4).
pub const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;

/// Targets a shop keeps; older ones (and their files) go, as the bucket's objects expire.
pub const KEPT_UPLOADS: usize = 20;

/// A form field other than the file is a short string; more is not a form we issued.
const MAX_FIELD_BYTES: usize = 16 * 1024;

/// The parameter that names the upload, and the `stagedUploadPath` of the bulk mutation.
pub const KEY: &str = "key";

/// What `stagedUploadsCreate` returns for one input.
pub struct Target {
    pub url: String,
    pub resource_url: String,
    pub params: Vec<(String, String)>,
}

fn upload_url(state: &State) -> String {
    format!("{}/_sandbox/staged_uploads/", state.base_url())
}

/// Issues a target for `filename` and remembers its parameters.
pub fn issue(state: &State, shop: &Shop, filename: &str, mime_type: &str) -> Target {
    let name: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let key = format!(
        "tmp/{}/bulk/{}/{name}",
        shop.info.domain,
        uuid::Uuid::new_v4()
    );
    let now = Utc::now();
    let policy = json!({
        "conditions": [
            {"key": key},
            {"Content-Type": mime_type},
            ["content-length-range", 1, MAX_UPLOAD_BYTES],
        ],
        "expiration": (now + Duration::days(1)).to_rfc3339(),
    });
    let signature: String = (0..4)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    let date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let params: Vec<(String, String)> = [
        ("Content-Type", mime_type.to_string()),
        ("success_action_status", "201".to_string()),
        ("acl", "private".to_string()),
        (KEY, key.clone()),
        ("x-goog-date", date.clone()),
        (
            "x-goog-credential",
            format!("sandbox-uploads/{}/auto/storage/goog4_request", &date[..8]),
        ),
        ("x-goog-algorithm", "GOOG4-RSA-SHA256".to_string()),
        ("x-goog-signature", signature),
        (
            "policy",
            base64::engine::general_purpose::STANDARD.encode(policy.to_string()),
        ),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    let mut staged = ShopifyShop::of(shop).staged.lock();
    if staged.len() >= KEPT_UPLOADS {
        staged.remove(0);
    }
    staged.push(Staged {
        key: key.clone(),
        params: params.clone(),
        file: None,
    });
    let url = upload_url(state);
    Target {
        resource_url: format!("{url}{key}"),
        url,
        params,
    }
}

/// Takes the uploaded file named by `key` for a bulk mutation; it is used once.
pub fn take(shop: &Shop, key: &str) -> Option<Arc<ResultFile>> {
    let mut staged = ShopifyShop::of(shop).staged.lock();
    let at = staged
        .iter()
        .position(|s| s.key == key && s.file.is_some())?;
    staged.remove(at).file
}

/// The bucket's error document.
fn refuse(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/xml; charset=UTF-8")
        .body(format!(
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ))
}

fn bad(message: &str) -> HttpResponse {
    refuse(
        actix_web::http::StatusCode::BAD_REQUEST,
        "InvalidArgument",
        message,
    )
}

fn forbidden(message: &str) -> HttpResponse {
    refuse(
        actix_web::http::StatusCode::FORBIDDEN,
        "AccessDenied",
        message,
    )
}

/// Why the fields sent before `file` do not match an issued target.
enum Mismatch {
    NoKey,
    Refused(String),
}

/// Checks the fields sent before `file` against the target they name; returns its shop.
fn check_fields(state: &State, fields: &[(String, String)]) -> Result<Arc<Shop>, Mismatch> {
    let unknown = || Mismatch::Refused("No staged upload has this key.".into());
    let key = fields
        .iter()
        .find(|(n, _)| n == KEY)
        .map(|(_, v)| v.as_str())
        .ok_or(Mismatch::NoKey)?;
    let shop = key
        .split('/')
        .nth(1)
        .and_then(|domain| state.shop(domain))
        .ok_or_else(unknown)?;
    let staged = shop
        .flavour_as::<ShopifyShop>()
        .ok_or_else(unknown)?
        .staged
        .lock();
    let target = staged.iter().find(|s| s.key == key).ok_or_else(unknown)?;
    if target.file.is_some() {
        return Err(Mismatch::Refused(
            "This staged upload has been used.".into(),
        ));
    }
    for (name, value) in &target.params {
        let sent = fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        if sent != Some(value) {
            return Err(Mismatch::Refused(format!(
                "Invalid policy: the field '{name}' is missing or does not match."
            )));
        }
    }
    drop(staged);
    Ok(shop)
}

/// `POST /_sandbox/staged_uploads/`: the multipart upload of a staged target.
pub async fn upload(state: web::Data<Arc<State>>, mut form: Multipart) -> HttpResponse {
    let mut fields: Vec<(String, String)> = Vec::new();
    while let Some(field) = form.next().await {
        let mut field = match field {
            Ok(f) => f,
            Err(e) => return bad(&format!("Malformed multipart body: {e}")),
        };
        let name = field.name().unwrap_or_default().to_string();
        if name != "file" {
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                match chunk {
                    Ok(c) if value.len() + c.len() <= MAX_FIELD_BYTES => {
                        value.extend_from_slice(&c)
                    }
                    Ok(_) => return bad(&format!("The field '{name}' is too long.")),
                    Err(e) => return bad(&format!("Malformed multipart body: {e}")),
                }
            }
            fields.push((name, String::from_utf8_lossy(&value).into_owned()));
            continue;
        }
        // The policy fields come first, so the target is known before the first byte is kept.
        let shop = match check_fields(&state, &fields) {
            Ok(s) => s,
            Err(Mismatch::NoKey) => return bad("Bucket POST must contain a field named 'key'."),
            Err(Mismatch::Refused(why)) => return forbidden(&why),
        };
        let key = fields
            .iter()
            .find(|(n, _)| n == KEY)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let (mut stored, file) = match create_temp("upload", &shop.info.domain, 0) {
            Ok(f) => f,
            Err(e) => {
                return refuse(
                    actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    &format!("cannot store the upload: {e}"),
                );
            }
        };
        let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
        let mut size = 0u64;
        while let Some(chunk) = field.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => return bad(&format!("Malformed multipart body: {e}")),
            };
            size += chunk.len() as u64;
            if size > MAX_UPLOAD_BYTES {
                return bad(
                    "EntityTooLarge: your proposed upload exceeds the maximum allowed size.",
                );
            }
            if let Err(e) = out.write_all(&chunk).await {
                return refuse(
                    actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    &format!("cannot store the upload: {e}"),
                );
            }
        }
        if let Err(e) = out.flush().await {
            return refuse(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &format!("cannot store the upload: {e}"),
            );
        }
        stored.grew(size);
        let status = fields
            .iter()
            .find(|(n, _)| n == "success_action_status")
            .map(|(_, v)| v.clone());
        {
            let mut staged = ShopifyShop::of(&shop).staged.lock();
            match staged.iter_mut().find(|s| s.key == key) {
                Some(s) => s.file = Some(Arc::new(stored)),
                // Expired while the file was coming in.
                None => return forbidden("No staged upload has this key."),
            }
        }
        return match status.as_deref() {
            Some("201") => HttpResponse::Created()
                .content_type("application/xml; charset=UTF-8")
                .body(format!(
                    "<?xml version='1.0' encoding='UTF-8'?><PostResponse><Location>{}{key}</Location><Key>{key}</Key></PostResponse>",
                    upload_url(&state)
                )),
            _ => HttpResponse::NoContent().finish(),
        };
    }
    bad("Bucket POST must contain a field named 'file'.")
}
