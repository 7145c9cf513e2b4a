//! An in-process queue for SQLite's one write lock, in which webhook intake goes first.
//!
//! Writers that find the lock taken otherwise wait in SQLite's busy handler, which sleeps in
//! growing steps (1, 2, 5, 10 ms, ...) and takes no turns: with job workers applying webhooks
//! in batches, the intake writer lost the lock to them again and again, and every webhook
//! waiting on its batch waited with it (measured: ingest fell to a tenth of the ceiling, p99
//! 146 ms). Here the intake takes the lock as soon as the writer holding it commits, and a
//! worker's batch waits while the intake waits. PostgreSQL has row locks and needs none of this.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use sea_orm::DatabaseBackend;
use tokio::sync::{Mutex as AsyncMutex, Notify, OwnedMutexGuard};

use super::Db;

#[derive(Default)]
pub struct WriteGate {
    lock: Arc<AsyncMutex<()>>,
    /// Urgent writers waiting for the lock.
    urgent: AtomicUsize,
    /// Fires when no urgent writer is waiting any more.
    clear: Notify,
}

/// The write lock, held until dropped.
pub type Held = OwnedMutexGuard<()>;

impl WriteGate {
    /// The lock, before any `normal` writer that is waiting.
    pub async fn urgent(&self) -> Held {
        self.urgent.fetch_add(1, Ordering::SeqCst);
        // Counted down however this ends, so a cancelled wait cannot block normal writers.
        let _waiting = Waiting(self);
        self.lock.clone().lock_owned().await
    }

    /// The lock, once no urgent writer is waiting for it.
    pub async fn normal(&self) -> Held {
        loop {
            loop {
                let clear = self.clear.notified();
                if self.urgent.load(Ordering::SeqCst) == 0 {
                    break;
                }
                clear.await;
            }
            let held = self.lock.clone().lock_owned().await;
            if self.urgent.load(Ordering::SeqCst) == 0 {
                return held;
            }
            // An urgent writer started waiting while this one queued: it goes first.
        }
    }
}

struct Waiting<'a>(&'a WriteGate);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.0.urgent.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.clear.notify_waiters();
        }
    }
}

/// Waits for `db`'s write lock as a normal writer; on PostgreSQL at once, holding nothing.
pub async fn normal(db: &Db) -> Option<Held> {
    match for_db(db) {
        Some(gate) => Some(gate.normal().await),
        None => None,
    }
}

/// The gate of `db`'s SQLite file, shared by every pool of the process that opens it; None on
/// PostgreSQL. The registry keeps gates weakly: a gate lives while a holder does (the intake
/// writer holds its gate for its whole life), so a file's gate is dropped with its last user.
pub fn for_db(db: &Db) -> Option<Arc<WriteGate>> {
    static GATES: LazyLock<Mutex<HashMap<PathBuf, Weak<WriteGate>>>> =
        LazyLock::new(Default::default);
    if db.get_database_backend() != DatabaseBackend::Sqlite {
        return None;
    }
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(gate) = gates.get(&file).and_then(Weak::upgrade) {
        return Some(gate);
    }
    gates.retain(|_, g| g.strong_count() > 0);
    let gate = Arc::new(WriteGate::default());
    gates.insert(file, Arc::downgrade(&gate));
    Some(gate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_urgent_writer_goes_before_waiting_normal_ones() {
        let gate = Arc::new(WriteGate::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = gate.normal().await;
        let mut waiting = Vec::new();
        for name in ["normal-1", "normal-2"] {
            let (gate, order) = (gate.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _held = gate.normal().await;
                order.lock().unwrap().push(name);
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (g, o) = (gate.clone(), order.clone());
        waiting.push(tokio::spawn(async move {
            let _held = g.urgent().await;
            o.lock().unwrap().push("urgent");
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        for task in waiting {
            task.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order[0], "urgent", "{order:?}");
        assert_eq!(order.len(), 3, "{order:?}");
    }

    #[tokio::test]
    async fn a_cancelled_urgent_wait_does_not_block_normal_writers() {
        let gate = Arc::new(WriteGate::default());
        let held = gate.normal().await;
        let g = gate.clone();
        let urgent = tokio::spawn(async move {
            let _held = g.urgent().await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        urgent.abort();
        let _ = urgent.await;
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), gate.normal())
            .await
            .expect("a normal writer gets the lock");
    }

    #[tokio::test]
    async fn one_gate_per_sqlite_file_and_none_on_postgres() {
        let a = crate::store::testdb::TestDb::sqlite().await;
        let b = crate::store::testdb::TestDb::sqlite().await;
        let same = crate::store::separate_pool(&a.db, 1, crate::store::Durability::AsMain);
        let (ga, gb, gs) = (
            for_db(&a.db).unwrap(),
            for_db(&b.db).unwrap(),
            for_db(&same).unwrap(),
        );
        assert!(Arc::ptr_eq(&ga, &gs), "two pools of one file share a gate");
        assert!(!Arc::ptr_eq(&ga, &gb), "two files do not");
        if let Some(p) = crate::store::testdb::TestDb::postgres().await {
            assert!(for_db(&p.db).is_none());
            p.remove().await;
        }
        a.remove().await;
        b.remove().await;
    }
}
