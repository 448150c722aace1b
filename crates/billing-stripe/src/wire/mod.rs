//! Stripe webhook events on the wire, read into typed [`BillingEvent`]s.
//!
//! The structs here are our own, deliberately lenient, serde mirrors of Stripe's JSON: they
//! declare only the fields the facts need and ignore everything else, so new fields, removed
//! fields we do not read, and whole new objects never break parsing. One parser serves every
//! API version from `2023-10-16` through the `2025-03-31.basil` family to
//! `2026-09-30.endive`, and the older renderings an endpoint pinned long ago still receives
//! (invoices of `2017-08-15`, charges of `2019-12-03`, payment intents of `2020-08-27`); the
//! version string is passed through but never branched on. Instead each field is looked for
//! in every place some version puts it:
//!
//! | fact | before basil | basil and later |
//! | --- | --- | --- |
//! | subscription period | `current_period_start`/`_end` on the subscription | on `items.data[0]` |
//! | subscription prices | every `items.data[i].price` (or the item's legacy `plan`); the subscription's legacy `plan` when no item gives one | every `items.data[i].price` |
//! | invoice subscription | `invoice.subscription` | `invoice.parent.subscription_details.subscription` |
//! | invoice period | the first non-proration `lines.data[]` with `type: "subscription"` (or a `subscription`), else the chosen proration line | the same, lines with `parent.subscription_item_details` |
//! | invoice prices | those lines' `price` (or legacy `plan`) | those lines' `pricing.price_details.price` |
//! | invoice amount paid | `amount_paid`; before 2018 (e.g. `2017-08-15`) `total` when `paid`, else 0 | `amount_paid` |
//! | payment intent latest charge | `latest_charge` since `2022-11-15`; `charges.data[0].id` before | `latest_charge` |
//! | charge payment intent | `payment_intent`; `null` for Charges API charges | `payment_intent` |
//! | dispute payment intent | absent in old renderings and for Charges API charges (read as `None`) | `payment_intent` |
//! | dispute status | `status` as sent (`warning_*`, `needs_response`, `under_review`, `won`, `lost`) | the same, plus `prevented` since `2025-08-27.basil` |
//!
//! How each value is chosen (which item, which line, which fallback) is spelled out in the
//! doc comment of the object's module.
//!
//! Conventions, in every object:
//!
//! - An expandable reference (customer, subscription, payment intent, charge, price, plan) may
//!   be an id string or an expanded object; only its `id` is kept.
//! - An absent field and a `null` field mean the same: `None` where the fact is optional, a
//!   [`WireError::MissingField`] where it is required. Three non-optional facts have defaults
//!   instead: `livemode` and `cancel_at_period_end` read as `false`, an invoice's
//!   `attempt_count` as `0`.
//! - Timestamps are unix seconds and become `DateTime<Utc>`; amounts must be JSON integers
//!   (minor units) and currencies three letters, else [`WireError::InvalidField`].
//! - A field that is read must have the type Stripe documents, else
//!   [`WireError::InvalidField`] naming its path; fields that are not read are never looked at.
//! - When the object carries an `object` discriminator that does not match the event type
//!   (say a `charge` in `charge.refund.updated`, which carries a `refund`), the event is
//!   rejected with [`WireError::InvalidField`] on `data.object.object`.
//! - Unknown event types become [`Fact::Unhandled`], unknown subscription statuses
//!   [`SubscriptionStatus::Unknown`](billing_domain::SubscriptionStatus::Unknown) and unknown
//!   Checkout modes [`CheckoutMode::Unknown`](billing_domain::facts::CheckoutMode::Unknown):
//!   none of them is an error.

mod charge;
mod checkout;
mod customer;
mod dispute;
mod envelope;
mod event_type;
mod field;
mod invoice;
mod payment_intent;
mod refund;
mod subscription;

use billing_domain::facts::{InvoiceChange, PaymentIntentChange, SubscriptionChange};
use billing_domain::{BillingEvent, Fact};

pub use crate::error::WireError;
pub use envelope::EventEnvelope;
pub use event_type::HANDLED_EVENT_TYPES;

use self::envelope::{Kept, RawEvent, Skipped};
use self::event_type::HandledEventType;
use self::field::{Decode, Scope};

/// The [`EventDecoder`](billing_ports::EventDecoder) port over [`parse_event`]: how a replay
/// reads a stored body again without the application knowing Stripe's wire format.
#[derive(Debug, Clone, Copy, Default)]
pub struct StripeEventDecoder;

impl billing_ports::EventDecoder for StripeEventDecoder {
    fn decode(&self, payload: &[u8]) -> Result<BillingEvent, billing_ports::DecodeError> {
        parse_event(payload).map_err(|e| billing_ports::DecodeError(billing_ports::Cause::new(e)))
    }
}

/// Parses a verified webhook body into a [`BillingEvent`].
///
/// Unknown event types are not an error: they parse as [`Fact::Unhandled`] with the envelope
/// filled in, and their `data` is not read. For handled types, a missing required field or a
/// field of the wrong type is an error naming the field's path and the event id. Never
/// panics, whatever the bytes.
pub fn parse_event(payload: &[u8]) -> Result<BillingEvent, WireError> {
    let mut raw = envelope::read::<Kept>(payload)?;
    let envelope = raw.envelope()?;
    let fact = fact(&envelope.event_type, &mut raw)?;
    Ok(BillingEvent {
        id: envelope.id,
        event_type: envelope.event_type,
        api_version: envelope.api_version,
        livemode: envelope.livemode,
        created: envelope.created,
        fact,
    })
}

/// Reads only the envelope of a webhook body (`id`, `type`, `created`, `api_version`,
/// `livemode`), without looking at `data`.
///
/// Lets a caller record an event whose object [`parse_event`] rejects.
pub fn peek_envelope(payload: &[u8]) -> Result<EventEnvelope, WireError> {
    envelope::read::<Skipped>(payload)?.envelope()
}

/// A wire struct for one kind of `data.object`, and how it becomes its fact.
trait WireObject: for<'de> Decode<'de> {
    /// The domain type it becomes.
    type Facts;

    /// Converts the decoded object, reading fields relative to `scope` (`data.object`).
    fn into_facts(self, scope: &Scope<'_>) -> Result<Self::Facts, WireError>;
}

/// Decodes `data.object` as `T` and converts it.
fn read<T: WireObject>(raw: &mut RawEvent<Kept<'_>>) -> Result<T::Facts, WireError> {
    let (object, scope) = raw.object::<T>()?;
    object.into_facts(&scope)
}

fn fact(event_type: &str, raw: &mut RawEvent<Kept<'_>>) -> Result<Fact, WireError> {
    use HandledEventType as T;
    use charge::RawCharge;
    use checkout::RawCheckoutSession;
    use customer::RawCustomer;
    use dispute::RawDispute;
    use invoice::RawInvoice;
    use payment_intent::RawPaymentIntent;
    use refund::RawRefund;
    use subscription::RawSubscription;

    let customer = |raw: &mut RawEvent<Kept<'_>>, deleted| {
        Ok::<_, WireError>(Fact::Customer {
            customer: read::<RawCustomer>(raw)?,
            deleted,
        })
    };
    let subscription = |raw: &mut RawEvent<Kept<'_>>, change| {
        Ok::<_, WireError>(Fact::Subscription {
            change,
            subscription: read::<RawSubscription>(raw)?,
        })
    };
    // An invoice's amount paid depends on the event (a failed payment paid nothing).
    let invoice = |raw: &mut RawEvent<Kept<'_>>, change| {
        let (object, scope) = raw.object::<RawInvoice>()?;
        Ok::<_, WireError>(Fact::Invoice {
            change,
            invoice: object.into_facts(&scope, change)?,
        })
    };
    let payment_intent = |raw: &mut RawEvent<Kept<'_>>, change| {
        Ok::<_, WireError>(Fact::PaymentIntent {
            change,
            payment_intent: read::<RawPaymentIntent>(raw)?,
        })
    };
    let dispute = |raw: &mut RawEvent<Kept<'_>>, closed| {
        Ok::<_, WireError>(Fact::Dispute {
            closed,
            dispute: read::<RawDispute>(raw)?,
        })
    };

    let Ok(handled) = event_type.parse::<HandledEventType>() else {
        return Ok(Fact::Unhandled);
    };
    match handled {
        T::CheckoutSessionCompleted => {
            Ok(Fact::CheckoutCompleted(read::<RawCheckoutSession>(raw)?))
        }
        T::CustomerCreated | T::CustomerUpdated => customer(raw, false),
        T::CustomerDeleted => customer(raw, true),
        T::CustomerSubscriptionCreated => subscription(raw, SubscriptionChange::Created),
        T::CustomerSubscriptionUpdated => subscription(raw, SubscriptionChange::Updated),
        T::CustomerSubscriptionDeleted => subscription(raw, SubscriptionChange::Deleted),
        T::CustomerSubscriptionPaused => subscription(raw, SubscriptionChange::Paused),
        T::CustomerSubscriptionResumed => subscription(raw, SubscriptionChange::Resumed),
        T::CustomerSubscriptionTrialWillEnd => subscription(raw, SubscriptionChange::TrialWillEnd),
        T::InvoicePaid => invoice(raw, InvoiceChange::Paid),
        T::InvoicePaymentSucceeded => invoice(raw, InvoiceChange::PaymentSucceeded),
        T::InvoicePaymentFailed => invoice(raw, InvoiceChange::PaymentFailed),
        T::PaymentIntentSucceeded => payment_intent(raw, PaymentIntentChange::Succeeded),
        T::PaymentIntentPaymentFailed => payment_intent(raw, PaymentIntentChange::PaymentFailed),
        T::PaymentIntentProcessing => payment_intent(raw, PaymentIntentChange::Processing),
        T::PaymentIntentRequiresAction => payment_intent(raw, PaymentIntentChange::RequiresAction),
        T::PaymentIntentCanceled => payment_intent(raw, PaymentIntentChange::Canceled),
        T::ChargeRefunded => Ok(Fact::ChargeRefunded(read::<RawCharge>(raw)?)),
        T::ChargeRefundUpdated => Ok(Fact::RefundUpdated(read::<RawRefund>(raw)?)),
        T::ChargeDisputeCreated
        | T::ChargeDisputeUpdated
        | T::ChargeDisputeFundsWithdrawn
        | T::ChargeDisputeFundsReinstated => dispute(raw, false),
        T::ChargeDisputeClosed => dispute(raw, true),
    }
}
