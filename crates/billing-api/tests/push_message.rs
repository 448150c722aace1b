//! The pushed message's wire form: its `type` names the record's kind as the record's JSON does.

use billing_api::{AccessSnapshot, ChangeKind, ChangeRecord, PushMessage};
use chrono::{TimeZone, Utc};

fn record(kind: ChangeKind) -> ChangeRecord {
    let access = |tier: &str| AccessSnapshot {
        tier: tier.to_owned(),
        status: Some("active".to_owned()),
        reason: "subscription_active".to_owned(),
        grace_period_end: None,
        credits: 0,
    };
    ChangeRecord {
        cursor: "42".to_owned(),
        id: "chg_7QmRk2vXw9pLz3Ta".to_owned(),
        user_id: Some("user_5b1f0c".to_owned()),
        customer_id: Some("cus_Q8fZr1Lk2mNx".to_owned()),
        kind,
        before: access("FREE"),
        after: access("PRO"),
        amount: None,
        stripe_event_id: Some("evt_1QbXk2Lm3Nn4Op5q".to_owned()),
        created_at: Utc.with_ymd_and_hms(2026, 12, 6, 7, 1, 2).unwrap(),
    }
}

#[test]
fn every_kind_names_its_type_as_the_record_serialises_it() {
    let kinds = [
        ChangeKind::TierChanged,
        ChangeKind::StatusChanged,
        ChangeKind::GraceStarted,
        ChangeKind::GraceEnded,
        ChangeKind::CreditsGranted,
        ChangeKind::PaymentFailed,
        ChangeKind::PaymentSucceeded,
        ChangeKind::Refund,
        ChangeKind::Dispute,
    ];
    for kind in kinds {
        let json = serde_json::to_value(kind).unwrap();
        assert_eq!(json.as_str(), Some(kind.as_str()));
        let message = PushMessage::new(record(kind));
        assert_eq!(message.event_type, format!("billing.{}", kind.as_str()));
    }
}

#[test]
fn a_message_round_trips_with_the_standard_webhooks_envelope() {
    let message = PushMessage::new(record(ChangeKind::TierChanged));
    let json = serde_json::to_value(&message).unwrap();
    assert_eq!(json["type"], "billing.tier_changed");
    assert_eq!(json["timestamp"], "2026-12-06T07:01:02Z");
    assert_eq!(json["data"]["id"], "chg_7QmRk2vXw9pLz3Ta");
    assert_eq!(json["data"]["after"]["tier"], "PRO");
    let back: PushMessage = serde_json::from_value(json).unwrap();
    assert_eq!(back, message);
}
