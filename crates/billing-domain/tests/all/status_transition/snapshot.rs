//! Snapshots: staleness, the terminal rule, which status applies, and the grace.

use super::*;

/// What a snapshot case expects: stale, or the standing's status, whether the status was kept,
/// the two positions' seconds and the grace.
#[derive(Debug, PartialEq)]
enum Expect {
    Stale(Staleness),
    Apply {
        status: S,
        kept: bool,
        snapshot_at: i64,
        status_at: i64,
        grace: Grace,
    },
}

fn summary(outcome: SnapshotOutcome) -> Expect {
    match outcome {
        SnapshotOutcome::Stale(why) => Expect::Stale(why),
        SnapshotOutcome::Apply {
            standing,
            status_kept,
        } => Expect::Apply {
            kept: status_kept,
            snapshot_at: (standing.snapshot_position.created - t(0)).num_seconds(),
            status_at: (standing.status_position.created - t(0)).num_seconds(),
            status: standing.status,
            grace: standing.grace,
        },
    }
}

fn applies(status: S, snapshot_at: i64, status_at: i64, grace: Grace) -> Expect {
    Expect::Apply {
        status,
        kept: false,
        snapshot_at,
        status_at,
        grace,
    }
}

#[test]
fn snapshot_transitions() {
    let none = Grace::default();
    // (name, stored standing, snapshot, its event's second, trusted, expected)
    type Case = (
        &'static str,
        Option<Standing>,
        SubscriptionSnapshot,
        i64,
        bool,
        Expect,
    );
    let cases: Vec<Case> = vec![
        (
            "a new subscription takes the snapshot as sent",
            None,
            snapshot(S::Trialing, Some(0)),
            5,
            false,
            applies(S::Trialing, 5, 5, none.clone()),
        ),
        (
            "a new past-due subscription: grace from its period start",
            None,
            snapshot(S::PastDue, Some(100)),
            150,
            false,
            applies(S::PastDue, 150, 150, grace(100, None)),
        ),
        (
            "a new past-due subscription without a period: grace from the event",
            None,
            snapshot(S::PastDue, None),
            150,
            false,
            applies(S::PastDue, 150, 150, grace(150, None)),
        ),
        (
            "a newer snapshot applies",
            Some(stored(S::Trialing, Some(0), 90)),
            snapshot(S::Active, Some(100)),
            157,
            false,
            applies(S::Active, 157, 157, none.clone()),
        ),
        (
            "an older snapshot is stale",
            Some(stored(S::Active, Some(0), 200)),
            snapshot(S::PastDue, Some(0)),
            100,
            false,
            Expect::Stale(Staleness::OlderSnapshot),
        ),
        (
            "a redelivered snapshot is stale",
            Some(stored(S::Active, Some(0), 200)),
            snapshot(S::Active, Some(0)),
            200,
            false,
            Expect::Stale(Staleness::OlderSnapshot),
        ),
        (
            "a trusted older snapshot applies, status included",
            Some(inferred(S::PastDue, 10, 300)),
            snapshot(S::Active, Some(0)),
            5,
            true,
            applies(S::Active, 10, 300, none.clone()),
        ),
        (
            "an ended subscription never reopens",
            Some(stored(S::Canceled, Some(0), 100)),
            snapshot(S::Active, Some(0)),
            200,
            false,
            Expect::Stale(Staleness::Ended),
        ),
        (
            "not even by a trusted snapshot",
            Some(stored(S::Canceled, Some(0), 100)),
            snapshot(S::Active, Some(0)),
            200,
            true,
            Expect::Stale(Staleness::Ended),
        ),
        (
            "an ended subscription takes a newer terminal status",
            Some(stored(S::IncompleteExpired, Some(0), 100)),
            snapshot(S::Canceled, Some(0)),
            200,
            false,
            applies(S::Canceled, 200, 200, none.clone()),
        ),
        (
            "a newer invoice inference keeps its status; the snapshot position moves",
            Some(inferred(S::PastDue, 100, 300)),
            snapshot(S::Active, Some(0)),
            200,
            false,
            Expect::Apply {
                status: S::PastDue,
                kept: true,
                snapshot_at: 200,
                status_at: 300,
                grace: grace(0, None),
            },
        ),
        (
            "a terminal snapshot overrides a newer inference",
            Some(inferred(S::PastDue, 100, 300)),
            snapshot(S::Canceled, Some(0)),
            200,
            false,
            applies(S::Canceled, 200, 300, none.clone()),
        ),
        (
            "a snapshot newer than the inference takes the status",
            Some(inferred(S::PastDue, 100, 300)),
            snapshot(S::Active, Some(0)),
            400,
            false,
            applies(S::Active, 400, 400, none.clone()),
        ),
        (
            "staying past due in one period keeps the deadline and its invoice",
            Some(with_grace(
                stored(S::PastDue, Some(100), 150),
                100,
                Some("in_first"),
            )),
            snapshot(S::PastDue, Some(100)),
            300,
            false,
            applies(S::PastDue, 300, 300, grace(100, Some("in_first"))),
        ),
        (
            "past due in a new period: a new deadline",
            Some(with_grace(
                stored(S::PastDue, Some(100), 150),
                100,
                Some("in_first"),
            )),
            snapshot(S::PastDue, Some(1000)),
            1100,
            false,
            applies(S::PastDue, 1100, 1100, grace(1000, None)),
        ),
        (
            "past due without a deadline yet gets one",
            Some(stored(S::PastDue, Some(100), 150)),
            snapshot(S::PastDue, Some(100)),
            300,
            false,
            applies(S::PastDue, 300, 300, grace(100, None)),
        ),
        (
            "past due with no stored period keeps the deadline",
            Some(with_grace(stored(S::PastDue, None, 150), 100, None)),
            snapshot(S::PastDue, Some(500)),
            600,
            false,
            applies(S::PastDue, 600, 600, grace(100, None)),
        ),
        (
            "becoming past due opens a deadline",
            Some(stored(S::Active, Some(100), 150)),
            snapshot(S::PastDue, Some(100)),
            300,
            false,
            applies(S::PastDue, 300, 300, grace(100, None)),
        ),
        (
            "leaving past due clears the deadline",
            Some(with_grace(
                stored(S::PastDue, Some(100), 150),
                100,
                Some("in_first"),
            )),
            snapshot(S::Active, Some(100)),
            300,
            false,
            applies(S::Active, 300, 300, none.clone()),
        ),
    ];
    for (name, current, snapshot, created, trusted, expected) in cases {
        let incoming = at(created, &snapshot.status, "evt_incoming");
        let outcome = snapshot_transition(current.as_ref(), &snapshot, incoming, trusted, &pro());
        if let SnapshotOutcome::Apply { standing, .. } = &outcome {
            assert_eq!(
                standing.current_period_start, snapshot.current_period_start,
                "{name}: the snapshot's period"
            );
        }
        assert_eq!(summary(outcome), expected, "{name}");
    }
}
