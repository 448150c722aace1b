//! How snapshots and invoices move a subscription's status and grace deadline, table-driven.

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
fn snapshot_transitions() {
    let none = Grace::default();
    // (name, stored standing, snapshot, its event's second, trusted, expected)
    let cases: Vec<(
        &str,
        Option<Standing>,
        SubscriptionSnapshot,
        i64,
        bool,
        Expect,
    )> = vec![
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

#[test]
fn renewals_are_cycles_thresholds_legacy_subscriptions_and_unknown_reasons() {
    let cases = [
        (None, true),
        (Some("subscription_cycle"), true),
        (Some("subscription_threshold"), true),
        (Some("subscription"), true),
        (Some("subscription_create"), false),
        (Some("subscription_update"), false),
        (Some("manual"), false),
        (Some("upcoming"), false),
    ];
    for (reason, renewal) in cases {
        assert_eq!(is_renewal(&invoice(reason, None)), renewal, "{reason:?}");
    }
}

#[test]
fn inferred_statuses() {
    use InvoiceChange::{Paid, PaymentFailed as Failed, PaymentSucceeded as Succeeded};
    let cycle = Some("subscription_cycle");
    // (name, change, billing reason, invoice period start, stored status, stored period, expected)
    let cases = [
        (
            "a failed renewal makes an active subscription past due",
            Failed,
            cycle,
            Some(100),
            S::Active,
            Some(100),
            Some(S::PastDue),
        ),
        (
            "and keeps a past-due one past due",
            Failed,
            cycle,
            Some(100),
            S::PastDue,
            Some(100),
            Some(S::PastDue),
        ),
        (
            "a renewal without a reason counts",
            Failed,
            None,
            Some(100),
            S::Active,
            Some(100),
            Some(S::PastDue),
        ),
        (
            "a failed first invoice infers nothing",
            Failed,
            Some("subscription_create"),
            Some(100),
            S::Incomplete,
            Some(100),
            None,
        ),
        (
            "a failed proration invoice infers nothing",
            Failed,
            Some("subscription_update"),
            Some(100),
            S::Active,
            Some(100),
            None,
        ),
        (
            "a failure during a trial infers nothing",
            Failed,
            cycle,
            Some(100),
            S::Trialing,
            Some(100),
            None,
        ),
        (
            "a failure of an ended subscription infers nothing",
            Failed,
            cycle,
            Some(100),
            S::Canceled,
            Some(100),
            None,
        ),
        (
            "nor of an unpaid one",
            Failed,
            cycle,
            Some(100),
            S::Unpaid,
            Some(100),
            None,
        ),
        (
            "a payment ends past due",
            Paid,
            cycle,
            Some(100),
            S::PastDue,
            Some(100),
            Some(S::Active),
        ),
        (
            "and unpaid",
            Succeeded,
            cycle,
            Some(100),
            S::Unpaid,
            Some(100),
            Some(S::Active),
        ),
        (
            "and incomplete",
            Paid,
            Some("subscription_create"),
            Some(100),
            S::Incomplete,
            Some(100),
            Some(S::Active),
        ),
        (
            "a payment of an active subscription infers nothing",
            Paid,
            cycle,
            Some(100),
            S::Active,
            Some(100),
            None,
        ),
        (
            "nor of a trial",
            Succeeded,
            cycle,
            Some(100),
            S::Trialing,
            Some(100),
            None,
        ),
        (
            "nor of an ended one",
            Paid,
            cycle,
            Some(100),
            S::Canceled,
            Some(100),
            None,
        ),
        (
            "nor of a paused one",
            Paid,
            cycle,
            Some(100),
            S::Paused,
            Some(100),
            None,
        ),
        (
            "an older period's failure infers nothing",
            Failed,
            cycle,
            Some(50),
            S::Active,
            Some(100),
            None,
        ),
        (
            "an older period's payment infers nothing",
            Paid,
            cycle,
            Some(50),
            S::PastDue,
            Some(100),
            None,
        ),
        (
            "a newer period's failure infers",
            Failed,
            cycle,
            Some(200),
            S::Active,
            Some(100),
            Some(S::PastDue),
        ),
        (
            "an invoice without a period infers",
            Failed,
            cycle,
            None,
            S::Active,
            Some(100),
            Some(S::PastDue),
        ),
        (
            "a subscription without a period infers",
            Paid,
            cycle,
            Some(50),
            S::PastDue,
            None,
            Some(S::Active),
        ),
    ];
    for (name, change, reason, billed, status, period, expected) in cases {
        let current = stored(status, period, 10);
        assert_eq!(
            inferred_status(change, &invoice(reason, billed), &current),
            expected,
            "{name}"
        );
    }
}

#[test]
fn invoice_inferences_and_what_they_write() {
    use InvoiceChange::{Paid, PaymentFailed as Failed};
    let cycle = Some("subscription_cycle");
    // (name, stored, change, invoice period, event second, expected status and grace; None: stale)
    type Case = (
        &'static str,
        Standing,
        InvoiceChange,
        Option<i64>,
        i64,
        Option<(S, Grace)>,
    );
    let cases: Vec<Case> = vec![
        (
            "a failed renewal opens a deadline from the billed period and names the invoice",
            stored(S::Active, Some(100), 150),
            Failed,
            Some(100),
            173,
            Some((S::PastDue, grace(100, Some("in_new")))),
        ),
        (
            "without a billed period the event anchors it",
            stored(S::Active, None, 150),
            Failed,
            None,
            173,
            Some((S::PastDue, grace(173, Some("in_new")))),
        ),
        (
            "a retry in the same period keeps the first deadline and invoice",
            with_grace(stored(S::PastDue, Some(100), 150), 100, Some("in_first")),
            Failed,
            Some(100),
            400,
            Some((S::PastDue, grace(100, Some("in_first")))),
        ),
        (
            "a snapshot's past due without an invoice: the retry names itself",
            with_grace(stored(S::PastDue, Some(100), 150), 100, None),
            Failed,
            Some(100),
            400,
            Some((S::PastDue, grace(100, Some("in_new")))),
        ),
        (
            "the next period's failure opens a new deadline",
            with_grace(stored(S::PastDue, Some(100), 150), 100, Some("in_first")),
            Failed,
            Some(1000),
            1001,
            Some((S::PastDue, grace(1000, Some("in_new")))),
        ),
        (
            "a payment clears the deadline",
            with_grace(stored(S::PastDue, Some(100), 150), 100, Some("in_first")),
            Paid,
            Some(100),
            400,
            Some((S::Active, Grace::default())),
        ),
        (
            "a late failure older than the status is stale",
            stored(S::Active, Some(0), 150),
            Failed,
            Some(0),
            100,
            None,
        ),
        (
            "a failure in the second of the status, ranking higher, applies",
            stored(S::Active, Some(0), 150),
            Failed,
            Some(0),
            150,
            Some((S::PastDue, grace(0, Some("in_new")))),
        ),
        (
            "a payment in the second of a past-due status, ranking lower, is stale",
            stored(S::PastDue, Some(0), 150),
            Paid,
            Some(0),
            150,
            None,
        ),
    ];
    for (name, current, change, billed, created, expected) in cases {
        let verdict = invoice_inference(
            &current,
            change,
            &invoice(cycle, billed),
            t(created),
            "evt_invoice",
        );
        match (verdict, expected) {
            (Inference::Stale, None) => {}
            (Inference::Newer(inferred), Some((status, grace))) => {
                assert_eq!(
                    inferred.position,
                    at(created, &status, "evt_invoice"),
                    "{name}"
                );
                let after = inferred.apply(&current, &pro());
                assert_eq!(after.status, status, "{name}");
                assert_eq!(after.grace, grace, "{name}");
                assert_eq!(
                    after.status_position,
                    at(created, &status, "evt_invoice"),
                    "{name}"
                );
                assert_eq!(
                    after.snapshot_position, current.snapshot_position,
                    "{name}: invoices never move the snapshot position"
                );
                assert_eq!(
                    after.current_period_start, current.current_period_start,
                    "{name}"
                );
            }
            (verdict, expected) => panic!("{name}: {verdict:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn an_invoice_that_infers_nothing_moves_nothing() {
    let current = stored(S::Trialing, Some(90), 90);
    let verdict = invoice_inference(
        &current,
        InvoiceChange::PaymentFailed,
        &invoice(None, Some(90)),
        t(173),
        "evt_late",
    );
    assert_eq!(verdict, Inference::Nothing);
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
