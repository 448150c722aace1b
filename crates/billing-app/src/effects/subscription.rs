//! Subscriptions: snapshots from `customer.subscription.*` (or re-fetched from Stripe).
//!
//! A subscription's own snapshots are the authority for its fields (price, items, tier,
//! period, cancellation, trial). They are ordered among themselves by
//! [`SubscriptionRecord::snapshot_position`]; invoice events never move that position, so an
//! invoice can never make a snapshot stale. The status alone may also be inferred from an
//! invoice event (see `invoice.rs`): it is taken from whichever is newer, the last snapshot or
//! the inference, by [`SubscriptionRecord::status_position`].

use billing_domain::facts::{SubscriptionChange, SubscriptionSnapshot};
use billing_domain::ordering::Staleness;
use billing_domain::status_transition::{self, Grace, SnapshotOutcome, Standing};
use billing_domain::{BillingEvent, Position, SubscriptionStatus, Tier};
use billing_ports::{BillingTx, EventPosition, EventStatus, SubscriptionRecord};

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
    event_position(Position::of(event.created, status, &event.id))
}

/// Loads the subscription, decides what the snapshot changes
/// ([`status_transition::snapshot_transition`]) and saves it; a snapshot older than the last
/// applied one, or one that would reopen an ended subscription, is stored as stale. The caller
/// holds the customer's lock.
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
    let (price_id, tier) = tier_for_items(ctx, &snapshot.price_ids);
    let current = existing.as_ref().map(standing_of);
    let incoming = position_of(&incoming);
    let standing = match status_transition::snapshot_transition(
        current.as_ref(),
        snapshot,
        incoming.clone(),
        trusted,
        tier,
    ) {
        SnapshotOutcome::Stale(why) => {
            log_stale(&incoming, snapshot, why);
            return Ok(EventStatus::Stale);
        }
        SnapshotOutcome::Apply {
            standing,
            status_kept,
        } => {
            if status_kept {
                tracing::info!(
                    event_id = ?incoming.event_id,
                    subscription_id = ?snapshot.id,
                    kept = standing.status.as_str(),
                    "a newer invoice event set the status; the snapshot's other fields are applied"
                );
            }
            standing
        }
    };
    warn_unknown_prices(ctx, snapshot, existing.as_ref());
    let record = snapshot_record(snapshot, price_id, tier, standing);
    tx.save_subscription(&record, ctx.now).await?;
    Ok(EventStatus::Processed)
}

fn log_stale(incoming: &Position, snapshot: &SubscriptionSnapshot, why: Staleness) {
    match why {
        Staleness::OlderSnapshot => tracing::info!(
            event_id = ?incoming.event_id,
            subscription_id = ?snapshot.id,
            "snapshot older than the subscription's last applied snapshot; stored as stale"
        ),
        Staleness::Ended => tracing::warn!(
            event_id = ?incoming.event_id,
            subscription_id = ?snapshot.id,
            status = snapshot.status.as_str(),
            "subscription already ended; a non-terminal status cannot reopen it"
        ),
    }
}

/// The record a snapshot writes: its own fields, the deciding price and tier, and the standing
/// the status rules decided.
fn snapshot_record(
    snapshot: &SubscriptionSnapshot,
    price_id: Option<String>,
    tier: &Tier,
    standing: Standing,
) -> SubscriptionRecord {
    SubscriptionRecord {
        stripe_subscription_id: snapshot.id.clone(),
        stripe_customer_id: snapshot.customer_id.clone(),
        price_id,
        item_price_ids: snapshot.price_ids.clone(),
        tier: tier.id.as_str().to_owned(),
        status: standing.status,
        current_period_start: standing.current_period_start,
        current_period_end: snapshot.current_period_end,
        cancel_at_period_end: snapshot.cancel_at_period_end,
        canceled_at: snapshot.canceled_at,
        trial_end: snapshot.trial_end,
        grace_period_end: standing.grace.period_end,
        dunning_invoice_id: standing.grace.dunning_invoice_id,
        snapshot_position: event_position(standing.snapshot_position),
        status_position: event_position(standing.status_position),
    }
}

/// The domain's ordering position of a stored one.
pub(crate) fn position_of(position: &EventPosition) -> Position {
    Position {
        created: position.created,
        rank: position.rank,
        event_id: position.event_id.clone(),
    }
}

/// The stored form of a domain ordering position.
pub(crate) fn event_position(position: Position) -> EventPosition {
    EventPosition {
        created: position.created,
        rank: position.rank,
        event_id: position.event_id,
    }
}

/// What the status rules read of a stored subscription.
pub(crate) fn standing_of(record: &SubscriptionRecord) -> Standing {
    Standing {
        status: record.status.clone(),
        current_period_start: record.current_period_start,
        grace: Grace {
            period_end: record.grace_period_end,
            dunning_invoice_id: record.dunning_invoice_id.clone(),
        },
        snapshot_position: position_of(&record.snapshot_position),
        status_position: position_of(&record.status_position),
    }
}

/// Writes what the status rules decided into a stored subscription.
pub(crate) fn write_standing(record: &mut SubscriptionRecord, standing: Standing) {
    record.status = standing.status;
    record.current_period_start = standing.current_period_start;
    record.grace_period_end = standing.grace.period_end;
    record.dunning_invoice_id = standing.grace.dunning_invoice_id;
    record.snapshot_position = event_position(standing.snapshot_position);
    record.status_position = event_position(standing.status_position);
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
