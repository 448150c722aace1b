//! Subscriptions: snapshots from `customer.subscription.*` (or re-fetched from Stripe).
//!
//! A subscription's own snapshots are the authority for its fields (price, items, tier,
//! period, cancellation, trial). They are ordered among themselves by
//! [`SubscriptionRecord::snapshot_position`]; invoice events never move that position, so an
//! invoice can never make a snapshot stale. The status alone may also be inferred from an
//! invoice event (see `invoice.rs`): it is taken from whichever is newer, the last snapshot or
//! the inference, by [`SubscriptionRecord::status_position`].

use billing_domain::facts::{SubscriptionChange, SubscriptionSnapshot};
use billing_domain::{BillingEvent, SubscriptionStatus, Tier};
use billing_ports::{BillingTx, EventPosition, EventStatus, SubscriptionRecord};
use chrono::{DateTime, Utc};

use super::{Context, customer};
use crate::error::AppError;

/// `customer.subscription.created/updated/deleted/paused/resumed/trial_will_end`.
pub(super) async fn changed(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    event: &BillingEvent,
    change: SubscriptionChange,
    snapshot: &SubscriptionSnapshot,
) -> Result<EventStatus, AppError> {
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

/// The tier bought by a list of item prices: the highest catalog tier among them, with the
/// price that buys it. When the catalog knows none, the first price (if any) and the free tier.
pub(crate) fn tier_for_items<'c>(
    ctx: &'c Context,
    price_ids: &[String],
) -> (Option<String>, &'c Tier) {
    match ctx
        .catalog
        .highest_tier_for_prices(price_ids.iter().map(String::as_str))
    {
        Some((tier, price)) => (Some(price.to_owned()), tier),
        None => (price_ids.first().cloned(), ctx.catalog.free_tier()),
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

/// The grace deadline and dunning invoice after the status moves from `before` to `after`.
///
/// One deadline per dunning cycle, anchored on the billed period's start (`anchor`) plus the
/// tier's grace: a subscription that stays past due in the same period keeps the deadline it
/// has, so retries never extend it; one that becomes past due, or is past due in a new period
/// (the next cycle's failure seen before the recovery in between), gets a new one; any other
/// status has none.
pub(crate) fn grace_after(
    before: Option<&SubscriptionRecord>,
    after: &SubscriptionStatus,
    tier: &Tier,
    anchor: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<String>) {
    if *after != SubscriptionStatus::PastDue {
        return (None, None);
    }
    match before {
        Some(current)
            if current.status == SubscriptionStatus::PastDue
                && current.grace_period_end.is_some()
                && current
                    .current_period_start
                    .is_none_or(|start| start == anchor) =>
        {
            (current.grace_period_end, current.dunning_invoice_id.clone())
        }
        _ => (Some(billing_domain::grace_deadline(tier, anchor)), None),
    }
}

/// Writes a snapshot unless a later snapshot was already applied (then: stale).
///
/// The snapshot's fields are written when it is newer than the last snapshot. Its status is
/// written too unless a newer status was inferred from an invoice since; a terminal status
/// always is, and a terminal status already stored is never reopened.
///
/// `trusted` snapshots (re-fetched from Stripe under the customer lock) are current by
/// construction and always written, status included.
pub(crate) async fn apply_snapshot(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    incoming: EventPosition,
    snapshot: &SubscriptionSnapshot,
    trusted: bool,
) -> Result<EventStatus, AppError> {
    let existing = tx.subscription(&snapshot.id).await?;
    let (snapshot_position, status_position, status) = match &existing {
        None => (incoming.clone(), incoming.clone(), snapshot.status.clone()),
        Some(current) => {
            if !trusted && incoming <= current.snapshot_position {
                tracing::info!(
                    event_id = ?incoming.event_id,
                    subscription_id = ?snapshot.id,
                    "snapshot older than the subscription's last applied snapshot; stored as stale"
                );
                return Ok(EventStatus::Stale);
            }
            if current.status.is_terminal() && !snapshot.status.is_terminal() {
                tracing::warn!(
                    event_id = ?incoming.event_id,
                    subscription_id = ?snapshot.id,
                    status = snapshot.status.as_str(),
                    "subscription already ended; a non-terminal status cannot reopen it"
                );
                return Ok(EventStatus::Stale);
            }
            let snapshot_position = incoming.clone().max(current.snapshot_position.clone());
            let status_is_newer =
                trusted || snapshot.status.is_terminal() || incoming > current.status_position;
            if status_is_newer {
                (
                    snapshot_position,
                    incoming.clone().max(current.status_position.clone()),
                    snapshot.status.clone(),
                )
            } else {
                tracing::info!(
                    event_id = ?incoming.event_id,
                    subscription_id = ?snapshot.id,
                    kept = current.status.as_str(),
                    "a newer invoice event set the status; the snapshot's other fields are applied"
                );
                (
                    snapshot_position,
                    current.status_position.clone(),
                    current.status.clone(),
                )
            }
        }
    };
    let (price_id, tier) = tier_for_items(ctx, &snapshot.price_ids);
    warn_unknown_prices(ctx, snapshot, existing.as_ref());
    let anchor = snapshot.current_period_start.unwrap_or(incoming.created);
    let (grace_period_end, dunning_invoice_id) =
        grace_after(existing.as_ref(), &status, tier, anchor);
    let record = SubscriptionRecord {
        stripe_subscription_id: snapshot.id.clone(),
        stripe_customer_id: snapshot.customer_id.clone(),
        price_id,
        item_price_ids: snapshot.price_ids.clone(),
        tier: tier.id.as_str().to_owned(),
        status,
        current_period_start: snapshot.current_period_start,
        current_period_end: snapshot.current_period_end,
        cancel_at_period_end: snapshot.cancel_at_period_end,
        canceled_at: snapshot.canceled_at,
        trial_end: snapshot.trial_end,
        grace_period_end,
        dunning_invoice_id,
        snapshot_position,
        status_position,
    };
    tx.save_subscription(&record, ctx.now).await?;
    Ok(EventStatus::Processed)
}

/// Logs the item prices the catalog does not know, once per subscription: only those the
/// stored subscription did not already list.
fn warn_unknown_prices(
    ctx: &Context,
    snapshot: &SubscriptionSnapshot,
    existing: Option<&SubscriptionRecord>,
) {
    let known_before = existing.map_or(&[][..], |c| c.item_price_ids.as_slice());
    let unknown: Vec<&str> = snapshot
        .price_ids
        .iter()
        .filter(|p| ctx.catalog.tier_for_price(p).is_none() && !known_before.contains(p))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        tracing::warn!(
            subscription_id = ?snapshot.id,
            prices = ?unknown,
            "subscription item prices not in the plan catalog; they do not count for the tier"
        );
    }
}
