//! Fresh, migrated databases for unit tests: a SQLite file always, and a PostgreSQL database
//! when `LIFECYCLE_TEST_POSTGRES` names a server (dropped again by `remove`).

use sea_orm::ConnectionTrait;

use super::Db;

/// Records `domain` as an installed shop of `platform`; returns its id.
pub async fn install_shop(db: &Db, platform: &str, domain: &str) -> i64 {
    super::shops::upsert_installed(
        db,
        platform,
        domain,
        super::shops::TokenGrant {
            credentials: "x".into(),
            expires_at: None,
            scopes: String::new(),
        },
    )
    .await
    .unwrap()
    .id
}

pub struct TestDb {
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
    /// Server URL and database name, to drop it afterwards.
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = super::connect(&url).await.unwrap();
        super::migrate(&db).await.unwrap();
        TestDb {
            db,
            _dir: Some(dir),
            pg: None,
        }
    }

    pub async fn postgres() -> Option<TestDb> {
        let server = std::env::var("LIFECYCLE_TEST_POSTGRES")
            .ok()
            .filter(|s| !s.is_empty())?;
        let name = format!("lifecycle_unit_{}", uuid::Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(&server).await.unwrap();
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        admin.close().await.ok();
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&format!("/{name}"));
        let db = super::connect(url.as_str()).await.unwrap();
        super::migrate(&db).await.unwrap();
        Some(TestDb {
            db,
            _dir: None,
            pg: Some((server, name)),
        })
    }

    /// The SQLite database file, for tests that look at it.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self._dir.as_ref().map(|d| d.path().join("t.db"))
    }

    /// SQLite always; PostgreSQL too when `LIFECYCLE_TEST_POSTGRES` names a server.
    pub async fn all() -> Vec<TestDb> {
        let mut out = vec![TestDb::sqlite().await];
        out.extend(TestDb::postgres().await);
        out
    }

    pub async fn remove(self) {
        self.db.close().await.ok();
        if let Some((server, name)) = self.pg {
            let admin = sea_orm::Database::connect(&server).await.unwrap();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .unwrap();
            admin.close().await.ok();
        }
    }
}
