//! `/`: where a newcomer and the platform's admin arrive. A signed-in merchant (session cookie,
//! or a session token in `Authorization` or `id_token`) goes on to the admin with the same
//! query, so an embedded load stays embedded; anyone else gets a short page saying what
//! Lifecycle is and how to install it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use maud::html;

use super::auth;
use super::frame::{document, html_response, policy_before_session};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(home);
}

#[get("/")]
async fn home(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if auth::authenticate(&req, &state).await.is_ok() {
        let query = req.query_string();
        let to = if query.is_empty() {
            "/admin".to_string()
        } else {
            format!("/admin?{query}")
        };
        return HttpResponse::SeeOther()
            .insert_header(("Location", to))
            .insert_header(("Cache-Control", "no-store"))
            .finish();
    }
    let platforms: Vec<&str> = state.platforms.all().iter().map(|p| p.name()).collect();
    let body = html! {
        main class="page narrow" {
            div class="card" {
                h1 { "Lifecycle" }
                p {
                    "Lifecycle keeps a copy of a shop's customers and orders, works out where each "
                    "customer is in their lifecycle (RFM group, predicted lifetime value, churn risk, "
                    "loyalty tier) and writes the result back to the shop as customer tags (or groups) and "
                    "personal discount codes that the shop's own email, ads and checkout tools can use."
                }
                h2 { "Install it" }
                p {
                    "Merchants install Lifecycle from their shop's admin, through the platform's app "
                    "listing (" (platforms.join(", ")) "). After the install this address opens the "
                    "shop's Lifecycle admin."
                }
                p {
                    "To try it on a simulated shop on your own machine, run "
                    code { "lifecycle demo" } "."
                }
                p class="muted" { "Installed already? Open Lifecycle from your shop's admin to sign in." }
            }
        }
    };
    html_response(
        StatusCode::OK,
        document("Lifecycle", None, false, body),
        &policy_before_session(&req, &state),
    )
}
