//! Refunds (`charge.refund.updated`, whose object is one refund, `re_…`).
//!
//! The fields read are the same in every supported API version. `payment_intent` is `null`
//! (or absent in old renderings) for refunds of Charges API charges, and reads as `None`.

use billing_domain::facts::RefundFacts;

use super::WireObject;
use super::field::{Expandable, Field, Scope, wire_struct};
use crate::error::WireError;

wire_struct! {
    /// A refund as sent; the same in every supported API version.
    #[derive(Debug)]
    pub(super) struct RawRefund {
        object: Field<String>,
        id: Field<String>,
        charge: Field<Expandable>,
        payment_intent: Field<Expandable>,
        amount: Field<i64>,
        currency: Field<String>,
        status: Field<String>,
    }
}

impl WireObject for RawRefund {
    type Facts = RefundFacts;

    fn into_facts(self, scope: &Scope<'_>) -> Result<RefundFacts, WireError> {
        scope.expect_object(&self.object, "refund")?;
        Ok(RefundFacts {
            id: scope.object_id(&self.id, "id", &["re_", "pyr_"])?,
            charge_id: scope.id(&self.charge, "charge")?,
            payment_intent_id: scope.id(&self.payment_intent, "payment_intent")?,
            amount: scope.money(&self.amount, "amount", &self.currency, "currency")?,
            status: scope.required_string(&self.status, "status")?,
        })
    }
}
