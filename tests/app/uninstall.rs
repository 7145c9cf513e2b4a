//! `lifecycle uninstall`: the app removes itself from a shop. Shopify lets an app do that
//! (`appUninstall`: the grant is revoked and `app/uninstalled` follows); Ecwid leaves it to
//! the merchant, which the outcome says. Either way the shop's credentials are erased and its
//! work cancelled here, and nothing reaches the shop afterwards.

use lifecycle::cli::uninstall::uninstall;
use lifecycle::platforms::Removal;
use lifecycle::store::jobs::NewJob;

use crate::common::*;
use crate::every_platform;

async fn the_app_removes_itself(backend: Backend, platform: Platform) {
    let Some(env) = env_on(backend, platform).await else {
        return;
    };
    env.install().await;
    let shop = env.installed_shop().await;
    let db = &env.app.state.db;
    wait_work_done(db, shop.id).await;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    lifecycle::store::jobs::enqueue(db, NewJob::new("segment").shop(shop.id).run_at(later))
        .await
        .unwrap();
    let sandbox_installed = || async {
        env.sandbox_get("/_sandbox/shops").await.as_array().unwrap()[0]["installed"]
            .as_bool()
            .unwrap()
    };
    assert!(sandbox_installed().await);

    let done = uninstall(&env.app.state, shop.id).await.unwrap();
    match env.platform {
        "ecwid" => {
            assert!(
                matches!(done.removal, Some(Removal::ByMerchant(how)) if how.contains("My Apps")),
                "{done:?}"
            );
            assert!(
                sandbox_installed().await,
                "only the merchant removes an Ecwid app"
            );
        }
        _ => {
            assert_eq!(done.removal, Some(Removal::Removed));
            assert!(!sandbox_installed().await, "Shopify removed the app");
        }
    }
    assert!(
        done.cancelled_jobs >= 1,
        "the future segment run is cancelled: {done:?}"
    );
    let gone = env.installed_shop().await;
    assert_eq!(gone.status, "uninstalled");
    assert!(gone.credentials.is_none(), "credentials erased");
    let queued = query_all(
        db,
        "SELECT COUNT(*) AS n FROM jobs WHERE shop_id = ? AND state = 'queued'",
        vec![shop.id.into()],
    )
    .await[0]
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(queued, 0, "no work is left for the shop");
    // Shopify's own notice of the uninstall arrives and changes nothing more.
    wait_work_done(db, shop.id).await;
    assert_eq!(env.installed_shop().await.status, "uninstalled");
    // There is nothing left to remove with.
    let again = uninstall(&env.app.state, shop.id).await.unwrap_err();
    assert!(
        again.to_string().contains("no usable credentials"),
        "{again:#}"
    );
    env.shutdown().await;
}
every_platform!(the_app_removes_itself);
