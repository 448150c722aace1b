//! Embedded migrations, run only on request.

use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::Backend;
use crate::error::SetupError;
use crate::sqlite::SqliteConn;

/// The Postgres migrations (`migrations/postgres`).
const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
/// The SQLite migrations (`migrations/sqlite`).
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Opens a fresh connection of `backend` on `url`, wraps it in Diesel's migration harness
/// and evaluates `$body` with `$harness` and `$migrations` bound.
macro_rules! with_harness {
    ($backend:expr, $url:expr, |$harness:ident, $migrations:ident| $body:expr) => {
        match $backend {
            Backend::Postgres => {
                let conn = AsyncPgConnection::establish($url)
                    .await
                    .map_err(|e| SetupError::Connect(e.to_string()))?;
                let mut $harness = AsyncMigrationHarness::new(conn);
                let $migrations = POSTGRES;
                $body
            }
            Backend::Sqlite => {
                let path = $url.strip_prefix("sqlite://").unwrap_or($url);
                let conn = SqliteConn::establish(path)
                    .await
                    .map_err(|e| SetupError::Connect(e.to_string()))?;
                let mut $harness = AsyncMigrationHarness::new(conn);
                let $migrations = SQLITE;
                $body
            }
        }
    };
}

/// Runs the pending migrations of `backend` on a fresh connection to `url`.
pub(crate) async fn run(backend: Backend, url: &str) -> Result<(), SetupError> {
    with_harness!(backend, url, |harness, migrations| harness
        .run_pending_migrations(migrations)
        .map(|_| ())
        .map_err(|e| SetupError::Migration(e.to_string())))
}

/// True when no migration of `backend` is pending on `url`.
pub(crate) async fn all_applied(backend: Backend, url: &str) -> Result<bool, SetupError> {
    with_harness!(backend, url, |harness, migrations| harness
        .has_pending_migration(migrations)
        .map(|pending| !pending)
        .map_err(|e| SetupError::Migration(e.to_string())))
}
