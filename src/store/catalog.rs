//! The database's own list of the app's tables and their columns, read from the catalogue
//! (`sqlite_master` / `information_schema`), so that erasure covers a table added later without
//! anyone remembering to list it.

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};

/// One table of the app and its columns (name, whether it holds text).
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub columns: Vec<(String, bool)>,
}

impl Table {
    pub fn has(&self, column: &str) -> bool {
        self.columns.iter().any(|(c, _)| c == column)
    }
}

/// The migrations' own bookkeeping, which holds no shop data.
const BOOKKEEPING: &str = "seaql_migrations";

/// Every table of the app (the current schema on PostgreSQL), by name.
pub async fn tables(db: &impl ConnectionTrait) -> Result<Vec<Table>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "SELECT table_name::text AS t, column_name::text AS c, \
             (data_type IN ('text', 'character varying', 'character', 'bytea', 'json', 'jsonb')) AS is_text \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             ORDER BY table_name, ordinal_position"
        }
        _ => {
            "SELECT m.name AS t, p.name AS c, \
             (upper(p.type) LIKE '%TEXT%' OR upper(p.type) LIKE '%CHAR%' OR upper(p.type) LIKE '%CLOB%' \
              OR upper(p.type) LIKE '%BLOB%' OR upper(p.type) LIKE '%JSON%' OR p.type = '') AS is_text \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await?;
    let mut out: Vec<Table> = Vec::new();
    for r in rows {
        let table: String = r.try_get("", "t")?;
        if table == BOOKKEEPING {
            continue;
        }
        let column: String = r.try_get("", "c")?;
        let is_text: bool = r.try_get("", "is_text")?;
        match out.last_mut() {
            Some(t) if t.name == table => t.columns.push((column, is_text)),
            _ => out.push(Table {
                name: table,
                columns: vec![(column, is_text)],
            }),
        }
    }
    Ok(out)
}

/// A table or column name from the catalogue as one quoted identifier.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
