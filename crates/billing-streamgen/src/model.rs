//! What each generated event means to say, independent of its JSON shape: the state of the
//! Stripe object it carries. The renderer turns these into bodies; the oracle reads them.
//!
//! Times are unix seconds. An event's `created` is wall time (seconds apart, as Stripe's
//! delivery of a test-clock simulation is); the objects' own times (periods, trial end,
//! `canceled_at`) are the simulated time of the customer's test clock.

use billing_domain::SubscriptionStatus;

use crate::prices::Price;

/// The two payload shapes of the adapter's fixtures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shape {
    /// `2025-03-31.basil` (and `2026-09-30.endive` for the types its fixtures render so).
    Basil,
    /// `2023-10-16` / `2024-06-20`.
    PreBasil,
}

impl Shape {
    /// The fixture folder's name.
    pub fn folder(self) -> &'static str {
        match self {
            Shape::Basil => "basil",
            Shape::PreBasil => "pre-basil",
        }
    }
}

/// A Stripe customer and the user our server created it for.
#[derive(Clone, Debug)]
pub struct CustomerObj {
    /// Stripe's customer id (`cus_…`).
    pub id: String,
    /// Our user id, in the customer's `metadata.user_id`.
    pub user: String,
    /// The customer's email address.
    pub email: String,
    /// The customer's full name.
    pub name: String,
    /// The prefix of its invoices' numbers.
    pub invoice_prefix: String,
    /// When it was created, simulated time.
    pub created: i64,
}

/// A subscription as one `customer.subscription.*` event renders it.
#[derive(Clone, Debug)]
pub struct SubscriptionObj {
    /// Stripe's subscription id (`sub_1…`).
    pub id: String,
    /// Its customer's id.
    pub customer: String,
    /// Our user id, in `metadata.user_id`.
    pub user: String,
    /// Its one subscription item's id (`si_…`).
    pub item: String,
    /// Stripe's status.
    pub status: SubscriptionStatus,
    /// The price of its item.
    pub price: &'static Price,
    /// The current period, start and end.
    pub period: (i64, i64),
    /// Whether it ends at the period's end.
    pub cancel_at_period_end: bool,
    /// When it is scheduled to end, if it is.
    pub cancel_at: Option<i64>,
    /// When it was canceled, if it was.
    pub canceled_at: Option<i64>,
    /// When it ended, if it did.
    pub ended_at: Option<i64>,
    /// The trial's start and end, if it had one.
    pub trial: Option<(i64, i64)>,
    /// When it was created.
    pub created: i64,
    /// The instant its billing periods are counted from.
    pub billing_cycle_anchor: i64,
    /// Its latest invoice's id.
    pub latest_invoice: Option<String>,
    /// Stripe's `cancellation_details.reason`, once canceled.
    pub cancellation_reason: Option<&'static str>,
}

/// One line of an invoice.
#[derive(Clone, Debug)]
pub struct LineObj {
    /// The line's id (`il_…`).
    pub id: String,
    /// The price billed.
    pub price: &'static Price,
    /// The amount in minor units (negative for unused time credited back).
    pub amount: i64,
    /// The period the line bills.
    pub period: (i64, i64),
    /// Whether it is a proration of a plan change.
    pub proration: bool,
    /// The line's description as Stripe words it.
    pub description: String,
    /// The invoice item behind a proration line (`ii_…`).
    pub invoice_item: Option<String>,
}

/// An invoice as one `invoice.*` event renders it.
#[derive(Clone, Debug)]
pub struct InvoiceObj {
    /// Stripe's invoice id (`in_1…`).
    pub id: String,
    /// Its customer's id.
    pub customer: String,
    /// The subscription it bills.
    pub subscription: String,
    /// That subscription's item.
    pub item: String,
    /// Our user id, from the subscription's metadata.
    pub user: String,
    /// The invoice number (customer prefix and a counter).
    pub number: String,
    /// `subscription_create`, `subscription_cycle` or `subscription_update`.
    pub billing_reason: &'static str,
    /// Whether it is paid.
    pub paid: bool,
    /// What is due, in minor units.
    pub amount_due: i64,
    /// What was paid, in minor units.
    pub amount_paid: i64,
    /// How many payment attempts were made.
    pub attempt_count: u32,
    /// Its lines, at least one.
    pub lines: Vec<LineObj>,
    /// When it was created, simulated time.
    pub created: i64,
    /// The invoice-level period (the preceding period for renewals, an instant otherwise).
    pub period: (i64, i64),
    /// When Stripe retries the payment, while dunning.
    pub next_payment_attempt: Option<i64>,
    /// When it was paid.
    pub paid_at: Option<i64>,
    /// None for invoices of nothing to pay (no payment intent is made).
    pub payment_intent: Option<String>,
    /// The charge of the attempt this event reports, if one was made.
    pub charge: Option<String>,
}

impl InvoiceObj {
    /// The line whose price the parser takes: the first non-proration line, else the first
    /// charged proration line.
    pub fn priced_line(&self) -> &LineObj {
        self.lines
            .iter()
            .find(|l| !l.proration)
            .or_else(|| self.lines.iter().find(|l| l.amount > 0))
            .unwrap_or(&self.lines[0])
    }
}

/// Checkout's mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckoutMode {
    /// Starts a subscription.
    Subscription,
    /// A one-time payment.
    Payment,
}

/// A completed Checkout Session.
#[derive(Clone, Debug)]
pub struct CheckoutObj {
    /// The session's id (`cs_…`).
    pub id: String,
    /// Subscription or one-time payment.
    pub mode: CheckoutMode,
    /// The customer's id.
    pub customer: String,
    /// Our user id, as `client_reference_id` and in the metadata.
    pub user: String,
    /// The subscription it created (subscription mode).
    pub subscription: Option<String>,
    /// The subscription's first invoice (subscription mode).
    pub invoice: Option<String>,
    /// The payment intent (payment mode).
    pub payment_intent: Option<String>,
    /// The amount paid, in minor units.
    pub amount_total: i64,
    /// `paid` or `no_payment_required`.
    pub payment_status: &'static str,
    /// When the session was created.
    pub created: i64,
}

/// A payment intent as `payment_intent.*` renders it.
#[derive(Clone, Debug)]
pub struct PaymentIntentObj {
    /// Stripe's payment intent id (`pi_3…`).
    pub id: String,
    /// The customer's id.
    pub customer: String,
    /// The amount, in minor units.
    pub amount: i64,
    /// Whether this attempt succeeded (else it failed).
    pub succeeded: bool,
    /// The charge of this attempt.
    pub latest_charge: String,
    /// The invoice it pays, if any.
    pub invoice: Option<String>,
    /// Set on one-time purchases (our checkout puts `metadata.user_id` on the intent).
    pub metadata_user: Option<String>,
    /// Its description.
    pub description: &'static str,
    /// When it was created.
    pub created: i64,
}

/// A refunded charge as `charge.refunded` renders it.
#[derive(Clone, Debug)]
pub struct ChargeObj {
    /// Stripe's charge id (`ch_3…`).
    pub id: String,
    /// The payment intent it belongs to.
    pub payment_intent: String,
    /// The customer's id.
    pub customer: String,
    /// The charged amount, in minor units.
    pub amount: i64,
    /// The charge's cumulative refunded amount after this refund.
    pub amount_refunded: i64,
    /// ... and before it.
    pub previous_refunded: i64,
    /// The invoice it paid, if any.
    pub invoice: Option<String>,
    /// Its description.
    pub description: &'static str,
    /// When it was created.
    pub created: i64,
}

/// A dispute of a charge as `charge.dispute.*` renders it.
#[derive(Clone, Debug)]
pub struct DisputeObj {
    /// Stripe's dispute id (`du_1…`).
    pub id: String,
    /// The disputed charge.
    pub charge: String,
    /// Its payment intent.
    pub payment_intent: String,
    /// The disputed amount, in minor units.
    pub amount: i64,
    /// Stripe's dispute status (`needs_response`, `under_review`, `won`, `lost`, …).
    pub status: &'static str,
    /// Stripe's reason (`fraudulent`, `product_not_received`, `subscription_canceled`, …).
    pub reason: &'static str,
    /// When the dispute was opened.
    pub created: i64,
}

/// What one event says.
#[derive(Clone, Debug)]
pub enum Intent {
    /// `customer.created`.
    Customer(CustomerObj),
    /// `customer.subscription.*`: a snapshot of the subscription.
    Subscription {
        /// Which `customer.subscription.*` event.
        event_type: &'static str,
        /// The subscription after the change.
        now: Box<SubscriptionObj>,
        /// The state before, for `previous_attributes`.
        before: Option<Box<SubscriptionObj>>,
    },
    /// `invoice.*`: the invoice after a payment attempt.
    Invoice {
        /// Which `invoice.*` event.
        event_type: &'static str,
        /// The invoice as the event carries it.
        invoice: Box<InvoiceObj>,
    },
    /// `checkout.session.completed`.
    Checkout(CheckoutObj),
    /// `payment_intent.succeeded` or `payment_intent.payment_failed`.
    Payment(PaymentIntentObj),
    /// `charge.refunded`.
    ChargeRefunded(ChargeObj),
    /// `charge.dispute.created` or `charge.dispute.closed`.
    Dispute {
        /// Which `charge.dispute.*` event.
        event_type: &'static str,
        /// The dispute as the event carries it.
        dispute: DisputeObj,
    },
}

impl Intent {
    /// Stripe's event type.
    pub fn event_type(&self) -> &'static str {
        match self {
            Intent::Customer(_) => "customer.created",
            Intent::Subscription { event_type, .. }
            | Intent::Invoice { event_type, .. }
            | Intent::Dispute { event_type, .. } => event_type,
            Intent::Checkout(_) => "checkout.session.completed",
            Intent::Payment(pi) if pi.succeeded => "payment_intent.succeeded",
            Intent::Payment(_) => "payment_intent.payment_failed",
            Intent::ChargeRefunded(_) => "charge.refunded",
        }
    }

    /// The subscription the event is about, if any.
    pub fn subscription_id(&self) -> Option<&str> {
        match self {
            Intent::Subscription { now, .. } => Some(&now.id),
            Intent::Invoice { invoice, .. } => Some(&invoice.subscription),
            Intent::Checkout(c) => c.subscription.as_deref(),
            _ => None,
        }
    }

    /// The snapshot, for subscription events.
    pub fn snapshot(&self) -> Option<&SubscriptionObj> {
        match self {
            Intent::Subscription { now, .. } => Some(now.as_ref()),
            _ => None,
        }
    }

    /// One line saying what the event carries, for failure reports.
    pub fn summary(&self) -> String {
        match self {
            Intent::Customer(c) => format!("{} user {}", c.id, c.user),
            Intent::Subscription { now, .. } => format!(
                "{} price {} period {}..{}{}",
                now.status.as_str(),
                now.price.id,
                day(now.period.0),
                day(now.period.1),
                if now.cancel_at_period_end {
                    " cancel_at_period_end"
                } else {
                    ""
                }
            ),
            Intent::Invoice { invoice, .. } => format!(
                "{} {} attempt {} paid {} price {} line period {}..{}",
                invoice.id,
                invoice.billing_reason,
                invoice.attempt_count,
                invoice.amount_paid,
                invoice.priced_line().price.id,
                day(invoice.priced_line().period.0),
                day(invoice.priced_line().period.1),
            ),
            Intent::Checkout(c) => format!("{} {:?} {}", c.id, c.mode, c.amount_total),
            Intent::Payment(pi) => format!("{} {}", pi.id, pi.amount),
            Intent::ChargeRefunded(ch) => {
                format!("{} refunded {} of {}", ch.id, ch.amount_refunded, ch.amount)
            }
            Intent::Dispute { dispute: d, .. } => {
                format!("{} of {} for {}: {}", d.id, d.charge, d.amount, d.status)
            }
        }
    }
}

/// A unix time as `YYYY-MM-DD HH:MM`, for reports.
pub fn day(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(
        || unix.to_string(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}
