//! Embedded migrations, run only on request.
//!
//! Diesel's migration harness is synchronous; diesel-async's wrapper blocks in place, which
//! only a multi-threaded tokio worker may do. Running migrations therefore happens on a thread
//! with a runtime of its own, so it works from any runtime (actix's workers are
//! current-thread). The readiness check does not use the harness: on a pooled connection, it
//! compares the versions Diesel recorded with the embedded ones in one query.

use std::collections::HashSet;

use diesel::QueryableByName;
use diesel::migration::MigrationSource;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::Backend;
use crate::error::SetupError;
use crate::sqlite::SqliteConn;

/// The Postgres migrations (`migrations/postgres`).
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
/// The SQLite migrations (`migrations/sqlite`).
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Serialises migrations across processes: a session advisory lock in the two-key space (which
/// never overlaps the one-key space of `LockTx::lock_key`), `b"bill"` and 1.
const MIGRATION_LOCK: &str = "SELECT pg_advisory_lock(1651076204, 1)";

/// Runs the pending migrations of `backend` on a fresh connection to `url`; on Postgres, one
/// process at a time.
pub(crate) async fn run(backend: Backend, url: &str) -> Result<(), SetupError> {
    let url = url.to_owned();
    let (done, outcome) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime
                .block_on(async move { tokio::spawn(run_here(backend, url)).await })
                .unwrap_or_else(|e| Err(SetupError::Migration(e.to_string()))),
            Err(e) => Err(SetupError::Migration(e.to_string())),
        };
        let _ = done.send(result);
    });
    outcome.await.unwrap_or_else(|_| {
        Err(SetupError::Migration(
            "the migration thread died".to_owned(),
        ))
    })
}

async fn run_here(backend: Backend, url: String) -> Result<(), SetupError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| SetupError::Migration(e.to_string());
    match backend {
        Backend::Postgres => {
            let mut conn = AsyncPgConnection::establish(&url)
                .await
                .map_err(|e| SetupError::Connect(e.to_string()))?;
            // Replicas starting together would otherwise run the same migration at once (one
            // fails on "relation already exists"). The lock is the session's: it is held until
            // this dedicated connection closes, after the harness is done.
            diesel::sql_query(MIGRATION_LOCK)
                .execute(&mut conn)
                .await
                .map_err(|e| SetupError::Migration(e.to_string()))?;
            AsyncMigrationHarness::new(conn)
                .run_pending_migrations(POSTGRES)
                .map(|_| ())
                .map_err(failed)
        }
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap_or(&url);
            let conn = SqliteConn::establish(path)
                .await
                .map_err(|e| SetupError::Connect(e.to_string()))?;
            AsyncMigrationHarness::new(conn)
                .run_pending_migrations(SQLITE)
                .map(|_| ())
                .map_err(failed)
        }
    }
}

/// One row of Diesel's migration bookkeeping.
#[derive(QueryableByName)]
pub(crate) struct Version {
    #[diesel(sql_type = Text)]
    pub(crate) version: String,
}

/// The versions Diesel recorded as applied.
const APPLIED: &str = "SELECT version FROM __diesel_schema_migrations";

/// The embedded migrations for `DB`: (version, full name), in order.
fn embedded<DB: diesel::backend::Backend>(
    migrations: &EmbeddedMigrations,
) -> Result<Vec<(String, String)>, SetupError>
where
    EmbeddedMigrations: MigrationSource<DB>,
{
    Ok(MigrationSource::<DB>::migrations(migrations)
        .map_err(|e| SetupError::Migration(e.to_string()))?
        .iter()
        .map(|m| (m.name().version().to_string(), m.name().to_string()))
        .collect())
}

/// The names of the embedded migrations of `backend` whose version is not among the
/// `applied` ones, in the order they would run.
pub(crate) fn pending(backend: Backend, applied: Vec<String>) -> Result<Vec<String>, SetupError> {
    let embedded = match backend {
        Backend::Postgres => embedded::<diesel::pg::Pg>(&POSTGRES)?,
        Backend::Sqlite => embedded::<diesel::sqlite::Sqlite>(&SQLITE)?,
    };
    let applied: HashSet<String> = applied.into_iter().collect();
    Ok(embedded
        .into_iter()
        .filter(|(version, _)| !applied.contains(version))
        .map(|(_, name)| name)
        .collect())
}

/// Reads the applied versions on `conn`. A missing bookkeeping table (a database never
/// migrated) means none; any other failure is an error, never "nothing applied".
pub(crate) async fn applied_versions<C>(
    conn: &mut C,
    backend: Backend,
) -> Result<Vec<String>, SetupError>
where
    C: diesel_async::AsyncConnection + Send,
    diesel::query_builder::SqlQuery: diesel_async::methods::LoadQuery<'static, C, Version>,
{
    let exists = match backend {
        Backend::Postgres => {
            "SELECT tablename::text AS version FROM pg_tables \
             WHERE schemaname = current_schema() AND tablename = '__diesel_schema_migrations'"
        }
        Backend::Sqlite => {
            "SELECT name AS version FROM sqlite_master \
             WHERE type = 'table' AND name = '__diesel_schema_migrations'"
        }
    };
    let read = |e: diesel::result::Error| {
        SetupError::Migration(format!("could not read the applied migrations: {e}"))
    };
    let table: Vec<Version> = diesel::sql_query(exists).load(conn).await.map_err(read)?;
    if table.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Version> = diesel::sql_query(APPLIED).load(conn).await.map_err(read)?;
    Ok(rows.into_iter().map(|v| v.version).collect())
}
