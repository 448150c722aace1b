//! The Postgres backend: diesel-async's `AsyncPgConnection` in a deadpool pool.
//!
//! What only Postgres does: locking a key with an advisory lock until commit, and (in
//! `subscriptions`) locking a row read to change it with `FOR UPDATE`.

use crate::prepared::cached;
use billing_ports::{Cause, StoreError};
use diesel::QueryResult;
use diesel::sql_types::Text;
use std::time::Duration;

use deadpool::managed::{Metrics, Object, RecycleResult};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, PoolError, PoolableConnection,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The Postgres connection pool.
pub(crate) type Pool = deadpool::managed::Pool<Manager>;

/// diesel-async's connection manager, which checks an idle connection with `SELECT 1` before
/// lending it again, except right after its last use.
///
/// A connection taken again within [`Manager::verify_after`] of its last checkout skips the
/// check (a round trip, paid by every delivery under load): it was just working, and a
/// connection that died since fails its first statement, which the store reports as
/// unavailable like any connection lost mid-call. One idle for longer (across a database
/// restart, a network cut) is checked and replaced when it fails.
pub(crate) struct Manager {
    inner: AsyncDieselConnectionManager<AsyncPgConnection>,
    verify_after: Duration,
}

impl Manager {
    /// A manager opening connections with `inner` and checking those idle for `verify_after`.
    pub(crate) fn new(
        inner: AsyncDieselConnectionManager<AsyncPgConnection>,
        verify_after: Duration,
    ) -> Self {
        Self {
            inner,
            verify_after,
        }
    }
}

impl deadpool::managed::Manager for Manager {
    type Type = AsyncPgConnection;
    type Error = PoolError;

    async fn create(&self) -> Result<AsyncPgConnection, PoolError> {
        self.inner.create().await
    }

    async fn recycle(
        &self,
        conn: &mut AsyncPgConnection,
        metrics: &Metrics,
    ) -> RecycleResult<PoolError> {
        let recently_used = metrics.last_used() < self.verify_after;
        if recently_used && !std::thread::panicking() && !conn.is_broken() {
            return Ok(());
        }
        self.inner.recycle(conn, metrics).await
    }
}

/// Takes a connection from the pool, mapping pool failures to `Unavailable`.
pub(crate) async fn connection(pool: &Pool) -> Result<Object<Manager>, StoreError> {
    pool.get()
        .await
        .map_err(|e| StoreError::Unavailable(Cause::new(e)))
}

/// Serialises transactions on one key (customer, payment intent…) until commit.
/// `pg_try_advisory_xact_lock` of `key`: true when taken.
pub(crate) async fn try_lock_key(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    let row: Taken = cached(
        diesel::sql_query("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS taken")
            .bind::<Text, _>(key),
    )
    .get_result(conn)
    .await?;
    Ok(row.taken)
}

/// `pg_advisory_xact_lock` of each of `keys`, in their order, in one statement (`unnest`
/// yields the array's elements in order, and the select list is evaluated row by row in that
/// order).
pub(crate) async fn lock_keys(conn: &mut AsyncPgConnection, keys: &[String]) -> QueryResult<()> {
    cached(
        diesel::sql_query(
            "SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) \
             FROM unnest($1::text[]) WITH ORDINALITY AS keys(key, position) ORDER BY position",
        )
        .bind::<diesel::sql_types::Array<Text>, _>(keys),
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn lock_key(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<()> {
    cached(
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<Text, _>(key),
    )
    .execute(conn)
    .await?;
    Ok(())
}
