//! The Diesel adapter of the billing ports.
//!
//! [`DieselStore`] implements [`BillingStore`] on Postgres (diesel-async's
//! `AsyncPgConnection`, the production store) or on an embedded SQLite file (Diesel's
//! `SqliteConnection` behind diesel-async's sync wrapper, the default when no `DATABASE_URL`
//! is set).
//!
//! The code is laid out by aggregate: `events`, `customers`, `subscriptions`,
//! `payments` (with one-time orders), `credits`, `usage` (with `usage_batch`, the group commit of concurrent consumes), `stripe_requests`, `api_keys`, `leases`, `changes` (the change feed's outbox) and `push` (its deliveries to the
//! product's URLs) each
//! hold their rows, their row↔record conversions, their queries and their part of the ports'
//! traits (`impl CustomerTx for Tx<'_>` …). Every query is written once for both backends:
//!
//! - `schema` declares the tables once; timestamps have the SQL type `Ts`, which is
//!   `Timestamptz` on Postgres and `TimestamptzSqlite` on SQLite;
//! - `tx` holds `Tx`, the connection of either backend, and `on_conn!`, which runs a query on
//!   whichever it is (`on_conn!(tx, postgres: …, sqlite: …)` where the two differ: only
//!   `subscription()`'s `FOR UPDATE`);
//! - `pg` and `sqlite` hold what is backend-specific: pools, sessions, the advisory lock.
//!
//! [`DieselStore::gate_channel`] opens the Postgres connection that carries the gate cache's
//! invalidations between replicas (`notify`: `LISTEN`/`NOTIFY`); SQLite, one process, has none.
//!
//! Migrations live in the workspace's `migrations/postgres` and `migrations/sqlite` (linked into
//! this crate as `migrations`, so they are packaged with it), are
//! embedded in the binary and run only by an explicit [`DieselStore::run_migrations`] call.
//!
//! Every call is bounded in time ([`StoreSettings`]): waiting for a pooled connection, opening
//! one, checking an idle one before reuse, and the unit of work itself. A call past its limit
//! is abandoned (its transaction rolls back) and reported as [`StoreError::Unavailable`], like
//! a connection lost in the middle of a transaction, so callers answer "retry later" instead of
//! hanging with the database.
//!
//! ```no_run
//! # async fn demo() -> Result<(), billing_store_diesel::SetupError> {
//! let store = billing_store_diesel::DieselStore::connect("sqlite://data/billing.sqlite", 8)?;
//! store.run_migrations().await?;
//! # Ok(()) }
//! ```
//!
//! Architecture invariant: no Diesel type leaves this crate; callers see the ports' types.
#![warn(missing_docs)]

mod access;
mod api_keys;
mod begin;
mod changes;
mod credits;
mod customers;
mod driver;
mod error;
mod events;
mod leases;
mod migrate;
pub mod notify;
mod payments;
mod pg;
mod prepared;
mod push;
mod reconcile;
mod schema;
#[cfg(test)]
mod schema_check;
mod settings;
mod skip_locked;
mod sqlite;
mod stats;
mod stripe_requests;
mod subscriptions;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod tx;
mod usage;
mod usage_batch;

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use billing_ports::{
    ApiKeyRecord, BillingStore, Cause, ChangePurge, ChangeRecord, DeliveryFilter, DeliverySummary,
    DuePush, EventFilter, EventRecord, EventStats, EventSummary, Failure, FeedStore, GraceEnded,
    LeaseRecord, LeaseStore, NewEvent, PushAttempt, PushEndpointRecord, PushStore, ReplaySelection,
    RetryStore, StoreError, TxFuture, UsageConsumed, UsageRequest,
};
use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

pub use error::SetupError;
pub use notify::{GateChannel, GateEvent};
pub use settings::{RANDOM_PAGE_COST, StoreSettings};

/// The database behind a [`DieselStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// Embedded SQLite.
    Sqlite,
}

/// A moment's view of the store's connection pool (for gauges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections lent out to a call now.
    pub in_use: usize,
    /// Calls waiting for a connection.
    pub waiting: usize,
    /// The pool's size limit.
    pub max_size: usize,
}

/// The store on Postgres or SQLite.
#[derive(Clone)]
pub struct DieselStore {
    inner: Inner,
    url: String,
    settings: StoreSettings,
    /// Postgres: the queue that groups concurrent consumes into shared transactions.
    usage: std::sync::Arc<usage_batch::UsageBatcher>,
    /// Postgres with [`StoreSettings::database_thread`]: the thread every connection runs on;
    /// it stops when the last clone of the store is dropped.
    thread: Option<std::sync::Arc<driver::DriverThread>>,
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

/// Runs one single-statement call on a pooled connection of the store's backend, outside any
/// transaction and within the call limit; a statement error is confirmed on the same
/// connection before it is reported (see [`tx::confirm`]). SQLite's writers queue at the gate.
macro_rules! single_statement {
    ($self:expr, $limit:expr, |$tx:ident| $call:expr) => {
        $self
            .bounded($limit, async {
                match &$self.inner {
                    Inner::Postgres(pool) => {
                        let mut conn = pg::connection(pool).await?;
                        let mut $tx = tx::Tx::new(&mut *conn);
                        let result = $call;
                        tx::confirm(&mut $tx, result).await
                    }
                    Inner::Sqlite(pool, gate) => {
                        let _writer = gate.lock().await;
                        let mut conn = sqlite::connection(pool).await?;
                        let mut $tx = tx::Tx::new(&mut *conn);
                        let result = $call;
                        tx::confirm(&mut $tx, result).await
                    }
                }
            })
            .await
    };
}

/// Opens one Postgres connection (on `thread`'s runtime when there is one, where the task
/// driving its socket then runs) and sets up its session (`session`, see
/// [`StoreSettings::session_setup`]).
async fn open_postgres_on(
    thread: Option<tokio::runtime::Handle>,
    url: String,
    session: std::sync::Arc<str>,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    match thread {
        Some(thread) => thread
            .spawn(open_postgres(url, session))
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?,
        None => open_postgres(url, session).await,
    }
}

/// Opens one Postgres connection and runs `session`, its session settings, on it.
async fn open_postgres(
    url: String,
    session: std::sync::Arc<str>,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(&url).await?;
    conn.batch_execute(&session)
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// The Postgres pool: `settings.max_connections` connections, each with its session set up,
/// and deadpool's wait, create and recycle time limits.
fn postgres_pool(
    url: &str,
    settings: &StoreSettings,
    thread: Option<tokio::runtime::Handle>,
) -> Result<pg::Pool, SetupError> {
    let session: std::sync::Arc<str> = settings.session_setup().into();
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.custom_setup = Box::new(move |url| {
        Box::pin(open_postgres_on(
            thread.clone(),
            url.to_owned(),
            session.clone(),
        ))
    });
    let manager = pg::Manager::new(
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config),
        settings.verify_idle_after,
    );
    pg::Pool::builder(manager)
        .max_size(settings.max_connections)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(settings.pool_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.recycle_timeout))
        .build()
        .map_err(|e| SetupError::Pool(e.to_string()))
}

impl DieselStore {
    /// Builds a pool of `max_connections` for `url` with the default time limits
    /// ([`StoreSettings::new`]); see [`DieselStore::connect_with`].
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, SetupError> {
        Self::connect_with(url, StoreSettings::new(max_connections))
    }

    /// Builds a pool for `url`: `postgres://…` / `postgresql://…`, or `sqlite://path`
    /// (`sqlite::memory:` is refused: every pooled connection would see its own database),
    /// with `settings`' size and time limits. Opens no connection and runs no migration.
    pub fn connect_with(url: &str, settings: StoreSettings) -> Result<Self, SetupError> {
        settings.validate()?;
        let mut thread = None;
        let inner = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if settings.database_thread {
                thread = Some(std::sync::Arc::new(driver::DriverThread::start()?));
            }
            let handle = thread.as_ref().map(|t| t.handle().clone());
            Inner::Postgres(postgres_pool(url, &settings, handle)?)
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() || path.contains(":memory:") {
                return Err(SetupError::UnsupportedUrl);
            }
            Inner::Sqlite(
                sqlite::pool(path, settings.max_connections)?,
                std::sync::Arc::new(tokio::sync::Mutex::new(())),
            )
        } else {
            return Err(SetupError::UnsupportedUrl);
        };
        Ok(Self {
            inner,
            url: url.to_owned(),
            settings,
            usage: std::sync::Arc::default(),
            thread,
        })
    }

    /// The size and time limits this store was built with.
    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    /// Runs `call` within `limit`; past it, the call is dropped (a transaction in progress
    /// rolls back: its connection is discarded, never returned to the pool) and reported as
    /// unavailable.
    async fn bounded<T, E, F>(&self, limit: Duration, call: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: Future<Output = Result<T, E>>,
    {
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(E::from(StoreError::Unavailable(Cause::msg(format!(
                "no answer from the database within {} ms",
                limit.as_millis()
            ))))),
        }
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Postgres(_) => Backend::Postgres,
            Inner::Sqlite(..) => Backend::Sqlite,
        }
    }

    /// On Postgres, starts this process's [`GateChannel`] on the store's database (with the
    /// store's connect and statement time limits), reporting to `on_event`; `None` on SQLite,
    /// where one process holds the database and there is nobody to tell. Needs a tokio
    /// runtime.
    pub fn gate_channel(
        &self,
        on_event: impl Fn(GateEvent) + Send + Sync + 'static,
    ) -> Result<Option<GateChannel>, SetupError> {
        match self.inner {
            Inner::Postgres(_) => GateChannel::start(
                &self.url,
                self.settings.connect_timeout,
                self.settings.statement_timeout,
                on_event,
            )
            .map(Some),
            Inner::Sqlite(..) => Ok(None),
        }
    }

    /// The connection pool now: connections lent out, and calls waiting for one.
    pub fn pool_status(&self) -> PoolStatus {
        let status = match &self.inner {
            Inner::Postgres(pool) => pool.status(),
            Inner::Sqlite(pool, _) => pool.status(),
        };
        PoolStatus {
            in_use: status.size.saturating_sub(status.available),
            waiting: status.waiting,
            max_size: status.max_size,
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
        Ok(self.pending_migrations().await?.is_empty())
    }

    /// The names of the embedded migrations not applied yet (e.g. `2026-12-06-000003_api_keys`),
    /// in the order [`DieselStore::run_migrations`] would apply them; applies nothing. Uses a
    /// pooled connection, within the call limit.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, SetupError> {
        let limit = self.settings.call_limit();
        tokio::time::timeout(limit, self.pending_migrations_now())
            .await
            .unwrap_or_else(|_| {
                Err(SetupError::Unavailable(format!(
                    "no answer within {} ms",
                    limit.as_millis()
                )))
            })
    }

    async fn pending_migrations_now(&self) -> Result<Vec<String>, SetupError> {
        let backend = self.backend();
        let applied = match &self.inner {
            Inner::Postgres(pool) => {
                let mut conn = pg::connection(pool)
                    .await
                    .map_err(|e| SetupError::Connect(e.to_string()))?;
                migrate::applied_versions(&mut *conn, backend).await?
            }
            Inner::Sqlite(pool, _) => {
                let mut conn = sqlite::connection(pool)
                    .await
                    .map_err(|e| SetupError::Connect(e.to_string()))?;
                migrate::applied_versions(&mut *conn, backend).await?
            }
        };
        migrate::pending(backend, applied)
    }
}

#[async_trait]
impl BillingStore for DieselStore {
    /// The runtime of the store's database thread ([`StoreSettings::database_thread`]), on
    /// which every pooled connection runs; `None` without one (SQLite, or the setting off).
    fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.thread.as_ref().map(|thread| thread.handle().clone())
    }

    async fn transaction<'b, T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'b,
        E: From<StoreError> + Send + 'b,
        F: for<'r> FnOnce(&'r mut dyn billing_ports::BillingTx) -> TxFuture<'b, 'r, T, E>
            + Send
            + 'b,
    {
        self.bounded(self.settings.call_limit(), async {
            match &self.inner {
                Inner::Postgres(pool) => {
                    let mut conn = pg::connection(pool).await?;
                    tx::transaction_postgres(&mut conn, work).await
                }
                Inner::Sqlite(pool, gate) => {
                    let _writer = gate.lock().await;
                    let mut conn = sqlite::connection(pool).await?;
                    tx::transaction_sqlite(&mut conn, work).await
                }
            }
        })
        .await
    }

    /// No transaction and, on SQLite, no writer gate: WAL readers never wait for the writer.
    async fn read<'b, T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'b,
        E: From<StoreError> + Send + 'b,
        F: for<'r> FnOnce(&'r mut dyn billing_ports::BillingRead) -> TxFuture<'b, 'r, T, E>
            + Send
            + 'b,
    {
        self.bounded(self.settings.call_limit(), async {
            match &self.inner {
                Inner::Postgres(pool) => {
                    let mut conn = pg::connection(pool).await?;
                    tx::read(tx::Tx::new(&mut *conn), work).await
                }
                Inner::Sqlite(pool, _) => {
                    let mut conn = sqlite::connection(pool).await?;
                    tx::read(tx::Tx::new(&mut *conn), work).await
                }
            }
        })
        .await
    }

    /// Bounded by the pool timeout alone: this is bookkeeping after a unit of work already
    /// failed (often because the database is unreachable), and its caller is waiting to answer.
    async fn record_failure(
        &self,
        event: &NewEvent,
        failure: &Failure<'_>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        single_statement!(self, self.settings.pool_timeout, |tx| {
            tx.record_failure(event, failure, at).await
        })
    }

    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| tx.event(id).await)
    }

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventSummary>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.list_events(filter).await
        })
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<bool, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.insert_api_key(key).await
        })
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| tx.api_keys().await)
    }

    /// Two statements (the update, then the read of the row) outside a transaction: a
    /// revocation only ever sets a time once, so nothing can come between them that matters.
    async fn revoke_api_key(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.revoke_api_key(name, at).await
        })
    }

    async fn live_api_key_hashes(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.live_api_key_hashes().await
        })
    }

    async fn purge_events(&self, before: DateTime<Utc>, batch: u32) -> Result<u64, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.purge_events(before, batch).await
        })
    }

    async fn event_stats(&self, since: DateTime<Utc>) -> Result<EventStats, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| tx
            .event_stats(since)
            .await)
    }

    /// On Postgres, concurrent consumes share a transaction and a lone one is one statement
    /// (the `usage_batch` and `usage` modules); one transaction behind the writer gate on
    /// SQLite.
    async fn consume_usage(&self, request: &UsageRequest) -> Result<UsageConsumed, StoreError> {
        self.bounded(self.settings.call_limit(), async {
            match &self.inner {
                Inner::Postgres(pool) => {
                    let runtime = self.thread.as_ref().map(|thread| thread.handle());
                    self.usage.consume(pool, runtime, request).await
                }
                Inner::Sqlite(pool, gate) => {
                    let _writer = gate.lock().await;
                    let mut conn = sqlite::connection(pool).await?;
                    usage::consume_sqlite(&mut conn, request).await
                }
            }
        })
        .await
    }
}

#[async_trait]
impl RetryStore for DieselStore {
    async fn due_retries(
        &self,
        now: DateTime<Utc>,
        max_attempts: u32,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.due_retries(now, max_attempts, limit).await
        })
    }

    async fn failed_events(
        &self,
        since: Option<DateTime<Utc>>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.failed_events(since, after, limit).await
        })
    }
}

/// Each read first numbers the records committed since the last one (see the `changes`
/// module), so a cursor never passes a record committed later.
#[async_trait]
impl FeedStore for DieselStore {
    async fn changes_after(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            match tx.number_changes().await {
                Ok(()) => tx.changes_after(after, limit).await,
                Err(error) => Err(error),
            }
        })
    }

    async fn change_head(&self) -> Result<i64, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            match tx.number_changes().await {
                Ok(()) => tx.change_head().await,
                Err(error) => Err(error),
            }
        })
    }

    async fn change_exists(&self, seq: i64) -> Result<bool, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.change_exists(seq).await
        })
    }

    async fn change_horizon(&self) -> Result<i64, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.change_horizon().await
        })
    }

    async fn purge_changes(
        &self,
        before: DateTime<Utc>,
        batch: u32,
    ) -> Result<ChangePurge, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            match tx.number_changes().await {
                Ok(()) => tx.purge_changes(before, batch).await,
                Err(error) => Err(error),
            }
        })
    }

    async fn grace_periods_ended(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<GraceEnded>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.grace_periods_ended(now, limit).await
        })
    }
}

/// Each call one pooled connection, outside any transaction (each statement commits on its
/// own: a crash between an attempt's row and its delivery's update sends it again, which
/// at-least-once allows). SQLite's writers queue at the gate.
#[async_trait]
impl PushStore for DieselStore {
    async fn register_push_endpoint(
        &self,
        id: &str,
        display: &str,
        now: DateTime<Utc>,
    ) -> Result<PushEndpointRecord, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.register_push_endpoint(id, display, now).await
        })
    }

    async fn enqueue_pushes(
        &self,
        endpoint_id: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<usize, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.enqueue_pushes(endpoint_id, now, limit).await
        })
    }

    async fn due_pushes(
        &self,
        endpoint_id: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DuePush>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.due_pushes(endpoint_id, now, limit).await
        })
    }

    async fn next_push_due(&self, endpoint_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.next_push_due(endpoint_id).await
        })
    }

    async fn record_push_attempts(
        &self,
        attempts: &[PushAttempt],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.record_push_attempts(attempts, now).await
        })
    }

    async fn push_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliverySummary>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.push_deliveries(filter).await
        })
    }

    async fn replay_pushes(
        &self,
        selection: &ReplaySelection,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.replay_pushes(selection, now).await
        })
    }
}

#[async_trait]
impl LeaseStore for DieselStore {
    async fn take_lease(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.take_lease(job, holder, now, ttl).await
        })
    }

    async fn renew_lease(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.renew_lease(job, holder, now, ttl).await
        })
    }

    async fn release_lease(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        next_run_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| {
            tx.release_lease(job, holder, now, next_run_at).await
        })
    }

    async fn lease(&self, job: &str) -> Result<Option<LeaseRecord>, StoreError> {
        single_statement!(self, self.settings.call_limit(), |tx| tx.lease(job).await)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use diesel::QueryableByName;
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;

    use super::*;

    #[derive(QueryableByName)]
    struct Named {
        #[diesel(sql_type = Text)]
        name: String,
    }

    #[derive(QueryableByName)]
    struct PlanLine {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }

    /// The pool of a Postgres store.
    fn pool_of(store: &DieselStore) -> &pg::Pool {
        let Inner::Postgres(pool) = &store.inner else {
            panic!("a Postgres store")
        };
        pool
    }

    /// The `random_page_cost` of a pooled connection of a store with `settings`.
    async fn random_page_cost(url: &str, settings: StoreSettings) -> String {
        let store = DieselStore::connect_with(url, settings).unwrap();
        let pool = pool_of(&store);
        let mut conn = pg::connection(pool).await.unwrap();
        testing::setting(&mut conn, "random_page_cost").await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_postgres_connection_gets_the_store_random_page_cost_unless_told_not_to() {
        let db = testing::TestDatabase::postgres().await;
        assert_eq!(
            random_page_cost(db.url(), StoreSettings::new(1)).await,
            "1.1"
        );
        let own = StoreSettings {
            random_page_cost: None,
            ..StoreSettings::new(1)
        };
        // Postgres' default: this machine's database sets none of its own.
        assert_eq!(random_page_cost(db.url(), own).await, "4");
    }

    /// A statement the store prepares and first runs on a new database, its table empty,
    /// keeps the plan it got then (a generic plan after five runs): with the store's default
    /// planner costs that plan reads through the table's indexes, not the whole table. The
    /// payments lookup by either id is the one whose plan depends on it most (two indexes,
    /// `BitmapOr`), as a transaction that waits for locks sends it and as one that does not
    /// (the rows it can lock, counted with those it cannot).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lookup_planned_on_an_empty_table_reads_through_its_indexes() {
        use billing_ports::PaymentTx;
        let (intent, charge) = ("pi_3Qx8Rf2eZvKYlo2C1kWn", "ch_3Qx8Rf2eZvKYlo2C0pLm");
        let db = testing::TestDatabase::postgres().await;
        let store = DieselStore::connect_with(db.url(), StoreSettings::new(1)).unwrap();
        let pool = pool_of(&store);
        let mut conn = pg::connection(pool).await.unwrap();
        for (waits, text) in [
            (true, r#"SELECT "payments"."payment_key"%"#),
            (false, "SELECT m.total, l.payment_key%"),
        ] {
            let mut tx = tx::Tx::new(&mut *conn);
            tx.waits = waits;
            if !waits {
                // Held: what makes the lookup lock the rows it finds.
                tx.hold(intent);
                tx.hold(charge);
            }
            for _ in 0..7 {
                let found = tx.payments_matching(Some(intent), Some(charge)).await;
                assert!(found.unwrap().is_empty());
                tx.payments = payments::KeptPayments::default();
            }
            let named: Named = diesel::sql_query(format!(
                "SELECT name FROM pg_prepared_statements WHERE statement LIKE '{text}'"
            ))
            .get_result(&mut *conn)
            .await
            .unwrap();
            let plan: Vec<PlanLine> = diesel::sql_query(format!(
                "EXPLAIN EXECUTE \"{}\"('{intent}', '{charge}')",
                named.name
            ))
            .load(&mut *conn)
            .await
            .unwrap();
            reads_through_indexes(plan);
        }
    }

    /// Asserts that `plan` (an `EXPLAIN`'s lines) reads through an index and scans no table
    /// whole.
    fn reads_through_indexes(plan: Vec<PlanLine>) {
        let plan: Vec<String> = plan.into_iter().map(|line| line.line).collect();
        assert!(
            plan.iter().any(|line| line.contains("Index"))
                && !plan.iter().any(|line| line.contains("Seq Scan")),
            "{plan:#?}"
        );
    }

    /// The subscriptions a shared ingest transaction locks at once (those it can, counted with
    /// all that are stored), prepared on an empty table and executed past Postgres' five
    /// custom plans: the plan kept reads through the primary key, not the whole table.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_subscriptions_lock_planned_on_an_empty_table_reads_through_its_index() {
        let ids = ["sub_1Ua2Kc2eZvKYlo2Cp7Dm", "sub_1Ua2Kd2eZvKYlo2Cs4Gx"].map(str::to_owned);
        let db = testing::TestDatabase::postgres().await;
        let store = DieselStore::connect_with(db.url(), StoreSettings::new(1)).unwrap();
        let pool = pool_of(&store);
        let mut conn = pg::connection(pool).await.unwrap();
        for _ in 0..7 {
            let counted = subscriptions::lock_subscriptions_postgres(&conn, &ids).await;
            assert_eq!(
                counted.unwrap().len(),
                1,
                "one row: none stored, none locked"
            );
        }
        let named: Named = diesel::sql_query(
            "SELECT name FROM pg_prepared_statements WHERE statement LIKE 'SELECT m.total, l.*%'",
        )
        .get_result(&mut *conn)
        .await
        .unwrap();
        let plan: Vec<PlanLine> = diesel::sql_query(format!(
            "EXPLAIN EXECUTE \"{}\"('{{{},{}}}')",
            named.name, ids[0], ids[1]
        ))
        .load(&mut *conn)
        .await
        .unwrap();
        reads_through_indexes(plan);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_postgres_connection_gets_a_statement_timeout_just_past_the_call_limit() {
        let db = testing::TestDatabase::postgres().await;
        let settings = StoreSettings {
            pool_timeout: Duration::from_millis(300),
            statement_timeout: Duration::from_millis(700),
            ..StoreSettings::new(2)
        };
        let store = DieselStore::connect_with(db.url(), settings).unwrap();
        let pool = pool_of(&store);
        for _ in 0..2 {
            let mut conn = pg::connection(pool).await.unwrap();
            // 300 ms + 700 ms + 1 s.
            assert_eq!(testing::setting(&mut conn, "statement_timeout").await, "2s");
        }
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
