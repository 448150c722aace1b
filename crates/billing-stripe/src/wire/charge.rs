//! Charges (`charge.refunded`, whose object is the refunded charge).
//!
//! The fields read are the same in every supported API version (basil removed `invoice`, and
//! `2022-11-15` removed the embedded `refunds` list, neither of which is read):
//!
//! - `payment_intent` is the charge's payment intent, an id or an expanded object; charges
//!   made through the Charges API (`POST /v1/charges`, no payment intent) send `null`, and
//!   renderings from before payment intents (2019) leave it out: both read as `None`.
//! - `customer` is the charged customer (an id or an expanded object), `null` for guest charges.
//! - `amount_refunded` is the total refunded so far, in every version.

use billing_domain::facts::ChargeFacts;

use super::WireObject;
use super::field::{Expandable, Field, Scope, wire_struct};
use crate::error::WireError;

wire_struct! {
    /// A charge as sent, in any supported API version.
    #[derive(Debug)]
    pub(super) struct RawCharge {
        object: Field<String>,
        id: Field<String>,
        /// `null` or absent for Charges API charges.
        payment_intent: Field<Expandable>,
        customer: Field<Expandable>,
        amount: Field<i64>,
        currency: Field<String>,
        amount_refunded: Field<i64>,
    }
}

impl WireObject for RawCharge {
    type Facts = ChargeFacts;

    fn into_facts(self, scope: &Scope<'_>) -> Result<ChargeFacts, WireError> {
        scope.expect_object(&self.object, "charge")?;
        Ok(ChargeFacts {
            id: scope.object_id(&self.id, "id", &["ch_", "py_"])?,
            payment_intent_id: scope.id(&self.payment_intent, "payment_intent")?,
            customer_id: scope.id(&self.customer, "customer")?,
            amount: scope.money(&self.amount, "amount", &self.currency, "currency")?,
            amount_refunded: scope.amount(&self.amount_refunded, "amount_refunded")?,
        })
    }
}
