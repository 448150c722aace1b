//! The pool size and time limits of a [`DieselStore`](crate::DieselStore).

use std::time::Duration;

use crate::error::SetupError;

/// The pool size and the time limits of every database call.
///
/// A unit of work (one transaction, or one statement outside a transaction) is abandoned after
/// [`StoreSettings::call_limit`] = `pool_timeout + statement_timeout`, waiting for its
/// connection included, and reported as [`StoreError::Unavailable`](billing_ports::StoreError::Unavailable); the abandoned transaction
/// rolls back. On Postgres every connection also gets `statement_timeout` = the call limit plus
/// one second, so the server cancels statements of a call the client gave up on (and never
/// before the client gave up, which keeps every time-out a clean "unavailable").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSettings {
    /// Connections in the pool (at least 1).
    pub max_connections: usize,
    /// The longest wait for a free pooled connection.
    pub pool_timeout: Duration,
    /// The longest time to open a new connection (TCP, start-up, session settings).
    pub connect_timeout: Duration,
    /// The longest time to check an idle connection (`SELECT 1`) before reusing it; a
    /// connection failing the check is dropped and another one taken or opened.
    pub recycle_timeout: Duration,
    /// The longest a unit of work may run beyond its wait for a connection.
    pub statement_timeout: Duration,
    /// A pooled Postgres connection idle for longer than this is checked (`SELECT 1`) before
    /// reuse; one used more recently is lent at once (zero: always check).
    pub verify_idle_after: Duration,
    /// Postgres: open every pooled connection on a thread of the store's own (a
    /// single-threaded runtime), where [`BillingStore::runtime`] runs the hot units of
    /// work (ingest's lanes, the usage batch), so that their statements' round trips wake no
    /// other thread. Off: connections run on the runtime that opened them.
    ///
    /// [`BillingStore::runtime`]: billing_ports::BillingStore::runtime
    pub database_thread: bool,
}

impl StoreSettings {
    /// `max_connections` connections and the default limits: 5 s to get a connection, 5 s to
    /// open one, 1 s to check an idle one, 10 s of work; a connection idle for over 1 s is
    /// checked before reuse.
    pub fn new(max_connections: usize) -> Self {
        Self {
            max_connections,
            pool_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            recycle_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(10),
            verify_idle_after: Duration::from_secs(1),
            database_thread: false,
        }
    }

    /// The longest one call may take, waiting for its connection included.
    pub fn call_limit(&self) -> Duration {
        self.pool_timeout + self.statement_timeout
    }

    /// Postgres' `statement_timeout` for every connection: later than the client's own limit.
    pub(crate) fn server_statement_timeout(&self) -> Duration {
        self.call_limit() + Duration::from_secs(1)
    }

    pub(crate) fn validate(&self) -> Result<(), SetupError> {
        let mut problems = Vec::new();
        if self.max_connections == 0 {
            problems.push("max_connections must be at least 1".to_owned());
        }
        for (name, value) in [
            ("pool_timeout", self.pool_timeout),
            ("connect_timeout", self.connect_timeout),
            ("recycle_timeout", self.recycle_timeout),
            ("statement_timeout", self.statement_timeout),
        ] {
            if value.is_zero() {
                problems.push(format!("{name} must be longer than 0"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SetupError::InvalidSettings(problems.join("; ")))
        }
    }
}

impl Default for StoreSettings {
    /// 16 connections and the default limits of [`StoreSettings::new`].
    fn default() -> Self {
        Self::new(16)
    }
}
