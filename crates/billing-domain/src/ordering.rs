//! How two events of one subscription are ordered, when a snapshot is stale, and the rule that
//! an ended subscription never reopens.
//!
//! Stripe does not order deliveries and `created` has one-second resolution, so an event's
//! [`Position`] is `(created, status progression rank, event id)`: the rank breaks ties within
//! one second, the event id makes the order total.

use chrono::{DateTime, Utc};

use crate::status::SubscriptionStatus;

/// Where an event stands in a subscription's history; later positions compare greater.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Stripe's `created` of the event.
    pub created: DateTime<Utc>,
    /// [`SubscriptionStatus::progression_rank`] of the status the event brings.
    pub rank: u8,
    /// The event id, the last tie-breaker.
    pub event_id: String,
}

impl Position {
    /// The position of event `event_id`, created at `created`, that brings `status`.
    pub fn of(created: DateTime<Utc>, status: &SubscriptionStatus, event_id: &str) -> Self {
        Self {
            created,
            rank: status.progression_rank(),
            event_id: event_id.to_owned(),
        }
    }
}

/// Why a subscription snapshot changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
    /// A snapshot at or after its position was already applied.
    OlderSnapshot,
    /// The subscription has ended and the snapshot's status would reopen it.
    Ended,
}

/// True when moving from `current` to `incoming` would reopen an ended subscription:
/// terminal statuses (`canceled`, `incomplete_expired`) are only ever followed by terminal ones.
pub fn reopens(current: &SubscriptionStatus, incoming: &SubscriptionStatus) -> bool {
    current.is_terminal() && !incoming.is_terminal()
}

/// Whether a snapshot at `incoming` bringing `status` is stale for a subscription whose last
/// applied snapshot is at `last_snapshot` and whose status is `current_status`.
///
/// A `trusted` snapshot (re-fetched from Stripe under the customer's lock) is current by
/// construction and is never older than the last one, but it cannot reopen an ended
/// subscription either.
pub fn snapshot_staleness(
    last_snapshot: &Position,
    current_status: &SubscriptionStatus,
    incoming: &Position,
    status: &SubscriptionStatus,
    trusted: bool,
) -> Option<Staleness> {
    if !trusted && incoming <= last_snapshot {
        Some(Staleness::OlderSnapshot)
    } else if reopens(current_status, status) {
        Some(Staleness::Ended)
    } else {
        None
    }
}
