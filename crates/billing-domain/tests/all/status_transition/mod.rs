//! How snapshots and invoices move a subscription's status and grace deadline, table-driven.

mod invoice;
mod snapshot;

use std::collections::BTreeMap;

use billing_domain::SubscriptionStatus as S;
use billing_domain::facts::{InvoiceChange, InvoiceFacts, SubscriptionSnapshot};
use billing_domain::ordering::Staleness;
use billing_domain::status_transition::{
    Grace, Inference, SnapshotOutcome, Standing, grace_after, inferred_status, invoice_inference,
    is_renewal, snapshot_transition,
};
use billing_domain::{Currency, Money, Position, Tier, TierId};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

const GRACE_DAYS: i64 = 7;

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

fn deadline(anchor: i64) -> Option<DateTime<Utc>> {
    Some(t(anchor) + TimeDelta::days(GRACE_DAYS))
}

fn pro() -> Tier {
    Tier {
        id: TierId::new("PRO"),
        name: "Pro".to_owned(),
        rank: 1,
        price_ids: vec!["price_pro".to_owned()],
        limits: BTreeMap::new(),
        features: BTreeMap::new(),
        credits_per_period: 100,
        grace_period: TimeDelta::days(GRACE_DAYS),
    }
}

fn at(seconds: i64, status: &S, id: &str) -> Position {
    Position::of(t(seconds), status, id)
}

/// A stored standing whose status and snapshot were both set at `set_at` by `evt_stored`.
fn stored(status: S, period_start: Option<i64>, set_at: i64) -> Standing {
    let position = at(set_at, &status, "evt_stored");
    Standing {
        status,
        current_period_start: period_start.map(t),
        grace: Grace::default(),
        snapshot_position: position.clone(),
        status_position: position,
    }
}

fn with_grace(mut standing: Standing, anchor: i64, invoice: Option<&str>) -> Standing {
    standing.grace = Grace {
        period_end: deadline(anchor),
        dunning_invoice_id: invoice.map(str::to_owned),
    };
    standing
}

fn snapshot(status: S, period_start: Option<i64>) -> SubscriptionSnapshot {
    SubscriptionSnapshot {
        id: "sub_1".to_owned(),
        customer_id: "cus_1".to_owned(),
        status,
        price_ids: vec!["price_pro".to_owned()],
        current_period_start: period_start.map(t),
        current_period_end: None,
        cancel_at_period_end: false,
        cancel_at: None,
        canceled_at: None,
        ended_at: None,
        trial_end: None,
        metadata_user_id: None,
    }
}

fn invoice(reason: Option<&str>, period_start: Option<i64>) -> InvoiceFacts {
    let usd = |amount| Money::new(amount, Currency::parse("usd").unwrap());
    InvoiceFacts {
        id: "in_new".to_owned(),
        customer_id: Some("cus_1".to_owned()),
        subscription_id: Some("sub_1".to_owned()),
        status: None,
        billing_reason: reason.map(str::to_owned),
        amount_paid: usd(0),
        amount_due: usd(1000),
        attempt_count: 1,
        period_start: period_start.map(t),
        period_end: None,
        next_payment_attempt: None,
        price_ids: vec![],
    }
}

fn grace(anchor: i64, invoice: Option<&str>) -> Grace {
    Grace {
        period_end: deadline(anchor),
        dunning_invoice_id: invoice.map(str::to_owned),
    }
}

/// A stored standing whose status was set by an invoice inference at `status_at`, after its
/// last snapshot at `snapshot_at`.
fn inferred(status: S, snapshot_at: i64, status_at: i64) -> Standing {
    let mut standing = stored(S::Active, Some(0), snapshot_at);
    standing.status_position = at(status_at, &status, "evt_invoice");
    standing.status = status;
    standing
}

#[test]
fn grace_after_each_status() {
    let past_due = with_grace(stored(S::PastDue, Some(100), 150), 100, Some("in_first"));
    for status in S::KNOWN {
        let after = grace_after(Some(&past_due), &status, &pro(), t(100));
        if status == S::PastDue {
            assert_eq!(after, grace(100, Some("in_first")));
        } else {
            assert_eq!(after, Grace::default(), "{status} has no grace");
        }
    }
    assert_eq!(grace_after(None, &S::PastDue, &pro(), t(5)), grace(5, None));
}
