//! Customers and the user they belong to.

use billing_domain::facts::{CustomerFacts, Fact};
use billing_ports::{BillingTx, CustomerRecord, EventStatus};

use super::Context;
use crate::error::AppError;

/// `customer.created/updated/deleted`: stores the customer and, with `metadata.user_id`, its
/// link to our user.
pub(super) async fn changed(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    customer: &CustomerFacts,
    deleted: bool,
) -> Result<EventStatus, AppError> {
    let mut record = ensure(
        tx,
        ctx,
        &customer.id,
        customer.metadata_user_id.as_deref(),
        customer.email.as_deref(),
    )
    .await?;
    if deleted && !record.deleted {
        record.deleted = true;
        tx.save_customer(&record, ctx.now).await?;
    }
    Ok(EventStatus::Processed)
}

/// Serialises linking customers to `user` until the transaction ends.
///
/// Two customers of one user may be linked at once (two webhooks, or a webhook and a first
/// checkout), each holding only its own customer's lock; this lock makes the second see the
/// first's link instead of colliding on the unique user id. Always taken after the customer's
/// lock, never before, so every transaction takes the two in the same order.
pub(crate) async fn lock_user(tx: &mut dyn BillingTx, user: &str) -> Result<(), AppError> {
    Ok(tx.lock_key(&link_lock(user)).await?)
}

/// The lock [`lock_user`] takes: `user:{user}`.
pub(crate) fn link_lock(user: &str) -> String {
    format!("user:{user}")
}

/// The user the effect of `fact` links its customer to through [`ensure`] (taking
/// [`link_lock`]), when `customer`, the customer it names as stored, is missing or not linked
/// yet: the user a customer, a subscription or a Checkout with a customer names.
pub(crate) fn link_of<'f>(fact: &'f Fact, customer: Option<&CustomerRecord>) -> Option<&'f str> {
    let user = match fact {
        Fact::Customer { customer, .. } => customer.metadata_user_id.as_deref(),
        Fact::Subscription { subscription, .. } => subscription.metadata_user_id.as_deref(),
        Fact::CheckoutCompleted(session) if session.customer_id.is_some() => session.user_id(),
        _ => None,
    };
    user.filter(|_| customer.is_none_or(|c| c.user_id.is_none()))
}

/// Returns the customer row, creating it when missing and linking it to `user_hint` when it
/// has no user yet, under the customer's lock (taken with the read when not held yet: every
/// writer of a customer, and every creator of its subscriptions, holds it).
///
/// A user already linked to another customer is not taken over: the link stays as it is and a
/// warning is logged (the unique user id holds this in the database too).
pub(crate) async fn ensure(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    stripe_customer_id: &str,
    user_hint: Option<&str>,
    email: Option<&str>,
) -> Result<CustomerRecord, AppError> {
    let existing = tx.lock_customer(stripe_customer_id).await?;
    let mut record = existing.clone().unwrap_or_else(|| CustomerRecord {
        stripe_customer_id: stripe_customer_id.to_owned(),
        user_id: None,
        email: None,
        deleted: false,
    });
    let mut linked_now = None;
    if let (None, Some(user)) = (&record.user_id, user_hint) {
        lock_user(tx, user).await?;
        match tx.customer_of_user(user).await? {
            Some(other) if other.stripe_customer_id != stripe_customer_id => {
                tracing::warn!(
                    stripe_customer_id,
                    user_id = user,
                    other_customer = other.stripe_customer_id.as_str(),
                    "user already linked to another Stripe customer; not relinking"
                );
            }
            _ => {
                record.user_id = Some(user.to_owned());
                linked_now = Some(user.to_owned());
            }
        }
    }
    if let Some(email) = email {
        record.email = Some(email.to_owned());
    }
    if existing.as_ref() != Some(&record) {
        tx.save_customer(&record, ctx.now).await?;
    }
    if let Some(user) = linked_now {
        tx.attribute_customer_rows(stripe_customer_id, &user)
            .await?;
    }
    Ok(record)
}
