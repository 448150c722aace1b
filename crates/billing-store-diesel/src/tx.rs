//! One connection as the aggregates' queries see it ([`Tx`]), and the units of work run on it.
//!
//! The queries are written once: [`Tx`] holds the connection of either backend ([`Conn`]),
//! and [`on_conn!`] runs a query on whichever it is, Diesel checking and building the query
//! for that backend. Where the backends really differ, the query says so in place with the
//! two-armed form of [`on_conn!`] (`subscription()` locks its row on Postgres only).
//!
//! After a failure, [`Tx`] knows whether a statement failed for a reason Diesel cannot name
//! (its SQLSTATE is not exposed by diesel-async). Such a failure on a database that lacks an
//! embedded migration is reported as [`StoreError::NotMigrated`]: the migrations Diesel
//! recorded are compared with the embedded ones on the same connection, never the message.

use std::collections::{HashMap, HashSet};

use billing_ports::{BillingRead, BillingTx, Cause, CustomerRecord, LockTx, StoreError, TxFuture};
use diesel::result::Error as DieselError;
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, SimpleAsyncConnection,
    TransactionManager,
};

use crate::Backend;
use crate::access::KeptAccess;
pub(crate) use crate::begin::PgConn;
use crate::error::{TxFailure, connection_lost, db_err};
use crate::migrate;
use crate::payments::KeptPayments;
use crate::sqlite::SqliteConn;
use crate::subscriptions::SavedSubscriptions;

/// The connection of one backend.
pub(crate) enum Conn<'c> {
    /// diesel-async's Postgres connection, whose transaction's `BEGIN` may still be pending.
    Postgres(PgConn<'c>),
    /// Diesel's SQLite connection behind diesel-async's sync wrapper.
    Sqlite(&'c mut SqliteConn),
}

impl<'c> From<&'c mut AsyncPgConnection> for Conn<'c> {
    fn from(conn: &'c mut AsyncPgConnection) -> Self {
        Conn::Postgres(PgConn::new(conn))
    }
}

impl<'c> From<PgConn<'c>> for Conn<'c> {
    fn from(conn: PgConn<'c>) -> Self {
        Conn::Postgres(conn)
    }
}

impl<'c> From<&'c mut SqliteConn> for Conn<'c> {
    fn from(conn: &'c mut SqliteConn) -> Self {
        Conn::Sqlite(conn)
    }
}

/// Runs a Diesel query on the connection of a [`Tx`] and maps its error to a [`StoreError`]
/// (through [`Tx::statement_failed`], which remembers an unclassified failure). In a
/// transaction whose `BEGIN` is still pending, the `BEGIN` is sent first ([`PgConn::ready`]).
///
/// `on_conn!(tx, |c| query.get_result(c).await)` writes the query once for both backends;
/// `on_conn!(tx, postgres: |c| …, sqlite: |c| …)` states a difference between them.
macro_rules! on_conn {
    ($tx:expr, |$c:ident| $body:expr) => {
        $crate::tx::on_conn!($tx, postgres: |$c| $body, sqlite: |$c| $body)
    };
    ($tx:expr, postgres: |$pg:ident| $pg_body:expr, sqlite: |$lite:ident| $lite_body:expr $(,)?) => {{
        let result = match &mut $tx.conn {
            $crate::tx::Conn::Postgres(conn) => {
                async {
                    let $pg = conn.ready().await?;
                    $pg_body
                }
                .await
            }
            $crate::tx::Conn::Sqlite(conn) => {
                let $lite = &mut **conn;
                $lite_body
            }
        };
        result.map_err(|error| $tx.statement_failed(error))
    }};
}

pub(crate) use on_conn;

/// On Postgres, takes the advisory locks of those of `$keys` the [`Tx`] does not hold yet
/// and runs a read after them in the same round trip ([`crate::pg::lock_then`]), after the
/// transaction's pending `BEGIN` ([`PgConn::ready`]):
/// `after_locks!(tx, keys, |c| future)`, with `c` the `&AsyncPgConnection` the future runs on.
/// `Some(result)` on Postgres; `None` on SQLite, where the caller locks (a no-op) and reads as
/// usual.
macro_rules! after_locks {
    ($tx:expr, $keys:expr, |$c:ident| $read:expr) => {{
        let new = $tx.not_held($keys);
        let waits = $tx.waits;
        let result = match &mut $tx.conn {
            $crate::tx::Conn::Postgres(conn) => Some(
                async {
                    let $c: &diesel_async::AsyncPgConnection = conn.ready().await?;
                    $crate::pg::take_locks_then($c, &new, waits, $read).await
                }
                .await,
            ),
            $crate::tx::Conn::Sqlite(_) => None,
        };
        result.map(|result| $tx.locked_or_busy(new, result))
    }};
}

pub(crate) use after_locks;

/// A connection lent to the aggregates' queries: inside a transaction for
/// [`BillingStore::transaction`](billing_ports::BillingStore::transaction), outside any for
/// reads and single statements.
pub(crate) struct Tx<'c> {
    pub(crate) conn: Conn<'c>,
    /// The cause of the first statement that failed for a reason Diesel could not name.
    unclassified: Option<Cause>,
    /// Write statements run on the rows users' access is read from (`access`).
    pub(crate) access_writes: u64,
    /// Users' access rows read under their locks and not written since (`access`).
    pub(crate) kept: KeptAccess,
    /// Payments and orders read under their ids' locks and not written since (`payments`).
    pub(crate) payments: KeptPayments,
    /// Subscriptions saved and not written yet: every statement that reads `subscriptions`
    /// writes them first, and so does the commit ([`Tx::write_subscriptions`]).
    pub(crate) saved_subscriptions: SavedSubscriptions,
    /// The advisory lock keys this transaction took: held until it ends, so taking one again
    /// needs no statement. On SQLite, where a lock is nothing (the one writer holds the whole
    /// database, and a transaction reads one snapshot), the keys asked for are recorded all
    /// the same: what they protect holds there for the whole transaction.
    held: HashSet<String>,
    /// Customers read under their own lock (their Stripe id, which every writer of a customer
    /// holds), by Stripe id: no other transaction can change them until this one ends.
    pub(crate) customers: HashMap<String, Option<CustomerRecord>>,
    /// The source keys of the ledger entries this transaction added or found already stored:
    /// adding one again adds nothing (entries are never deleted), so it sends no statement.
    pub(crate) credit_keys: HashSet<String>,
    /// Source keys read ahead as not stored
    /// ([`ReadAhead::credit_sources`](billing_ports::ReadAhead::credit_sources)) and not
    /// added yet: adding an entry of one waits in `pending_credits`.
    pub(crate) credits_absent: HashSet<String>,
    /// Ledger entries added and not written yet: every statement that reads the ledger writes
    /// them first, and so does the commit ([`Tx::write_credits`]).
    pub(crate) pending_credits: Vec<crate::credits::CreditRow>,
    /// Whether a lock not held yet is waited for (true) or only tried
    /// ([`LockTx::wait_for_locks`]).
    pub(crate) waits: bool,
    /// Change records to write with the commit ([`ChangeTx::insert_changes_at_commit`]), only
    /// ever set in a Postgres transaction run by [`transaction_postgres`], which sends them
    /// in its commit's round trip.
    ///
    /// [`ChangeTx::insert_changes_at_commit`]: billing_ports::ChangeTx::insert_changes_at_commit
    pub(crate) changes_at_commit: Option<Vec<billing_ports::NewChange>>,
}

impl Tx<'_> {
    /// Writes what this transaction saved and did not write yet: its subscriptions
    /// ([`Tx::write_subscriptions`]) and its ledger entries ([`Tx::write_credits`]).
    pub(crate) async fn write_saved(&mut self) -> Result<(), StoreError> {
        self.write_subscriptions().await?;
        self.write_credits().await
    }
}

impl<'c> Tx<'c> {
    /// A `Tx` on `conn`, with no failure seen yet.
    pub(crate) fn new(conn: impl Into<Conn<'c>>) -> Self {
        Self {
            conn: conn.into(),
            unclassified: None,
            access_writes: 0,
            kept: KeptAccess::default(),
            payments: KeptPayments::default(),
            saved_subscriptions: SavedSubscriptions::default(),
            held: HashSet::new(),
            customers: HashMap::new(),
            credit_keys: HashSet::new(),
            credits_absent: HashSet::new(),
            pending_credits: Vec::new(),
            changes_at_commit: None,
            waits: true,
        }
    }

    /// True when this transaction holds the advisory lock of `key`.
    pub(crate) fn holds(&self, key: &str) -> bool {
        self.held.contains(key)
    }

    /// Those of `keys` this transaction does not hold yet, in their order.
    pub(crate) fn not_held(&self, keys: &[String]) -> Vec<String> {
        keys.iter()
            .filter(|key| !self.held.contains(key.as_str()))
            .cloned()
            .collect()
    }

    /// The outcome of a statement that took, or only tried (`taken` says whether all were
    /// taken), the locks of `keys`: [`StoreError::LockBusy`] when one was not taken.
    pub(crate) fn locked_or_busy<T>(
        &mut self,
        keys: Vec<String>,
        result: diesel::QueryResult<(bool, T)>,
    ) -> Result<T, StoreError> {
        let (taken, value) = result.map_err(|error| self.statement_failed(error))?;
        if !taken {
            // Some of them may be taken; none is counted as held: the unit of work rolls back.
            return Err(busy(&keys));
        }
        self.held.extend(keys);
        Ok(value)
    }

    /// Records that this transaction took the lock of `key` (a try that succeeded).
    pub(crate) fn hold(&mut self, key: &str) {
        self.held.insert(key.to_owned());
    }

    /// Maps a failed statement's error and remembers it when it is unclassified
    /// ([`StoreError::Query`]), for [`Tx::diagnose`].
    pub(crate) fn statement_failed(&mut self, error: DieselError) -> StoreError {
        let error = db_err(error);
        if let (StoreError::Query(cause), None) = (&error, &self.unclassified) {
            self.unclassified = Some(cause.clone());
        }
        error
    }

    /// After a unit of work failed: [`StoreError::NotMigrated`] when one of its statements
    /// failed unclassified and the database lacks an embedded migration; `None` when the
    /// failure is what it says (or the check itself cannot run).
    ///
    /// Must run outside any transaction: a failed Postgres transaction answers nothing else.
    pub(crate) async fn diagnose(&mut self) -> Option<StoreError> {
        let cause = self.unclassified.take()?;
        let (backend, applied) = match &mut self.conn {
            Conn::Postgres(conn) => (
                Backend::Postgres,
                migrate::applied_versions(conn.connection(), Backend::Postgres).await,
            ),
            Conn::Sqlite(conn) => (
                Backend::Sqlite,
                migrate::applied_versions(&mut **conn, Backend::Sqlite).await,
            ),
        };
        match applied.and_then(|applied| migrate::pending(backend, applied)) {
            Ok(pending) if !pending.is_empty() => Some(StoreError::NotMigrated(cause)),
            Ok(_) | Err(_) => None,
        }
    }

    /// True when `SELECT 1` fails on this connection because the connection is gone.
    pub(crate) async fn connection_lost(&mut self) -> bool {
        let probe = match &mut self.conn {
            Conn::Postgres(conn) => conn.connection().batch_execute("SELECT 1").await,
            Conn::Sqlite(conn) => conn.batch_execute("SELECT 1").await,
        };
        probe.is_err_and(|error| connection_lost(&error))
    }
}

/// Runs `work` in one transaction on a SQLite connection: commits when it returns `Ok` (after
/// writing what it saved and did not write yet, [`Tx::write_saved`]), rolls back when
/// it returns `Err`. A failure is reported as [`StoreError::NotMigrated`] when
/// [`Tx::diagnose`] says so, checked on the same connection once the transaction has rolled
/// back. [`transaction_postgres`] is its Postgres counterpart.
pub(crate) async fn transaction_sqlite<'b, T, E, F>(conn: &mut SqliteConn, work: F) -> Result<T, E>
where
    T: Send + 'b,
    E: From<StoreError> + Send + 'b,
    F: for<'r> FnOnce(&'r mut dyn BillingTx) -> TxFuture<'b, 'r, T, E> + Send + 'b,
{
    let mut unclassified = None;
    let result = conn
        .transaction(async |c: &mut SqliteConn| {
            let mut tx = Tx::new(c);
            let result = match work(&mut tx).await {
                // What the work saved and did not write yet goes before the commit.
                Ok(value) => tx.write_saved().await.map(|()| value).map_err(E::from),
                Err(error) => Err(error),
            };
            unclassified = tx.unclassified.take();
            result.map_err(TxFailure::Work)
        })
        .await;
    let mut tx = Tx::new(conn);
    tx.unclassified = unclassified;
    tx.after_transaction(result).await
}

/// Runs `work` in one transaction on a Postgres connection, as [`transaction_sqlite`] does
/// on SQLite, except for its two ends, each in the round trip of other statements:
///
/// - **its `BEGIN`** is deferred to the first round trip ([`PgConn`]): ingest's claim carries
///   it, any other first statement sends it first in a round trip of its own. A unit of work
///   that sends nothing ends with neither `BEGIN` nor `COMMIT`;
/// - **its `COMMIT`**: the change records the work wrote at commit
///   ([`ChangeTx::insert_changes_at_commit`](billing_ports::ChangeTx::insert_changes_at_commit)),
///   the subscriptions it saved and the ledger entries it added without a statement go with
///   it, in one round trip ([`Tx::commit_with_changes`]). A commit with no records waiting is
///   diesel-async's own, after what was saved is written ([`Tx::write_saved`]).
///
/// The order on the wire is the writes, then `COMMIT` ([`crate::pg::pipelined`]). If a write
/// fails, Postgres has aborted the transaction: a `COMMIT` already sent behind it only ends it
/// (it rolls back), and one not sent yet never is; either way the failure is returned and a
/// `ROLLBACK` is sent as after any failure (on a transaction already ended, or never begun, it
/// is a warning, not an error). From its `BEGIN` until its `COMMIT` has answered, the
/// connection's transaction manager counts the transaction open, so a connection whose round
/// trip is cancelled is discarded by the pool when it is next taken, never lent out in a
/// transaction. On a connection already in a transaction this one is a savepoint, begun at
/// once, whose records are written when given (`changes_at_commit` stays `None`).
pub(crate) async fn transaction_postgres<'b, T, E, F>(
    conn: &mut AsyncPgConnection,
    work: F,
) -> Result<T, E>
where
    T: Send + 'b,
    E: From<StoreError> + Send + 'b,
    F: for<'r> FnOnce(&'r mut dyn BillingTx) -> TxFuture<'b, 'r, T, E> + Send + 'b,
{
    type Manager = AnsiTransactionManager;
    let outermost =
        <Manager as TransactionManager<AsyncPgConnection>>::transaction_manager_status_mut(conn)
            .transaction_depth()
            .is_ok_and(|depth| depth.is_none());
    let begun = match outermost {
        true => Ok(PgConn::deferring_begin(&mut *conn)),
        false => <Manager as TransactionManager<AsyncPgConnection>>::begin_transaction(conn)
            .await
            .map(|()| PgConn::new(&mut *conn)),
    };
    let mut unclassified = None;
    let result: Result<T, TxFailure<E>> = match begun {
        Err(error) => Err(TxFailure::Database(error)),
        Ok(pg) => {
            let mut tx = Tx::new(pg);
            // Only a top-level transaction ends with a `COMMIT` of its own to send them with;
            // inside another one (a savepoint) they are written at once.
            if outermost {
                tx.changes_at_commit = Some(Vec::new());
            }
            let worked = match work(&mut tx).await {
                Ok(value) => match tx.commit_with_changes().await {
                    Ok(committed) => Ok((value, committed)),
                    Err(error) => Err(E::from(error)),
                },
                Err(error) => Err(error),
            };
            unclassified = tx.unclassified.take();
            // Nothing was sent, not even the `BEGIN`: there is nothing to end.
            let sent = !matches!(&tx.conn, Conn::Postgres(pg) if pg.begin_pending());
            match worked {
                Ok((value, committed)) if committed || !sent => Ok(value),
                Err(error) if !sent => Err(TxFailure::Work(error)),
                Ok((value, _)) => {
                    <Manager as TransactionManager<AsyncPgConnection>>::commit_transaction(conn)
                        .await
                        .map(|()| value)
                        .map_err(TxFailure::Database)
                }
                // As diesel-async's own `transaction` does after a failed unit of work.
                Err(error) => {
                    match <Manager as TransactionManager<AsyncPgConnection>>::rollback_transaction(
                        conn,
                    )
                    .await
                    {
                        Ok(()) | Err(DieselError::BrokenTransactionManager) => {
                            Err(TxFailure::Work(error))
                        }
                        Err(rollback) => Err(TxFailure::Database(rollback)),
                    }
                }
            }
        }
    };
    let mut tx = Tx::new(conn);
    tx.unclassified = unclassified;
    tx.after_transaction(result).await
}

impl Tx<'_> {
    /// The outcome of a transaction that has ended on this connection: its value, the unit
    /// of work's error, or the database's; diagnosed (see [`Tx::diagnose`]) when it failed.
    async fn after_transaction<T, E>(&mut self, result: Result<T, TxFailure<E>>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let error = match result {
            Ok(value) => return Ok(value),
            Err(TxFailure::Work(error)) => error,
            Err(TxFailure::Database(error)) => E::from(self.statement_failed(error)),
        };
        match self.diagnose().await {
            Some(not_migrated) => Err(E::from(not_migrated)),
            None => Err(error),
        }
    }
}

/// Runs the read-only `work` on `tx`, outside any transaction; a failure is diagnosed as in
/// [`transaction`].
pub(crate) async fn read<'b, T, E, F>(mut tx: Tx<'_>, work: F) -> Result<T, E>
where
    T: Send + 'b,
    E: From<StoreError> + Send + 'b,
    F: for<'r> FnOnce(&'r mut dyn BillingRead) -> TxFuture<'b, 'r, T, E> + Send + 'b,
{
    let error = match work(&mut tx).await {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    match tx.diagnose().await {
        Some(not_migrated) => Err(E::from(not_migrated)),
        None => Err(error),
    }
}

/// A statement that failed for a reason Diesel cannot name (an administrator's termination
/// looks like any other statement error) is checked on the same connection before it is
/// reported: with `SELECT 1`, and if the connection is gone the failure was the database
/// going away and is reported as unavailable; then with [`Tx::diagnose`].
pub(crate) async fn confirm<T>(
    tx: &mut Tx<'_>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Err(StoreError::Query(cause)) => {
            if tx.connection_lost().await {
                Err(StoreError::Unavailable(cause))
            } else if let Some(not_migrated) = tx.diagnose().await {
                Err(not_migrated)
            } else {
                Err(StoreError::Query(cause))
            }
        }
        other => other,
    }
}

#[async_trait::async_trait]
impl LockTx for Tx<'_> {
    /// An advisory lock on Postgres (no statement when this transaction already holds it);
    /// nothing on SQLite, whose one writer at a time holds the whole database.
    async fn lock_key(&mut self, key: &str) -> Result<(), StoreError> {
        self.lock_keys(&[key.to_owned()]).await
    }

    /// Always taken on SQLite (one writer at a time).
    async fn try_lock_key(&mut self, key: &str) -> Result<bool, StoreError> {
        if self.held.contains(key) {
            return Ok(true);
        }
        let taken = match &mut self.conn {
            Conn::Postgres(conn) => {
                async { crate::pg::try_lock_key(conn.ready().await?, key).await }.await
            }
            Conn::Sqlite(_) => Ok(true),
        };
        let taken = taken.map_err(|error| self.statement_failed(error))?;
        if taken {
            self.hold(key);
        }
        Ok(taken)
    }

    /// One statement on Postgres for the keys this transaction does not hold yet, in their
    /// order; none when it holds them all. Only tried when the transaction does not wait.
    async fn lock_keys(&mut self, keys: &[String]) -> Result<(), StoreError> {
        let new = self.not_held(keys);
        let waits = self.waits;
        let locked = match (&mut self.conn, new.as_slice()) {
            (_, []) | (Conn::Sqlite(_), _) => Ok(true),
            (Conn::Postgres(conn), keys) => {
                async {
                    let conn = conn.ready().await?;
                    match keys {
                        _ if !waits => crate::pg::try_lock_keys(conn, keys).await,
                        [key] => crate::pg::lock_key(conn, key).await.map(|()| true),
                        keys => crate::pg::lock_keys(conn, keys).await.map(|()| true),
                    }
                }
                .await
            }
        };
        self.locked_or_busy(new, locked.map(|taken| (taken, ())))
    }

    async fn wait_for_locks(&mut self, wait: bool) -> Result<(), StoreError> {
        self.waits = wait;
        Ok(())
    }
}

/// The error of a lock in `keys` that another transaction held, for a transaction that does
/// not wait ([`LockTx::wait_for_locks`]).
pub(crate) fn busy(keys: &[String]) -> StoreError {
    StoreError::LockBusy(Cause::msg(format!(
        "one of the locks {keys:?} is held by another transaction"
    )))
}
