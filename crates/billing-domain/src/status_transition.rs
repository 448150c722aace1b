//! How a subscription's status and grace deadline move: with its own snapshots
//! (`customer.subscription.*` or a re-fetch) and with what its invoices imply.
//!
//! A subscription keeps two [`Position`]s. Its snapshots are ordered among themselves by
//! `snapshot_position`, which invoice events never move, so an invoice never makes a snapshot
//! stale. Its status is taken from whichever is newer, the last snapshot or an inference from
//! an invoice event, by `status_position`. Terminal statuses never reopen.

use chrono::{DateTime, Utc};

use crate::catalog::Tier;
use crate::entitlement::grace_deadline;
use crate::facts::{InvoiceChange, InvoiceFacts, SubscriptionSnapshot};
use crate::ordering::{Position, Staleness, snapshot_staleness};
use crate::status::SubscriptionStatus;

/// The grace a past-due subscription has: one deadline per dunning cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grace {
    /// Paid access holds until then while past due.
    pub period_end: Option<DateTime<Utc>>,
    /// The invoice whose failure opened the current dunning cycle, when an invoice did.
    pub dunning_invoice_id: Option<String>,
}

/// What the status rules read and write of a stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Stripe's status, as last set.
    pub status: SubscriptionStatus,
    /// Start of the current billed period, from the last applied snapshot.
    pub current_period_start: Option<DateTime<Utc>>,
    /// The grace deadline and the invoice that opened it.
    pub grace: Grace,
    /// The position of the last applied snapshot.
    pub snapshot_position: Position,
    /// The position of whatever last set `status`: that snapshot or a newer invoice inference.
    pub status_position: Position,
}

/// The grace after the status moves from `before` to `after`, the billed period starting at
/// `anchor` and its tier being `tier`.
///
/// A subscription that stays past due within one billed period keeps the deadline it has, so
/// retries never extend it; one that becomes past due, or is past due in a new period (the next
/// cycle's failure seen before the recovery in between), gets `anchor` plus the tier's grace;
/// any other status has none.
pub fn grace_after(
    before: Option<&Standing>,
    after: &SubscriptionStatus,
    tier: &Tier,
    anchor: DateTime<Utc>,
) -> Grace {
    if *after != SubscriptionStatus::PastDue {
        return Grace::default();
    }
    match before {
        Some(current)
            if current.status == SubscriptionStatus::PastDue
                && current.grace.period_end.is_some()
                && current
                    .current_period_start
                    .is_none_or(|start| start == anchor) =>
        {
            current.grace.clone()
        }
        _ => Grace {
            period_end: Some(grace_deadline(tier, anchor)),
            dunning_invoice_id: None,
        },
    }
}

/// What a subscription snapshot does to the stored standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotOutcome {
    /// Nothing changes; the event is stored as stale.
    Stale(Staleness),
    /// The snapshot's fields are written with this standing.
    Apply {
        /// The standing to store.
        standing: Standing,
        /// True when a newer invoice inference set the status, which the snapshot keeps.
        status_kept: bool,
    },
}

/// Applies a snapshot brought at position `incoming` to the standing `current` (`None`: the
/// subscription is new); `tier` is the tier its items buy.
///
/// The snapshot applies when it is newer than the last snapshot (see
/// [`snapshot_staleness`]). Its status applies too when it is newer than `status_position`,
/// when it is terminal, or when the snapshot is `trusted` (re-fetched from Stripe). The grace
/// is anchored on the snapshot's period start, else on the event's `created`.
pub fn snapshot_transition(
    current: Option<&Standing>,
    snapshot: &SubscriptionSnapshot,
    incoming: Position,
    trusted: bool,
    tier: &Tier,
) -> SnapshotOutcome {
    let (snapshot_position, status_position, status, status_kept) = match current {
        None => (
            incoming.clone(),
            incoming.clone(),
            snapshot.status.clone(),
            false,
        ),
        Some(current) => {
            if let Some(stale) = snapshot_staleness(
                &current.snapshot_position,
                &current.status,
                &incoming,
                &snapshot.status,
                trusted,
            ) {
                return SnapshotOutcome::Stale(stale);
            }
            let snapshot_position = incoming.clone().max(current.snapshot_position.clone());
            if trusted || snapshot.status.is_terminal() || incoming > current.status_position {
                (
                    snapshot_position,
                    incoming.clone().max(current.status_position.clone()),
                    snapshot.status.clone(),
                    false,
                )
            } else {
                (
                    snapshot_position,
                    current.status_position.clone(),
                    current.status.clone(),
                    true,
                )
            }
        }
    };
    let anchor = snapshot.current_period_start.unwrap_or(incoming.created);
    let grace = grace_after(current, &status, tier, anchor);
    SnapshotOutcome::Apply {
        standing: Standing {
            status,
            current_period_start: snapshot.current_period_start,
            grace,
            snapshot_position,
            status_position,
        },
        status_kept,
    }
}

/// What an invoice event implies for a stored subscription's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inference {
    /// The invoice implies no status (a trial, a first or proration invoice, an older period,
    /// an ended subscription): nothing moves.
    Nothing,
    /// The invoice implies a status, but a newer event already set the status.
    Stale,
    /// The invoice implies a status newer than the stored one.
    Newer(InferredStatus),
}

/// A status inferred from an invoice event, newer than the stored status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferredStatus {
    /// The inferred status: `past_due` or `active`.
    pub status: SubscriptionStatus,
    /// The invoice event's position, which becomes the status position.
    pub position: Position,
    /// The billed period's start (else the event's `created`), which anchors a grace deadline.
    pub anchor: DateTime<Utc>,
    /// The invoice, which opens the dunning cycle when it is the first to fail.
    pub invoice_id: String,
}

impl InferredStatus {
    /// The standing after this inference applies to `current`, `tier` being the subscription's
    /// tier: status, status position and grace move; the snapshot fields stay.
    pub fn apply(self, current: &Standing, tier: &Tier) -> Standing {
        let mut grace = grace_after(Some(current), &self.status, tier, self.anchor);
        if self.status == SubscriptionStatus::PastDue && grace.dunning_invoice_id.is_none() {
            grace.dunning_invoice_id = Some(self.invoice_id);
        }
        Standing {
            status: self.status,
            current_period_start: current.current_period_start,
            grace,
            snapshot_position: current.snapshot_position.clone(),
            status_position: self.position,
        }
    }
}

/// What invoice event `event_id` (a `change` of `invoice`, created at `created`) implies for a
/// subscription standing at `current`.
pub fn invoice_inference(
    current: &Standing,
    change: InvoiceChange,
    invoice: &InvoiceFacts,
    created: DateTime<Utc>,
    event_id: &str,
) -> Inference {
    let Some(status) = inferred_status(change, invoice, current) else {
        return Inference::Nothing;
    };
    let position = Position::of(created, &status, event_id);
    if position <= current.status_position {
        return Inference::Stale;
    }
    Inference::Newer(InferredStatus {
        status,
        position,
        anchor: invoice.period_start.unwrap_or(created),
        invoice_id: invoice.id.clone(),
    })
}

/// The status an invoice event implies for a subscription standing at `current`, if any.
///
/// A failed renewal implies `past_due` on an active or past-due subscription (a failed first
/// invoice keeps it incomplete; a failed proration invoice may leave it active); a payment
/// implies `active` on a past-due, unpaid or incomplete one. An invoice of a period older than
/// the stored one implies nothing: paying an old invoice late does not end the dunning of a
/// newer one, and its failure does not start one.
pub fn inferred_status(
    change: InvoiceChange,
    invoice: &InvoiceFacts,
    current: &Standing,
) -> Option<SubscriptionStatus> {
    if let (Some(billed), Some(current_start)) =
        (invoice.period_start, current.current_period_start)
        && billed < current_start
    {
        return None;
    }
    match change {
        InvoiceChange::PaymentFailed if is_renewal(invoice) => match current.status {
            SubscriptionStatus::Active | SubscriptionStatus::PastDue => {
                Some(SubscriptionStatus::PastDue)
            }
            _ => None,
        },
        InvoiceChange::PaymentFailed => None,
        InvoiceChange::Paid | InvoiceChange::PaymentSucceeded => match current.status {
            SubscriptionStatus::PastDue
            | SubscriptionStatus::Unpaid
            | SubscriptionStatus::Incomplete => Some(SubscriptionStatus::Active),
            _ => None,
        },
    }
}

/// True for invoices that bill a subscription's next period: `subscription_cycle`, usage
/// thresholds, the legacy `subscription`, and renderings without a `billing_reason`.
pub fn is_renewal(invoice: &InvoiceFacts) -> bool {
    matches!(
        invoice.billing_reason.as_deref(),
        None | Some("subscription_cycle" | "subscription_threshold" | "subscription")
    )
}
