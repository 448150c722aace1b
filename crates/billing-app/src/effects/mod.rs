//! The effects of each fact on the billing state. Every function runs inside the event's
//! transaction and returns the status the event is stored with.

mod checkout;
pub(crate) mod customer;
pub(crate) mod invoice;
mod payment;
mod payment_row;
pub(crate) mod subscription;

use std::sync::Arc;

use billing_domain::{BillingEvent, Catalog, Fact};
use billing_ports::{BillingTx, EventStatus, StripeGateway};
use chrono::{DateTime, Utc};

use crate::error::AppError;
use crate::feed::Notes;

/// What every effect may read besides the transaction.
pub(crate) struct Context {
    /// The plan catalog (price → tier, credits, grace).
    pub(crate) catalog: Arc<Catalog>,
    /// Set only in re-fetch mode.
    pub(crate) gateway: Option<Arc<dyn StripeGateway>>,
    /// When the event was received.
    pub(crate) now: DateTime<Utc>,
    /// What the effects did that the change feed reports besides access changes.
    pub(crate) notes: Notes,
}

impl Context {
    /// A context without a gateway (trusted snapshots, repairs).
    pub(crate) fn new(catalog: Arc<Catalog>, now: DateTime<Utc>) -> Self {
        Self {
            catalog,
            gateway: None,
            now,
            notes: Notes::default(),
        }
    }
}

/// Applies one event's fact.
pub(crate) async fn apply(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    event: &BillingEvent,
) -> Result<EventStatus, AppError> {
    match &event.fact {
        Fact::CheckoutCompleted(session) => checkout::completed(tx, ctx, event, session).await,
        Fact::Customer { customer, deleted } => {
            customer::changed(tx, ctx, customer, *deleted).await
        }
        Fact::Subscription {
            change,
            subscription,
        } => subscription::changed(tx, ctx, event, *change, subscription).await,
        Fact::Invoice { change, invoice } => {
            invoice::changed(tx, ctx, event, *change, invoice).await
        }
        Fact::PaymentIntent {
            change,
            payment_intent,
        } => payment::intent(tx, ctx, event, *change, payment_intent).await,
        Fact::ChargeRefunded(charge) => payment::charge_refunded(tx, ctx, event, charge).await,
        Fact::RefundUpdated(refund) => payment::refund_updated(tx, ctx, event, refund).await,
        Fact::Dispute { dispute, .. } => payment::dispute(tx, ctx, event, dispute).await,
        Fact::Unhandled => Ok(EventStatus::Ignored),
    }
}
