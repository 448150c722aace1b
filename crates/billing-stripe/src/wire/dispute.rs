//! Disputes (`charge.dispute.created`, `.updated`, `.funds_withdrawn`, `.funds_reinstated`,
//! `.closed`).
//!
//! The fields read are the same in every supported API version, with two caveats:
//!
//! - `payment_intent` (an id or an expanded object) is absent in old renderings and for
//!   disputes of Charges API charges, which only name their `charge`; it then reads as `None`.
//! - `status` is kept exactly as sent: inquiries move through `warning_needs_response`,
//!   `warning_under_review` and `warning_closed`, chargebacks through `needs_response`,
//!   `under_review`, `won` and `lost`, and `2025-08-27.basil` added `prevented`. Statuses
//!   added later are passed through the same way.

use billing_domain::facts::DisputeFacts;

use super::WireObject;
use super::field::{Expandable, Field, Scope, wire_struct};
use crate::error::WireError;

wire_struct! {
    /// A dispute as sent, in any supported API version.
    #[derive(Debug)]
    pub(super) struct RawDispute {
        object: Field<String>,
        id: Field<String>,
        charge: Field<Expandable>,
        /// Absent in old renderings and for Charges API charges.
        payment_intent: Field<Expandable>,
        amount: Field<i64>,
        currency: Field<String>,
        status: Field<String>,
    }
}

impl WireObject for RawDispute {
    type Facts = DisputeFacts;

    fn into_facts(self, scope: &Scope<'_>) -> Result<DisputeFacts, WireError> {
        scope.expect_object(&self.object, "dispute")?;
        Ok(DisputeFacts {
            id: scope.object_id(&self.id, "id", &["dp_", "du_"])?,
            charge_id: scope.id(&self.charge, "charge")?,
            payment_intent_id: scope.id(&self.payment_intent, "payment_intent")?,
            amount: scope.money(&self.amount, "amount", &self.currency, "currency")?,
            status: scope.required_string(&self.status, "status")?,
        })
    }
}
