//! How a stored payment row changes under the domain's payment rules
//! ([`billing_domain::payment`], [`billing_domain::refund`], [`billing_domain::dispute`]): a
//! new row, its status, its dispute, two rows of one payment merged, its order's refund and
//! dispute state, and the stored form of each status.

use billing_domain::Money;
use billing_domain::dispute::{self as disputes, MergedDispute};
use billing_domain::facts::DisputeOutcome;
use billing_domain::payment::{self as rules, StatusAt};
use billing_domain::refund;
use billing_ports::{DisputeStatus, OrderRecord, PaymentRecord, PaymentStatus, RefundStatus};
use chrono::{DateTime, Utc};

/// A payment first known by `key` (its payment intent, else its charge), in `status` since an
/// event created `at`; nothing refunded or disputed yet.
pub(super) fn new_row(
    key: &str,
    amount: &Money,
    status: PaymentStatus,
    at: DateTime<Utc>,
) -> PaymentRecord {
    PaymentRecord {
        key: key.to_owned(),
        payment_intent_id: None,
        charge_id: None,
        stripe_customer_id: None,
        user_id: None,
        amount: amount.clone(),
        status,
        status_at: Some(at),
        last_error: None,
        amount_refunded: 0,
        dispute_status: DisputeStatus::None,
        dispute_stripe_status: None,
    }
}

/// Folds `other` (a row of the same payment known by its charge alone) into `kept`.
pub(super) fn merge(mut kept: PaymentRecord, other: PaymentRecord) -> PaymentRecord {
    kept.charge_id = kept.charge_id.or(other.charge_id);
    kept.stripe_customer_id = kept.stripe_customer_id.or(other.stripe_customer_id);
    kept.user_id = kept.user_id.or(other.user_id);
    kept.amount_refunded = refund::refunded_total(kept.amount_refunded, other.amount_refunded);
    let side = disputes::merged_dispute(
        outcome_of(kept.dispute_status),
        outcome_of(other.dispute_status),
    );
    if side == MergedDispute::Other {
        kept.dispute_status = other.dispute_status;
        kept.dispute_stripe_status = other.dispute_stripe_status;
    }
    kept
}

/// Sets the payment's status as [`rules::next_status`] decides; returns whether it was set.
pub(super) fn set_status(
    payment: &mut PaymentRecord,
    status: PaymentStatus,
    at: DateTime<Utc>,
) -> bool {
    let current = StatusAt {
        status: payment.status,
        at: payment.status_at,
    };
    match rules::next_status(current, status, at) {
        Some(next) => {
            payment.status = next.status;
            payment.status_at = next.at;
            true
        }
        None => false,
    }
}

/// Applies Stripe's dispute `stripe_status` to the payment unless its dispute is decided.
pub(super) fn apply_dispute(payment: &mut PaymentRecord, stripe_status: &str) {
    if let Some(outcome) = disputes::next_outcome(outcome_of(payment.dispute_status), stripe_status)
    {
        payment.dispute_status = dispute_status(Some(outcome));
        payment.dispute_stripe_status = Some(stripe_status.to_owned());
    }
}

/// Carries the payment's refunded total (capped at the order's amount, never shrinking the
/// order's) and its dispute state to its order.
pub(super) fn carry_to_order(order: &mut OrderRecord, payment: &PaymentRecord) {
    order.amount_refunded = refund::order_refunded(
        order.amount_refunded,
        payment.amount_refunded,
        order.amount.amount_minor,
    );
    order.refund_status = RefundStatus::of(order.amount_refunded, order.amount.amount_minor);
    order.dispute_status = payment.dispute_status;
}

/// The domain's view of a stored dispute state: `None` when never disputed.
fn outcome_of(status: DisputeStatus) -> Option<DisputeOutcome> {
    match status {
        DisputeStatus::None => None,
        DisputeStatus::Open => Some(DisputeOutcome::Open),
        DisputeStatus::Won => Some(DisputeOutcome::Won),
        DisputeStatus::Lost => Some(DisputeOutcome::Lost),
        DisputeStatus::ClosedWithoutChargeback => Some(DisputeOutcome::ClosedWithoutChargeback),
    }
}

/// The stored form of a dispute outcome (`None`: never disputed).
fn dispute_status(outcome: Option<DisputeOutcome>) -> DisputeStatus {
    match outcome {
        None => DisputeStatus::None,
        Some(DisputeOutcome::Open) => DisputeStatus::Open,
        Some(DisputeOutcome::Won) => DisputeStatus::Won,
        Some(DisputeOutcome::Lost) => DisputeStatus::Lost,
        Some(DisputeOutcome::ClosedWithoutChargeback) => DisputeStatus::ClosedWithoutChargeback,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use billing_domain::Currency;
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(seconds)
    }

    fn usd(amount: i64) -> Money {
        Money::new(amount, Currency::parse("usd").unwrap())
    }

    fn row(key: &str, status: PaymentStatus, at: i64) -> PaymentRecord {
        new_row(key, &usd(1000), status, t(at))
    }

    fn order(amount_refunded: i64) -> OrderRecord {
        OrderRecord {
            checkout_session_id: "cs_1".to_owned(),
            payment_intent_id: Some("pi_1".to_owned()),
            stripe_customer_id: None,
            user_id: None,
            amount: usd(1000),
            status: "paid".to_owned(),
            refund_status: RefundStatus::of(amount_refunded, 1000),
            amount_refunded,
            dispute_status: DisputeStatus::None,
        }
    }

    #[test]
    fn every_stored_status_maps_to_the_domain_and_back() {
        for status in PaymentStatus::ALL {
            assert_eq!(status.as_str().parse::<PaymentStatus>().unwrap(), *status);
            assert_eq!(
                status.is_final(),
                matches!(status, PaymentStatus::Succeeded | PaymentStatus::Canceled),
                "{status:?}"
            );
        }
        for status in DisputeStatus::ALL {
            let outcome = outcome_of(*status);
            assert_eq!(dispute_status(outcome), *status);
            assert_eq!(outcome.is_none(), *status == DisputeStatus::None);
        }
        for status in RefundStatus::ALL {
            assert_eq!(status.as_str().parse::<RefundStatus>().unwrap(), *status);
        }
        assert_eq!(
            RefundStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
            ["none", "partial", "full"]
        );
    }

    #[test]
    fn a_new_row_is_in_its_first_events_status() {
        let payment = row("ch_1", PaymentStatus::Failed, 10);
        assert_eq!(payment.key, "ch_1");
        assert_eq!(
            (payment.status, payment.status_at),
            (PaymentStatus::Failed, Some(t(10)))
        );
        assert_eq!(payment.amount, usd(1000));
        assert_eq!(payment.amount_refunded, 0);
        assert_eq!(payment.dispute_status, DisputeStatus::None);
        assert_eq!(payment.payment_intent_id, None);
    }

    #[test]
    fn set_status_writes_what_the_rule_decides() {
        // (held, at, incoming, at, set, status after, time after)
        let cases = [
            (
                PaymentStatus::Processing,
                10,
                PaymentStatus::Failed,
                20,
                true,
                PaymentStatus::Failed,
                20,
            ),
            (
                PaymentStatus::Failed,
                20,
                PaymentStatus::Processing,
                10,
                false,
                PaymentStatus::Failed,
                20,
            ),
            (
                PaymentStatus::Failed,
                20,
                PaymentStatus::Succeeded,
                10,
                true,
                PaymentStatus::Succeeded,
                20,
            ),
            (
                PaymentStatus::Succeeded,
                10,
                PaymentStatus::Failed,
                20,
                false,
                PaymentStatus::Succeeded,
                10,
            ),
            (
                PaymentStatus::RequiresCapture,
                10,
                PaymentStatus::Canceled,
                30,
                true,
                PaymentStatus::Canceled,
                30,
            ),
        ];
        for (held, held_at, incoming, at, set, status, time) in cases {
            let mut payment = row("pi_1", held, held_at);
            assert_eq!(
                set_status(&mut payment, incoming, t(at)),
                set,
                "{held:?} → {incoming:?}"
            );
            assert_eq!((payment.status, payment.status_at), (status, Some(t(time))));
        }
    }

    #[test]
    fn a_decided_dispute_is_not_reopened_on_the_row() {
        let mut payment = row("pi_1", PaymentStatus::Succeeded, 10);
        apply_dispute(&mut payment, "needs_response");
        assert_eq!(payment.dispute_status, DisputeStatus::Open);
        assert_eq!(
            payment.dispute_stripe_status.as_deref(),
            Some("needs_response")
        );
        apply_dispute(&mut payment, "lost");
        assert_eq!(payment.dispute_status, DisputeStatus::Lost);
        apply_dispute(&mut payment, "under_review");
        assert_eq!(payment.dispute_status, DisputeStatus::Lost);
        assert_eq!(payment.dispute_stripe_status.as_deref(), Some("lost"));
    }

    #[test]
    fn merging_folds_a_charge_row_into_the_payment_intents() {
        let mut kept = row("pi_1", PaymentStatus::Succeeded, 10);
        kept.payment_intent_id = Some("pi_1".to_owned());
        kept.amount_refunded = 200;
        let mut other = row("ch_1", PaymentStatus::Succeeded, 5);
        other.charge_id = Some("ch_1".to_owned());
        other.stripe_customer_id = Some("cus_1".to_owned());
        other.user_id = Some("user_1".to_owned());
        other.amount_refunded = 700;
        other.dispute_status = DisputeStatus::Open;
        other.dispute_stripe_status = Some("needs_response".to_owned());

        let merged = merge(kept.clone(), other.clone());
        assert_eq!(merged.key, "pi_1");
        assert_eq!(merged.charge_id.as_deref(), Some("ch_1"));
        assert_eq!(merged.stripe_customer_id.as_deref(), Some("cus_1"));
        assert_eq!(merged.user_id.as_deref(), Some("user_1"));
        assert_eq!(merged.amount_refunded, 700, "refund totals only grow");
        assert_eq!(merged.dispute_status, DisputeStatus::Open);
        assert_eq!(
            merged.dispute_stripe_status.as_deref(),
            Some("needs_response")
        );

        kept.dispute_status = DisputeStatus::Won;
        kept.dispute_stripe_status = Some("won".to_owned());
        kept.amount_refunded = 900;
        let merged = merge(kept, other);
        assert_eq!(
            merged.dispute_status,
            DisputeStatus::Won,
            "a decided dispute stays"
        );
        assert_eq!(merged.dispute_stripe_status.as_deref(), Some("won"));
        assert_eq!(merged.amount_refunded, 900);
    }

    #[test]
    fn the_order_takes_the_payments_refund_capped_and_its_dispute() {
        // (order refunded before, payment refunded, order refunded after, refund status)
        let cases = [
            (0, 0, 0, RefundStatus::None),
            (0, 300, 300, RefundStatus::Partial),
            (0, 1500, 1000, RefundStatus::Full),
            (600, 300, 600, RefundStatus::Partial),
            (1000, 1000, 1000, RefundStatus::Full),
        ];
        for (before, refunded, after, status) in cases {
            let mut order = order(before);
            let mut payment = row("pi_1", PaymentStatus::Succeeded, 10);
            payment.amount_refunded = refunded;
            payment.dispute_status = DisputeStatus::Lost;
            carry_to_order(&mut order, &payment);
            assert_eq!(order.amount_refunded, after, "{before} then {refunded}");
            assert_eq!(order.refund_status, status, "{before} then {refunded}");
            assert_eq!(order.dispute_status, DisputeStatus::Lost);
        }
    }
}
