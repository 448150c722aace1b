//! Per-test databases (feature `testing`): each test gets its own freshly migrated Postgres
//! database or SQLite file, dropped when the guard goes out of scope, so tests run in parallel
//! and never see each other's rows.
//!
//! Postgres is reached at `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), where the test creates and later drops
//! `billing_test_<pid>_<n>_<nanos>`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use diesel::sql_query;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{Backend, DieselStore};

/// The server URL used to create and drop test databases.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "billing_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A migrated database that exists for the life of this value.
pub struct TestDatabase {
    store: DieselStore,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Postgres { name: String },
    Sqlite { path: std::path::PathBuf },
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("url", &self.url)
            .finish()
    }
}

impl TestDatabase {
    /// A new database of `backend`, migrated.
    ///
    /// # Panics
    /// When the database cannot be created or migrated: this is test set-up.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::postgres().await,
            Backend::Sqlite => Self::sqlite().await,
        }
    }

    /// A new Postgres database, migrated.
    ///
    /// # Panics
    /// When Postgres is unreachable or refuses: this is test set-up.
    #[allow(clippy::expect_used)]
    pub async fn postgres() -> Self {
        let name = unique_name();
        let admin = admin_url();
        let mut conn = AsyncPgConnection::establish(&admin)
            .await
            .expect("connect to the Postgres server for tests (TEST_DATABASE_URL)");
        sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Self::migrated(url, Cleanup::Postgres { name }).await
    }

    /// A new SQLite file in the temporary directory, migrated.
    pub async fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("{}.sqlite", unique_name()));
        let url = format!("sqlite://{}", path.display());
        Self::migrated(url, Cleanup::Sqlite { path }).await
    }

    #[allow(clippy::expect_used)]
    async fn migrated(url: String, cleanup: Cleanup) -> Self {
        let store = DieselStore::connect(&url, 16).expect("build the test pool");
        store
            .run_migrations()
            .await
            .expect("migrate the test database");
        Self {
            store,
            url,
            cleanup,
        }
    }

    /// The store on this database.
    pub fn store(&self) -> &DieselStore {
        &self.store
    }

    /// The database URL (for tests that open their own connections).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Postgres { name } => {
                let name = name.clone();
                // Drop runs outside any runtime guarantee: use a thread with its own runtime.
                let handle = std::thread::spawn(move || {
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    runtime.block_on(async move {
                        if let Ok(mut conn) = AsyncPgConnection::establish(&admin_url()).await {
                            let _ =
                                sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                    .execute(&mut conn)
                                    .await;
                        }
                    });
                });
                let _ = handle.join();
            }
            Cleanup::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
        }
    }
}
