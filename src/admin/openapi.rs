//! The OpenAPI document of the admin API, served at `/api/openapi.json`: the paths and schemas
//! come from the handlers' annotations in `api.rs` (and `results.rs`, `model.rs`, `export.rs`,
//! merged in); this adds the two ways to authenticate. The top of the admin: it reads the
//! handler modules' docs, none of them reads it.

use actix_web::{HttpResponse, get, web};
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(openapi_json);
}

#[get("/api/openapi.json")]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// The two ways to authenticate, as security schemes of the document.
pub struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("App Bridge session token (HS256, one minute)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::platforms::SESSION_COOKIE,
            ))),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = super::api::ApiDoc::openapi();
    doc.merge(super::results::ResultsApi::openapi());
    doc.merge(super::model::ModelDoc::openapi());
    doc.merge(super::export::ExportDoc::openapi());
    Security.modify(&mut doc);
    doc
}
