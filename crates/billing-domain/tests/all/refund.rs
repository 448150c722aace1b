//! Refund totals and refund statuses: totals only grow, table-driven.

use billing_domain::refund::{
    RefundStatus, order_refunded, order_share, refund_counts, refunded_total,
};

#[test]
fn refund_status_of_a_total() {
    let cases = [
        (0, 1000, RefundStatus::None),
        (-5, 1000, RefundStatus::None),
        (1, 1000, RefundStatus::Partial),
        (999, 1000, RefundStatus::Partial),
        (1000, 1000, RefundStatus::Full),
        (1500, 1000, RefundStatus::Full),
        (0, 0, RefundStatus::None),
    ];
    for (refunded, total, expected) in cases {
        assert_eq!(
            RefundStatus::of(refunded, total),
            expected,
            "{refunded} of {total}"
        );
    }
}

#[test]
fn refunded_totals_only_grow() {
    // (held, reported, expected)
    let cases = [
        (0, 300, 300),
        (300, 500, 500),
        (500, 300, 500),
        (500, 500, 500),
        (700, 0, 700),
    ];
    for (held, reported, expected) in cases {
        assert_eq!(
            refunded_total(held, reported),
            expected,
            "{held} then {reported}"
        );
    }
    // Any delivery order of the same reports ends at the same total.
    let reports = [200, 700, 450];
    let forwards = reports.iter().fold(0, |held, r| refunded_total(held, *r));
    let backwards = reports
        .iter()
        .rev()
        .fold(0, |held, r| refunded_total(held, *r));
    assert_eq!((forwards, backwards), (700, 700));
}

#[test]
fn an_orders_refund_is_its_payments_capped_at_its_amount_and_never_shrinks() {
    // (order held, payment refunded, order amount, share, expected order total)
    let cases = [
        (0, 0, 1000, 0, 0),
        (0, 400, 1000, 400, 400),
        (0, 1500, 1000, 1000, 1000),
        (600, 400, 1000, 400, 600),
        (400, 600, 1000, 600, 600),
        (1000, 2000, 1000, 1000, 1000),
    ];
    for (held, payment, amount, share, expected) in cases {
        assert_eq!(order_share(payment, amount), share, "{payment} on {amount}");
        assert_eq!(
            order_refunded(held, payment, amount),
            expected,
            "{held}, {payment} on {amount}"
        );
    }
}

#[test]
fn pending_and_succeeded_refunds_count() {
    let cases = [
        ("succeeded", true),
        ("pending", true),
        ("failed", false),
        ("canceled", false),
        ("requires_action", false),
        ("", false),
    ];
    for (status, counts) in cases {
        assert_eq!(refund_counts(status), counts, "{status:?}");
    }
}
