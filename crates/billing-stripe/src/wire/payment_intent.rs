//! Payment intents (`payment_intent.succeeded`, `.payment_failed`, `.processing`,
//! `.requires_action`, `.canceled`).
//!
//! Version differences handled here: the latest charge is `latest_charge` since
//! `2022-11-15`, and `charges.data[0]` (the newest charge first) before.

use billing_domain::facts::PaymentIntentFacts;
use serde::Deserialize;

use super::WireObject;
use super::field::{Expandable, Field, List, Metadata, Scope};
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
    /// Since 2022-11-15.
    latest_charge: Field<Expandable>,
    /// Before 2022-11-15: the charges, newest first.
    charges: Field<List<RawChargeRef>>,
    metadata: Field<Metadata>,
}

/// An entry of the pre-2022-11-15 `charges` list; only its id is read.
#[derive(Debug, Deserialize)]
struct RawChargeRef {
    id: Field<String>,
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
        let latest_charge_id = match scope.id(&self.latest_charge, "latest_charge")? {
            Some(charge) => Some(charge),
            None => self.first_listed_charge(scope)?,
        };
        Ok(PaymentIntentFacts {
            id: scope.required_string(&self.id, "id")?,
            customer_id: scope.id(&self.customer, "customer")?,
            amount: scope.money(&self.amount, "amount", &self.currency, "currency")?,
            status: scope.required_string(&self.status, "status")?,
            last_error,
            latest_charge_id,
            metadata_user_id: scope.metadata_user_id(&self.metadata)?,
        })
    }
}

impl RawPaymentIntent {
    /// `charges.data[0].id`, the newest charge of renderings before 2022-11-15.
    fn first_listed_charge(&self, scope: &Scope<'_>) -> Result<Option<String>, WireError> {
        let Some(charges) = scope.optional(&self.charges, "charges")? else {
            return Ok(None);
        };
        let charges_scope = scope.child("charges");
        let Some(data) = charges_scope.optional(&charges.data, "data")? else {
            return Ok(None);
        };
        let Some(first) = data.first() else {
            return Ok(None);
        };
        let charge = charges_scope.entry(first, "data[0]")?;
        charges_scope.child("data[0]").string(&charge.id, "id")
    }
}
