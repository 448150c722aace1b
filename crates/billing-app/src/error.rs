//! The application's error type.

use billing_ports::{GatewayError, StoreError};
use thiserror::Error;

/// Why an event could not be applied. The event is recorded as failed and Stripe retries it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// The store failed (unreachable, constraint, query).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Re-fetching from Stripe failed.
    #[error("stripe gateway: {0}")]
    Gateway(#[from] GatewayError),
    /// The event cannot be applied as it stands (for example an object we must know is missing).
    #[error("cannot apply event: {0}")]
    Invalid(String),
}

impl IngestError {
    /// True when the database could not be reached (the HTTP layer answers 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, IngestError::Store(e) if e.is_unavailable())
    }
}
