//! The ports of the billing application: what it needs from the outside world, as traits that
//! speak domain types only.
//!
//! - [`BillingStore`] / [`BillingTx`]: the transactional store. A unit of work runs in one
//!   database transaction: claim an event, apply its changes, mark it processed, commit.
//!   [`BillingTx`] is one trait per aggregate composed into one; [`BillingRead`] is the
//!   read-only part that [`BillingStore::read`] offers outside write transactions.
//! - [`StripeGateway`]: outgoing Stripe API calls (re-fetching and listing objects, listing
//!   events).
//! - [`Clock`]: the current time, injectable for tests.
//! - [`EventDecoder`]: a stored event body read again as an event (replays), implemented by
//!   the adapter that knows Stripe's wire format.
//! - [`RetryStore`] / [`LeaseStore`]: the failed events the sweeper and replays re-apply, and
//!   the lease rows that run each background job on one replica at a time.
//! - [`ChangeTx`] / [`FeedStore`]: the change feed's outbox, written in the transaction that
//!   changes a user's access, read in commit order.
//! - [`PushStore`]: the push of that feed to the product's URLs (endpoints, one delivery per
//!   record and endpoint, one attempt row per try), outside every ingest transaction.
//! - [`GateBroadcast`]: telling the other replicas which cached gate state a commit changed
//!   ([`GateInvalidation`]).
//!
//! Feature `testing` adds the test doubles other crates' tests share (`testing::FaultyStore`,
//! `testing::FakeGateway`).
//!
//! Architecture invariant: no Diesel, SQL or async-stripe type crosses these traits. Adapters
//! (`billing-store-diesel`, `billing-stripe`) implement them; `billing-app` uses them.
#![warn(missing_docs)]

pub mod clock;
pub mod decode;
pub mod error;
pub mod feed;
pub mod gate;
pub mod gateway;
pub mod jobs;
pub mod push;
pub mod records;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use clock::{Clock, ManualClock, SystemClock};
pub use decode::EventDecoder;
pub use error::{Cause, DecodeError, ErrorChain, GatewayError, StoreError};
pub use feed::{
    AccessSnapshot, ChangeKind, ChangePurge, ChangeRecord, ChangeTx, FeedStore, GraceEnded,
    NewChange, insert_changes_in_turn,
};
pub use gate::{GateBroadcast, GateInvalidation};
pub use gateway::{
    CheckoutCreated, CheckoutKind, CheckoutRequest, EventPage, EventQuery, LIST_PAGE_SIZE,
    ListedEvent, StripeGateway, SubscriptionPage, UnreadableEvent, UnreadableObject,
};
pub use jobs::{LeaseStore, RetryStore};
pub use push::{
    AttemptOutcome, DeliveryFilter, DeliveryStatus, DeliverySummary, DuePush, PushAttempt,
    PushEndpointRecord, PushStore, ReplaySelection,
};
pub use records::*;
pub use scoped_futures::ScopedFutureExt;
pub use store::{
    AccessRead, AccessRows, AccessTx, BillingRead, BillingStore, BillingTx, CreditRead, CreditTx,
    CustomerRead, CustomerTx, EventTx, LockTx, PaymentTx, ReadAhead, ReconcileTx, StripeRequestTx,
    SubscriptionRead, SubscriptionTx, TxFuture, UsageRead, claim_events_in_turn,
    claim_then_lock_customer_in_turn, lock_customers_in_turn,
};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
