//! The billing use cases. They depend on the ports ([`billing_ports`]) and the domain
//! ([`billing_domain`]) only, never on a database or on Stripe's wire format.
//!
//! - [`BillingApp::ingest`]: applies one verified Stripe event exactly once.
//! - [`BillingApp::purge_events`]: retention of done events ([`BillingApp::purge_events_with`]
//!   for a chosen age, reporting each batch).
//! - [`BillingApp::replay_event`], [`BillingApp::replay_failed`]: stored events re-applied
//!   through the same exactly-once ingest; [`BillingApp::sweep_failed`]: the sweeper's pass
//!   over the transient failures whose retry is due.
//! - [`JobRunner`]: background jobs run on one replica at a time under a lease row.
//! - [`BillingApp::create_api_key`], [`BillingApp::revoke_api_key`],
//!   [`BillingApp::live_api_key_hashes`]: stored API keys for `/v1` (hashes only).
//! - [`BillingApp::entitlements`]: tier, features, limits, usage and credits of a user now.
//! - [`BillingApp::record_usage`]: the atomic, idempotent limit check and record.
//! - [`BillingApp::create_checkout`], [`BillingApp::portal_url`], [`BillingApp::sync_user`]:
//!   outgoing Stripe calls, recorded before they are made.
//! - [`BillingApp::reconcile`]: catch-up from Stripe's Events API and a sweep of the
//!   subscriptions, repairing what differs.
//! - The change feed: every transaction that changes a user's access writes its change
//!   records (`billing_ports::NewChange`) with it; [`BillingApp::record_grace_ended`] writes
//!   the time-driven `grace_ended` ones; [`BillingApp::changes`] reads them in commit order.
//! - [`BillingApp::broadcast_gate_changes`], [`BillingApp::forget_gate_state`]: keeping the
//!   in-process gate caches of several replicas in step.
//!
//! # Exactly once
//! Each event is applied in one store transaction that first claims the event row
//! (`INSERT … ON CONFLICT`), then applies every effect, then marks the event done. Concurrent
//! deliveries of one event wait on the claim and then see it done; a failure rolls everything
//! back and a second, short transaction records the failure so the next delivery retries it.
//!
//! # Ordering
//! Stripe does not order deliveries and `created` has one-second resolution. Every write to a
//! subscription carries the position of its event: `(created, status progression rank, event
//! id)`, compared in that order (see [`billing_domain::Position`]). An event whose position
//! is not after the stored one changes nothing and is stored as `stale`. Credits do not depend on
//! order: they are keyed by invoice id. Terminal statuses (`canceled`, `incomplete_expired`)
//! never move back.
#![warn(missing_docs)]

mod api_keys;
mod effects;
mod entitlements;
mod error;
mod feed;
mod gate;
mod ingest;
mod ingest_batch;
mod jobs;
mod purchase;
mod reconcile;
mod replay;
mod replicas;
mod usage;

pub use api_keys::{API_KEY_PREFIX, MAX_API_KEY_NAME_LEN, NewApiKey, api_key_hash};
pub use entitlements::{FeatureAccess, UserEntitlements};
pub use error::{AppError, IngestError};
pub use feed::ChangePage;
pub use ingest::{AppSettings, BillingApp, IngestOutcome};
pub use ingest_batch::{
    QUEUE_WAIT_METRIC, SHARED_FAILURE_OUTCOMES, SHARED_FAILURES_METRIC,
    TRANSACTION_DELIVERIES_METRIC,
};
pub use jobs::{JobLease, JobRun, JobRunner};
pub use purchase::{CheckoutOutcome, CheckoutParams, PriceChoice, TRIAL_DAYS};
pub use reconcile::{
    DIFFERENCES_METRIC, Difference, DifferenceKind, EVENTS_WINDOW_DAYS, EventCatchUp, FailedEvent,
    LAST_SUCCESS_METRIC, ReconcileReport, ReconcileScope,
};
pub use replay::{EventReplay, ReplayOutcome};
pub use usage::{MAX_IDEMPOTENCY_KEY_LEN, UsageOutcome};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
