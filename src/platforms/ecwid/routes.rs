//! Install routes: `/auth/ecwid/install` (a manual install: to Ecwid's authorize page) and
//! `/auth/ecwid/callback` (where Ecwid sends the merchant back with a code, also from the App
//! Market).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, get, web};

use super::Ecwid;
use super::auth::InstallError;
use crate::platforms::{query_pairs, session_cookie};

pub fn configure(ecwid: Arc<Ecwid>, cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::from(ecwid))
        .service(install)
        .service(callback);
}

impl ResponseError for InstallError {
    fn status_code(&self) -> StatusCode {
        match self {
            InstallError::BadRequest(_) => StatusCode::BAD_REQUEST,
            InstallError::Forbidden(_) => StatusCode::FORBIDDEN,
            InstallError::Upstream(_) => StatusCode::SERVICE_UNAVAILABLE,
            InstallError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            InstallError::Db(e) => {
                tracing::error!(error = %e, "install failed");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        HttpResponse::build(self.status_code()).json(serde_json::json!({ "error": message }))
    }
}

#[get("/auth/ecwid/install")]
async fn install(ecwid: web::Data<Ecwid>) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", ecwid.authorize_url()))
        .finish()
}

#[get("/auth/ecwid/callback")]
async fn callback(req: HttpRequest, ecwid: web::Data<Ecwid>) -> Result<HttpResponse, InstallError> {
    let q = query_pairs(&req);
    let param = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    if let Some(error) = param("error") {
        return Err(InstallError::Forbidden(format!(
            "the install was not approved ({error})"
        )));
    }
    let code = param("code")
        .filter(|c| !c.is_empty() && c.len() <= 512)
        .ok_or_else(|| InstallError::BadRequest("`code` is missing".into()))?;
    let shop = ecwid.complete_install(code).await?;
    Ok(HttpResponse::Found()
        .cookie(session_cookie(&ecwid.env, ecwid.as_ref(), &shop.domain))
        .insert_header(("Location", format!("/admin?shop={}", shop.domain)))
        .finish())
}
