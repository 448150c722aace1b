//! The differences between API versions, expanded references, and `null` versus absent fields,
//! exercised by editing fixtures.

use billing_domain::facts::{
    ChargeFacts, CheckoutSession, CustomerFacts, DisputeFacts, InvoiceFacts, PaymentIntentFacts,
    RefundFacts, SubscriptionSnapshot,
};
use billing_domain::{BillingEvent, Fact};
use billing_stripe::parse_event;
use serde_json::{Value, json};

mod checkout_and_payments;
mod fields;
mod invoices;
mod subscriptions;

use crate::wire::story::bytes;

fn parse(value: &Value) -> BillingEvent {
    parse_event(&bytes(value)).unwrap()
}

fn object(event: &mut Value) -> &mut Value {
    &mut event["data"]["object"]
}

fn remove(value: &mut Value, key: &str) {
    value.as_object_mut().unwrap().remove(key);
}

fn subscription(value: &Value) -> SubscriptionSnapshot {
    match parse(value).fact {
        Fact::Subscription { subscription, .. } => subscription,
        other => panic!("not a subscription: {other:?}"),
    }
}

fn invoice(value: &Value) -> InvoiceFacts {
    match parse(value).fact {
        Fact::Invoice { invoice, .. } => invoice,
        other => panic!("not an invoice: {other:?}"),
    }
}

fn checkout(value: &Value) -> CheckoutSession {
    match parse(value).fact {
        Fact::CheckoutCompleted(session) => session,
        other => panic!("not a checkout session: {other:?}"),
    }
}

fn customer(value: &Value) -> CustomerFacts {
    match parse(value).fact {
        Fact::Customer { customer, .. } => customer,
        other => panic!("not a customer: {other:?}"),
    }
}

fn payment_intent(value: &Value) -> PaymentIntentFacts {
    match parse(value).fact {
        Fact::PaymentIntent { payment_intent, .. } => payment_intent,
        other => panic!("not a payment intent: {other:?}"),
    }
}

fn charge(value: &Value) -> ChargeFacts {
    match parse(value).fact {
        Fact::ChargeRefunded(charge) => charge,
        other => panic!("not a charge: {other:?}"),
    }
}

fn refund(value: &Value) -> RefundFacts {
    match parse(value).fact {
        Fact::RefundUpdated(refund) => refund,
        other => panic!("not a refund: {other:?}"),
    }
}

fn dispute(value: &Value) -> DisputeFacts {
    match parse(value).fact {
        Fact::Dispute { dispute, .. } => dispute,
        other => panic!("not a dispute: {other:?}"),
    }
}

/// An expanded object standing in for an id, as `expand[]` renders it.
fn expanded(id: &str, kind: &str) -> Value {
    json!({ "id": id, "object": kind, "livemode": false, "metadata": {} })
}
