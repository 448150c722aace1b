//! Pushes the billing change feed to the product's URLs as signed
//! [Standard Webhooks](https://www.standardwebhooks.com/) messages.
//!
//! The change feed (`GET /v1/changes`) is the record of every change of a user's access,
//! written in the transaction that made it. A [`Pusher`] follows that feed for one URL, outside
//! every ingest transaction, so a slow or dead product never slows ingest:
//!
//! 1. each change record committed after the endpoint was first configured becomes one
//!    *delivery* (`pending`, due now), in feed order;
//! 2. due deliveries are POSTed, up to `concurrency` at once, each with `webhook-id` (the
//!    record's `chg_…` id, the same on every retry: the receiver's idempotency key),
//!    `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature`
//!    (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under the `whsec_` secret),
//!    and a [`billing_api::PushMessage`] body;
//! 3. every attempt is recorded: a 2xx ends the delivery; anything else (a non-2xx status, a
//!    refused connection, no answer within the timeout) schedules the next attempt after an
//!    exponential backoff, and after `max_attempts` failures the delivery is `failed`, listed
//!    and replayable (`billingctl deliveries list|replay`).
//!
//! Delivery is at least once: a crash after a send and before its record sends it again,
//! with the same `webhook-id`. Deliveries of one endpoint run concurrently, so they may
//! arrive out of order; each carries its feed `cursor` to order them, and the pull feed is
//! the ordered source of truth.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<billing_store_diesel::DieselStore>)
//! # -> Result<(), billing_push::PushError> {
//! use billing_push::{PushEndpoint, PushSecret, PushSettings, Pusher, Signer};
//!
//! let endpoint = PushEndpoint::parse("https://product.example/hooks/billing")?;
//! let signer = Signer::new(vec![PushSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?])?;
//! let clock = std::sync::Arc::new(billing_ports::SystemClock);
//! let pusher = Pusher::new(store, clock, endpoint, signer, PushSettings::default())?;
//! let (_commits, wake) = tokio::sync::watch::channel(0);
//! pusher.run(wake).await; // for ever; drop the future to stop
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod endpoint;
mod error;
mod pusher;
mod signature;
mod wire;

pub use endpoint::PushEndpoint;
pub use error::PushError;
pub use pusher::{PUSH_ATTEMPTS, PushConfig, PushSettings, Pusher, Round};
pub use signature::{PushSecret, SECRET_PREFIX, Signer};
pub use wire::change_record;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
