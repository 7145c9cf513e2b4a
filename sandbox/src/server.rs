//! Starting and stopping the sandbox: seeds the shops, builds the routes, serves HTTP.

use crate::config::SandboxConfig;
use crate::seed::{self, ShopSpec};
use crate::state::{AppSettings, Shop, State};
use crate::webhooks::delivery::Dispatcher;
use crate::{control, flavours, live};
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
    // The flavours' own routes first: some sit under `/_sandbox/`, which the scope would take.
    flavours::routes(cfg);
    cfg.service(
        web::scope("/_sandbox")
            .route("/shops", web::get().to(control::list_shops))
            .route("/shops", web::post().to(control::create_shop))
            .route("/app", web::get().to(control::get_app))
            .route("/app", web::post().to(control::set_app))
            .route("/faults", web::get().to(control::get_faults))
            .route("/faults", web::put().to(control::put_faults))
            .route(
                "/shops/{shop}/install_url",
                web::get().to(control::shop_install_url),
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
                "/shops/{shop}/checkouts/{id}/complete",
                web::post().to(control::complete_checkout),
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
    );
}

/// Registers a freshly built shop and keeps the generator state for live traffic.
pub fn sandbox_shop(
    state: &State,
    built: (Shop, crate::generate::GenConfig, crate::generate::LiveSeed),
) -> Arc<Shop> {
    state.add_shop(built)
}

impl Sandbox {
    pub async fn start(cfg: SandboxConfig) -> anyhow::Result<Sandbox> {
        cfg.validate()?;
        let listener = std::net::TcpListener::bind(&cfg.bind)
            .map_err(|e| anyhow::anyhow!("cannot bind {}: {e}", cfg.bind))?;
        let addr = listener.local_addr()?;
        let mut flavour_map = BTreeMap::new();
        let mut apps = BTreeMap::new();
        let mut prefixes = BTreeMap::new();
        for name in flavours::NAMES {
            let f = flavours::build(name, cfg.settings.get(name)).map_err(anyhow::Error::msg)?;
            let app = cfg
                .app(name)
                .expect("every flavour has default credentials");
            apps.insert(name.to_string(), app);
            prefixes.insert(name.to_string(), f.app_prefix());
            flavour_map.insert(name, f);
        }
        let flavour = flavour_map
            .get(cfg.platform.as_str())
            .cloned()
            .ok_or_else(|| anyhow::anyhow!(flavours::unknown(&cfg.platform)))?;
        let state = Arc::new(State {
            app: RwLock::new(AppSettings {
                app_url: cfg
                    .app_url
                    .as_ref()
                    .map(|u| u.trim_end_matches('/').to_string()),
                auto_approve: cfg.auto_approve,
                apps,
                prefixes,
            }),
            faults: RwLock::new(Default::default()),
            shops: RwLock::new(BTreeMap::new()),
            base_url: RwLock::new(format!("http://{addr}")),
            default_plan: cfg.plan,
            dispatcher: Dispatcher::new(cfg.time_scale, cfg.delivery_concurrency),
            flavours: flavour_map,
            default_flavour: flavours::DEFAULT,
            live_rate: cfg.live_rate,
            live_uplift: cfg.live_uplift,
            seed: cfg.seed,
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
            flavour
                .adopt(&state, &mut built.0, None)
                .map_err(anyhow::Error::msg)?;
            state.add_shop(built);
        }
        let app_state = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                // Large bulk queries and JSON bodies are fine here; the platforms allow big documents too.
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
            shop.flavour.shutdown(shop);
        }
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}
