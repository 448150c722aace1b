//! The Postgres backend: diesel-async's `AsyncPgConnection` in a deadpool pool.
//!
//! What only Postgres does: locking a key with an advisory lock until commit, and (in
//! `subscriptions`) locking a row read to change it with `FOR UPDATE`.

use billing_ports::{Cause, StoreError};
use diesel::QueryResult;
use diesel::sql_types::Text;
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The Postgres connection pool.
pub(crate) type Pool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;

/// Takes a connection from the pool, mapping pool failures to `Unavailable`.
pub(crate) async fn connection(pool: &Pool) -> Result<Object<AsyncPgConnection>, StoreError> {
    pool.get()
        .await
        .map_err(|e| StoreError::Unavailable(Cause::new(e)))
}

/// Serialises transactions on one key (customer, payment intent…) until commit.
pub(crate) async fn lock_key(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(key)
        .execute(conn)
        .await?;
    Ok(())
}
