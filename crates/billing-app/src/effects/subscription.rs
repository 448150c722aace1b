//! Subscriptions: snapshots from `customer.subscription.*` (or re-fetched from Stripe).

use billing_domain::facts::{SubscriptionChange, SubscriptionSnapshot};
use billing_domain::{BillingEvent, SubscriptionStatus, Tier};
use billing_ports::{BillingTx, EventPosition, EventStatus, SubscriptionRecord};

use super::{Context, customer};
use crate::error::IngestError;

/// `customer.subscription.created/updated/deleted/paused/resumed/trial_will_end`.
pub(super) async fn changed(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    event: &BillingEvent,
    change: SubscriptionChange,
    snapshot: &SubscriptionSnapshot,
) -> Result<EventStatus, IngestError> {
    tx.lock_key(&snapshot.customer_id).await?;
    customer::ensure(
        tx,
        ctx,
        &snapshot.customer_id,
        snapshot.metadata_user_id.as_deref(),
        None,
    )
    .await?;
    if let Some(gateway) = &ctx.gateway {
        // Re-fetch mode: the payload only says "this subscription changed". Under the
        // customer's lock, the snapshot fetched now is at least as new as any written before.
        let fresh = gateway.fetch_subscription(&snapshot.id).await?;
        return apply_snapshot(tx, ctx, position(event, &fresh.status), &fresh, true).await;
    }
    let mut snapshot = snapshot.clone();
    if change == SubscriptionChange::Deleted {
        snapshot.status = SubscriptionStatus::Canceled;
    }
    apply_snapshot(tx, ctx, position(event, &snapshot.status), &snapshot, false).await
}

/// The tier a price maps to; an unknown or missing price maps to the free tier, with a warning.
pub(crate) fn tier_for<'c>(ctx: &'c Context, price_id: Option<&str>, subject: &str) -> &'c Tier {
    match price_id.and_then(|p| ctx.catalog.tier_for_price(p)) {
        Some(tier) => tier,
        None => {
            tracing::warn!(
                subject,
                price_id = price_id.unwrap_or(""),
                "price not in the plan catalog; treating as the free tier"
            );
            ctx.catalog.free_tier()
        }
    }
}

/// The ordering position of an event that brings `status`.
pub(crate) fn position(event: &BillingEvent, status: &SubscriptionStatus) -> EventPosition {
    EventPosition {
        created: event.created,
        rank: status.progression_rank(),
        event_id: event.id.clone(),
    }
}

/// Writes a snapshot unless a later event was already applied (then: stale).
///
/// `trusted` snapshots (re-fetched from Stripe under the customer lock) are current by
/// construction and always written.
pub(crate) async fn apply_snapshot(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    mut incoming: EventPosition,
    snapshot: &SubscriptionSnapshot,
    trusted: bool,
) -> Result<EventStatus, IngestError> {
    let existing = tx.subscription(&snapshot.id).await?;
    if let Some(current) = &existing {
        if !trusted && incoming <= current.position {
            tracing::info!(
                event_id = %incoming.event_id,
                subscription_id = %snapshot.id,
                "event older than the subscription's last applied event; stored as stale"
            );
            return Ok(EventStatus::Stale);
        }
        if current.status.is_terminal() && !snapshot.status.is_terminal() {
            tracing::warn!(
                event_id = %incoming.event_id,
                subscription_id = %snapshot.id,
                status = %snapshot.status,
                "subscription already ended; a non-terminal status cannot reopen it"
            );
            return Ok(EventStatus::Stale);
        }
        if trusted && incoming < current.position {
            incoming = current.position.clone();
        }
    }
    let tier = tier_for(ctx, snapshot.price_id.as_deref(), &snapshot.id);
    let (grace_period_end, dunning_invoice_id) = match (&snapshot.status, &existing) {
        (SubscriptionStatus::PastDue, Some(current))
            if current.status == SubscriptionStatus::PastDue
                && current.grace_period_end.is_some() =>
        {
            // Same dunning cycle: the deadline never moves.
            (current.grace_period_end, current.dunning_invoice_id.clone())
        }
        (SubscriptionStatus::PastDue, _) => {
            let anchor = snapshot.current_period_start.unwrap_or(incoming.created);
            (
                Some(billing_domain::grace_deadline(tier, anchor)),
                existing.as_ref().and_then(|c| c.dunning_invoice_id.clone()),
            )
        }
        _ => (None, None),
    };
    let record = SubscriptionRecord {
        stripe_subscription_id: snapshot.id.clone(),
        stripe_customer_id: snapshot.customer_id.clone(),
        price_id: snapshot.price_id.clone(),
        tier: tier.id.as_str().to_owned(),
        status: snapshot.status.clone(),
        current_period_start: snapshot.current_period_start,
        current_period_end: snapshot.current_period_end,
        cancel_at_period_end: snapshot.cancel_at_period_end,
        canceled_at: snapshot.canceled_at,
        trial_end: snapshot.trial_end,
        grace_period_end,
        dunning_invoice_id,
        position: incoming,
    };
    tx.save_subscription(&record, ctx.now).await?;
    Ok(EventStatus::Processed)
}
