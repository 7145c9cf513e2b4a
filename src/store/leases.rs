//! Per-shop leases (table `shop_leases`): one holder per (shop, name) at a time, across workers
//! and instances. A holder renews its lease while it works; one whose process died frees the
//! shop when the lease expires. Taking a lease is one atomic upsert that only replaces an
//! expired holder, so two takers never both win.

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use super::{Db, stmt};

/// How `with_lease` ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Held<T> {
    /// The work ran to its end under the lease.
    Done(T),
    /// Someone else holds the lease: the work did not start.
    Busy,
    /// The lease was found taken over (it expired unrenewed): the work was dropped there.
    Lost,
}

/// Runs `work` under the shop's lease `name`, renewed every third of `ttl` by a task of its
/// own (on SQLite the renewal may wait for the write lock the work holds, so it must not share
/// the work's task), and released at the end. If `work` is dropped midway (its own job lost its
/// lease, or shutdown), the lease is released in the background; if the process dies, it
/// expires after `ttl`.
pub async fn with_lease<T, F: Future<Output = T>>(
    db: &Db,
    shop_id: i64,
    name: &'static str,
    holder: &str,
    ttl: Duration,
    work: F,
) -> Result<Held<T>, DbErr> {
    if !acquire(db, shop_id, name, holder, ttl, Utc::now()).await? {
        return Ok(Held::Busy);
    }
    let every = (ttl / 3)
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(10));
    let (lost_tx, lost) = tokio::sync::oneshot::channel::<()>();
    let beat = {
        let (db, holder) = (db.clone(), holder.to_string());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match renew(&db, shop_id, name, &holder, ttl, Utc::now()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(shop_id, lease = name, "shop lease lost; stopping");
                        let _ = lost_tx.send(());
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(shop_id, lease = name, error = %e, "lease renewal failed")
                    }
                }
            }
        })
    };
    let mut guard = Releaser {
        db: db.clone(),
        shop_id,
        name,
        holder: holder.to_string(),
        beat,
        armed: true,
    };
    let outcome = tokio::select! {
        out = work => Held::Done(out),
        Ok(()) = lost => Held::Lost,
    };
    guard.beat.abort();
    guard.armed = false;
    release(db, shop_id, name, holder).await?;
    Ok(outcome)
}

/// Stops the renewal and, when the work was dropped midway, gives the lease up.
struct Releaser {
    db: Db,
    shop_id: i64,
    name: &'static str,
    holder: String,
    beat: tokio::task::JoinHandle<()>,
    armed: bool,
}

impl Drop for Releaser {
    fn drop(&mut self) {
        self.beat.abort();
        if !self.armed {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (db, shop_id, name, holder) = (
                self.db.clone(),
                self.shop_id,
                self.name,
                std::mem::take(&mut self.holder),
            );
            rt.spawn(async move {
                let _ = release(&db, shop_id, name, &holder).await;
            });
        }
    }
}

/// Takes the shop's lease `name` for `holder` until `now + ttl` if nobody holds it (or its
/// holder let it expire). Returns whether `holder` now holds it.
pub async fn acquire(
    db: &impl ConnectionTrait,
    shop_id: i64,
    name: &str,
    holder: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "INSERT INTO shop_leases (shop_id, name, holder, lease_until) VALUES (?, ?, ?, ?) \
             ON CONFLICT (shop_id, name) DO UPDATE SET holder = excluded.holder, \
             lease_until = excluded.lease_until WHERE shop_leases.lease_until < ? \
             RETURNING holder",
            vec![
                shop_id.into(),
                name.into(),
                holder.into(),
                (now + ttl).into(),
                now.into(),
            ],
        ))
        .await?;
    Ok(row.is_some())
}

/// Extends `holder`'s lease to `now + ttl`; false when it no longer holds it.
pub async fn renew(
    db: &impl ConnectionTrait,
    shop_id: i64,
    name: &str,
    holder: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let r = db
        .execute_raw(stmt(
            db.get_database_backend(),
            "UPDATE shop_leases SET lease_until = ? WHERE shop_id = ? AND name = ? AND holder = ?",
            vec![
                (now + ttl).into(),
                shop_id.into(),
                name.into(),
                holder.into(),
            ],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Gives the lease up (only its holder can).
pub async fn release(
    db: &impl ConnectionTrait,
    shop_id: i64,
    name: &str,
    holder: &str,
) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        db.get_database_backend(),
        "DELETE FROM shop_leases WHERE shop_id = ? AND name = ? AND holder = ?",
        vec![shop_id.into(), name.into(), holder.into()],
    ))
    .await?;
    Ok(())
}

/// Whether someone holds the shop's lease `name` at `now`.
pub async fn is_held(
    db: &impl ConnectionTrait,
    shop_id: i64,
    name: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM shop_leases WHERE shop_id = ? AND name = ? AND lease_until > ?",
            vec![shop_id.into(), name.into(), now.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0)
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdb::TestDb;

    #[tokio::test(flavor = "multi_thread")]
    async fn one_holder_at_a_time_until_it_releases_or_expires() {
        for t in TestDb::all().await {
            let db = &t.db;
            let (t0, ttl) = (Utc::now(), Duration::seconds(60));
            assert!(acquire(db, 1, "run", "a", ttl, t0).await.unwrap());
            assert!(!acquire(db, 1, "run", "b", ttl, t0).await.unwrap());
            assert!(
                acquire(db, 2, "run", "b", ttl, t0).await.unwrap(),
                "per shop"
            );
            assert!(
                acquire(db, 1, "other", "b", ttl, t0).await.unwrap(),
                "per name"
            );
            assert!(is_held(db, 1, "run", t0).await.unwrap());
            // Renewed at +50 s, it outlives the first expiry.
            let t1 = t0 + Duration::seconds(50);
            assert!(renew(db, 1, "run", "a", ttl, t1).await.unwrap());
            assert!(!renew(db, 1, "run", "b", ttl, t1).await.unwrap(), "not b's");
            let t2 = t0 + Duration::seconds(100);
            assert!(!acquire(db, 1, "run", "b", ttl, t2).await.unwrap());
            // Not renewed again: expired at +110 s, and the next taker wins.
            let t3 = t0 + Duration::seconds(111);
            assert!(!is_held(db, 1, "run", t3).await.unwrap());
            assert!(acquire(db, 1, "run", "b", ttl, t3).await.unwrap());
            assert!(
                !renew(db, 1, "run", "a", ttl, t3).await.unwrap(),
                "a lost it"
            );
            // Only the holder releases.
            release(db, 1, "run", "a").await.unwrap();
            assert!(is_held(db, 1, "run", t3).await.unwrap());
            release(db, 1, "run", "b").await.unwrap();
            assert!(!is_held(db, 1, "run", t3).await.unwrap());
            assert!(acquire(db, 1, "run", "c", ttl, t3).await.unwrap());
            t.remove().await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn work_under_a_lease_excludes_others_stops_when_lost_and_frees_when_dropped() {
        for t in TestDb::all().await {
            let db = &t.db;
            let ttl = Duration::milliseconds(600);
            // While one holder works, another is turned away; after it, the lease is free.
            let inner = with_lease(db, 1, "run", "a", ttl, async {
                // Held across several renewals.
                tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
                with_lease(db, 1, "run", "b", ttl, async { 1 })
                    .await
                    .unwrap()
            })
            .await
            .unwrap();
            assert_eq!(inner, Held::Done(Held::Busy));
            assert!(!is_held(db, 1, "run", Utc::now()).await.unwrap());
            // Taken over (as after an expiry): the next renewal finds it and the work stops.
            let lost = with_lease(db, 1, "run", "a", ttl, async {
                db.execute_unprepared("UPDATE shop_leases SET holder = 'z'")
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            })
            .await
            .unwrap();
            assert_eq!(lost, Held::Lost);
            assert!(is_held(db, 1, "run", Utc::now()).await.unwrap(), "z's");
            release(db, 1, "run", "z").await.unwrap();
            // Dropped midway: released in the background, well before it would expire.
            let long = Duration::seconds(3_600);
            let dropped = tokio::time::timeout(
                std::time::Duration::from_millis(200),
                with_lease(db, 1, "run", "a", long, std::future::pending::<()>()),
            )
            .await;
            assert!(dropped.is_err());
            let mut freed = false;
            for _ in 0..100 {
                if !is_held(db, 1, "run", Utc::now()).await.unwrap() {
                    freed = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert!(freed, "the dropped holder's lease is released");
            t.remove().await;
        }
    }
}
