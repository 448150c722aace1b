//! The SQLite backend: Diesel's `SqliteConnection` behind diesel-async's sync wrapper.
//!
//! Every connection runs in WAL mode with a busy timeout, so concurrent writers wait for each
//! other instead of failing with "database is locked". SQLite has one writer at a time, and
//! every unit of work starts by writing (claiming its event or usage key), so transactions on
//! the same data are serialised without advisory locks.

use billing_ports::StoreError;
use diesel::SqliteConnection;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};

use crate::error::SetupError;

/// The SQLite connection type.
pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

// SQLite has no row locks and needs none: one writer at a time holds the whole database.
crate::backend::diesel_backend!(
    TimestamptzSqlite,
    crate::sqlite::SqliteConn,
    lock_row: |query| query
);

/// How long a writer waits for the database lock before failing.
const BUSY_TIMEOUT_MS: u32 = 10_000;

/// SQLite serialises writers itself: nothing to lock.
pub(crate) async fn lock_key(_conn: &mut SqliteConn, _key: &str) -> Result<(), StoreError> {
    Ok(())
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
