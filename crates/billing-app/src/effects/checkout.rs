//! `checkout.session.completed`.

use billing_domain::BillingEvent;
use billing_domain::facts::{CheckoutMode, CheckoutSession};
use billing_ports::{BillingTx, EventStatus};

use super::{Context, customer, payment, subscription};
use crate::error::AppError;

/// Links the customer to the user named by the session (creating the customer row when the
/// event arrives before it), then: subscription mode → the subscription is fetched and
/// upserted when a gateway is configured (otherwise its own `customer.subscription.*` events
/// write it); payment mode → the payment and the order, once.
///
/// Never grants credits: credits come only from paid invoices, keyed by invoice id.
pub(super) async fn completed(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    event: &BillingEvent,
    session: &CheckoutSession,
) -> Result<EventStatus, AppError> {
    let user = session.user_id();
    let mut user_for_rows = user.map(str::to_owned);
    if let Some(customer_id) = &session.customer_id {
        let record = customer::ensure(
            tx,
            ctx,
            customer_id,
            user,
            session.customer_email.as_deref(),
        )
        .await?;
        user_for_rows = record.user_id.or(user_for_rows);
    } else if user.is_none() {
        tracing::warn!(
            event_id = event.id.as_str(),
            session_id = session.id.as_str(),
            "checkout session names neither a customer nor a user"
        );
    }
    match session.mode {
        CheckoutMode::Subscription => {
            if let (Some(gateway), Some(subscription_id)) = (&ctx.gateway, &session.subscription_id)
            {
                let fresh = gateway.fetch_subscription(subscription_id).await?;
                if session.customer_id.is_none() {
                    // A session that named no customer: the subscription's own, locked
                    // (after the user's feed lock: out of the locking order, so a
                    // transaction sharing others' locks only tries it) and stored, linked
                    // to the session's user, before the subscription refers to it.
                    customer::ensure(
                        tx,
                        ctx,
                        &fresh.customer_id,
                        user,
                        session.customer_email.as_deref(),
                    )
                    .await?;
                }
                subscription::apply_snapshot(
                    tx,
                    ctx,
                    subscription::position(event, &fresh.status),
                    &fresh,
                    true,
                )
                .await?;
            }
            Ok(EventStatus::Processed)
        }
        CheckoutMode::Payment => {
            payment::checkout_order(tx, ctx, event, session, user_for_rows.as_deref()).await?;
            Ok(EventStatus::Processed)
        }
        CheckoutMode::Setup | CheckoutMode::Unknown(_) => Ok(EventStatus::Processed),
    }
}
