//! The database: connection, migrations, entities and the queries the app needs. Every query on
//! shop data filters by `shop_id`.

pub mod catalog;
pub mod entities;
pub mod gate;
pub mod inbox;
pub mod jobs;
pub mod leases;
pub mod maintenance;
mod nodelay;
pub mod privacy;
pub mod retention;
pub mod shops;
pub mod sync_state;
#[cfg(test)]
pub mod testdb;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait, Value,
};

pub type Db = DatabaseConnection;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("{0}")]
    Invalid(String),
}

/// How long a pooled query waits for a connection before it fails.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the database. SQLite gets WAL, a busy timeout and foreign-key checks through the
/// connect options, so every pooled connection has them. PostgreSQL is tried with one plain
/// connection first: the pool retries a refused connection until its acquire timeout and then
/// reports only "pool timed out", while the single attempt fails at once with the reason.
pub async fn connect(url: &str) -> Result<Db, DbErr> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(ACQUIRE_TIMEOUT);
    if url.starts_with("sqlite:") {
        opts.max_connections(8)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sqlx_sqlite_journal_wal())
                    .busy_timeout(Duration::from_secs(30))
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .pragma("wal_autocheckpoint", AUTO_CHECKPOINT_PAGES)
                    // Rows cross from SQLite's thread in a channel; a deep one lets a scan of a
                    // shop's million orders run ahead instead of waking a task per row.
                    .row_buffer_size(ROW_CHANNEL)
                    .create_if_missing(true)
            });
    } else {
        let options: sea_orm::sqlx::postgres::PgConnectOptions = url
            .parse()
            .map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::Internal(format!("{e}"))))?;
        probe_postgres(&options).await?;
        let port = options.get_port();
        opts.max_connections(16)
            .min_connections(1)
            .map_sqlx_postgres_pool_opts(move |o| nodelay::on_connect(o, port));
    }
    Database::connect(opts).await
}

/// One connection to the server, closed again; its error is the real reason (refused, unknown
/// host, authentication, no such database).
async fn probe_postgres(options: &sea_orm::sqlx::postgres::PgConnectOptions) -> Result<(), DbErr> {
    use sea_orm::sqlx::Connection;
    let failed = |e: String| DbErr::Conn(sea_orm::RuntimeErr::Internal(e));
    let conn = tokio::time::timeout(
        CONNECT_TIMEOUT,
        sea_orm::sqlx::postgres::PgConnection::connect_with(options),
    )
    .await
    .map_err(|_| {
        failed(format!(
            "no answer from the server within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))
    })?
    .map_err(|e| failed(e.to_string()))?;
    let _ = conn.close().await;
    Ok(())
}

/// Refreshes the planner's statistics of the shop-data tables (PostgreSQL; SQLite plans
/// from its indexes alone). A bulk load outruns autovacuum, or meets a server where it is off,
/// and a table the planner still believes empty gets plans that scan the whole shop per
/// statement (measured: 2 s per batch of 400 orders at 240,000 orders, never analysed).
pub async fn analyze_shop_tables(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    if db.get_database_backend() == DatabaseBackend::Postgres {
        db.execute_unprepared("ANALYZE customers, orders, refunds, checkouts")
            .await?;
    }
    Ok(())
}

/// Rows a SQLite connection may hand over before its reader takes them.
const ROW_CHANNEL: usize = 4096;

/// When a pool's commits are on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// As the main pool: on SQLite, WAL with `synchronous=NORMAL`, whose commits survive the
    /// process dying but not the machine losing power.
    AsMain,
    /// Every commit is synced to disk before it returns: SQLite `synchronous=FULL` (the WAL is
    /// fsynced at each commit), PostgreSQL `synchronous_commit=on` whatever the server's
    /// default. For writes that are acknowledged to someone who will not send them again.
    Synced,
}

/// A separate pool to the same database with the same connection options (but `durability`),
/// holding at most `max_connections`; no connection is opened until it is first used. A
/// connection's socket belongs to the runtime that opened it, so a task on another runtime
/// (the webhook intake's own thread, see `ingest::intake`) gets its own pool rather than
/// borrowing the main one's.
pub fn separate_pool(db: &Db, max_connections: u32, durability: Durability) -> Db {
    use sea_orm::sqlx::pool::PoolOptions;
    use sea_orm::{SqlxPostgresConnector, SqlxSqliteConnector};
    let acquire = ACQUIRE_TIMEOUT;
    let synced = durability == Durability::Synced;
    match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let mut options = (*db.get_postgres_connection_pool().connect_options()).clone();
            if synced {
                options = options.options([("synchronous_commit", "on")]);
            }
            let pool = PoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire);
            let pool = nodelay::on_connect(pool, options.get_port());
            SqlxPostgresConnector::from_sqlx_postgres_pool(pool.connect_lazy_with(options))
        }
        _ => {
            let mut options = (*db.get_sqlite_connection_pool().connect_options()).clone();
            if synced {
                options = options.synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full);
            }
            let pool = PoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire)
                .connect_lazy_with(options);
            SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
        }
    }
}

/// How often the server's SQLite checkpointer runs; see `spawn_checkpointer`.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// WAL pages after which a committing connection checkpoints by itself (SQLite's default is
/// 1,000). The server's checkpointer keeps the WAL far below it; this is the fallback for
/// commands that run without one.
const AUTO_CHECKPOINT_PAGES: &str = "20000";

/// SQLite only: copies the WAL back into the database file in the background. Otherwise the
/// commit that crosses the auto-checkpoint threshold runs the checkpoint and its fsync itself,
/// and the webhook batch it carries waits ~20 ms (measured: 34 such stalls in 20,000
/// webhooks). A passive checkpoint from another connection does not block writers.
pub fn spawn_checkpointer(
    db: Db,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if db.get_database_backend() != DatabaseBackend::Sqlite {
        return None;
    }
    Some(spawn_every(CHECKPOINT_EVERY, stop, move || {
        let db = db.clone();
        async move {
            if let Err(e) = db
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await
            {
                tracing::warn!(error = %e, "background WAL checkpoint failed");
            }
        }
    }))
}

/// Runs `pass` every `period` (a late tick is delayed, never doubled) until `stop` changes.
pub(crate) fn spawn_every<F, Fut>(
    period: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut pass: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            pass().await;
        }
    })
}

fn sqlx_sqlite_journal_wal() -> sea_orm::sqlx::sqlite::SqliteJournalMode {
    sea_orm::sqlx::sqlite::SqliteJournalMode::Wal
}

/// Applies pending migrations. On PostgreSQL an advisory lock keeps two instances starting at
/// once from migrating concurrently; it is session-scoped, so it is taken and released on one
/// dedicated connection rather than on whichever pooled connection comes next.
pub async fn migrate(db: &Db) -> Result<(), DbErr> {
    const LOCK: i64 = 0x4c49_4645_4359_434c; // "LIFECYCL"
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Migrator::up(db, None).await;
    }
    let lock_conn = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::Internal(e.to_string())))?;
    let mut lock_conn = lock_conn;
    sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK)
        .execute(&mut *lock_conn)
        .await
        .map_err(|e| DbErr::Custom(format!("advisory lock: {e}")))?;
    let result = Migrator::up(db, None).await;
    let _ = sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK)
        .execute(&mut *lock_conn)
        .await;
    result
}

/// True when every migration the binary knows has been applied.
pub async fn migrations_applied(db: &Db) -> Result<bool, DbErr> {
    Ok(Migrator::get_pending_migrations(db).await?.is_empty())
}

/// A write transaction. On SQLite it starts with `BEGIN IMMEDIATE`, so read-then-write
/// transactions queue on the busy timeout instead of failing with "database is locked".
pub async fn write_tx(db: &Db) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Builds a raw statement written with `?` placeholders, numbering them for PostgreSQL.
pub fn stmt(backend: DatabaseBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DatabaseBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for ch in sql.chars() {
            if ch == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(ch);
            }
        }
        out
    } else {
        sql.to_string()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use testdb::TestDb;

    /// Writes `mib` MiB in 64 KiB rows of a scratch table, one commit each.
    async fn write_mib(db: &Db, mib: usize) {
        db.execute_unprepared("CREATE TABLE scratch (b BLOB NOT NULL)")
            .await
            .unwrap();
        for _ in 0..mib * 16 {
            let blob: Value = vec![7u8; 64 * 1024].into();
            db.execute_raw(stmt(
                DatabaseBackend::Sqlite,
                "INSERT INTO scratch (b) VALUES (?)",
                vec![blob],
            ))
            .await
            .unwrap();
        }
    }

    fn file_mib(t: &TestDb) -> u64 {
        std::fs::metadata(t.sqlite_file().unwrap()).unwrap().len() >> 20
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_checkpointer_moves_the_wal_into_the_database_file() {
        // 16 MiB is about 4,000 pages: under the auto-checkpoint threshold, so without the
        // checkpointer it would all stay in the WAL.
        let idle = TestDb::sqlite().await;
        write_mib(&idle.db, 16).await;
        tokio::time::sleep(CHECKPOINT_EVERY * 5).await;
        assert!(file_mib(&idle) < 4, "{} MiB", file_mib(&idle));
        idle.remove().await;

        let t = TestDb::sqlite().await;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = spawn_checkpointer(t.db.clone(), stop_rx).expect("SQLite has one");
        write_mib(&t.db, 16).await;
        let mut waited = 0;
        while file_mib(&t) < 16 && waited < 100 {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            waited += 1;
        }
        assert!(file_mib(&t) >= 16, "{} MiB", file_mib(&t));
        stop.send(true).unwrap();
        task.await.unwrap();
        t.remove().await;
    }

    #[tokio::test]
    async fn postgres_needs_no_checkpointer() {
        let Some(t) = TestDb::postgres().await else {
            return;
        };
        let (_stop, stop_rx) = tokio::sync::watch::channel(false);
        assert!(spawn_checkpointer(t.db.clone(), stop_rx).is_none());
        t.remove().await;
    }
}
