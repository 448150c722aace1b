//! Dispute finality: a payment's dispute follows Stripe's dispute status until it is decided,
//! and a decided dispute never reopens.

use crate::facts::DisputeOutcome;

/// True when a payment's dispute (`None`: never disputed) is decided and can no longer change.
pub fn is_decided(current: Option<DisputeOutcome>) -> bool {
    current.is_some_and(DisputeOutcome::is_closed)
}

/// The outcome a payment's dispute moves to when Stripe reports `stripe_status`, or `None` when
/// the dispute is already decided and stays as it is (a late event of an open state).
pub fn next_outcome(
    current: Option<DisputeOutcome>,
    stripe_status: &str,
) -> Option<DisputeOutcome> {
    if is_decided(current) {
        None
    } else {
        Some(DisputeOutcome::of_status(stripe_status))
    }
}

/// Which row's dispute a payment keeps when two rows of it are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergedDispute {
    /// The kept row's dispute: it is decided, or the other row has none.
    Kept,
    /// The other row's dispute.
    Other,
}

/// Whose dispute survives merging a row with dispute `other` into a row with dispute `kept`.
pub fn merged_dispute(
    kept: Option<DisputeOutcome>,
    other: Option<DisputeOutcome>,
) -> MergedDispute {
    if !is_decided(kept) && other.is_some() {
        MergedDispute::Other
    } else {
        MergedDispute::Kept
    }
}
