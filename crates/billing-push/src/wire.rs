//! A stored change record in its wire form ([`billing_api::ChangeRecord`]): what
//! `GET /v1/changes` serves and what a push carries, mapped in this one place.

use billing_api::{AccessSnapshot, Amount, ChangeKind, ChangeRecord};

/// The wire form of `record`.
pub fn change_record(record: &billing_ports::ChangeRecord) -> ChangeRecord {
    let c = &record.change;
    ChangeRecord {
        cursor: record.seq.to_string(),
        id: c.change_id.clone(),
        user_id: Some(c.user_id.clone()),
        customer_id: c.customer_id.clone(),
        kind: change_kind(c.kind),
        before: access(&c.before),
        after: access(&c.after),
        amount: c.amount.as_ref().map(|m| Amount {
            value: m.amount_minor,
            currency: m.currency.as_str().to_owned(),
        }),
        stripe_event_id: c.stripe_event_id.clone(),
        created_at: c.created_at,
    }
}

/// A user's access at one instant, on the wire.
fn access(s: &billing_ports::AccessSnapshot) -> AccessSnapshot {
    AccessSnapshot {
        tier: s.tier.as_str().to_owned(),
        status: s.status.as_ref().map(|s| s.as_str().to_owned()),
        reason: s.reason.clone(),
        grace_period_end: s.grace_period_end,
        credits: s.credits,
    }
}
/// The wire name of a change's kind.
fn change_kind(kind: billing_ports::ChangeKind) -> ChangeKind {
    use billing_ports::ChangeKind as Stored;
    match kind {
        Stored::TierChanged => ChangeKind::TierChanged,
        Stored::StatusChanged => ChangeKind::StatusChanged,
        Stored::GraceStarted => ChangeKind::GraceStarted,
        Stored::GraceEnded => ChangeKind::GraceEnded,
        Stored::CreditsGranted => ChangeKind::CreditsGranted,
        Stored::PaymentFailed => ChangeKind::PaymentFailed,
        Stored::PaymentSucceeded => ChangeKind::PaymentSucceeded,
        Stored::Refund => ChangeKind::Refund,
        Stored::Dispute => ChangeKind::Dispute,
    }
}
