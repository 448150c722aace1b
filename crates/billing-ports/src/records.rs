//! The rows of the billing state, as domain values.

use std::fmt;
use std::str::FromStr;

use billing_domain::{BillingEvent, Money, SubscriptionStatus};
pub use billing_domain::{PaymentStatus, RefundStatus};
use chrono::{DateTime, Utc};

use crate::error::{Cause, StoreError};

/// Declares a closed set of string-valued states with `as_str` and `FromStr`.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as stored.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError::Corrupt(Cause::msg(format!(
                        concat!("unknown ", stringify!($name), " {:?}"), other
                    )))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// Where an event stands in ingestion.
    EventStatus {
        /// Claimed by a transaction that has not committed (never visible once committed).
        Received => "received",
        /// Its effects are committed.
        Processed => "processed",
        /// Applying it failed; a later delivery or a replay applies it.
        Failed => "failed",
        /// A type we do not act on.
        Ignored => "ignored",
        /// Older than what was already applied to the same object; nothing changed.
        Stale => "stale",
    }
}

impl EventStatus {
    /// True when the event is done and a new delivery must not apply it again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Processed | Self::Ignored | Self::Stale)
    }
}

string_enum! {
    /// Whether a failed event may be retried automatically.
    FailureKind {
        /// Anything but a permanent failure (the database unreachable or failing, Stripe
        /// unavailable): the sweeper re-applies it with backoff.
        Transient => "transient",
        /// The payload can never apply as sent: a value the database refuses, an object that
        /// cannot be read, a fact the rules cannot use (the webhook answers 422). Only an
        /// operator's replay, after a fix, applies it.
        Permanent => "permanent",
    }
}

/// The deterministic retry schedule of transient failures: after the `n`-th failed attempt
/// the next automatic one is due `min(base × 2^(n−1), cap)` later (`base`, `2·base`,
/// `4·base`, … up to `cap`). No jitter: the sweeper runs on one replica at a time and
/// re-applies events one by one, so retries never stampede.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub base: chrono::TimeDelta,
    /// The longest delay.
    pub cap: chrono::TimeDelta,
}

impl Backoff {
    /// The delay before the next attempt after `attempts` failed ones (`base` for 0 or 1).
    pub fn delay(&self, attempts: u32) -> chrono::TimeDelta {
        let doublings = attempts.saturating_sub(1).min(62);
        let factor = 1_i32.checked_shl(doublings).filter(|f| *f > 0);
        factor
            .and_then(|f| self.base.checked_mul(f))
            .map_or(self.cap, |delay| delay.min(self.cap))
    }
}

impl Default for Backoff {
    /// One minute, doubling up to six hours.
    fn default() -> Self {
        Self {
            base: chrono::TimeDelta::minutes(1),
            cap: chrono::TimeDelta::hours(6),
        }
    }
}

/// Why applying an event failed, as [`crate::BillingStore::record_failure`] records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure<'a> {
    /// The error, with all its causes.
    pub error: &'a str,
    /// Whether the sweeper may retry it.
    pub kind: FailureKind,
    /// When a transient failure's next attempt is due, from its attempt count.
    pub backoff: Backoff,
}

/// A background job's lease row: who may run it until when, and when its next run is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The job's name.
    pub job: String,
    /// The process that took the lease last.
    pub holder: String,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// When another process may take it, unless renewed.
    pub expires_at: DateTime<Utc>,
    /// When the job's next run is due.
    pub next_run_at: DateTime<Utc>,
    /// How many times the lease was taken (one per run).
    pub runs: u64,
}

string_enum! {
    /// Dispute state of an order.
    DisputeStatus {
        /// Never disputed.
        None => "none",
        /// A dispute is open.
        Open => "open",
        /// The dispute closed in our favour.
        Won => "won",
        /// The dispute closed against us.
        Lost => "lost",
        /// Closed with no chargeback: an inquiry closed (`warning_closed`) or a dispute
        /// prevented.
        ClosedWithoutChargeback => "closed_without_chargeback",
    }
}

string_enum! {
    /// Where an outgoing Stripe request stands.
    StripeRequestStatus {
        /// Recorded, not (yet) known to have succeeded: a retry sends the same key again.
        Pending => "pending",
        /// Stripe created the object; a retry returns the stored result.
        Succeeded => "succeeded",
        /// The last attempt failed; a retry sends the same key again.
        Failed => "failed",
    }
}

string_enum! {
    /// Why a credit-ledger entry exists.
    CreditReason {
        /// Credits of a paid subscription period (source key: the invoice id).
        SubscriptionPeriod => "subscription_period",
        /// Credits spent by usage.
        Usage => "usage",
        /// A manual adjustment.
        Adjustment => "adjustment",
        /// Credits withdrawn after a refund.
        Refund => "refund",
    }
}

/// An event as it is claimed: the envelope and the verified raw body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Stripe's event id.
    pub id: String,
    /// Stripe's event type.
    pub event_type: String,
    /// The API version of the payload.
    pub api_version: Option<String>,
    /// Live or test mode.
    pub livemode: bool,
    /// Stripe's `created`.
    pub created: DateTime<Utc>,
    /// The verified raw body.
    pub payload: String,
    /// When we received it.
    pub received_at: DateTime<Utc>,
}

impl NewEvent {
    /// `event`'s envelope with its verified raw body, received at `received_at`.
    pub fn received(event: &BillingEvent, payload: String, received_at: DateTime<Utc>) -> Self {
        Self {
            id: event.id.clone(),
            event_type: event.event_type.clone(),
            api_version: event.api_version.clone(),
            livemode: event.livemode,
            created: event.created,
            payload,
            received_at,
        }
    }
}

/// The result of claiming an event inside a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This transaction owns the event and must apply it; `attempts` counts earlier failed tries.
    Claimed {
        /// How many times applying it failed before.
        attempts: u32,
    },
    /// The event is already done; nothing may be applied.
    AlreadyDone(EventStatus),
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Stripe's event id.
    pub id: String,
    /// Stripe's event type.
    pub event_type: String,
    /// Where it stands.
    pub status: EventStatus,
    /// How many times applying it failed.
    pub attempts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// Stripe's `created`.
    pub created: DateTime<Utc>,
    /// The verified raw body.
    pub payload: String,
    /// When it was first received.
    pub received_at: DateTime<Utc>,
    /// When it was done.
    pub processed_at: Option<DateTime<Utc>>,
    /// Whether the last failure may be retried automatically (failed events only).
    pub failure_kind: Option<FailureKind>,
    /// When the sweeper may next re-apply it (transient failures only).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What an operator watches in the stored events (`BillingStore::event_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventStats {
    /// Events whose application failed and that are not done yet.
    pub failed: u64,
    /// When the oldest of them was first received.
    pub oldest_failed_received_at: Option<DateTime<Utc>>,
    /// Events first received at or after the `since` instant asked about.
    pub received_since: u64,
}

/// A stored event without its payload, as listings show it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSummary {
    /// Stripe's event id.
    pub id: String,
    /// Stripe's event type.
    pub event_type: String,
    /// Where it stands.
    pub status: EventStatus,
    /// How many times applying it failed.
    pub attempts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// Stripe's `created`.
    pub created: DateTime<Utc>,
    /// When it was first received.
    pub received_at: DateTime<Utc>,
    /// When it was done.
    pub processed_at: Option<DateTime<Utc>>,
}

/// Which stored events a listing returns; every condition set must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events in this status.
    pub status: Option<EventStatus>,
    /// Only events of this Stripe type (exact).
    pub event_type: Option<String>,
    /// Only events received at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many, newest received first.
    pub limit: u32,
}

/// A stored API key for `/v1`: never the key itself, only its SHA-256 and a short prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The unique name an operator gave it.
    pub name: String,
    /// The key's first characters (not secret), to recognise it.
    pub prefix: String,
    /// The SHA-256 of the whole key.
    pub hash: [u8; 32],
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; a revoked key is refused.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A Stripe customer and the user it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    /// `cus_…`.
    pub stripe_customer_id: String,
    /// Our user, once known.
    pub user_id: Option<String>,
    /// The customer's email.
    pub email: Option<String>,
    /// Deleted at Stripe.
    pub deleted: bool,
}

/// The position of the last event applied to a subscription, which orders deliveries: the
/// domain's [`Position`](billing_domain::Position) (`created`, status progression rank, event
/// id), under the name the records use.
pub type EventPosition = billing_domain::Position;

/// A subscription as we keep it.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRecord {
    /// `sub_…`.
    pub stripe_subscription_id: String,
    /// `cus_…`; the customer row exists.
    pub stripe_customer_id: String,
    /// The item price deciding the tier: the one buying the highest catalog tier, else the
    /// first item's.
    pub price_id: Option<String>,
    /// Every item's price, in item order, as the last applied snapshot listed them.
    pub item_price_ids: Vec<String>,
    /// The tier id the price mapped to when last written (for queries; entitlement re-derives it).
    pub tier: String,
    /// Stripe's status.
    pub status: SubscriptionStatus,
    /// Start of the current period.
    pub current_period_start: Option<DateTime<Utc>>,
    /// End of the current period.
    pub current_period_end: Option<DateTime<Utc>>,
    /// Ends when the period ends.
    pub cancel_at_period_end: bool,
    /// When it was canceled.
    pub canceled_at: Option<DateTime<Utc>>,
    /// End of trial.
    pub trial_end: Option<DateTime<Utc>>,
    /// Paid access holds until then while past due.
    pub grace_period_end: Option<DateTime<Utc>>,
    /// The invoice whose failure opened the current dunning cycle.
    pub dunning_invoice_id: Option<String>,
    /// The position of the last applied snapshot (`customer.subscription.*` or a re-fetch):
    /// the authority for price, items, period, cancellation and trial. Invoice events never
    /// move it.
    pub snapshot_position: EventPosition,
    /// The position of whatever last set `status`: that snapshot, or a newer status inferred
    /// from an invoice event.
    pub status_position: EventPosition,
}

/// A payment we know of: a payment intent, or a charge of the Charges API that has none.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRecord {
    /// Our key of the row: the id it was first known by (`pi_…`, or `ch_…` for a payment known
    /// only by its charge). It never changes.
    pub key: String,
    /// `pi_…`, when known.
    pub payment_intent_id: Option<String>,
    /// `ch_…`: the payment intent's latest charge, or the charge itself.
    pub charge_id: Option<String>,
    /// `cus_…`, if any.
    pub stripe_customer_id: Option<String>,
    /// Our user, if known.
    pub user_id: Option<String>,
    /// The amount.
    pub amount: Money,
    /// Our state of it.
    pub status: PaymentStatus,
    /// Stripe's `created` of the event that set `status`, which orders later status events.
    pub status_at: Option<DateTime<Utc>>,
    /// The last failure message.
    pub last_error: Option<String>,
    /// Refunded so far, minor units (kept here too so a refund that arrives before its order
    /// is not lost).
    pub amount_refunded: i64,
    /// Dispute outcome (same reason).
    pub dispute_status: DisputeStatus,
    /// Stripe's dispute status as last applied (`needs_response`, `warning_closed`, …).
    pub dispute_stripe_status: Option<String>,
}

/// A one-time purchase made through Checkout.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    /// `cs_…`.
    pub checkout_session_id: String,
    /// `pi_…`, the key refunds and disputes are found by.
    pub payment_intent_id: Option<String>,
    /// `cus_…`, if any.
    pub stripe_customer_id: Option<String>,
    /// Our user, if known.
    pub user_id: Option<String>,
    /// The total.
    pub amount: Money,
    /// Checkout's payment status: `paid`, `unpaid` or `no_payment_required`.
    pub status: String,
    /// Refund state.
    pub refund_status: RefundStatus,
    /// Refunded so far, minor units.
    pub amount_refunded: i64,
    /// Dispute state.
    pub dispute_status: DisputeStatus,
}

/// One signed entry of the credit ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditEntry {
    /// Our user, if known when written (attributed later otherwise).
    pub user_id: Option<String>,
    /// The Stripe customer it came from, if any.
    pub stripe_customer_id: Option<String>,
    /// Signed amount: grants positive, spends negative.
    pub amount: i64,
    /// Why.
    pub reason: CreditReason,
    /// Unique key of the cause (e.g. `invoice:in_…`): an entry exists at most once per key.
    pub source_key: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// An outgoing Stripe call, recorded before it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeRequest {
    /// What is created, e.g. `customer.create`, `checkout.create`.
    pub operation: String,
    /// Our stable id of the operation (the user id, the client's idempotency key…).
    pub stable_id: String,
    /// The idempotency key sent to Stripe (at most 255 characters).
    pub idempotency_key: String,
    /// A digest of the request's parameters: the same stable id with other parameters is refused.
    pub fingerprint: String,
    /// Where it stands.
    pub status: StripeRequestStatus,
    /// The created object's id, once succeeded.
    pub stripe_id: Option<String>,
    /// What the caller needs back (e.g. the Checkout URL), once succeeded.
    pub response: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
}

/// One recorded usage request and the answer it got (replayed for the same idempotency key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// Our user.
    pub user_id: String,
    /// The metered action.
    pub metric: String,
    /// Start of the metering period it counted in.
    pub period_start: DateTime<Utc>,
    /// How much was asked for.
    pub quantity: u64,
    /// The caller's idempotency key (unique per user).
    pub idempotency_key: String,
    /// Whether it was allowed (and counted).
    pub allowed: bool,
    /// Usage in the period after this request (before it when denied).
    pub used_after: u64,
    /// The limit in force, `None` when unlimited.
    pub limit: Option<u64>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// A usage request as the store checks and counts it ([`BillingStore::consume_usage`]).
///
/// [`BillingStore::consume_usage`]: crate::BillingStore::consume_usage
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRequest {
    /// Our user.
    pub user_id: String,
    /// The metered action.
    pub metric: String,
    /// Start of the metering period it counts in.
    pub period_start: DateTime<Utc>,
    /// How much is asked for.
    pub quantity: u64,
    /// The caller's idempotency key (unique per user).
    pub idempotency_key: String,
    /// The limit to check against, `None` when unlimited.
    pub limit: Option<u64>,
    /// When it is recorded.
    pub recorded_at: DateTime<Utc>,
}

/// What the store did with a [`UsageRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageConsumed {
    /// The key was new: the request was decided and recorded, counted when allowed.
    Recorded(UsageRecord),
    /// The key was recorded before: the first request's record, unchanged (it may name another
    /// metric or quantity; the caller compares). Nothing was counted.
    Replayed(UsageRecord),
    /// The request fits the limit but the period's total would pass the largest total the
    /// store can count (`i64::MAX`): nothing was recorded or counted.
    TooLarge {
        /// Usage in the period, before the request.
        used: u64,
    },
}

/// How far the catch-up from Stripe's Events API has applied (one row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileCursor {
    /// The newest event (`evt_…`) such that it and every older listed event is applied or
    /// stored as failed; `None` before any was.
    pub event_id: Option<String>,
    /// That event's `created`.
    pub event_created: Option<DateTime<Utc>>,
    /// When a catch-up last completed.
    pub last_success_at: Option<DateTime<Utc>>,
}
