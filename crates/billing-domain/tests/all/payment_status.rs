//! Payment status finality and the payment's amount, table-driven.

use billing_domain::facts::PaymentIntentChange;
use billing_domain::payment::{
    PaymentStatus::{
        self, Canceled, Failed, Processing, RequiresAction, RequiresCapture, Succeeded,
    },
    ReportedAmount, StatusAt, amount_after, next_status,
};
use billing_domain::{Currency, Money};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

const ALL: [PaymentStatus; 6] = [
    Succeeded,
    Failed,
    Processing,
    RequiresAction,
    RequiresCapture,
    Canceled,
];

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

fn held(status: PaymentStatus, at: Option<i64>) -> StatusAt {
    StatusAt {
        status,
        at: at.map(t),
    }
}

#[test]
fn succeeded_and_canceled_are_final() {
    for status in ALL {
        assert_eq!(
            status.is_final(),
            matches!(status, Succeeded | Canceled),
            "{status:?}"
        );
    }
}

#[test]
fn payment_status_transitions() {
    // (name, held, incoming, event second, expected: Some(status, kept second) or None)
    let cases = [
        (
            "a newer event sets the status",
            held(Processing, Some(10)),
            Failed,
            20,
            Some((Failed, 20)),
        ),
        (
            "an event of the same second sets it",
            held(Processing, Some(10)),
            RequiresAction,
            10,
            Some((RequiresAction, 10)),
        ),
        (
            "an older non-final event changes nothing",
            held(Failed, Some(20)),
            Processing,
            10,
            None,
        ),
        (
            "an older success still applies, keeping the newer time",
            held(Failed, Some(20)),
            Succeeded,
            10,
            Some((Succeeded, 20)),
        ),
        (
            "an older cancellation still applies",
            held(RequiresAction, Some(20)),
            Canceled,
            10,
            Some((Canceled, 20)),
        ),
        (
            "a late failure never undoes a success",
            held(Succeeded, Some(10)),
            Failed,
            20,
            None,
        ),
        (
            "a success is not canceled",
            held(Succeeded, Some(10)),
            Canceled,
            20,
            None,
        ),
        (
            "a cancellation is not undone by a success",
            held(Canceled, Some(10)),
            Succeeded,
            20,
            None,
        ),
        (
            "a final status takes its own redelivery, moving its time",
            held(Succeeded, Some(10)),
            Succeeded,
            20,
            Some((Succeeded, 20)),
        ),
        (
            "and an older redelivery keeps its time",
            held(Succeeded, Some(20)),
            Succeeded,
            10,
            Some((Succeeded, 20)),
        ),
        (
            "a status without a time takes any event",
            held(Processing, None),
            Failed,
            5,
            Some((Failed, 5)),
        ),
    ];
    for (name, current, incoming, at, expected) in cases {
        let next = next_status(current, incoming, t(at));
        assert_eq!(
            next,
            expected.map(|(status, at)| held(status, Some(at))),
            "{name}"
        );
    }
}

#[test]
fn the_event_says_the_status() {
    let cases = [
        (PaymentIntentChange::Succeeded, Succeeded),
        (PaymentIntentChange::PaymentFailed, Failed),
        (PaymentIntentChange::Processing, Processing),
        (PaymentIntentChange::RequiresAction, RequiresAction),
        (PaymentIntentChange::Canceled, Canceled),
    ];
    for (change, status) in cases {
        assert_eq!(PaymentStatus::of_change(change), status, "{change:?}");
    }
    let checkout = [
        (Some("paid"), Succeeded),
        (Some("unpaid"), Processing),
        (Some("no_payment_required"), Processing),
        (None, Processing),
    ];
    for (payment_status, status) in checkout {
        assert_eq!(
            PaymentStatus::of_checkout(payment_status),
            status,
            "{payment_status:?}"
        );
    }
}

#[test]
fn a_whole_amount_replaces_a_part_only_raises() {
    let usd = |amount| Money::new(amount, Currency::parse("usd").unwrap());
    let eur = |amount| Money::new(amount, Currency::parse("eur").unwrap());
    // (name, held, reported, expected)
    let cases = [
        (
            "a whole amount replaces a larger one",
            usd(1000),
            ReportedAmount::Whole(&usd(800)),
            usd(800),
        ),
        (
            "a whole amount replaces another currency",
            usd(1000),
            ReportedAmount::Whole(&eur(900)),
            eur(900),
        ),
        (
            "a larger part raises the amount",
            usd(500),
            ReportedAmount::AtLeast(&usd(800)),
            usd(800),
        ),
        (
            "a smaller part leaves it",
            usd(1000),
            ReportedAmount::AtLeast(&usd(800)),
            usd(1000),
        ),
        (
            "an equal part leaves it",
            usd(1000),
            ReportedAmount::AtLeast(&usd(1000)),
            usd(1000),
        ),
        (
            "a part in another currency leaves it",
            usd(500),
            ReportedAmount::AtLeast(&eur(800)),
            usd(500),
        ),
    ];
    for (name, current, reported, expected) in cases {
        assert_eq!(amount_after(&current, reported), expected, "{name}");
    }
}
