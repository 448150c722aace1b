//! Errors the ports report.
//!
//! Every variant names the kind of failure in its own message and keeps what caused it as a
//! [`Cause`], returned by [`std::error::Error::source`]: the message of a variant never repeats
//! its cause, so printing an error with [`ErrorChain`] shows each part once, e.g.
//! `query failed: relation "stripe_events" does not exist`.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use thiserror::Error;

/// What caused a [`StoreError`] or a [`GatewayError`]: the underlying error itself (a Diesel
/// error, a JSON parser's error, …) or, when there is none, a message of ours.
///
/// Its `Display` and `source` are those of the error it holds, so it adds no line of its own
/// to an [`ErrorChain`]. It is shared, so errors that hold it stay `Clone`. An adapter must
/// not wrap an error whose text may contain a secret.
#[derive(Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync + 'static>);

impl Cause {
    /// Keeps `error` as the cause.
    pub fn new(error: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }

    /// A cause that is only a message: what went wrong when no underlying error exists
    /// (an out-of-range value, an empty id).
    pub fn msg(message: impl Into<String>) -> Self {
        Self(Arc::new(Message(message.into())))
    }

    /// A message that says what was being done, with the error that made it fail as its
    /// source: `Cause::context("item_price_ids", json_error)` prints as
    /// `item_price_ids: <json_error>` in an [`ErrorChain`].
    pub fn context(message: impl Into<String>, source: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(Context {
            message: message.into(),
            source: Box::new(source),
        }))
    }

    /// The error held, when it is a `T` (for example a `diesel::result::Error`); `None` for
    /// another type, a [`Cause::msg`] or a [`Cause::context`] (whose source can be reached
    /// through [`Error::source`]).
    pub fn downcast_ref<T: Error + 'static>(&self) -> Option<&T> {
        let error: &(dyn Error + 'static) = &*self.0;
        error.downcast_ref::<T>()
    }
}

/// A message as a cause (the same as [`Cause::msg`]).
impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Self::msg(message)
    }
}

/// A message as a cause (the same as [`Cause::msg`]).
impl From<String> for Cause {
    fn from(message: String) -> Self {
        Self::msg(message)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// The error of [`Cause::msg`].
#[derive(Debug, Error)]
#[error("{0}")]
struct Message(String);

/// The error of [`Cause::context`].
#[derive(Debug, Error)]
#[error("{message}")]
struct Context {
    message: String,
    #[source]
    source: Box<dyn Error + Send + Sync + 'static>,
}

/// Displays an error followed by each of its sources, separated by `": "`: the whole story,
/// for a log line or a stored `last_error`.
///
/// Some libraries also print their source in their own message (deadpool's pool errors do);
/// a source whose text ends the previous error's text is therefore not printed again.
///
/// ```
/// use billing_ports::{Cause, ErrorChain, StoreError};
///
/// let error = StoreError::Query(Cause::msg("no stripe request to finish"));
/// assert_eq!(
///     ErrorChain(&error).to_string(),
///     "query failed: no stripe request to finish"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut previous = self.0.to_string();
        f.write_str(&previous)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            let text = error.to_string();
            if !previous.trim_end().ends_with(text.trim_end()) {
                write!(f, ": {text}")?;
            }
            previous = text;
            source = error.source();
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A failure of the store.
#[derive(Debug, Error, Clone)]
pub enum StoreError {
    /// The database could not be reached (pool exhausted, connection refused or lost).
    #[error("database unavailable")]
    Unavailable(#[source] Cause),
    /// A uniqueness or foreign-key constraint refused a write.
    #[error("constraint violated")]
    Conflict(#[source] Cause),
    /// The database refused a value (a `CHECK` or `NOT NULL` constraint): the same write
    /// will be refused again, so retrying cannot help.
    #[error("value refused by the database")]
    Refused(#[source] Cause),
    /// A query failed for another reason.
    #[error("query failed")]
    Query(#[source] Cause),
    /// A stored row could not be turned back into a domain value.
    #[error("stored data is invalid")]
    Corrupt(#[source] Cause),
    /// Migrations have not been applied, or the schema is older than this code.
    #[error("database schema is not migrated")]
    NotMigrated(#[source] Cause),
    /// A lock was held by another transaction and this unit of work does not wait for locks
    /// (see [`crate::LockTx::wait_for_locks`]); the unit of work rolls back.
    #[error("a lock is held by another transaction")]
    LockBusy(#[source] Cause),
}

impl StoreError {
    /// True when the failure is about reaching the database rather than about the data.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// What caused the failure.
    pub fn cause(&self) -> &Cause {
        match self {
            StoreError::Unavailable(cause)
            | StoreError::Conflict(cause)
            | StoreError::Refused(cause)
            | StoreError::Query(cause)
            | StoreError::Corrupt(cause)
            | StoreError::NotMigrated(cause)
            | StoreError::LockBusy(cause) => cause,
        }
    }
}

/// A stored event body that cannot be read as an event (see
/// [`crate::EventDecoder`]); its source is the parser's own error.
#[derive(Debug, Error, Clone)]
#[error("the stored event body cannot be read")]
pub struct DecodeError(#[source] pub Cause);

/// A failure of an outgoing Stripe call.
#[derive(Debug, Error, Clone)]
pub enum GatewayError {
    /// Stripe (or the network to it) is down or timed out; retrying later may work.
    #[error("stripe unavailable")]
    Unavailable(#[source] Cause),
    /// The object does not exist at Stripe.
    #[error("not found at stripe")]
    NotFound(#[source] Cause),
    /// Stripe refused the request (bad parameters, idempotency key reuse, authentication).
    #[error("stripe rejected the request")]
    Rejected(#[source] Cause),
    /// Stripe answered with something we could not understand.
    #[error("unexpected stripe response")]
    Unexpected(#[source] Cause),
}

impl GatewayError {
    /// What caused the failure.
    pub fn cause(&self) -> &Cause {
        match self {
            GatewayError::Unavailable(cause)
            | GatewayError::NotFound(cause)
            | GatewayError::Rejected(cause)
            | GatewayError::Unexpected(cause) => cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, Error)]
    #[error("inner")]
    struct Inner;

    #[test]
    fn the_chain_prints_each_part_once() {
        let error = StoreError::Unavailable(Cause::new(Outer(Inner)));
        assert_eq!(
            ErrorChain(&error).to_string(),
            "database unavailable: outer: inner"
        );
        assert_eq!(error.to_string(), "database unavailable");
    }

    /// Prints its source in its own message too, as deadpool's errors do.
    #[derive(Debug, Error)]
    #[error("pool failed: {0}")]
    struct Verbose(#[source] Outer);

    #[test]
    fn a_source_already_printed_by_its_parent_is_not_repeated() {
        let error = StoreError::Unavailable(Cause::new(Verbose(Outer(Inner))));
        assert_eq!(
            ErrorChain(&error).to_string(),
            "database unavailable: pool failed: outer: inner"
        );
    }

    #[test]
    fn the_source_is_the_cause_and_keeps_the_original_error() {
        let error = GatewayError::Unexpected(Cause::new(Outer(Inner)));
        let source = error.source().and_then(|s| s.downcast_ref::<Cause>());
        assert!(source.is_some_and(|c| c.downcast_ref::<Outer>().is_some()));
        assert!(error.cause().downcast_ref::<Inner>().is_none());
        let inner = error.cause().source();
        assert!(inner.is_some_and(|s| s.downcast_ref::<Inner>().is_some()));
    }

    #[test]
    fn a_context_keeps_its_source() {
        let cause = Cause::context("item_price_ids", Inner);
        let error = StoreError::Corrupt(cause.clone());
        assert_eq!(
            ErrorChain(&error).to_string(),
            "stored data is invalid: item_price_ids: inner"
        );
        assert!(
            cause
                .source()
                .is_some_and(|s| s.downcast_ref::<Inner>().is_some())
        );
        assert_eq!(
            ErrorChain(&GatewayError::Rejected(Cause::msg("the id is empty"))).to_string(),
            "stripe rejected the request: the id is empty"
        );
    }
}
