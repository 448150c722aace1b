//! Typed facts carried by Stripe events, independent of Stripe's wire format and API version.
//!
//! The Stripe adapter (`billing-stripe`) turns a verified webhook body into a [`BillingEvent`];
//! the application applies its [`Fact`]. Only what the billing state needs is kept.

use chrono::{DateTime, Utc};
use strum::{AsRefStr, Display, EnumString};

use crate::money::Money;
use crate::status::SubscriptionStatus;

/// One Stripe event, reduced to the facts we act on.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingEvent {
    /// Stripe's event id (`evt_…`): the idempotency key of ingestion.
    pub id: String,
    /// Stripe's event type string, e.g. `"invoice.paid"`, kept even when unhandled.
    pub event_type: String,
    /// The API version the event was rendered with, when Stripe says.
    pub api_version: Option<String>,
    /// True for live-mode events, false for test mode.
    pub livemode: bool,
    /// When Stripe created the event (one-second resolution).
    pub created: DateTime<Utc>,
    /// What the event says.
    pub fact: Fact,
}

/// What an event says, one variant per event type we act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// `checkout.session.completed`.
    CheckoutCompleted(CheckoutSession),
    /// `customer.created`, `customer.updated` (`deleted: false`) or `customer.deleted` (`deleted: true`).
    Customer {
        /// The customer as sent.
        customer: CustomerFacts,
        /// True for `customer.deleted`.
        deleted: bool,
    },
    /// `customer.subscription.*`.
    Subscription {
        /// Which lifecycle event this is.
        change: SubscriptionChange,
        /// The subscription as sent.
        subscription: SubscriptionSnapshot,
    },
    /// `invoice.paid`, `invoice.payment_succeeded` or `invoice.payment_failed`.
    Invoice {
        /// Which invoice event this is.
        change: InvoiceChange,
        /// The invoice as sent.
        invoice: InvoiceFacts,
    },
    /// `payment_intent.succeeded`, `.payment_failed`, `.processing`, `.requires_action` or
    /// `.canceled`.
    PaymentIntent {
        /// Which payment intent event this is.
        change: PaymentIntentChange,
        /// The payment intent as sent.
        payment_intent: PaymentIntentFacts,
    },
    /// `charge.refunded` (the charge, with its refunded total). The charge may have no payment
    /// intent (Charges API integrations).
    ChargeRefunded(ChargeFacts),
    /// `charge.refund.updated` (one refund object).
    RefundUpdated(RefundFacts),
    /// `charge.dispute.created`, `.updated`, `.funds_withdrawn`, `.funds_reinstated` or
    /// `.closed`.
    Dispute {
        /// True for `charge.dispute.closed`. Informational: the outcome follows the dispute's
        /// own `status`.
        closed: bool,
        /// The dispute as sent.
        dispute: DisputeFacts,
    },
    /// Any event type we do not act on: stored as ignored, never an error.
    Unhandled,
}

/// The mode of a Checkout Session. Its wire strings are the variants' names in lower case
/// (`"payment"`); a mode this version does not know is kept as [`CheckoutMode::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq, AsRefStr, Display, EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum CheckoutMode {
    /// One-time payment.
    Payment,
    /// Starts a subscription.
    Subscription,
    /// Saves a payment method only.
    Setup,
    /// A mode this version does not know.
    #[strum(default, transparent)]
    Unknown(String),
}

impl CheckoutMode {
    /// Parses Stripe's wire string; never fails (unknown strings become `Unknown`).
    pub fn parse(value: &str) -> Self {
        // With a `default` variant, strum's `FromStr` cannot fail (`Err = Infallible`).
        let Ok(mode) = value.parse();
        mode
    }

    /// Stripe's wire string for this mode.
    pub fn as_str(&self) -> &str {
        self.as_ref()
    }
}

/// A completed Checkout Session.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutSession {
    /// `cs_…`.
    pub id: String,
    /// Payment, subscription or setup.
    pub mode: CheckoutMode,
    /// The Stripe customer (`cus_…`), if one was attached or created.
    pub customer_id: Option<String>,
    /// The customer's email as collected by Checkout.
    pub customer_email: Option<String>,
    /// Our user id as passed in `client_reference_id`.
    pub client_reference_id: Option<String>,
    /// Our user id as passed in `metadata.user_id`.
    pub metadata_user_id: Option<String>,
    /// The subscription created (subscription mode).
    pub subscription_id: Option<String>,
    /// The payment intent (payment mode).
    pub payment_intent_id: Option<String>,
    /// The total, when Stripe computed one.
    pub amount_total: Option<Money>,
    /// Stripe's `payment_status`: `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: Option<String>,
}

impl CheckoutSession {
    /// Our user id: `client_reference_id` first, then `metadata.user_id`.
    pub fn user_id(&self) -> Option<&str> {
        self.client_reference_id
            .as_deref()
            .or(self.metadata_user_id.as_deref())
    }
}

/// A Stripe customer as an event rendered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerFacts {
    /// `cus_…`.
    pub id: String,
    /// The customer's email.
    pub email: Option<String>,
    /// Our user id from `metadata.user_id`.
    pub metadata_user_id: Option<String>,
}

/// Which `customer.subscription.*` event a snapshot came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionChange {
    /// `customer.subscription.created`.
    Created,
    /// `customer.subscription.updated`.
    Updated,
    /// `customer.subscription.deleted`.
    Deleted,
    /// `customer.subscription.paused`.
    Paused,
    /// `customer.subscription.resumed`.
    Resumed,
    /// `customer.subscription.trial_will_end` (informational).
    TrialWillEnd,
}

/// A subscription as an event rendered it, whatever the API version.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionSnapshot {
    /// `sub_…`.
    pub id: String,
    /// `cus_…`.
    pub customer_id: String,
    /// Stripe's status.
    pub status: SubscriptionStatus,
    /// Every item's price (`price_…`), in item order. The tier is the highest catalog tier
    /// among them; prices the catalog does not know do not count.
    pub price_ids: Vec<String>,
    /// Start of the current billing period (on the subscription before basil, on items since).
    pub current_period_start: Option<DateTime<Utc>>,
    /// End of the current billing period.
    pub current_period_end: Option<DateTime<Utc>>,
    /// The subscription ends when the current period ends.
    pub cancel_at_period_end: bool,
    /// A scheduled cancellation time, if any.
    pub cancel_at: Option<DateTime<Utc>>,
    /// When it was canceled, if it was.
    pub canceled_at: Option<DateTime<Utc>>,
    /// When it ended, if it did.
    pub ended_at: Option<DateTime<Utc>>,
    /// End of the trial, if any.
    pub trial_end: Option<DateTime<Utc>>,
    /// Our user id from `metadata.user_id`.
    pub metadata_user_id: Option<String>,
}

/// Which invoice event an invoice came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceChange {
    /// `invoice.paid`.
    Paid,
    /// `invoice.payment_succeeded`.
    PaymentSucceeded,
    /// `invoice.payment_failed`.
    PaymentFailed,
}

/// An invoice as an event rendered it, whatever the API version.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceFacts {
    /// `in_…`.
    pub id: String,
    /// `cus_…`, if any.
    pub customer_id: Option<String>,
    /// The subscription billed (`invoice.subscription` before basil,
    /// `invoice.parent.subscription_details.subscription` since); `None` for one-off invoices.
    pub subscription_id: Option<String>,
    /// Stripe's invoice status (`paid`, `open`, …).
    pub status: Option<String>,
    /// Why the invoice was made: `subscription_create`, `subscription_cycle`, …
    pub billing_reason: Option<String>,
    /// Amount paid so far. Renderings without `amount_paid` (before 2019) give `total` when the
    /// invoice is `paid`, else zero.
    pub amount_paid: Money,
    /// Amount due.
    pub amount_due: Money,
    /// How many payment attempts were made.
    pub attempt_count: u32,
    /// Start of the billed service period (from its subscription line), if known.
    pub period_start: Option<DateTime<Utc>>,
    /// End of the billed service period, if known.
    pub period_end: Option<DateTime<Utc>>,
    /// When Stripe will retry a failed payment, if it will.
    pub next_payment_attempt: Option<DateTime<Utc>>,
    /// The prices of the subscription lines (`lines.data[].price.id` before basil,
    /// `lines.data[].pricing.price_details.price` since): every non-proration line's, or else
    /// the one proration line that bills the new price. Credits come from the highest catalog
    /// tier among them, so they can be granted even when the invoice arrives before its
    /// subscription.
    pub price_ids: Vec<String>,
}

/// A payment intent as an event rendered it, whatever the API version.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentIntentFacts {
    /// `pi_…`.
    pub id: String,
    /// `cus_…`, if any.
    pub customer_id: Option<String>,
    /// The amount the payment intent collects.
    pub amount: Money,
    /// Stripe's status string.
    pub status: String,
    /// The failure message of the last attempt (`last_payment_error.message`), if it failed.
    pub last_error: Option<String>,
    /// The latest charge (`latest_charge`, or `charges.data[0]` before 2022-11-15).
    pub latest_charge_id: Option<String>,
    /// Our user id from `metadata.user_id`.
    pub metadata_user_id: Option<String>,
}

/// A charge with its refunded total (`charge.refunded`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeFacts {
    /// `ch_…`.
    pub id: String,
    /// The payment intent it belongs to; `None` for Charges API charges.
    pub payment_intent_id: Option<String>,
    /// `cus_…`, if any.
    pub customer_id: Option<String>,
    /// The charged amount.
    pub amount: Money,
    /// Total refunded so far (same currency).
    pub amount_refunded: i64,
}

/// One refund (`charge.refund.updated`).
#[derive(Debug, Clone, PartialEq)]
pub struct RefundFacts {
    /// `re_…`.
    pub id: String,
    /// The refunded charge.
    pub charge_id: Option<String>,
    /// The refunded payment intent.
    pub payment_intent_id: Option<String>,
    /// The refund's amount.
    pub amount: Money,
    /// Stripe's refund status: `pending`, `succeeded`, `failed`, `canceled`, …
    pub status: String,
}

/// A dispute of one charge, as an event rendered it.
#[derive(Debug, Clone, PartialEq)]
pub struct DisputeFacts {
    /// `dp_…`.
    pub id: String,
    /// The disputed charge.
    pub charge_id: Option<String>,
    /// The disputed payment intent.
    pub payment_intent_id: Option<String>,
    /// The disputed amount.
    pub amount: Money,
    /// Stripe's dispute status, as sent: `warning_needs_response`, `warning_under_review`,
    /// `warning_closed`, `needs_response`, `under_review`, `won`, `lost`, `prevented`, …
    pub status: String,
}

/// Which `payment_intent.*` event a payment intent came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentIntentChange {
    /// `payment_intent.succeeded`.
    Succeeded,
    /// `payment_intent.payment_failed`.
    PaymentFailed,
    /// `payment_intent.processing`.
    Processing,
    /// `payment_intent.requires_action`.
    RequiresAction,
    /// `payment_intent.canceled`.
    Canceled,
}

/// Where a dispute stands for us, derived from Stripe's dispute status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisputeOutcome {
    /// An inquiry or a chargeback that has not been decided.
    Open,
    /// Decided for the merchant.
    Won,
    /// Decided for the cardholder: the money is gone.
    Lost,
    /// Ended with no chargeback: an inquiry closed (`warning_closed`) or a dispute prevented.
    ClosedWithoutChargeback,
}

impl DisputeOutcome {
    /// The outcome of Stripe's dispute `status`. Statuses this version does not know are
    /// treated as still open.
    pub fn of_status(status: &str) -> Self {
        match status {
            "won" => Self::Won,
            "lost" => Self::Lost,
            "warning_closed" | "prevented" => Self::ClosedWithoutChargeback,
            _ => Self::Open,
        }
    }

    /// True once the dispute is decided; a decided dispute never reopens.
    pub fn is_closed(self) -> bool {
        self != Self::Open
    }
}

impl Fact {
    /// The Stripe customer this fact concerns, when the event names one.
    pub fn customer_id(&self) -> Option<&str> {
        match self {
            Fact::CheckoutCompleted(s) => s.customer_id.as_deref(),
            Fact::Customer { customer, .. } => Some(&customer.id),
            Fact::Subscription { subscription, .. } => Some(&subscription.customer_id),
            Fact::Invoice { invoice, .. } => invoice.customer_id.as_deref(),
            Fact::PaymentIntent { payment_intent, .. } => payment_intent.customer_id.as_deref(),
            Fact::ChargeRefunded(charge) => charge.customer_id.as_deref(),
            Fact::RefundUpdated(_) | Fact::Dispute { .. } => None,
            Fact::Unhandled => None,
        }
    }

    /// The subscription whose stored row this fact's effects read to change (a subscription
    /// event's, an invoice's), when it names one.
    pub fn subscription_id(&self) -> Option<&str> {
        match self {
            Fact::Subscription { subscription, .. } => Some(&subscription.id),
            Fact::Invoice { invoice, .. } => invoice.subscription_id.as_deref(),
            _ => None,
        }
    }

    /// Our user this fact names (a Checkout session's `client_reference_id`, else a
    /// `metadata.user_id`), when it names one.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Fact::CheckoutCompleted(s) => s.user_id(),
            Fact::Customer { customer, .. } => customer.metadata_user_id.as_deref(),
            Fact::Subscription { subscription, .. } => subscription.metadata_user_id.as_deref(),
            Fact::PaymentIntent { payment_intent, .. } => {
                payment_intent.metadata_user_id.as_deref()
            }
            Fact::Invoice { .. }
            | Fact::ChargeRefunded(_)
            | Fact::RefundUpdated(_)
            | Fact::Dispute { .. }
            | Fact::Unhandled => None,
        }
    }
}
