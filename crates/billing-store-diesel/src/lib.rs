//! The Diesel adapter of the billing ports.
//!
//! [`DieselStore`] implements [`BillingStore`] on Postgres (diesel-async's
//! `AsyncPgConnection`, the production store) or on an embedded SQLite file (Diesel's
//! `SqliteConnection` behind diesel-async's sync wrapper, the default when no `DATABASE_URL`
//! is set). The queries are written once ([`backend`]) and expanded for each backend.
//!
//! Migrations live in the workspace's `migrations/postgres` and `migrations/sqlite`, are
//! embedded in the binary and run only by an explicit [`DieselStore::run_migrations`] call.
//!
//! ```no_run
//! # async fn demo() -> Result<(), billing_store_diesel::SetupError> {
//! let store = billing_store_diesel::DieselStore::connect("sqlite://data/billing.sqlite", 8)?;
//! store.run_migrations().await?;
//! # Ok(()) }
//! ```
//!
//! Architecture invariant: no Diesel type leaves this crate; callers see the ports' types.

mod backend;
mod error;
mod migrate;
mod pg;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use async_trait::async_trait;
use billing_ports::{BillingStore, EventRecord, NewEvent, StoreError, TxFuture};
use chrono::{DateTime, Utc};

pub use error::SetupError;

/// The database behind a [`DieselStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// Embedded SQLite.
    Sqlite,
}

/// The store on Postgres or SQLite.
#[derive(Clone)]
pub struct DieselStore {
    inner: Inner,
    url: String,
}

#[derive(Clone)]
enum Inner {
    Postgres(pg::Pool),
    /// SQLite allows one writer at a time; the gate queues writers here instead of letting
    /// them spin in SQLite's busy handler (which sleeps up to 100 ms between tries).
    Sqlite(sqlite::Pool, std::sync::Arc<tokio::sync::Mutex<()>>),
}

impl std::fmt::Debug for DieselStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print it.
        f.debug_struct("DieselStore")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// Dispatches one call to the backend module with the store's pool.
macro_rules! dispatch {
    ($self:expr, $module:ident => $call:expr) => {
        match &$self.inner {
            Inner::Postgres(pool) => {
                use pg as $module;
                $call(pool).await
            }
            Inner::Sqlite(pool, gate) => {
                use sqlite as $module;
                let _writer = gate.lock().await;
                $call(pool).await
            }
        }
    };
}

impl DieselStore {
    /// Builds a pool for `url`: `postgres://…` / `postgresql://…`, or `sqlite://path`
    /// (`sqlite::memory:` is refused: every pooled connection would see its own database).
    /// Opens no connection and runs no migration.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, SetupError> {
        let inner = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Inner::Postgres(pg::pool(url, max_connections)?)
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() || path.contains(":memory:") {
                return Err(SetupError::UnsupportedUrl);
            }
            Inner::Sqlite(
                sqlite::pool(path, max_connections)?,
                std::sync::Arc::new(tokio::sync::Mutex::new(())),
            )
        } else {
            return Err(SetupError::UnsupportedUrl);
        };
        Ok(Self {
            inner,
            url: url.to_owned(),
        })
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Postgres(_) => Backend::Postgres,
            Inner::Sqlite(..) => Backend::Sqlite,
        }
    }

    /// Applies the embedded migrations that have not run yet. Needs a multi-threaded tokio
    /// runtime (Diesel's migration harness blocks in place).
    pub async fn run_migrations(&self) -> Result<(), SetupError> {
        migrate::run(self.backend(), &self.url).await
    }

    /// True when every embedded migration has been applied (the readiness check). Uses a
    /// pooled connection, so it also proves the pool can reach the database.
    pub async fn migrations_applied(&self) -> Result<bool, SetupError> {
        let backend = self.backend();
        let applied = match &self.inner {
            Inner::Postgres(pool) => {
                let mut conn = pg::connection(pool)
                    .await
                    .map_err(|e| SetupError::Connect(e.to_string()))?;
                migrate::applied_versions(&mut *conn).await
            }
            Inner::Sqlite(pool, _) => {
                let mut conn = sqlite::connection(pool)
                    .await
                    .map_err(|e| SetupError::Connect(e.to_string()))?;
                migrate::applied_versions(&mut *conn).await
            }
        };
        migrate::all_applied(backend, applied)
    }
}

#[async_trait]
impl BillingStore for DieselStore {
    async fn transaction<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'a> FnOnce(&'a mut dyn billing_ports::BillingTx) -> TxFuture<'a, T, E>
            + Send
            + 'static,
    {
        match &self.inner {
            Inner::Postgres(pool) => pg::transaction(pool, work).await,
            Inner::Sqlite(pool, gate) => {
                let _writer = gate.lock().await;
                sqlite::transaction(pool, work).await
            }
        }
    }

    async fn record_failure(
        &self,
        event: &NewEvent,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, b => async |pool| {
            let mut conn = b::connection(pool).await?;
            b::tx_impl::record_failure(&mut conn, event, error, at).await
        })
    }

    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        dispatch!(self, b => async |pool| {
            let mut conn = b::connection(pool).await?;
            b::tx_impl::event(&mut conn, id).await
        })
    }

    async fn purge_events(&self, before: DateTime<Utc>, batch: u32) -> Result<u64, StoreError> {
        dispatch!(self, b => async |pool| {
            let mut conn = b::connection(pool).await?;
            b::tx_impl::purge_events(&mut conn, before, batch).await
        })
    }
}
