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
use billing_ports::{BillingTx, EventStatus, SubscriptionRecord};

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
pub(crate) fn position(event: &BillingEvent, status: &SubscriptionStatus) -> Position {
    Position::of(event.created, status, &event.id)
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
    incoming: Position,
    snapshot: &SubscriptionSnapshot,
    trusted: bool,
) -> Result<EventStatus, AppError> {
    // Whoever may create a subscription holds its customer's lock (what lets a transaction
    // that holds it know a subscription absent until it commits). Already held, as it is when
    // the snapshot's customer is the event's, this sends nothing; a fetched snapshot of
    // another customer (a Checkout session that named none) takes it here.
    tx.lock_key(&snapshot.customer_id).await?;
    let existing = tx.subscription(&snapshot.id).await?;
    let record = match decide_snapshot(ctx, existing.as_ref(), &incoming, snapshot, trusted) {
        Ok(record) => record,
        Err(why) => {
            log_stale(&incoming, snapshot, why);
            return Ok(EventStatus::Stale);
        }
    };
    warn_unknown_prices(ctx, snapshot, existing.as_ref());
    tx.save_subscription(&record, ctx.now).await?;
    Ok(EventStatus::Processed)
}

/// The record applying `snapshot` at `incoming` to the stored subscription `existing` writes
/// ([`status_transition::snapshot_transition`]'s decision), or why the snapshot is stale.
/// Reads and writes nothing, so a dry run can show what a repair would change.
pub(crate) fn decide_snapshot(
    ctx: &Context,
    existing: Option<&SubscriptionRecord>,
    incoming: &Position,
    snapshot: &SubscriptionSnapshot,
    trusted: bool,
) -> Result<SubscriptionRecord, Staleness> {
    let (price_id, tier) = tier_for_items(ctx, &snapshot.price_ids);
    let current = existing.map(standing_of);
    match status_transition::snapshot_transition(
        current.as_ref(),
        snapshot,
        incoming.clone(),
        trusted,
        tier,
    ) {
        SnapshotOutcome::Stale(why) => Err(why),
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
            Ok(snapshot_record(snapshot, price_id, tier, standing))
        }
    }
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
        snapshot_position: standing.snapshot_position,
        status_position: standing.status_position,
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
        snapshot_position: record.snapshot_position.clone(),
        status_position: record.status_position.clone(),
    }
}

/// Writes what the status rules decided into a stored subscription.
pub(crate) fn write_standing(record: &mut SubscriptionRecord, standing: Standing) {
    record.status = standing.status;
    record.current_period_start = standing.current_period_start;
    record.grace_period_end = standing.grace.period_end;
    record.dunning_invoice_id = standing.grace.dunning_invoice_id;
    record.snapshot_position = standing.snapshot_position;
    record.status_position = standing.status_position;
}

/// Logs the item prices the catalog does not know, once per subscription: only those the
/// stored subscription did not already list.
pub(crate) fn warn_unknown_prices(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use billing_domain::Catalog;
    use chrono::{DateTime, TimeDelta, TimeZone, Utc};

    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(seconds)
    }

    fn context() -> Context {
        let catalog = Catalog::from_toml_str(
            r#"
            [[tiers]]
            id = "FREE"
            name = "Free"

            [[tiers]]
            id = "PRO"
            name = "Pro"
            price_ids = ["price_pro"]

            [[tiers]]
            id = "TEAM"
            name = "Team"
            price_ids = ["price_team"]
            "#,
        )
        .unwrap();
        Context::new(Arc::new(catalog), t(1_000))
    }

    fn record() -> SubscriptionRecord {
        SubscriptionRecord {
            stripe_subscription_id: "sub_1".to_owned(),
            stripe_customer_id: "cus_1".to_owned(),
            price_id: Some("price_pro".to_owned()),
            item_price_ids: vec!["price_pro".to_owned()],
            tier: "PRO".to_owned(),
            status: SubscriptionStatus::PastDue,
            current_period_start: Some(t(100)),
            current_period_end: Some(t(200)),
            cancel_at_period_end: true,
            canceled_at: None,
            trial_end: Some(t(50)),
            grace_period_end: Some(t(150)),
            dunning_invoice_id: Some("in_1".to_owned()),
            snapshot_position: Position {
                created: t(120),
                rank: 3,
                event_id: "evt_snapshot".to_owned(),
            },
            status_position: Position {
                created: t(130),
                rank: 4,
                event_id: "evt_invoice".to_owned(),
            },
        }
    }

    fn snapshot() -> SubscriptionSnapshot {
        SubscriptionSnapshot {
            id: "sub_2".to_owned(),
            customer_id: "cus_2".to_owned(),
            status: SubscriptionStatus::Active,
            price_ids: vec!["price_addon".to_owned(), "price_team".to_owned()],
            current_period_start: Some(t(300)),
            current_period_end: Some(t(400)),
            cancel_at_period_end: false,
            cancel_at: None,
            canceled_at: Some(t(350)),
            ended_at: None,
            trial_end: None,
            metadata_user_id: None,
        }
    }

    #[test]
    fn an_event_position_ranks_the_status_it_brings() {
        let event = BillingEvent {
            id: "evt_9".to_owned(),
            event_type: "customer.subscription.updated".to_owned(),
            api_version: None,
            livemode: false,
            created: t(7),
            fact: billing_domain::Fact::Unhandled,
        };
        let position = position(&event, &SubscriptionStatus::Unpaid);
        assert_eq!(position.created, t(7));
        assert_eq!(position.rank, SubscriptionStatus::Unpaid.progression_rank());
        assert_eq!(position.event_id, "evt_9");
    }

    #[test]
    fn a_standing_is_read_from_and_written_to_its_record() {
        let stored = record();
        let standing = standing_of(&stored);
        assert_eq!(standing.status, SubscriptionStatus::PastDue);
        assert_eq!(standing.current_period_start, Some(t(100)));
        assert_eq!(standing.grace.period_end, Some(t(150)));
        assert_eq!(standing.grace.dunning_invoice_id.as_deref(), Some("in_1"));
        assert_eq!(standing.snapshot_position.event_id, "evt_snapshot");
        assert_eq!(standing.status_position.event_id, "evt_invoice");

        let mut written = stored.clone();
        write_standing(&mut written, standing.clone());
        assert_eq!(written, stored, "reading then writing changes nothing");

        let changed = Standing {
            status: SubscriptionStatus::Active,
            grace: Grace::default(),
            status_position: Position::of(t(140), &SubscriptionStatus::Active, "evt_paid"),
            ..standing
        };
        write_standing(&mut written, changed);
        assert_eq!(written.status, SubscriptionStatus::Active);
        assert_eq!(
            (written.grace_period_end, written.dunning_invoice_id),
            (None, None)
        );
        assert_eq!(written.status_position.event_id, "evt_paid");
        assert_eq!(written.status_position.rank, 3);
        // Fields the status rules do not own are left alone.
        assert_eq!(written.price_id, stored.price_id);
        assert_eq!(written.current_period_end, stored.current_period_end);
        assert_eq!(written.trial_end, stored.trial_end);
        assert!(written.cancel_at_period_end);
    }

    #[test]
    fn a_snapshot_record_takes_the_snapshots_fields_and_the_decided_standing() {
        let ctx = context();
        let snapshot = snapshot();
        let (price_id, tier) = tier_for_items(&ctx, &snapshot.price_ids);
        let standing = Standing {
            status: SubscriptionStatus::PastDue,
            current_period_start: snapshot.current_period_start,
            grace: Grace {
                period_end: Some(t(310)),
                dunning_invoice_id: None,
            },
            snapshot_position: Position::of(t(320), &SubscriptionStatus::Active, "evt_a"),
            status_position: Position::of(t(330), &SubscriptionStatus::PastDue, "evt_b"),
        };
        let record = snapshot_record(&snapshot, price_id, tier, standing);
        assert_eq!(record.stripe_subscription_id, "sub_2");
        assert_eq!(record.stripe_customer_id, "cus_2");
        assert_eq!(record.price_id.as_deref(), Some("price_team"));
        assert_eq!(record.item_price_ids, snapshot.price_ids);
        assert_eq!(record.tier, "TEAM");
        assert_eq!(record.status, SubscriptionStatus::PastDue);
        assert_eq!(record.current_period_start, Some(t(300)));
        assert_eq!(record.current_period_end, Some(t(400)));
        assert_eq!(record.canceled_at, Some(t(350)));
        assert_eq!(record.grace_period_end, Some(t(310)));
        assert_eq!(record.snapshot_position.event_id, "evt_a");
        assert_eq!(record.status_position.event_id, "evt_b");
    }

    #[test]
    fn the_tier_of_items_is_the_highest_known_whatever_their_order() {
        let ctx = context();
        let prices = |list: &[&str]| list.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
        let cases: [(&[&str], Option<&str>, &str); 5] = [
            (&["price_team", "price_pro"], Some("price_team"), "TEAM"),
            (&["price_pro", "price_team"], Some("price_team"), "TEAM"),
            (&["price_addon", "price_pro"], Some("price_pro"), "PRO"),
            (&["price_addon", "price_other"], Some("price_addon"), "FREE"),
            (&[], None, "FREE"),
        ];
        for (items, price, tier) in cases {
            let (chosen, found) = tier_for_items(&ctx, &prices(items));
            assert_eq!(chosen.as_deref(), price, "{items:?}");
            assert_eq!(found.id.as_str(), tier, "{items:?}");
        }
        assert_eq!(
            tier_for(&ctx, Some("price_pro"), "sub_1").id.as_str(),
            "PRO"
        );
        assert_eq!(
            tier_for(&ctx, Some("price_gone"), "sub_1").id.as_str(),
            "FREE"
        );
        assert_eq!(tier_for(&ctx, None, "sub_1").id.as_str(), "FREE");
    }
}
