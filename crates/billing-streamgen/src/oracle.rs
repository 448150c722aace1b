//! What must hold after a stream was delivered, whatever the order, computed from what the
//! generator meant (not from any ingester): every subscription as its newest snapshot says; one
//! credit grant per paid invoice; every event stored once and done; payments and refunds at the
//! charges' cumulative totals.
//!
//! The comparisons take plain values of what a store holds ([`StoredSubscription`],
//! [`StoredEvent`], [`StoredPayment`]) and answer in sentences, so that whoever reads the
//! store (through the application, or with SQL) reports the same differences.

use std::collections::BTreeMap;

use billing_domain::Catalog;

use crate::Error;
use crate::model::{CheckoutMode, Intent, SubscriptionObj, day};
use crate::prices::credits_of;
use crate::stream::Stream;

/// A subscription's newest snapshot: the truth.
#[derive(Debug, Clone)]
pub struct Truth {
    /// Index of its event in the stream.
    pub event: usize,
    /// The subscription as that event carries it.
    pub snapshot: SubscriptionObj,
}

/// What a payment intent must end as.
#[derive(Debug, Clone, Default)]
pub struct PaymentTruth {
    /// Whether some event says it succeeded (a refund or a paid Checkout implies it).
    pub succeeded: bool,
    /// The charge's cumulative refunded amount, in minor units.
    pub refunded: i64,
    /// A payment-mode Checkout's amount: an order must exist.
    pub order_amount: Option<i64>,
}

/// The credit grant one paid invoice must make, exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The user the credits go to.
    pub user: String,
    /// How many credits the invoice's price grants per period.
    pub credits: i64,
}

/// Everything the oracle expects of one stream.
#[derive(Debug, Default)]
pub struct Expected {
    /// Subscription id → its newest snapshot.
    pub subscriptions: BTreeMap<String, Truth>,
    /// Every user's credit balance.
    pub credits: BTreeMap<String, i64>,
    /// Paid invoice id → the grant it makes.
    pub grants: BTreeMap<String, Grant>,
    /// Payment intent id → its final state.
    pub payments: BTreeMap<String, PaymentTruth>,
}

/// The expectations of `stream`, with the credits of `catalog`'s tiers.
///
/// # Errors
///
/// [`Error::PriceNotInCatalog`] when a paid invoice bills a price `catalog` does not have.
///
/// # Panics
///
/// When the stream holds two snapshots of one subscription in one second, which the generator
/// never emits (so "newest" is never ambiguous).
pub fn expected(stream: &Stream, catalog: &Catalog) -> Result<Expected, Error> {
    let mut expected = Expected::default();
    for customer in &stream.customers {
        expected.credits.insert(customer.object.user.clone(), 0);
    }
    for (index, event) in stream.events.iter().enumerate() {
        match &event.intent {
            Intent::Subscription { now, .. } => {
                let newer = match expected.subscriptions.get(&now.id) {
                    None => true,
                    Some(truth) => {
                        let current = stream.events[truth.event].created;
                        assert_ne!(
                            current, event.created,
                            "the generator emitted two snapshots of {} in one second",
                            now.id
                        );
                        event.created > current
                    }
                };
                if newer {
                    expected.subscriptions.insert(
                        now.id.clone(),
                        Truth {
                            event: index,
                            snapshot: now.as_ref().clone(),
                        },
                    );
                }
            }
            Intent::Invoice {
                event_type,
                invoice,
            } => {
                if *event_type != "invoice.payment_failed" && invoice.amount_paid > 0 {
                    let credits = credits_of(catalog, invoice.priced_line().price)?;
                    expected.grants.insert(
                        invoice.id.clone(),
                        Grant {
                            user: invoice.user.clone(),
                            credits,
                        },
                    );
                }
            }
            Intent::Payment(pi) => {
                let truth = expected.payments.entry(pi.id.clone()).or_default();
                truth.succeeded |= pi.succeeded;
            }
            Intent::ChargeRefunded(charge) => {
                let truth = expected
                    .payments
                    .entry(charge.payment_intent.clone())
                    .or_default();
                truth.succeeded = true;
                truth.refunded = truth.refunded.max(charge.amount_refunded);
            }
            Intent::Checkout(session) if session.mode == CheckoutMode::Payment => {
                if let Some(pi) = &session.payment_intent {
                    let truth = expected.payments.entry(pi.clone()).or_default();
                    truth.succeeded = true;
                    truth.order_amount = Some(session.amount_total);
                }
            }
            Intent::Dispute { dispute, .. } => {
                // A disputed charge was paid; the dispute's outcome is not judged here (the
                // random journeys never open one).
                let truth = expected
                    .payments
                    .entry(dispute.payment_intent.clone())
                    .or_default();
                truth.succeeded = true;
            }
            Intent::Customer(_) | Intent::Checkout(_) => {}
        }
    }
    for grant in expected.grants.values() {
        *expected.credits.entry(grant.user.clone()).or_default() += grant.credits;
    }
    Ok(expected)
}

/// What a store holds of one subscription, as far as the oracle judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// Stripe's status as stored (`active`, `past_due`, …).
    pub status: String,
    /// The price it is on.
    pub price_id: Option<String>,
    /// The current period's start, unix seconds.
    pub current_period_start: Option<i64>,
    /// The current period's end, unix seconds.
    pub current_period_end: Option<i64>,
    /// Whether it ends at the period's end.
    pub cancel_at_period_end: bool,
}

/// The differences between a stored subscription and the snapshot it must equal, one sentence
/// per field (`status …`, `price …`, `period …`, `cancel_at_period_end …`); empty when equal.
pub fn subscription_diff(expected: &SubscriptionObj, stored: &StoredSubscription) -> Vec<String> {
    let show = |t: Option<i64>| t.map_or_else(|| "none".to_owned(), day);
    let mut diffs = Vec::new();
    if stored.status != expected.status.as_str() {
        diffs.push(format!(
            "status {} (expected {})",
            stored.status,
            expected.status.as_str()
        ));
    }
    if stored.price_id.as_deref() != Some(expected.price.id) {
        diffs.push(format!(
            "price {} (expected {})",
            stored.price_id.as_deref().unwrap_or("none"),
            expected.price.id
        ));
    }
    if stored.current_period_start != Some(expected.period.0)
        || stored.current_period_end != Some(expected.period.1)
    {
        diffs.push(format!(
            "period {}..{} (expected {}..{})",
            show(stored.current_period_start),
            show(stored.current_period_end),
            day(expected.period.0),
            day(expected.period.1)
        ));
    }
    if stored.cancel_at_period_end != expected.cancel_at_period_end {
        diffs.push(format!(
            "cancel_at_period_end {} (expected {})",
            stored.cancel_at_period_end, expected.cancel_at_period_end
        ));
    }
    diffs
}

/// The event statuses that mean "done, applied once": its effects committed, or nothing to do
/// (a type not acted on, or older than what was applied).
pub const DONE_STATUSES: [&str; 3] = ["processed", "ignored", "stale"];

/// What a store holds of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its ingestion status as stored (`processed`, `failed`, …).
    pub status: String,
    /// How many times applying it failed.
    pub attempts: i64,
    /// Whether the stored payload is the delivered body, byte for byte.
    pub payload_matches: bool,
}

/// What is wrong with how an event of the stream is stored (`None` when it is not stored at
/// all), or `None` when it is stored once, done, on the first attempt, with its body.
pub fn event_problem(stored: Option<&StoredEvent>) -> Option<String> {
    match stored {
        None => Some("not stored".to_owned()),
        Some(record) if !DONE_STATUSES.contains(&record.status.as_str()) => {
            Some(format!("left {}", record.status))
        }
        Some(record) if record.attempts != 0 => {
            Some(format!("failed {} times first", record.attempts))
        }
        Some(record) if !record.payload_matches => Some("stored with another body".to_owned()),
        Some(_) => None,
    }
}

/// What a store holds of one payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayment {
    /// Its status as stored (`succeeded`, `failed`, …).
    pub status: String,
    /// The refunded amount, in minor units.
    pub amount_refunded: i64,
}

/// What is wrong with payment intent `pi` as stored: its payment row (`None`: no row) and, for
/// a payment-mode Checkout, its order's refunded amount (`None`: no order). Only a success is
/// checked: a payment intent whose only events are failures may be stored as succeeded
/// whatever the order, which no delivery order changes.
pub fn payment_problems(
    pi: &str,
    truth: &PaymentTruth,
    payment: Option<&StoredPayment>,
    order_refunded: Option<i64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    match payment {
        None => problems.push(format!("{pi}: no payment row")),
        Some(p)
            if (truth.succeeded && p.status != "succeeded")
                || p.amount_refunded != truth.refunded =>
        {
            problems.push(format!(
                "{pi}: {} refunded {} (expected{} refunded {})",
                p.status,
                p.amount_refunded,
                if truth.succeeded { " succeeded" } else { "" },
                truth.refunded
            ));
        }
        Some(_) => {}
    }
    if let Some(amount) = truth.order_amount {
        let want = truth.refunded.min(amount);
        match order_refunded {
            None => problems.push(format!("{pi}: no order")),
            Some(got) if got != want => {
                problems.push(format!("{pi}: order refunded {got} (expected {want})"));
            }
            Some(_) => {}
        }
    }
    problems
}
