//! The merchant's admin: server-rendered pages (`/admin/...`), the JSON API behind them
//! (`/api/...`) and its OpenAPI document (`/api/openapi.json`). Every request is scoped to the
//! shop of its session (App Bridge session token or the signed cookie set after install).

pub mod api;
pub mod auth;
pub mod charts;
pub mod data;
pub mod export;
pub mod frame;
pub mod home;
pub mod login;
pub mod model;
pub mod openapi;
pub mod pages;
pub mod reads;
pub mod results;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Before `api`: its `/api/customers/{id}` would otherwise take `export.csv` as an id.
    export::configure(cfg);
    api::configure(cfg);
    openapi::configure(cfg);
    model::configure(cfg);
    pages::configure(cfg);
    home::configure(cfg);
    login::configure(cfg);
    results::configure(cfg);
}
