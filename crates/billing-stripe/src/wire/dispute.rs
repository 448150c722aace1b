//! Disputes (`charge.dispute.created`, `.updated`, `.funds_withdrawn`, `.funds_reinstated`,
//! `.closed`). The status is kept as Stripe sent it (`warning_needs_response`, …, `prevented`);
//! the outcome is derived from it by the application.

use billing_domain::facts::DisputeFacts;
use serde::Deserialize;

use super::WireObject;
use super::field::{Expandable, Field, Scope};
use crate::error::WireError;

/// A dispute as sent. `payment_intent` is absent in old renderings and then reads as `None`.
#[derive(Debug, Deserialize)]
pub(super) struct RawDispute {
    object: Field<String>,
    id: Field<String>,
    charge: Field<Expandable>,
    payment_intent: Field<Expandable>,
    amount: Field<i64>,
    currency: Field<String>,
    status: Field<String>,
}

impl WireObject for RawDispute {
    type Facts = DisputeFacts;

    fn into_facts(self, scope: &Scope<'_>) -> Result<DisputeFacts, WireError> {
        scope.expect_object(&self.object, "dispute")?;
        Ok(DisputeFacts {
            id: scope.required_string(&self.id, "id")?,
            charge_id: scope.id(&self.charge, "charge")?,
            payment_intent_id: scope.id(&self.payment_intent, "payment_intent")?,
            amount: scope.money(&self.amount, "amount", &self.currency, "currency")?,
            status: scope.required_string(&self.status, "status")?,
        })
    }
}
