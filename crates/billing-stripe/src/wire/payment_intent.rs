//! Payment intents (`payment_intent.succeeded`, `payment_intent.payment_failed`).

use billing_domain::facts::PaymentIntentFacts;
use serde::Deserialize;

use super::WireObject;
use super::field::{Expandable, Field, Metadata, Scope};
use crate::error::WireError;

/// A payment intent as sent; the fields read are the same in every supported API version
/// (basil removed `invoice`, which is not read).
#[derive(Debug, Deserialize)]
pub(super) struct RawPaymentIntent {
    object: Field<String>,
    id: Field<String>,
    customer: Field<Expandable>,
    amount: Field<i64>,
    currency: Field<String>,
    status: Field<String>,
    last_payment_error: Field<RawPaymentError>,
    metadata: Field<Metadata>,
}

/// `last_payment_error`.
#[derive(Debug, Deserialize)]
struct RawPaymentError {
    message: Field<String>,
    code: Field<String>,
}

impl WireObject for RawPaymentIntent {
    type Facts = PaymentIntentFacts;

    fn into_facts(self, scope: &Scope<'_>) -> Result<PaymentIntentFacts, WireError> {
        scope.expect_object(&self.object, "payment_intent")?;
        // The human-readable message; its error code when Stripe gave no message.
        let last_error = match scope.optional(&self.last_payment_error, "last_payment_error")? {
            Some(error) => {
                let error_scope = scope.child("last_payment_error");
                match error_scope.string(&error.message, "message")? {
                    Some(message) => Some(message),
                    None => error_scope.string(&error.code, "code")?,
                }
            }
            None => None,
        };
        Ok(PaymentIntentFacts {
            id: scope.required_string(&self.id, "id")?,
            customer_id: scope.id(&self.customer, "customer")?,
            amount: scope.money(&self.amount, "amount", &self.currency, "currency")?,
            status: scope.required_string(&self.status, "status")?,
            last_error,
            metadata_user_id: scope.metadata_user_id(&self.metadata)?,
        })
    }
}
