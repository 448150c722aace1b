//! Checkout Sessions (`checkout.session.completed`).

use billing_domain::facts::{CheckoutMode, CheckoutSession};

use super::WireObject;
use super::field::{Expandable, Field, Metadata, Scope, wire_struct};
use crate::error::WireError;

wire_struct! {
    /// A Checkout Session as sent; the same in every supported API version.
    #[derive(Debug)]
    pub(super) struct RawCheckoutSession {
        object: Field<String>,
        id: Field<String>,
        mode: Field<String>,
        customer: Field<Expandable>,
        /// What the customer entered in Checkout.
        customer_details: Field<RawCustomerDetails>,
        /// What our server prefilled when it created the session.
        customer_email: Field<String>,
        client_reference_id: Field<String>,
        metadata: Field<Metadata>,
        subscription: Field<Expandable>,
        payment_intent: Field<Expandable>,
        amount_total: Field<i64>,
        currency: Field<String>,
        payment_status: Field<String>,
    }
}

wire_struct! {
    #[derive(Debug)]
    struct RawCustomerDetails {
        email: Field<String>,
    }
}

impl WireObject for RawCheckoutSession {
    type Facts = CheckoutSession;

    fn into_facts(self, scope: &Scope<'_>) -> Result<CheckoutSession, WireError> {
        scope.expect_object(&self.object, "checkout.session")?;
        let mode = match scope.required(&self.mode, "mode")?.as_str() {
            "payment" => CheckoutMode::Payment,
            "subscription" => CheckoutMode::Subscription,
            "setup" => CheckoutMode::Setup,
            other => CheckoutMode::Unknown(other.to_owned()),
        };
        // The email Checkout collected wins over the one we prefilled.
        let collected_email = match scope.optional(&self.customer_details, "customer_details")? {
            Some(details) => scope
                .child("customer_details")
                .string(&details.email, "email")?,
            None => None,
        };
        let customer_email = match collected_email {
            Some(email) => Some(email),
            None => scope.string(&self.customer_email, "customer_email")?,
        };
        // The currency is only required when there is an amount to qualify.
        let amount_total = match scope.optional(&self.amount_total, "amount_total")? {
            Some(_) => Some(scope.money(
                &self.amount_total,
                "amount_total",
                &self.currency,
                "currency",
            )?),
            None => None,
        };
        if mode == CheckoutMode::Payment && amount_total.is_none() {
            // A one-time payment is recorded with its amount; without one it cannot apply.
            return Err(scope.missing("amount_total"));
        }
        Ok(CheckoutSession {
            id: scope.object_id(&self.id, "id", &["cs_"])?,
            mode,
            customer_id: scope.id(&self.customer, "customer")?,
            customer_email,
            client_reference_id: scope.string(&self.client_reference_id, "client_reference_id")?,
            metadata_user_id: scope.metadata_user_id(&self.metadata)?,
            subscription_id: scope.id(&self.subscription, "subscription")?,
            payment_intent_id: scope.id(&self.payment_intent, "payment_intent")?,
            amount_total,
            payment_status: scope.string(&self.payment_status, "payment_status")?,
        })
    }
}
