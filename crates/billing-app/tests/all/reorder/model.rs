//! What each generated event means to say, independent of its JSON shape: the state of the
//! Stripe object it carries. The renderer turns these into bodies; the oracle reads them.
//!
//! Times are unix seconds. An event's `created` is wall time (seconds apart, as Stripe's
//! delivery of a test-clock simulation is); the objects' own times (periods, trial end,
//! `canceled_at`) are the simulated time of the customer's test clock.

use billing_domain::SubscriptionStatus;

use super::prices::Price;

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
    pub id: String,
    pub user: String,
    pub email: String,
    pub name: String,
    pub invoice_prefix: String,
    pub created: i64,
}

/// A subscription as one `customer.subscription.*` event renders it.
#[derive(Clone, Debug)]
pub struct SubscriptionObj {
    pub id: String,
    pub customer: String,
    pub user: String,
    pub item: String,
    pub status: SubscriptionStatus,
    pub price: &'static Price,
    pub period: (i64, i64),
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub trial: Option<(i64, i64)>,
    pub created: i64,
    pub billing_cycle_anchor: i64,
    pub latest_invoice: Option<String>,
    pub cancellation_reason: Option<&'static str>,
}

/// One line of an invoice.
#[derive(Clone, Debug)]
pub struct LineObj {
    pub id: String,
    pub price: &'static Price,
    pub amount: i64,
    pub period: (i64, i64),
    pub proration: bool,
    pub description: String,
    /// The invoice item behind a proration line (`ii_…`).
    pub invoice_item: Option<String>,
}

/// An invoice as one `invoice.*` event renders it.
#[derive(Clone, Debug)]
pub struct InvoiceObj {
    pub id: String,
    pub customer: String,
    pub subscription: String,
    pub item: String,
    pub user: String,
    pub number: String,
    /// `subscription_create`, `subscription_cycle` or `subscription_update`.
    pub billing_reason: &'static str,
    pub paid: bool,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub attempt_count: u32,
    pub lines: Vec<LineObj>,
    pub created: i64,
    /// The invoice-level period (the preceding period for renewals, an instant otherwise).
    pub period: (i64, i64),
    pub next_payment_attempt: Option<i64>,
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
    Subscription,
    Payment,
}

/// A completed Checkout Session.
#[derive(Clone, Debug)]
pub struct CheckoutObj {
    pub id: String,
    pub mode: CheckoutMode,
    pub customer: String,
    pub user: String,
    pub subscription: Option<String>,
    pub invoice: Option<String>,
    pub payment_intent: Option<String>,
    pub amount_total: i64,
    /// `paid` or `no_payment_required`.
    pub payment_status: &'static str,
    pub created: i64,
}

/// A payment intent as `payment_intent.*` renders it.
#[derive(Clone, Debug)]
pub struct PaymentIntentObj {
    pub id: String,
    pub customer: String,
    pub amount: i64,
    pub succeeded: bool,
    pub latest_charge: String,
    pub invoice: Option<String>,
    /// Set on one-time purchases (our checkout puts `metadata.user_id` on the intent).
    pub metadata_user: Option<String>,
    pub description: &'static str,
    pub created: i64,
}

/// A refunded charge as `charge.refunded` renders it.
#[derive(Clone, Debug)]
pub struct ChargeObj {
    pub id: String,
    pub payment_intent: String,
    pub customer: String,
    pub amount: i64,
    /// The charge's cumulative refunded amount after this refund.
    pub amount_refunded: i64,
    /// ... and before it.
    pub previous_refunded: i64,
    pub invoice: Option<String>,
    pub description: &'static str,
    pub created: i64,
}

/// What one event says.
#[derive(Clone, Debug)]
pub enum Intent {
    Customer(CustomerObj),
    Subscription {
        event_type: &'static str,
        now: Box<SubscriptionObj>,
        /// The state before, for `previous_attributes`.
        before: Option<Box<SubscriptionObj>>,
    },
    Invoice {
        event_type: &'static str,
        invoice: Box<InvoiceObj>,
    },
    Checkout(CheckoutObj),
    Payment(PaymentIntentObj),
    ChargeRefunded(ChargeObj),
}

impl Intent {
    /// Stripe's event type.
    pub fn event_type(&self) -> &'static str {
        match self {
            Intent::Customer(_) => "customer.created",
            Intent::Subscription { event_type, .. } | Intent::Invoice { event_type, .. } => {
                event_type
            }
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
                super::model::day(now.period.0),
                super::model::day(now.period.1),
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
