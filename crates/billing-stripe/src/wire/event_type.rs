//! The event types [`parse_event`](super::parse_event) reads into facts, by their Stripe names.

use strum::{EnumCount, EnumString, VariantNames};

/// An event type that becomes a fact other than [`Fact::Unhandled`](billing_domain::Fact::Unhandled),
/// parsed from its Stripe name; any other name is unhandled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, VariantNames, EnumCount)]
pub(super) enum HandledEventType {
    #[strum(serialize = "checkout.session.completed")]
    CheckoutSessionCompleted,
    #[strum(serialize = "customer.created")]
    CustomerCreated,
    #[strum(serialize = "customer.updated")]
    CustomerUpdated,
    #[strum(serialize = "customer.deleted")]
    CustomerDeleted,
    #[strum(serialize = "customer.subscription.created")]
    CustomerSubscriptionCreated,
    #[strum(serialize = "customer.subscription.updated")]
    CustomerSubscriptionUpdated,
    #[strum(serialize = "customer.subscription.deleted")]
    CustomerSubscriptionDeleted,
    #[strum(serialize = "customer.subscription.paused")]
    CustomerSubscriptionPaused,
    #[strum(serialize = "customer.subscription.resumed")]
    CustomerSubscriptionResumed,
    #[strum(serialize = "customer.subscription.trial_will_end")]
    CustomerSubscriptionTrialWillEnd,
    #[strum(serialize = "invoice.paid")]
    InvoicePaid,
    #[strum(serialize = "invoice.payment_succeeded")]
    InvoicePaymentSucceeded,
    #[strum(serialize = "invoice.payment_failed")]
    InvoicePaymentFailed,
    #[strum(serialize = "payment_intent.succeeded")]
    PaymentIntentSucceeded,
    #[strum(serialize = "payment_intent.payment_failed")]
    PaymentIntentPaymentFailed,
    #[strum(serialize = "payment_intent.processing")]
    PaymentIntentProcessing,
    #[strum(serialize = "payment_intent.requires_action")]
    PaymentIntentRequiresAction,
    #[strum(serialize = "payment_intent.canceled")]
    PaymentIntentCanceled,
    #[strum(serialize = "charge.refunded")]
    ChargeRefunded,
    #[strum(serialize = "charge.refund.updated")]
    ChargeRefundUpdated,
    #[strum(serialize = "charge.dispute.created")]
    ChargeDisputeCreated,
    #[strum(serialize = "charge.dispute.updated")]
    ChargeDisputeUpdated,
    #[strum(serialize = "charge.dispute.funds_withdrawn")]
    ChargeDisputeFundsWithdrawn,
    #[strum(serialize = "charge.dispute.funds_reinstated")]
    ChargeDisputeFundsReinstated,
    #[strum(serialize = "charge.dispute.closed")]
    ChargeDisputeClosed,
}

/// Every event type [`parse_event`](super::parse_event) turns into a fact other than
/// [`Fact::Unhandled`](billing_domain::Fact::Unhandled): the events a webhook endpoint needs to
/// subscribe to.
pub const HANDLED_EVENT_TYPES: [&str; HandledEventType::COUNT] =
    match HandledEventType::VARIANTS.first_chunk() {
        Some(names) => *names,
        None => panic!("strum lists every variant"),
    };
