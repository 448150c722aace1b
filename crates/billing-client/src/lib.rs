//! A typed async client of the billing server's `/v1` API, for the product's services: the
//! entitlements, the feature check, usage, Checkout and portal sessions, sync, the plan
//! catalog, and the change feed as a resumable [`Stream`](futures_util::Stream).
//!
//! - **One definition of the wire types:** the bodies are [`billing_api`]'s, the types the
//!   server answers with (re-exported as [`api`]).
//! - **Errors that let a caller decide** ([`Error`]): denied (with the [`Denial`]), not found,
//!   unauthorized, invalid input, rate limited, unavailable (5xx, timeout, refused
//!   connection), an unreadable answer; [`Error::is_outage`] is where a caller fails open or
//!   closed on purpose.
//! - **Timeouts and bounded retries** with jittered exponential waits, for the calls that are
//!   safe to repeat: every GET, a usage consume (the same idempotency key: a retry never
//!   counts twice), a Checkout (its `Idempotency-Key`), a sync.
//! - **An optional entitlement cache** with a caller-set time to live
//!   ([`ClientBuilder::cache`]), invalidated by the change feed
//!   ([`Client::spawn_cache_invalidation`]).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use billing_client::{Client, Denial, Error};
//!
//! # async fn demo() -> Result<(), Error> {
//! let billing = Client::builder("http://127.0.0.1:8080")
//!     .api_key(std::env::var("BILLING_API_KEY").unwrap_or_default())
//!     .timeout(Duration::from_millis(500))
//!     .cache(Duration::from_secs(30))
//!     .build()?;
//! // Forget a user's cached entitlements as soon as their access changes.
//! billing.spawn_cache_invalidation(None);
//!
//! match billing.require_feature("user_42", "advanced_analytics").await {
//!     Ok(_) => println!("show the analytics"),
//!     Err(Error::Denied { reason }) => println!("upsell: {reason}"),
//!     Err(e) if e.is_outage() => println!("billing is down; failing closed: {e}"),
//!     Err(e) => return Err(e),
//! }
//! match billing.consume("user_42", "api_calls", 1, "request-7f3a").await {
//!     Ok(counted) => println!("{} used, {:?} left", counted.used, counted.remaining),
//!     Err(Error::Denied { reason: Denial::UsageLimit(refused) }) => {
//!         println!("limit reached until {}", refused.period_end)
//!     }
//!     Err(e) => return Err(e),
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod cache;
mod changes;
mod client;
mod error;

pub use billing_api as api;
pub use billing_api::{
    Catalog, ChangeKind, ChangeRecord, ChangesPage, CheckoutRequest, CheckoutSession, Entitlements,
    FeatureAnswer, Mode, PortalRequest, PortalSession, Synced, UsageAccepted, UsageRefused,
};
pub use client::{Client, ClientBuilder, MAX_CHANGES_WAIT};
pub use error::{Denial, Error};
