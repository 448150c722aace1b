//! Errors the ports report.

use thiserror::Error;

/// A failure of the store.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The database could not be reached (pool exhausted, connection refused or lost).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness or foreign-key constraint refused a write.
    #[error("constraint violated: {0}")]
    Conflict(String),
    /// The database refused a value (a `CHECK` or `NOT NULL` constraint): the same write
    /// will be refused again, so retrying cannot help.
    #[error("value refused by the database: {0}")]
    Refused(String),
    /// A query failed for another reason.
    #[error("query failed: {0}")]
    Query(String),
    /// A stored row could not be turned back into a domain value.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Migrations have not been applied, or the schema is older than this code.
    #[error("database schema is not migrated: {0}")]
    NotMigrated(String),
}

impl StoreError {
    /// True when the failure is about reaching the database rather than about the data.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// A failure of an outgoing Stripe call.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// Stripe (or the network to it) is down or timed out; retrying later may work.
    #[error("stripe unavailable: {0}")]
    Unavailable(String),
    /// The object does not exist at Stripe.
    #[error("not found at stripe: {0}")]
    NotFound(String),
    /// Stripe refused the request (bad parameters, idempotency key reuse, authentication).
    #[error("stripe rejected the request: {0}")]
    Rejected(String),
    /// Stripe answered with something we could not understand.
    #[error("unexpected stripe response: {0}")]
    Unexpected(String),
}
