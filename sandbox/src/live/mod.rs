//! Live traffic at a steady rate per shop: [`mirror`] decides and applies each event, this
//! module runs it and sends the resulting webhooks.

pub mod mirror;

pub use mirror::{LiveMirror, LiveShop};

use crate::state::{Shop, State};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

/// Starts (or restarts) live traffic on `shop` at `rate` events per second; with `limit`, it
/// stops by itself after that many natural events.
pub fn start(state: Arc<State>, shop: Arc<Shop>, rate: f64, limit: Option<u64>) {
    stop(&shop);
    let period = Duration::from_secs_f64(1.0 / rate);
    let task_shop = shop.clone();
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut left = limit;
        loop {
            if left == Some(0) {
                break;
            }
            left = left.map(|n| n - 1);
            tick.tick().await;
            let now = Utc::now();
            let result = {
                let mut mirror = task_shop.live_mirror.lock();
                let Some(m) = mirror.as_mut() else { break };
                m.step(task_shop.as_ref(), now)
            };
            match result {
                Ok(changes) => state.emit(&task_shop, changes),
                // The control API may have changed a record the generator still remembers.
                Err(e) => tracing::debug!(error = %e, "live event skipped"),
            }
        }
    });
    *shop.live.lock() = Some(handle);
}

/// Whether live traffic is running on `shop` (a limited run that finished is not).
pub fn running(shop: &Shop) -> bool {
    shop.live.lock().as_ref().is_some_and(|h| !h.is_finished())
}

pub fn stop(shop: &Shop) -> bool {
    match shop.live.lock().take() {
        Some(h) => {
            h.abort();
            true
        }
        None => false,
    }
}
