//! The pool size, time limits and planner costs of a [`DieselStore`](crate::DieselStore).

use std::time::Duration;

use crate::error::SetupError;

/// The pool size, the time limits of every database call, and the planner costs of the
/// store's Postgres sessions.
///
/// A unit of work (one transaction, or one statement outside a transaction) is abandoned after
/// [`StoreSettings::call_limit`] = `pool_timeout + statement_timeout`, waiting for its
/// connection included, and reported as [`StoreError::Unavailable`](billing_ports::StoreError::Unavailable); the abandoned transaction
/// rolls back. On Postgres every connection also gets `statement_timeout` = the call limit plus
/// one second, so the server cancels statements of a call the client gave up on (and never
/// before the client gave up, which keeps every time-out a clean "unavailable").
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// Postgres: the `random_page_cost` of the store's sessions ([`RANDOM_PAGE_COST`] by
    /// default; `None`: the database's own). See [`RANDOM_PAGE_COST`].
    pub random_page_cost: Option<f64>,
}

/// The store's default `random_page_cost`: reading a page out of order costs about what
/// reading the next one does, as it does for a database in memory or on SSDs (Postgres'
/// default, 4, models spinning disks).
///
/// Every statement the store runs often looks rows up by key, and is prepared once per
/// connection. Postgres plans such a statement for its table's size when it is first used
/// and keeps the plan until the table is analysed: on a new database, where the tables are
/// empty, that plan read whole tables (a `Seq Scan` of each payment, credit and access read)
/// and kept reading them as they grew, until autovacuum analysed them a minute or more
/// later. With this cost the plan made on an empty table already uses the index
/// (`docs/benchmarks.md`, "Plans made on empty tables").
pub const RANDOM_PAGE_COST: f64 = 1.1;

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
            random_page_cost: Some(RANDOM_PAGE_COST),
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

    /// The statements every pooled Postgres connection runs once opened: its
    /// `statement_timeout` ([`StoreSettings::server_statement_timeout`]),
    /// `default_transaction_deferrable` off, and its `random_page_cost`, when set.
    pub(crate) fn session_setup(&self) -> String {
        // `off` whatever the database's or role's default: the claim checks it, and that its
        // transaction is `DEFERRABLE` (`begin::in_transaction!`), so it runs only inside the
        // store's own transactions (a session reset to a default `on` refuses every claim).
        let mut setup = format!(
            "SET statement_timeout = {}; SET default_transaction_deferrable = off",
            self.server_statement_timeout().as_millis()
        );
        if let Some(cost) = self.random_page_cost {
            setup.push_str(&format!("; SET random_page_cost = {cost}"));
        }
        setup
    }

    pub(crate) fn validate(&self) -> Result<(), SetupError> {
        let mut problems = Vec::new();
        if let Some(cost) = self.random_page_cost
            && !(cost.is_finite() && cost > 0.0)
        {
            problems.push(format!("random_page_cost must be above 0, not {cost}"));
        }
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
