//! The database: connection, migrations, entities and the queries the app needs. Every query on
//! shop data filters by `shop_id`.

pub mod entities;
pub mod inbox;
pub mod jobs;
pub mod privacy;
pub mod shops;
pub mod sync_state;
#[cfg(test)]
pub mod testdb;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};

pub type Db = DatabaseConnection;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("{0}")]
    Invalid(String),
}

/// Opens the database. SQLite gets WAL, a busy timeout and foreign-key checks through the
/// connect options, so every pooled connection has them.
pub async fn connect(url: &str) -> Result<Db, DbErr> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        opts.max_connections(8)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sqlx_sqlite_journal_wal())
                    .busy_timeout(Duration::from_secs(30))
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .create_if_missing(true)
            });
    } else {
        opts.max_connections(16).min_connections(1);
    }
    Database::connect(opts).await
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
