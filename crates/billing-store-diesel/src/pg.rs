//! The Postgres backend: diesel-async's `AsyncPgConnection` in a deadpool pool.
//!
//! What only Postgres does: locking a key with an advisory lock until commit (and reading
//! after the lock in the same round trip, [`lock_then`]), and (in `subscriptions`) locking a
//! row read to change it with `FOR UPDATE`.

use std::task::Poll;
use std::time::Duration;

use billing_ports::{Cause, StoreError};
use deadpool::managed::{Metrics, Object, RecycleResult};
use diesel::QueryResult;
use diesel::sql_types::Text;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, PoolError, PoolableConnection,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::prepared::cached;

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
pub(crate) async fn try_lock_key(mut conn: &AsyncPgConnection, key: &str) -> QueryResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    let row: Taken = cached(
        diesel::sql_query("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS taken")
            .bind::<Text, _>(key),
    )
    .get_result(&mut conn)
    .await?;
    Ok(row.taken)
}

/// `pg_advisory_xact_lock` of each of `keys`, in their order, in one statement (`unnest`
/// yields the array's elements in order, and the select list is evaluated row by row in that
/// order).
pub(crate) async fn lock_keys(mut conn: &AsyncPgConnection, keys: &[String]) -> QueryResult<()> {
    cached(
        diesel::sql_query(
            "SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) \
             FROM unnest($1::text[]) WITH ORDINALITY AS keys(key, position) ORDER BY position",
        )
        .bind::<diesel::sql_types::Array<Text>, _>(keys),
    )
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// `pg_try_advisory_xact_lock` of each of `keys`, in one statement: true when all were taken
/// (some may be taken when one was not).
pub(crate) async fn try_lock_keys(
    mut conn: &AsyncPgConnection,
    keys: &[String],
) -> QueryResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    let rows: Vec<Taken> = cached(
        diesel::sql_query(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(key, 0)) AS taken \
             FROM unnest($1::text[]) AS keys(key)",
        )
        .bind::<diesel::sql_types::Array<Text>, _>(keys),
    )
    .load(&mut conn)
    .await?;
    Ok(rows.iter().all(|row| row.taken))
}

/// Tries the advisory locks of `keys` ([`try_lock_keys`]), then runs `read`, in one round
/// trip: whether all were taken, and what `read` read (which the caller drops when they were
/// not).
pub(crate) async fn try_lock_then<T>(
    conn: &AsyncPgConnection,
    keys: &[String],
    read: impl Future<Output = QueryResult<T>>,
) -> QueryResult<(bool, T)> {
    match keys {
        [] => Ok((true, read.await?)),
        keys => pipelined(try_lock_keys(conn, keys), read).await,
    }
}

/// The locks of `keys` waited for (`wait`, [`lock_then`]) or only tried ([`try_lock_then`]),
/// then `read`, in one round trip: whether all were taken (always, when waited for), and what
/// `read` read.
pub(crate) async fn take_locks_then<T>(
    conn: &AsyncPgConnection,
    keys: &[String],
    wait: bool,
    read: impl Future<Output = QueryResult<T>>,
) -> QueryResult<(bool, T)> {
    if wait {
        lock_then(conn, keys, read).await.map(|value| (true, value))
    } else {
        try_lock_then(conn, keys, read).await
    }
}

pub(crate) async fn lock_key(mut conn: &AsyncPgConnection, key: &str) -> QueryResult<()> {
    cached(
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<Text, _>(key),
    )
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// Runs `first` and `second`, two statements on one connection, `second` after `first`, in one
/// round trip once both are prepared on the connection: `first` is polled before `second`
/// every time, so its statement is sent first (diesel-async sends a statement on its
/// future's first poll, after taking the connection's statement cache in turn, held while it
/// prepares a new statement), and Postgres runs a connection's statements in the order it
/// receives them. So `second` starts once `first` has finished: after a lock `first` waited
/// for, `second` sees what the lock's earlier holder committed. The first error is returned.
///
/// `first` must bind no custom SQL type: diesel-async looks such types up before it takes the
/// statement cache, which would let `second` go first. (Every caller binds built-in types.)
pub(crate) async fn pipelined<A, B>(
    first: impl Future<Output = QueryResult<A>>,
    second: impl Future<Output = QueryResult<B>>,
) -> QueryResult<(A, B)> {
    let mut first = std::pin::pin!(first);
    let mut second = std::pin::pin!(second);
    let (mut a, mut b) = (None, None);
    std::future::poll_fn(|cx| {
        if a.is_none()
            && let Poll::Ready(done) = first.as_mut().poll(cx)
        {
            a = Some(done?);
        }
        if b.is_none()
            && let Poll::Ready(done) = second.as_mut().poll(cx)
        {
            b = Some(done?);
        }
        match (a.take(), b.take()) {
            (Some(a), Some(b)) => Poll::Ready(Ok((a, b))),
            (left, right) => {
                (a, b) = (left, right);
                Poll::Pending
            }
        }
    })
    .await
}

/// Takes the advisory locks of `keys` (in their order), then runs `read`, in one round trip
/// ([`pipelined`]): `read` sees every commit of the locks' earlier holders.
pub(crate) async fn lock_then<T>(
    conn: &AsyncPgConnection,
    keys: &[String],
    read: impl Future<Output = QueryResult<T>>,
) -> QueryResult<T> {
    let ((), value) = match keys {
        [] => ((), read.await?),
        [key] => pipelined(lock_key(conn, key), read).await?,
        keys => pipelined(lock_keys(conn, keys), read).await?,
    };
    Ok(value)
}
