//! The SQLite backend: Diesel's `SqliteConnection` behind diesel-async's sync wrapper.
//!
//! Every connection runs in WAL mode with a busy timeout, so concurrent writers wait for each
//! other instead of failing with "database is locked". SQLite has one writer at a time, and
//! every unit of work starts by writing (claiming its event or usage key), so transactions on
//! the same data are serialised without advisory locks (`lock_key` does nothing here) or row
//! locks (`subscription()` reads without `FOR UPDATE`).

use billing_ports::{Cause, StoreError};
use diesel::SqliteConnection;
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};

use crate::error::SetupError;

/// The SQLite connection type.
pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// The SQLite connection pool.
pub(crate) type Pool = diesel_async::pooled_connection::deadpool::Pool<SqliteConn>;

/// How long a writer waits for the database lock before failing.
const BUSY_TIMEOUT_MS: u32 = 10_000;

/// Takes a connection from the pool, mapping pool failures to `Unavailable`.
pub(crate) async fn connection(pool: &Pool) -> Result<Object<SqliteConn>, StoreError> {
    pool.get()
        .await
        .map_err(|e| StoreError::Unavailable(Cause::new(e)))
}

/// Builds a pool on the database file `path`, setting WAL mode and the busy timeout on every
/// connection it opens.
pub(crate) fn pool(path: &str, max_size: usize) -> Result<Pool, SetupError> {
    let mut config = ManagerConfig::<SqliteConn>::default();
    config.custom_setup = Box::new(|path| {
        Box::pin(async move {
            let mut conn = SqliteConn::establish(path).await?;
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
            ))
            .await
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
    Pool::builder(manager)
        .max_size(max_size)
        .build()
        .map_err(|e| SetupError::Pool(e.to_string()))
}
