//! Invoices: what a renewal is, which status an invoice implies, and what the inference writes.

use super::*;

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
