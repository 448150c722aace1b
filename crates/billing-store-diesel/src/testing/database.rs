//! Per-test databases: each test gets its own migrated Postgres database or SQLite file,
//! dropped when the guard goes out of scope, so tests run in parallel and never see each
//! other's rows.
//!
//! Migrating every test database from scratch is slow; each is instead a copy of a migrated
//! template (as crates.io's `crates_io_test_db` does), created once per server or temporary
//! directory and named after a hash of the migrations, so a changed migration gets a template
//! of its own and no template is ever changed or dropped while others may copy it:
//!
//! - Postgres: `CREATE DATABASE billing_test_… TEMPLATE billing_template_<hash>`. The template
//!   is built under a session advisory lock (test processes run concurrently: nextest runs each
//!   test in a process of its own), and marked `IS_TEMPLATE` (which is also the sign that it is
//!   complete) with `ALLOW_CONNECTIONS false`, so no session can keep it from being copied;
//! - SQLite: a copy of the file `billing_template_<hash>.sqlite` in the temporary directory,
//!   built under another name and renamed into place, so it appears whole or not at all.
//!
//! Postgres is reached at `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), where a test creates and later drops
//! `billing_test_<pid>_<n>_<nanos>`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use diesel::sql_query;
use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::OnceCell;

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

/// The URL of database `name` on the server of [`admin_url`].
fn database_url(name: &str) -> String {
    let admin = admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// The migration trees `embed_migrations!` embeds (`src/migrate.rs`).
fn migrations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations")
}

/// Every file under `dir`, as (path relative to `root`, contents).
fn files(root: &Path, dir: &Path, found: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files(root, &path, found)?;
        } else {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            found.push((relative.display().to_string(), std::fs::read(&path)?));
        }
    }
    Ok(())
}

/// The FNV-1a hash of the migration trees (every file's path and bytes), in hex.
///
/// # Panics
/// When the migrations cannot be read: this is test set-up.
#[allow(clippy::expect_used)]
fn migrations_hash() -> String {
    let root = migrations_dir();
    let mut found = Vec::new();
    files(&root, &root, &mut found).expect("read the migrations to name their template");
    found.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (path, bytes) in &found {
        for byte in path
            .bytes()
            .chain([0])
            .chain(bytes.iter().copied())
            .chain([0])
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// The name of the migrated template for the current migrations.
fn template_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| format!("billing_template_{}", migrations_hash()))
}

/// The key of the session advisory lock under which a template is built (any fixed number
/// that no other lock of the tests' admin database uses).
const TEMPLATE_LOCK: i64 = 0x6269_6c6c_696e_6701;

#[derive(diesel::QueryableByName)]
struct Template {
    #[diesel(sql_type = Bool)]
    datistemplate: bool,
}

/// `Some(true)` when database `name` exists and is a finished template, `Some(false)` when it
/// exists half-built, `None` when it does not exist.
///
/// # Panics
/// When the catalog cannot be read: this is test set-up.
#[allow(clippy::expect_used)]
async fn template_state(conn: &mut AsyncPgConnection, name: &str) -> Option<bool> {
    let found: Vec<Template> =
        sql_query("SELECT datistemplate FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(name)
            .load(conn)
            .await
            .expect("look the template up");
    found.into_iter().next().map(|t| t.datistemplate)
}

/// Makes sure the Postgres template of the current migrations exists, building it once per
/// server; later calls in this process return at once.
///
/// # Panics
/// When Postgres is unreachable or the template cannot be built: this is test set-up.
#[allow(clippy::expect_used)]
async fn postgres_template() -> &'static str {
    static READY: OnceCell<()> = OnceCell::const_new();
    let name = template_name();
    READY
        .get_or_init(|| async {
            let mut conn = admin_connection().await;
            if template_state(&mut conn, name).await == Some(true) {
                return;
            }
            // Ends with the session if this process dies while building.
            sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
                .execute(&mut conn)
                .await
                .expect("take the template lock");
            if template_state(&mut conn, name).await != Some(true) {
                // A half-built template is left by a process that died building it: nobody
                // copies a database that is not marked as a template yet.
                for statement in [
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    format!("CREATE DATABASE {name}"),
                ] {
                    sql_query(statement)
                        .execute(&mut conn)
                        .await
                        .expect("create the template database");
                }
                DieselStore::connect(&database_url(name), 1)
                    .expect("build the template's pool")
                    .run_migrations()
                    .await
                    .expect("migrate the template database");
                sql_query(format!(
                    "ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
                ))
                .execute(&mut conn)
                .await
                .expect("mark the template database");
            }
            sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
                .execute(&mut conn)
                .await
                .expect("release the template lock");
        })
        .await;
    name
}

/// Makes sure the SQLite template file of the current migrations exists in the temporary
/// directory, and returns its path.
///
/// # Panics
/// When the file cannot be written or migrated: this is test set-up.
#[allow(clippy::expect_used)]
async fn sqlite_template() -> &'static Path {
    static PATH: OnceCell<PathBuf> = OnceCell::const_new();
    PATH.get_or_init(|| async {
        let path = std::env::temp_dir().join(format!("{}.sqlite", template_name()));
        if !path.exists() {
            // Built aside and renamed into place: a concurrent process sees the whole file or
            // none, and two builders replace one complete file with another.
            let building = path.with_extension(format!("{}.building", unique_name()));
            DieselStore::connect(&format!("sqlite://{}", building.display()), 1)
                .expect("build the template's pool")
                .run_migrations()
                .await
                .expect("migrate the template file");
            std::fs::rename(&building, &path).expect("move the template file into place");
        }
        path
    })
    .await
}

#[allow(clippy::expect_used)]
async fn admin_connection() -> AsyncPgConnection {
    AsyncPgConnection::establish(&admin_url())
        .await
        .expect("connect to the Postgres server for tests (TEST_DATABASE_URL)")
}

/// A database that exists for the life of this value.
pub struct TestDatabase {
    store: DieselStore,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Postgres { name: String },
    Sqlite { path: PathBuf },
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

    /// A new Postgres database, migrated (a copy of the template).
    ///
    /// # Panics
    /// When Postgres is unreachable or refuses: this is test set-up.
    #[allow(clippy::expect_used)]
    pub async fn postgres() -> Self {
        let template = postgres_template().await;
        let name = unique_name();
        sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&mut admin_connection().await)
            .await
            .expect("copy the template into the test database");
        Self::at(database_url(&name), Cleanup::Postgres { name })
    }

    /// A new SQLite file in the temporary directory, migrated (a copy of the template).
    ///
    /// # Panics
    /// When the file cannot be written: this is test set-up.
    #[allow(clippy::expect_used)]
    pub async fn sqlite() -> Self {
        let template = sqlite_template().await;
        let path = std::env::temp_dir().join(format!("{}.sqlite", unique_name()));
        std::fs::copy(template, &path).expect("copy the template into the test file");
        Self::at(
            format!("sqlite://{}", path.display()),
            Cleanup::Sqlite { path },
        )
    }

    /// A new, empty database of `backend` on which no migration has run (for tests of what
    /// the store does before `run_migrations`).
    ///
    /// # Panics
    /// When the database cannot be created: this is test set-up.
    #[allow(clippy::expect_used)]
    pub async fn unmigrated(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => {
                let name = unique_name();
                sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin_connection().await)
                    .await
                    .expect("create the test database");
                Self::at(database_url(&name), Cleanup::Postgres { name })
            }
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{}.sqlite", unique_name()));
                Self::at(
                    format!("sqlite://{}", path.display()),
                    Cleanup::Sqlite { path },
                )
            }
        }
    }

    #[allow(clippy::expect_used)]
    fn at(url: String, cleanup: Cleanup) -> Self {
        let store = DieselStore::connect(&url, 16).expect("build the test pool");
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
