//! Charges (`charge.refunded`, whose object is the refunded charge). A charge of the Charges
//! API has no payment intent (`payment_intent` absent or `null`).

use billing_domain::facts::ChargeFacts;
use serde::Deserialize;

use super::WireObject;
use super::field::{Expandable, Field, Scope};
use crate::error::WireError;

/// A charge as sent; the fields read are the same in every supported API version (basil
/// removed `invoice`, which is not read).
#[derive(Debug, Deserialize)]
pub(super) struct RawCharge {
    object: Field<String>,
    id: Field<String>,
    payment_intent: Field<Expandable>,
    customer: Field<Expandable>,
    amount: Field<i64>,
    currency: Field<String>,
    amount_refunded: Field<i64>,
}

impl WireObject for RawCharge {
    type Facts = ChargeFacts;

    fn into_facts(self, scope: &Scope<'_>) -> Result<ChargeFacts, WireError> {
        scope.expect_object(&self.object, "charge")?;
        Ok(ChargeFacts {
            id: scope.required_string(&self.id, "id")?,
            payment_intent_id: scope.id(&self.payment_intent, "payment_intent")?,
            customer_id: scope.id(&self.customer, "customer")?,
            amount: scope.money(&self.amount, "amount", &self.currency, "currency")?,
            amount_refunded: scope.amount(&self.amount_refunded, "amount_refunded")?,
        })
    }
}
