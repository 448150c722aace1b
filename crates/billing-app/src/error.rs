//! The application's error type: one enum for every use case, mapped to HTTP in one place
//! (the HTTP crate).
//!
//! A store or Stripe failure keeps the port's error as its source, which keeps its own cause:
//! print these errors with [`billing_ports::ErrorChain`] to show the whole story, e.g.
//! `store: database unavailable: <the pool's error>`.

use billing_ports::{FailureKind, GatewayError, StoreError};
use thiserror::Error;

/// Why a use case did not succeed.
#[derive(Debug, Error, Clone)]
pub enum AppError {
    /// The store failed (unreachable, constraint, query); the [`StoreError`] is the source.
    #[error("store")]
    Store(#[from] StoreError),
    /// A Stripe call failed. Displayed as the [`GatewayError`] itself, whose every message
    /// already names Stripe.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// An event cannot be applied as it stands (for example a required amount is missing).
    #[error("cannot apply event: {0}")]
    Invalid(String),
    /// The user has no Stripe customer (no purchase yet).
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// The metric is not in the plan catalog.
    #[error("unknown metric {0:?}")]
    UnknownMetric(String),
    /// The price or tier is not purchasable in the plan catalog.
    #[error("unknown or free price/tier {0:?}")]
    UnknownPrice(String),
    /// The request is malformed (empty key, trial days on a payment, …).
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// An idempotency key was reused with different parameters.
    #[error("idempotency key {0:?} was already used with different parameters")]
    IdempotencyConflict(String),
    /// A paid invoice names no price of the plan catalog (nor does its stored subscription)
    /// and the catalog says `unknown_prices = "fail"`: its credits cannot be granted until the
    /// price is added. Transient: the sweeper retries it, and applies it once the catalog
    /// knows the price.
    #[error(
        "paid invoice {invoice} names no price of the plan catalog ({prices}); add the price to the catalog (unknown_prices = \"fail\")"
    )]
    PriceNotInCatalog {
        /// `in_…`.
        invoice: String,
        /// The prices it named, comma-separated (`none` when it named none).
        prices: String,
    },
    /// A change feed cursor before the retention horizon: records after it were purged.
    #[error(
        "cursor {cursor} is before the change feed's retention horizon ({horizon}): records after it were purged"
    )]
    CursorExpired {
        /// The cursor given.
        cursor: i64,
        /// The position through which records may have been purged.
        horizon: i64,
    },
    /// The use case needs Stripe but no gateway is configured.
    #[error("no Stripe gateway configured")]
    NoGateway,
    /// The change feed lock of a user this unit of work learnt of only after its effects was
    /// held by another transaction: waiting for it could deadlock, so the unit of work rolled
    /// back. Transient: ingest retries at once with the user locked first.
    #[error("the change feed lock of user {0:?} is held by a concurrent transaction")]
    FeedLockBusy(String),
    /// A replay needs to read stored bodies but no event decoder is configured (see
    /// [`crate::BillingApp::with_decoder`]).
    #[error("no event decoder configured")]
    NoDecoder,
}

/// Why [`crate::BillingApp::ingest`] did not apply an event, and whether the failure was
/// recorded so that a redelivery or a replay applies it later. Its source is the cause.
#[derive(Debug, Error, Clone)]
#[error("the event was not applied")]
pub struct IngestError {
    /// Why the event was not applied; nothing of its effects was committed.
    #[source]
    pub cause: AppError,
    /// True when the event is stored as `failed` with this cause; false when even that could
    /// not be written (the caller must not claim it is stored).
    pub recorded: bool,
}

impl AppError {
    /// True when the event can never apply as it stands: a value the database refuses, or a
    /// fact the rules cannot use. Retrying the same payload cannot help (the HTTP layer
    /// answers 422).
    pub fn is_unprocessable(&self) -> bool {
        matches!(
            self,
            AppError::Invalid(_) | AppError::Store(StoreError::Refused(_))
        )
    }

    /// Whether an ingest that failed with this error may be retried automatically: permanent
    /// when [`AppError::is_unprocessable`] (the 422 rule), else transient.
    pub fn failure_kind(&self) -> FailureKind {
        if self.is_unprocessable() {
            FailureKind::Permanent
        } else {
            FailureKind::Transient
        }
    }

    /// True when the database could not be reached (the HTTP layer answers 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AppError::Store(e) if e.is_unavailable())
            || matches!(self, AppError::Gateway(GatewayError::Unavailable(_)))
    }
}
