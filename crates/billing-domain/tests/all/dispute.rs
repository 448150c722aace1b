//! Dispute finality: a decided dispute never reopens, table-driven.

use billing_domain::dispute::{MergedDispute, is_decided, merged_dispute, next_outcome};
use billing_domain::facts::DisputeOutcome::{self, ClosedWithoutChargeback, Lost, Open, Won};

const STATES: [Option<DisputeOutcome>; 5] = [
    None,
    Some(Open),
    Some(Won),
    Some(Lost),
    Some(ClosedWithoutChargeback),
];

#[test]
fn only_won_lost_and_closed_disputes_are_decided() {
    let cases = [
        (None, false),
        (Some(Open), false),
        (Some(Won), true),
        (Some(Lost), true),
        (Some(ClosedWithoutChargeback), true),
    ];
    for (state, decided) in cases {
        assert_eq!(is_decided(state), decided, "{state:?}");
    }
}

#[test]
fn an_undecided_dispute_follows_stripes_status() {
    let cases = [
        ("warning_needs_response", Open),
        ("warning_under_review", Open),
        ("needs_response", Open),
        ("under_review", Open),
        ("some_future_status", Open),
        ("won", Won),
        ("lost", Lost),
        ("warning_closed", ClosedWithoutChargeback),
        ("prevented", ClosedWithoutChargeback),
    ];
    for current in [None, Some(Open)] {
        for (status, outcome) in cases {
            assert_eq!(
                next_outcome(current, status),
                Some(outcome),
                "{current:?} + {status}"
            );
        }
    }
}

#[test]
fn a_decided_dispute_never_reopens_nor_changes() {
    for current in [Some(Won), Some(Lost), Some(ClosedWithoutChargeback)] {
        for status in [
            "needs_response",
            "under_review",
            "won",
            "lost",
            "warning_closed",
        ] {
            assert_eq!(
                next_outcome(current, status),
                None,
                "{current:?} + {status}"
            );
        }
    }
}

#[test]
fn merging_two_rows_keeps_a_decided_dispute_else_the_others() {
    for kept in STATES {
        for other in STATES {
            let expected = if is_decided(kept) || other.is_none() {
                MergedDispute::Kept
            } else {
                MergedDispute::Other
            };
            assert_eq!(
                merged_dispute(kept, other),
                expected,
                "{kept:?} ← {other:?}"
            );
        }
    }
    // The rows the rule is for, spelled out.
    let cases = [
        (None, Some(Open), MergedDispute::Other),
        (Some(Open), Some(Lost), MergedDispute::Other),
        (Some(Won), Some(Open), MergedDispute::Kept),
        (Some(Open), None, MergedDispute::Kept),
        (None, None, MergedDispute::Kept),
    ];
    for (kept, other, expected) in cases {
        assert_eq!(
            merged_dispute(kept, other),
            expected,
            "{kept:?} ← {other:?}"
        );
    }
}
