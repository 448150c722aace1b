//! Event positions, snapshot staleness and the terminal-status rule, table-driven.

use billing_domain::SubscriptionStatus as S;
use billing_domain::ordering::{Position, Staleness, reopens, snapshot_staleness};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

fn at(seconds: i64, status: &S, id: &str) -> Position {
    Position::of(t(seconds), status, id)
}

#[test]
fn positions_order_by_created_then_status_rank_then_event_id() {
    // (earlier, later, why)
    let cases = [
        (
            at(1, &S::Canceled, "evt_z"),
            at(2, &S::Incomplete, "evt_a"),
            "an older second comes first whatever the rank and id",
        ),
        (
            at(5, &S::Active, "evt_z"),
            at(5, &S::PastDue, "evt_a"),
            "within a second the status further in the life comes later",
        ),
        (
            at(5, &S::Trialing, "evt_b"),
            at(5, &S::Active, "evt_a"),
            "trialing before active",
        ),
        (
            at(5, &S::PastDue, "evt_b"),
            at(5, &S::Paused, "evt_a"),
            "past due before paused",
        ),
        (
            at(5, &S::Unpaid, "evt_b"),
            at(5, &S::IncompleteExpired, "evt_a"),
            "unpaid before incomplete_expired",
        ),
        (
            at(5, &S::IncompleteExpired, "evt_b"),
            at(5, &S::Canceled, "evt_a"),
            "canceled ranks last",
        ),
        (
            at(5, &S::Unknown("new".into()), "evt_b"),
            at(5, &S::Incomplete, "evt_a"),
            "an unknown status ranks lowest",
        ),
        (
            at(5, &S::Active, "evt_a"),
            at(5, &S::Active, "evt_b"),
            "the event id breaks the last tie",
        ),
    ];
    for (earlier, later, why) in cases {
        assert!(earlier < later, "{why}: {earlier:?} < {later:?}");
        assert!(later > earlier, "{why}");
    }
    assert_eq!(at(5, &S::Active, "evt_a"), at(5, &S::Active, "evt_a"));
}

#[test]
fn position_of_takes_the_status_rank() {
    for status in S::KNOWN {
        let position = Position::of(t(0), &status, "evt_1");
        assert_eq!(position.rank, status.progression_rank(), "{status}");
        assert_eq!(position.created, t(0));
        assert_eq!(position.event_id, "evt_1");
    }
}

#[test]
fn only_terminal_statuses_are_never_reopened() {
    let mut all = S::KNOWN.to_vec();
    all.push(S::Unknown("something_new".into()));
    for current in &all {
        for incoming in &all {
            let expected = matches!(current, S::Canceled | S::IncompleteExpired)
                && !matches!(incoming, S::Canceled | S::IncompleteExpired);
            assert_eq!(
                reopens(current, incoming),
                expected,
                "{current} → {incoming}"
            );
        }
    }
}

#[test]
fn snapshot_staleness_table() {
    struct Case {
        name: &'static str,
        last_snapshot: Position,
        current: S,
        incoming: Position,
        status: S,
        trusted: bool,
        expected: Option<Staleness>,
    }
    let cases = [
        Case {
            name: "a newer snapshot applies",
            last_snapshot: at(10, &S::Active, "evt_a"),
            current: S::Active,
            incoming: at(11, &S::Active, "evt_b"),
            status: S::Active,
            trusted: false,
            expected: None,
        },
        Case {
            name: "an older snapshot is stale",
            last_snapshot: at(10, &S::Active, "evt_a"),
            current: S::Active,
            incoming: at(9, &S::PastDue, "evt_b"),
            status: S::PastDue,
            trusted: false,
            expected: Some(Staleness::OlderSnapshot),
        },
        Case {
            name: "the same snapshot again is stale",
            last_snapshot: at(10, &S::Active, "evt_a"),
            current: S::Active,
            incoming: at(10, &S::Active, "evt_a"),
            status: S::Active,
            trusted: false,
            expected: Some(Staleness::OlderSnapshot),
        },
        Case {
            name: "same second, lower rank: stale",
            last_snapshot: at(10, &S::PastDue, "evt_a"),
            current: S::PastDue,
            incoming: at(10, &S::Active, "evt_z"),
            status: S::Active,
            trusted: false,
            expected: Some(Staleness::OlderSnapshot),
        },
        Case {
            name: "same second, higher rank: applies",
            last_snapshot: at(10, &S::Active, "evt_z"),
            current: S::Active,
            incoming: at(10, &S::PastDue, "evt_a"),
            status: S::PastDue,
            trusted: false,
            expected: None,
        },
        Case {
            name: "a trusted (re-fetched) snapshot is never older",
            last_snapshot: at(10, &S::Active, "evt_a"),
            current: S::Active,
            incoming: at(1, &S::Active, "sync:1"),
            status: S::Active,
            trusted: true,
            expected: None,
        },
        Case {
            name: "a newer snapshot cannot reopen a canceled subscription",
            last_snapshot: at(10, &S::Canceled, "evt_a"),
            current: S::Canceled,
            incoming: at(20, &S::Active, "evt_b"),
            status: S::Active,
            trusted: false,
            expected: Some(Staleness::Ended),
        },
        Case {
            name: "nor can a trusted one",
            last_snapshot: at(10, &S::IncompleteExpired, "evt_a"),
            current: S::IncompleteExpired,
            incoming: at(20, &S::Incomplete, "sync:1"),
            status: S::Incomplete,
            trusted: true,
            expected: Some(Staleness::Ended),
        },
        Case {
            name: "an ended subscription takes a newer terminal snapshot",
            last_snapshot: at(10, &S::IncompleteExpired, "evt_a"),
            current: S::IncompleteExpired,
            incoming: at(20, &S::Canceled, "evt_b"),
            status: S::Canceled,
            trusted: false,
            expected: None,
        },
        Case {
            name: "a canceled subscription is not reopened by an unknown status",
            last_snapshot: at(10, &S::Active, "evt_a"),
            current: S::Canceled,
            incoming: at(20, &S::Unknown("new".into()), "evt_b"),
            status: S::Unknown("new".into()),
            trusted: false,
            expected: Some(Staleness::Ended),
        },
        Case {
            name: "older and ending: older wins the verdict",
            last_snapshot: at(10, &S::Canceled, "evt_a"),
            current: S::Canceled,
            incoming: at(5, &S::Active, "evt_b"),
            status: S::Active,
            trusted: false,
            expected: Some(Staleness::OlderSnapshot),
        },
    ];
    for case in cases {
        let verdict = snapshot_staleness(
            &case.last_snapshot,
            &case.current,
            &case.incoming,
            &case.status,
            case.trusted,
        );
        assert_eq!(verdict, case.expected, "{}", case.name);
    }
}
