//! Payment intents (`payment_intent.succeeded`, `.payment_failed`, `.processing`,
//! `.requires_action`, `.canceled`).
//!
//! Version differences handled here:
//!
//! - The latest charge ([`PaymentIntentFacts::latest_charge_id`]) is `latest_charge` (an id or
//!   an expanded charge) since `2022-11-15`, which removed the embedded `charges` list; before
//!   it, the payment intent carries `charges` (a list, newest first) and the latest charge is
//!   `charges.data[0].id`. `latest_charge` is read first, `charges` second; a payment intent
//!   that was never confirmed has neither (or `null`, or an empty list) and reads as `None`.
//! - Every other field read is the same in every supported version: `last_payment_error` has
//!   carried `message` and `code` throughout (basil removed `invoice`, which is not read).

use billing_domain::facts::PaymentIntentFacts;

use super::WireObject;
use super::field::{Expandable, Field, List, Metadata, Scope, wire_struct};
use crate::error::WireError;

wire_struct! {
    /// A payment intent as sent, in any supported API version.
    #[derive(Debug)]
    pub(super) struct RawPaymentIntent {
        object: Field<String>,
        id: Field<String>,
        customer: Field<Expandable>,
        amount: Field<i64>,
        currency: Field<String>,
        status: Field<String>,
        last_payment_error: Field<RawPaymentError>,
        /// Since `2022-11-15`.
        latest_charge: Field<Expandable>,
        /// Before `2022-11-15`: the payment intent's charges, newest first; only ids are read.
        charges: Field<List<Expandable>>,
        metadata: Field<Metadata>,
    }
}

wire_struct! {
    /// `last_payment_error`.
    #[derive(Debug)]
    struct RawPaymentError {
        message: Field<String>,
        code: Field<String>,
    }
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
            id: scope.object_id(&self.id, "id", &["pi_"])?,
            customer_id: scope.id(&self.customer, "customer")?,
            amount: scope.money(&self.amount, "amount", &self.currency, "currency")?,
            status: scope.required_string(&self.status, "status")?,
            last_error,
            latest_charge_id: self.latest_charge_id(scope)?,
            metadata_user_id: scope.metadata_user_id(&self.metadata)?,
        })
    }
}

impl RawPaymentIntent {
    /// `latest_charge` (since 2022-11-15), else `charges.data[0]` (before).
    fn latest_charge_id(&self, scope: &Scope<'_>) -> Result<Option<String>, WireError> {
        if let Some(id) = scope.id(&self.latest_charge, "latest_charge")? {
            return Ok(Some(id));
        }
        let Some(charges) = scope.optional(&self.charges, "charges")? else {
            return Ok(None);
        };
        let charges_scope = scope.child("charges");
        let Some(data) = charges_scope.optional(&charges.data, "data")? else {
            return Ok(None);
        };
        match data.first() {
            Some(first) => Ok(Some(charges_scope.entry(first, "data[0]")?.0.clone())),
            None => Ok(None),
        }
    }
}
