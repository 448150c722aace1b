//! Payments and orders read under their ids' locks: answered again without a statement until
//! the transaction writes to them, and always what a read would find.

use billing_domain::{Currency, Money, RefundStatus};
use billing_ports::{
    BillingStore, BillingTx, CreditEntry, CreditReason, CustomerRecord, DisputeStatus, OrderRecord,
    PaymentRecord, StoreError, TxFuture,
};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, DieselStore};

use super::payment;
use crate::at;

const INTENT: &str = "pi_3Rb7Hk2eZvKYlo2C0Wq4";
const CHARGE: &str = "ch_3Rb7Hk2eZvKYlo2C1Nt8";
const CUSTOMER: &str = "cus_Q8mT2vLx9RkA4e";
const USER: &str = "user_Pw4Jc7Ds";

fn order(session: &str, intent: &str) -> OrderRecord {
    OrderRecord {
        checkout_session_id: session.to_owned(),
        payment_intent_id: Some(intent.to_owned()),
        stripe_customer_id: Some(CUSTOMER.to_owned()),
        user_id: None,
        amount: Money::new(4_900, Currency::parse("eur").unwrap()),
        status: "paid".to_owned(),
        refund_status: RefundStatus::None,
        amount_refunded: 0,
        dispute_status: DisputeStatus::None,
    }
}

/// The payment of `INTENT` and `CHARGE` and its order, stored.
async fn seed(store: &DieselStore) {
    store
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                tx.save_payment(&payment(INTENT, Some(INTENT), Some(CHARGE)), at(1))
                    .await?;
                tx.insert_order(&order("cs_test_a1Gx8Rv3Kp", INTENT), at(1))
                    .await?;
                Ok(())
            })
        })
        .await
        .unwrap();
}

/// Links `CUSTOMER` to `USER` and gives its rows (payments, orders) to that user, at `when`.
async fn link(
    tx: &mut dyn BillingTx,
    when: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let linked = CustomerRecord {
        stripe_customer_id: CUSTOMER.to_owned(),
        user_id: Some(USER.to_owned()),
        email: None,
        deleted: false,
    };
    tx.save_customer(&linked, when).await?;
    tx.attribute_customer_rows(CUSTOMER, USER).await
}

/// What `tx` answers for the payment and the order.
async fn answered(
    tx: &mut dyn BillingTx,
) -> Result<(Vec<PaymentRecord>, Option<OrderRecord>), StoreError> {
    Ok((
        tx.payments_matching(Some(INTENT), Some(CHARGE)).await?,
        tx.order_by_payment_intent(INTENT).await?,
    ))
}

/// Read twice under the locks, then after each kind of write (the payment saved, deleted and
/// saved again, the order updated, another order inserted, the customer's rows given to its
/// user), the answers are what the transaction writes; committed, a fresh read finds the last.
pub(crate) async fn kept_payments_follow_every_write(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    seed(db.store()).await;
    let (answers, last) = db
        .store()
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                tx.lock_keys(&[CHARGE.to_owned(), INTENT.to_owned()])
                    .await?;
                let mut answers = vec![answered(tx).await?, answered(tx).await?];
                let mut refunded = payment(INTENT, Some(INTENT), Some(CHARGE));
                refunded.amount_refunded = 4_900;
                tx.save_payment(&refunded, at(2)).await?;
                answers.push(answered(tx).await?);
                tx.delete_payment(INTENT).await?;
                answers.push(answered(tx).await?);
                tx.save_payment(&refunded, at(3)).await?;
                let mut full = order("cs_test_a1Gx8Rv3Kp", INTENT);
                full.refund_status = RefundStatus::Full;
                full.amount_refunded = 4_900;
                tx.update_order(&full, at(3)).await?;
                answers.push(answered(tx).await?);
                tx.insert_order(
                    &order("cs_test_b7Lq2Wn5Ze", "pi_3Rb7Kx2eZvKYlo2C5Dm9"),
                    at(4),
                )
                .await?;
                answers.push(answered(tx).await?);
                link(tx, at(5)).await?;
                let last = answered(tx).await?;
                Ok((answers, last))
            })
        })
        .await
        .unwrap();
    let fresh = db
        .store()
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { answered(tx).await })
        })
        .await
        .unwrap();
    assert_eq!(fresh, last, "the last answers are what a fresh read finds");
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0.len(), 1);
    assert_eq!(answers[2].0[0].amount_refunded, 4_900, "the payment saved");
    assert!(answers[3].0.is_empty(), "the payment deleted");
    assert_eq!(answers[4].0.len(), 1, "saved again");
    let order = answers[4].1.clone().unwrap();
    assert_eq!(
        (order.refund_status, order.amount_refunded),
        (RefundStatus::Full, 4_900),
        "the order updated"
    );
    assert_eq!(
        answers[5], answers[4],
        "another order leaves this one as it is"
    );
    assert_eq!(
        last.0[0].user_id.as_deref(),
        Some(USER),
        "the payment attributed"
    );
    assert_eq!(
        last.1.unwrap().user_id.as_deref(),
        Some(USER),
        "the order attributed"
    );
}

/// On Postgres, what was read under the locks is answered with no statement: a payment row
/// added and an order changed meanwhile by a writer that skipped their locks (which every
/// real writer takes; the row read stays locked, so it cannot be changed) are not seen, while
/// a lookup not made before sees them, and a write of this transaction's own makes it read
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_payments_are_answered_without_a_statement() {
    let db = TestDatabase::new(Backend::Postgres).await;
    seed(db.store()).await;
    // The payment known by its intent alone, so that a row known by the charge alone may
    // still be added.
    db.store()
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                tx.save_payment(&payment(INTENT, Some(INTENT), None), at(1))
                    .await
            })
        })
        .await
        .unwrap();
    let other = db.store().clone();
    let (kept, by_charge, after_write) = db
        .store()
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                tx.lock_keys(&[CHARGE.to_owned(), INTENT.to_owned()])
                    .await?;
                let before = answered(tx).await?;
                other
                    .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
                        Box::pin(async move {
                            // Known by the charge alone, beside the locked row.
                            let mut charge_row = payment(CHARGE, None, Some(CHARGE));
                            charge_row.amount_refunded = 2_000;
                            tx.save_payment(&charge_row, at(2)).await?;
                            let mut partial = order("cs_test_a1Gx8Rv3Kp", INTENT);
                            partial.refund_status = RefundStatus::Partial;
                            partial.amount_refunded = 2_000;
                            tx.update_order(&partial, at(2)).await
                        })
                    })
                    .await?;
                let kept = answered(tx).await?;
                if kept != before {
                    return Err(StoreError::Refused(billing_ports::Cause::msg(
                        "kept answers changed without a write of this transaction",
                    )));
                }
                // By the charge alone: a lookup not made before, read afresh.
                let by_charge = tx.payments_matching(None, Some(CHARGE)).await?;
                tx.save_payment(
                    &payment(
                        "ch_3Rb7Mz2eZvKYlo2C7Pv1",
                        None,
                        Some("ch_3Rb7Mz2eZvKYlo2C7Pv1"),
                    ),
                    at(3),
                )
                .await?;
                let after_write = tx.payments_matching(Some(INTENT), Some(CHARGE)).await?;
                Ok((kept, by_charge, after_write))
            })
        })
        .await
        .unwrap();
    assert_eq!(kept.0.len(), 1, "as first read");
    assert_eq!(kept.1.unwrap().refund_status, RefundStatus::None);
    let refunds =
        |rows: &[PaymentRecord]| -> Vec<i64> { rows.iter().map(|p| p.amount_refunded).collect() };
    assert_eq!(refunds(&by_charge), [2_000], "read afresh");
    assert_eq!(
        refunds(&after_write),
        [2_000, 1_200],
        "read again after a write"
    );
}

/// A user given to a payment and its order (an attribution, or an earlier event) is never
/// taken back by a later write that does not know it: `save_payment` and `update_order` with
/// no user keep the stored one (a transaction that read the row before an attribution
/// committed writes it without the user).
pub(crate) async fn a_known_user_is_never_written_back_to_none(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    seed(db.store()).await;
    db.store()
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { link(tx, at(2)).await })
        })
        .await
        .unwrap();
    let (payment, order) = db
        .store()
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                // As read before the attribution: no user.
                let mut refunded = payment(INTENT, Some(INTENT), Some(CHARGE));
                refunded.amount_refunded = 4_900;
                tx.save_payment(&refunded, at(3)).await?;
                let mut full = order("cs_test_a1Gx8Rv3Kp", INTENT);
                full.refund_status = RefundStatus::Full;
                full.amount_refunded = 4_900;
                tx.update_order(&full, at(3)).await?;
                answered(tx).await
            })
        })
        .await
        .unwrap();
    assert_eq!(payment[0].amount_refunded, 4_900, "the write applied");
    assert_eq!(payment[0].user_id.as_deref(), Some(USER), "the user kept");
    let order = order.unwrap();
    assert_eq!(order.refund_status, RefundStatus::Full);
    assert_eq!(
        order.user_id.as_deref(),
        Some(USER),
        "the order's user kept"
    );
}

/// Giving a customer's rows to its user gives every ledger entry, order and payment of that
/// customer without a user, and nothing else: not a row of another customer, not a row that
/// already has a user.
pub(crate) async fn attribution_gives_only_the_customers_rows_without_a_user(backend: Backend) {
    const OTHER_CUSTOMER: &str = "cus_Zt7Hq3Mw1YcB6n";
    const OTHER_USER: &str = "user_Lm2Xv9Qs";
    let db = TestDatabase::new(backend).await;
    let answers = db
        .store()
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                let mut owned = payment("pi_3Sc4Nw2eZvKYlo2C7Jr1", None, None);
                owned.payment_intent_id = Some(owned.key.clone());
                owned.user_id = Some(OTHER_USER.to_owned());
                let mut elsewhere = payment("pi_3Td8Lk2eZvKYlo2C2Fx6", None, None);
                elsewhere.payment_intent_id = Some(elsewhere.key.clone());
                elsewhere.stripe_customer_id = Some(OTHER_CUSTOMER.to_owned());
                let unowned = payment(INTENT, Some(INTENT), Some(CHARGE));
                for p in [&unowned, &owned, &elsewhere] {
                    tx.save_payment(p, at(1)).await?;
                }
                let mut other_order = order("cs_test_k5Rw1Tz8Bn", "pi_3Td8Lk2eZvKYlo2C2Fx6");
                other_order.stripe_customer_id = Some(OTHER_CUSTOMER.to_owned());
                for o in [&order("cs_test_a1Gx8Rv3Kp", INTENT), &other_order] {
                    tx.insert_order(o, at(1)).await?;
                }
                for (customer, amount, key) in [
                    (CUSTOMER, 300, "invoice:in_1Sx2Rq2eZvKYlo2C"),
                    (OTHER_CUSTOMER, 500, "invoice:in_1Vb6Hn2eZvKYlo2C"),
                ] {
                    tx.add_credit(&CreditEntry {
                        user_id: None,
                        stripe_customer_id: Some(customer.to_owned()),
                        amount,
                        reason: CreditReason::SubscriptionPeriod,
                        source_key: key.to_owned(),
                        created_at: at(1),
                    })
                    .await?;
                }
                tx.attribute_customer_rows(CUSTOMER, USER).await?;
                let user_of = |payments: Vec<PaymentRecord>| payments[0].user_id.clone();
                Ok((
                    user_of(tx.payments_matching(Some(INTENT), None).await?),
                    user_of(
                        tx.payments_matching(Some("pi_3Sc4Nw2eZvKYlo2C7Jr1"), None)
                            .await?,
                    ),
                    user_of(
                        tx.payments_matching(Some("pi_3Td8Lk2eZvKYlo2C2Fx6"), None)
                            .await?,
                    ),
                    tx.order_by_payment_intent(INTENT).await?.unwrap().user_id,
                    tx.order_by_payment_intent("pi_3Td8Lk2eZvKYlo2C2Fx6")
                        .await?
                        .unwrap()
                        .user_id,
                    tx.credit_balance(USER).await?,
                    tx.credit_balance(OTHER_USER).await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(
        answers,
        (
            Some(USER.to_owned()),
            Some(OTHER_USER.to_owned()),
            None,
            Some(USER.to_owned()),
            None,
            300,
            0
        )
    );
}
