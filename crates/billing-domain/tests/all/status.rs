//! Subscription statuses: the wire strings round-trip, unknown ones included.

use billing_domain::SubscriptionStatus;
use proptest::prelude::*;

#[test]
fn known_statuses_round_trip_through_their_wire_strings() {
    let wire = [
        "active",
        "trialing",
        "past_due",
        "canceled",
        "unpaid",
        "incomplete",
        "incomplete_expired",
        "paused",
    ];
    assert_eq!(SubscriptionStatus::KNOWN.len(), wire.len());
    for (status, wire) in SubscriptionStatus::KNOWN.iter().zip(wire) {
        assert_eq!(status.as_str(), wire);
        assert_eq!(&SubscriptionStatus::parse(wire), status);
        assert_eq!(&wire.parse::<SubscriptionStatus>().unwrap(), status);
        assert_eq!(status.to_string(), wire);
        assert!(!matches!(status, SubscriptionStatus::Unknown(_)));
    }
}

#[test]
fn unknown_statuses_are_kept_verbatim() {
    for wire in [
        "",
        "ACTIVE",
        "Active",
        " active",
        "something_new",
        "pausing",
        "unknown",
    ] {
        let status = SubscriptionStatus::parse(wire);
        assert_eq!(status, SubscriptionStatus::Unknown(wire.to_owned()));
        assert_eq!(status.as_str(), wire);
        assert_eq!(status.to_string(), wire);
        assert_eq!(status.progression_rank(), 0);
        assert!(!status.is_terminal());
    }
}

#[test]
fn only_canceled_and_incomplete_expired_are_terminal() {
    for status in SubscriptionStatus::KNOWN {
        assert_eq!(
            status.is_terminal(),
            matches!(
                status,
                SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
            ),
            "{status}"
        );
    }
}

#[test]
fn progression_ranks_are_distinct_and_unknown_lowest() {
    let mut ranks: Vec<u8> = SubscriptionStatus::KNOWN
        .iter()
        .map(SubscriptionStatus::progression_rank)
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    assert_eq!(ranks.len(), SubscriptionStatus::KNOWN.len());
    assert!(ranks.iter().all(|&r| r > 0));
    assert!(
        SubscriptionStatus::Incomplete.progression_rank()
            < SubscriptionStatus::Active.progression_rank()
    );
    assert!(
        SubscriptionStatus::Active.progression_rank()
            < SubscriptionStatus::Canceled.progression_rank()
    );
}

proptest! {
    #[test]
    fn parse_then_as_str_is_identity(s in any::<String>()) {
        let status = SubscriptionStatus::parse(&s);
        prop_assert_eq!(status.as_str(), s.as_str());
    }

    #[test]
    fn parse_then_as_str_is_identity_near_known_strings(
        s in "(active|trialing|past_due|canceled|unpaid|incomplete|incomplete_expired|paused)[ _a-zA-Z]{0,2}"
    ) {
        let status = SubscriptionStatus::parse(&s);
        prop_assert_eq!(status.as_str(), s.as_str());
        prop_assert_eq!(SubscriptionStatus::parse(status.as_str()), status);
    }
}
