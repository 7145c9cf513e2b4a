//! Starting and stopping the sandbox: seeds the shops, builds the routes, serves HTTP.

use crate::config::SandboxConfig;
use crate::seed::{self, ShopSpec};
use crate::state::{AppSettings, Shop, State};
use crate::webhooks::delivery::Dispatcher;
use crate::{control, graphql, live, oauth};
use actix_web::{App, HttpServer, web};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct Sandbox {
    state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/_sandbox")
            .route("/shops", web::get().to(control::list_shops))
            .route("/shops", web::post().to(control::create_shop))
            .route("/app", web::get().to(control::get_app))
            .route("/app", web::post().to(control::set_app))
            .route("/faults", web::get().to(control::get_faults))
            .route("/faults", web::put().to(control::put_faults))
            .route("/bulk/{shop}/{file}", web::get().to(control::bulk_result))
            .route("/staged_uploads/", web::post().to(crate::staged::upload))
            .route(
                "/shops/{shop}/install_url",
                web::get().to(control::shop_install_url),
            )
            .route(
                "/shops/{shop}/session_token",
                web::post().to(control::session_token),
            )
            .route("/shops/{shop}/plan", web::post().to(control::set_plan))
            .route("/shops/{shop}/live", web::post().to(control::start_live))
            .route("/shops/{shop}/live", web::delete().to(control::stop_live))
            .route("/shops/{shop}/live", web::get().to(control::live_status))
            .route("/shops/{shop}/trigger", web::post().to(control::trigger))
            .route(
                "/shops/{shop}/deliveries",
                web::get().to(control::deliveries),
            )
            .route(
                "/shops/{shop}/deliveries/summary",
                web::get().to(control::delivery_summary),
            )
            .route("/shops/{shop}/requests", web::get().to(control::requests))
            .route(
                "/shops/{shop}/customers",
                web::get().to(control::dump_customers),
            )
            .route(
                "/shops/{shop}/customers",
                web::post().to(control::create_customer),
            )
            .route(
                "/shops/{shop}/customers/{id}",
                web::patch().to(control::patch_customer),
            )
            .route(
                "/shops/{shop}/customers/{id}",
                web::delete().to(control::delete_customer),
            )
            .route(
                "/shops/{shop}/customers/{id}/orders",
                web::post().to(control::create_order),
            )
            .route("/shops/{shop}/orders", web::get().to(control::dump_orders))
            .route(
                "/shops/{shop}/orders/{id}",
                web::delete().to(control::delete_order),
            )
            .route("/shops/{shop}/digest", web::get().to(control::digest))
            .route(
                "/shops/{shop}/orders/{id}/refund",
                web::post().to(control::refund_order),
            )
            .route(
                "/shops/{shop}/orders/{id}/cancel",
                web::post().to(control::cancel_order),
            )
            .route(
                "/shops/{shop}/checkouts",
                web::post().to(control::create_checkout),
            )
            .route(
                "/shops/{shop}/checkouts",
                web::get().to(control::dump_checkouts),
            )
            .route(
                "/shops/{shop}/discount_codes",
                web::get().to(control::dump_discounts),
            )
            .route(
                "/shops/{shop}/metafields",
                web::get().to(control::dump_metafields),
            )
            .route(
                "/shops/{shop}/webhooks",
                web::get().to(control::dump_webhooks),
            ),
    )
    // Ecwid: OAuth as my.ecwid.com serves it, the REST API as app.ecwid.com does.
    .route(
        "/api/oauth/authorize",
        web::get().to(crate::ecwid::oauth::authorize),
    )
    .route(
        "/api/oauth/token",
        web::get().to(crate::ecwid::oauth::token),
    )
    .route(
        "/api/oauth/token",
        web::post().to(crate::ecwid::oauth::token),
    )
    .route(
        "/api/v3/{store}/{tail:.*}",
        web::route().to(crate::ecwid::rest::handle),
    )
    .route(
        "/{shop}/admin/oauth/authorize",
        web::get().to(oauth::authorize),
    )
    .route(
        "/{shop}/admin/oauth/authorize",
        web::post().to(oauth::authorize_confirm),
    )
    .route(
        "/{shop}/admin/oauth/access_token",
        web::post().to(oauth::access_token),
    )
    .route(
        "/{shop}/admin/api/{version}/graphql.json",
        web::post().to(graphql::handle),
    );
}

/// Registers a freshly built shop and keeps the generator state for live traffic.
pub fn sandbox_shop(
    state: &State,
    built: (Shop, crate::generate::GenConfig, crate::generate::LiveSeed),
) -> Arc<Shop> {
    let (shop, config, from) = built;
    // A seed per shop so live traffic differs between shops.
    let live_seed = config.seed.wrapping_add(0x5eed);
    let mut mirror = live::LiveMirror::new(live_seed, &config, from);
    mirror.set_uplift(state.live_uplift);
    *shop.live_mirror.lock() = Some(mirror);
    let shop = Arc::new(shop);
    state
        .shops
        .write()
        .insert(shop.info.domain.clone(), shop.clone());
    shop
}

impl Sandbox {
    pub async fn start(cfg: SandboxConfig) -> anyhow::Result<Sandbox> {
        cfg.validate()?;
        let listener = std::net::TcpListener::bind(&cfg.bind)
            .map_err(|e| anyhow::anyhow!("cannot bind {}: {e}", cfg.bind))?;
        let addr = listener.local_addr()?;
        let schema = graphql::build_schema();
        let cost_model = graphql::cost::TypeMap::from_sdl(&schema.sdl());
        let state = Arc::new(State {
            app: RwLock::new(AppSettings {
                client_id: cfg.client_id.clone(),
                client_secret: cfg.client_secret.clone(),
                app_url: cfg
                    .app_url
                    .as_ref()
                    .map(|u| u.trim_end_matches('/').to_string()),
                scopes: cfg.scopes.clone(),
                auto_approve: cfg.auto_approve,
                ecwid_client_id: cfg.ecwid_client_id.clone(),
                ecwid_client_secret: cfg.ecwid_client_secret.clone(),
                ecwid_scopes: cfg.ecwid_scopes.clone(),
            }),
            faults: RwLock::new(Default::default()),
            shops: RwLock::new(BTreeMap::new()),
            base_url: RwLock::new(format!("http://{addr}")),
            default_plan: cfg.plan,
            dispatcher: Dispatcher::new(cfg.time_scale, cfg.delivery_concurrency),
            schema,
            cost_model,
            live_rate: cfg.live_rate,
            live_uplift: cfg.live_uplift,
            seed: cfg.seed,
            next_store_id: std::sync::atomic::AtomicU64::new(crate::ecwid::FIRST_STORE_ID),
            ecwid_requests_per_minute: cfg.ecwid_requests_per_minute,
        });
        let end = cfg.history_end.unwrap_or_else(crate::default_history_end);
        for (i, name) in cfg.shop_names().into_iter().enumerate() {
            let spec = ShopSpec {
                name,
                customers: cfg.customers,
                seed: cfg.seed.wrapping_add(i as u64),
                plan: cfg.plan,
                history_days: cfg.history_days,
                end,
                index: i as u64,
            };
            let mut built = tokio::task::spawn_blocking(move || seed::build_shop(&spec)).await??;
            if cfg.platform == crate::ecwid::Platform::Ecwid {
                let id = crate::ecwid::next_store_id(&state);
                crate::ecwid::make_ecwid(&mut built.0, id, cfg.ecwid_plan);
            }
            sandbox_shop(&state, built);
        }
        let app_state = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                // Large bulk queries and JSON bodies are fine here; Shopify allows big documents too.
                .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
                .configure(routes)
        })
        .workers(2)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        if let Some(rate) = cfg.live_rate {
            for shop in state.shops.read().values() {
                live::start(state.clone(), shop.clone(), rate, None);
            }
        }
        Ok(Sandbox {
            state,
            handle,
            addr,
            task,
        })
    }

    pub fn base_url(&self) -> String {
        self.state.base_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn shop_domains(&self) -> Vec<String> {
        self.state.shops.read().keys().cloned().collect()
    }

    /// Shared state, for embedding (e.g. the CLI printing a summary).
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    pub async fn shutdown(self) {
        for shop in self.state.shops.read().values() {
            live::stop(shop);
            // Result files live in the temp dir; do not leave them behind a stopped sandbox.
            crate::bulk::discard_results(shop);
            shop.staged.lock().clear();
        }
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}
