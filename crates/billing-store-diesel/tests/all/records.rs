//! Round trips of the rows whose shape carries a rule: payments known by payment intent or by
//! charge, and subscriptions with their items and their two ordering positions. Every test runs
//! on Postgres and on SQLite, each in its own fresh database.

use billing_domain::{Currency, Money, SubscriptionStatus};
use billing_ports::{
    AccessRows, BillingStore, CustomerRecord, DisputeStatus, EventPosition, EventStatus, NewEvent,
    PaymentRecord, PaymentStatus, StoreError, SubscriptionRecord, TxFuture,
};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, on_both_backends};

use crate::{at, pro_subscription};

mod kept_access;
mod kept_payments;

use kept_access::{
    credit, credit_sources_read_ahead_are_added_once_and_committed,
    kept_access_rows_are_what_a_read_finds_after_every_write,
};
use kept_payments::{
    a_known_user_is_never_written_back_to_none,
    attribution_gives_only_the_customers_rows_without_a_user, kept_payments_follow_every_write,
};

on_both_backends!(
    payments_are_found_by_payment_intent_or_by_charge,
    a_payment_needs_a_payment_intent_or_a_charge,
    a_charge_belongs_to_one_payment,
    a_subscription_keeps_its_items_and_both_positions,
    a_failure_whose_reason_quotes_a_nul_is_recorded,
    a_users_access_rows_are_read_together_and_their_writes_counted,
    kept_access_rows_are_what_a_read_finds_after_every_write,
    credit_sources_read_ahead_are_added_once_and_committed,
    kept_payments_follow_every_write,
    a_known_user_is_never_written_back_to_none,
    attribution_gives_only_the_customers_rows_without_a_user,
);

pub(crate) fn payment(key: &str, pi: Option<&str>, charge: Option<&str>) -> PaymentRecord {
    PaymentRecord {
        key: key.to_owned(),
        payment_intent_id: pi.map(str::to_owned),
        charge_id: charge.map(str::to_owned),
        stripe_customer_id: Some("cus_Q8mT2vLx9RkA4e".to_owned()),
        user_id: None,
        amount: Money::new(4_900, Currency::parse("eur").unwrap()),
        status: PaymentStatus::Failed,
        status_at: Some(at(7)),
        last_error: Some("Your card was declined.".to_owned()),
        amount_refunded: 1_200,
        dispute_status: DisputeStatus::ClosedWithoutChargeback,
        dispute_stripe_status: Some("warning_closed".to_owned()),
    }
}

async fn payments_are_found_by_payment_intent_or_by_charge(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let by_intent = payment(
        "pi_3QzK8e2eZvKYlo2C1Xb7",
        Some("pi_3QzK8e2eZvKYlo2C1Xb7"),
        Some("ch_3QzK8e2eZvKYlo2C0aT4"),
    );
    let by_charge = payment(
        "ch_1Nv5pD2eZvKYlo2Cq9Wm",
        None,
        Some("ch_1Nv5pD2eZvKYlo2Cq9Wm"),
    );
    let (a, b) = (by_intent.clone(), by_charge.clone());
    let found = db
        .store()
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                tx.save_payment(&a, at(8)).await?;
                tx.save_payment(&b, at(8)).await?;
                let intent = tx
                    .payments_matching(Some("pi_3QzK8e2eZvKYlo2C1Xb7"), None)
                    .await?;
                let latest_charge = tx
                    .payments_matching(None, Some("ch_3QzK8e2eZvKYlo2C0aT4"))
                    .await?;
                let both = tx
                    .payments_matching(
                        Some("pi_3QzK8e2eZvKYlo2C1Xb7"),
                        Some("ch_1Nv5pD2eZvKYlo2Cq9Wm"),
                    )
                    .await?;
                let none = tx.payments_matching(None, None).await?;
                tx.delete_payment(&b.key).await?;
                let after_delete = tx
                    .payments_matching(None, Some("ch_1Nv5pD2eZvKYlo2Cq9Wm"))
                    .await?;
                Ok((intent, latest_charge, both, none, after_delete))
            })
        })
        .await
        .unwrap();
    assert_eq!(found.0, vec![by_intent.clone()]);
    assert_eq!(found.1, vec![by_intent.clone()]);
    assert_eq!(found.2.len(), 2, "{:?}", found.2);
    assert!(found.2.contains(&by_intent) && found.2.contains(&by_charge));
    assert!(found.3.is_empty());
    assert!(found.4.is_empty());
}

async fn a_payment_needs_a_payment_intent_or_a_charge(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let orphan = payment("pi_3Rb1Yt2eZvKYlo2CkP0q", None, None);
    let result = db
        .store()
        .transaction(move |tx| -> TxFuture<'_, '_, (), StoreError> {
            Box::pin(async move { tx.save_payment(&orphan, at(1)).await })
        })
        .await;
    assert!(matches!(result, Err(StoreError::Refused(_))), "{result:?}");
}

async fn a_charge_belongs_to_one_payment(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let first = payment(
        "pi_3Sd0Lw2eZvKYlo2Cz1Hn",
        Some("pi_3Sd0Lw2eZvKYlo2Cz1Hn"),
        Some("ch_3Sd0Lw2eZvKYlo2CuY6r"),
    );
    let second = payment(
        "ch_3Sd0Lw2eZvKYlo2CuY6r",
        None,
        Some("ch_3Sd0Lw2eZvKYlo2CuY6r"),
    );
    let result = db
        .store()
        .transaction(move |tx| -> TxFuture<'_, '_, (), StoreError> {
            Box::pin(async move {
                tx.save_payment(&first, at(1)).await?;
                tx.save_payment(&second, at(2)).await
            })
        })
        .await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
}

async fn a_subscription_keeps_its_items_and_both_positions(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let subscription = SubscriptionRecord {
        stripe_subscription_id: "sub_1RkZp42eZvKYlo2CH3sd".to_owned(),
        stripe_customer_id: "cus_Q8mT2vLx9RkA4e".to_owned(),
        price_id: Some("price_enterprise_monthly".to_owned()),
        item_price_ids: vec![
            "price_1RkZ0a2eZvKYlo2Cseats".to_owned(),
            "price_enterprise_monthly".to_owned(),
        ],
        tier: "ENTERPRISE".to_owned(),
        status: SubscriptionStatus::PastDue,
        current_period_start: Some(at(0)),
        current_period_end: Some(at(2_592_000)),
        cancel_at_period_end: false,
        canceled_at: None,
        trial_end: None,
        grace_period_end: Some(at(259_200)),
        dunning_invoice_id: Some("in_1RkZs92eZvKYlo2CwV0e".to_owned()),
        snapshot_position: EventPosition {
            created: at(10),
            rank: 3,
            event_id: "evt_1RkZt02eZvKYlo2CnB7c".to_owned(),
        },
        status_position: EventPosition {
            created: at(20),
            rank: 4,
            event_id: "evt_1RkZu62eZvKYlo2Cy2Lk".to_owned(),
        },
    };
    let saved = subscription.clone();
    let read = db
        .store()
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                tx.save_customer(
                    &CustomerRecord {
                        stripe_customer_id: saved.stripe_customer_id.clone(),
                        user_id: Some("user_5d1f0c".to_owned()),
                        email: None,
                        deleted: false,
                    },
                    at(0),
                )
                .await?;
                tx.save_subscription(&saved, at(21)).await?;
                tx.subscription(&saved.stripe_subscription_id).await
            })
        })
        .await
        .unwrap();
    assert_eq!(read, Some(subscription));
}

async fn a_failure_whose_reason_quotes_a_nul_is_recorded(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let event = NewEvent {
        id: "evt_1RqT0x2eZvKYlo2CnulR".to_owned(),
        event_type: "charge.dispute.created".to_owned(),
        api_version: Some("2025-03-31.basil".to_owned()),
        livemode: true,
        created: at(0),
        payload: r#"{"id":"evt_1RqT0x2eZvKYlo2CnulR","data":{"object":{"object":"a\u0000b"}}}"#
            .to_owned(),
        received_at: at(1),
    };
    db.store()
        .record_failure(
            &event,
            &crate::transient("expected a `dispute` object, found `a\0b`"),
            at(1),
        )
        .await
        .unwrap();
    let stored = db.store().event(&event.id).await.unwrap().unwrap();
    assert_eq!(stored.status, EventStatus::Failed);
    assert_eq!(
        stored.last_error.as_deref(),
        Some("expected a `dispute` object, found `a\u{FFFD}b`")
    );
    assert_eq!(stored.payload, event.payload);
}

/// `access_rows` reads what the three separate reads read (the user's customer, its
/// subscriptions in id order, the user's balance), for a user with no customer, one with a
/// customer and no subscription, and one with two; the write count grows by one per write
/// statement to those rows and not on reads.
async fn a_users_access_rows_are_read_together_and_their_writes_counted(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let (alone, linked, subscribed) = ("user_9Tk2Wq", "user_h3Lp0X", "user_Vb81sN");
    let read = db
        .store()
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                let start = tx.access_writes();
                tx.add_credit(&credit(alone, 700, "checkout:cs_test_a1Lq9Zx"))
                    .await?;
                tx.add_credit(&credit(subscribed, 1_500, "invoice:in_1Rm0Tq2eZvKYlo2C"))
                    .await?;
                tx.add_credit(&credit(subscribed, 250, "checkout:cs_test_b7Pw3Ke"))
                    .await?;
                for (customer, user) in [
                    ("cus_R4nW8qLz2TbX1c", linked),
                    ("cus_Q8mT2vLx9RkA4e", subscribed),
                ] {
                    tx.save_customer(
                        &CustomerRecord {
                            stripe_customer_id: customer.to_owned(),
                            user_id: Some(user.to_owned()),
                            email: None,
                            deleted: false,
                        },
                        at(2),
                    )
                    .await?;
                }
                for id in ["sub_1Tz9Qa2eZvKYlo2Cq0Pe", "sub_1Mc3Xr2eZvKYlo2Cw8Lh"] {
                    let s = pro_subscription(
                        id,
                        "cus_Q8mT2vLx9RkA4e",
                        SubscriptionStatus::Active,
                        "evt_1Tz9Qb2eZvKYlo2CpL4s",
                        3,
                    );
                    tx.save_subscription(&s, at(3)).await?;
                }
                tx.attribute_customer_rows("cus_R4nW8qLz2TbX1c", linked)
                    .await?;
                let written = tx.access_writes();
                let mut rows = Vec::new();
                let mut separately = Vec::new();
                for user in [alone, linked, subscribed, "user_unknown_0sJ4"] {
                    rows.push(tx.access_rows(user).await?);
                    let customer = tx.customer_of_user(user).await?;
                    let subscriptions = match &customer {
                        Some(c) => tx.customer_subscriptions(&c.stripe_customer_id).await?,
                        None => Vec::new(),
                    };
                    separately.push(AccessRows {
                        customer: customer.map(|c| c.stripe_customer_id),
                        subscriptions,
                        credits: tx.credit_balance(user).await?,
                    });
                }
                Ok((start, written, tx.access_writes(), rows, separately))
            })
        })
        .await
        .unwrap();
    let (start, written, after_reads, rows, separately) = read;
    assert_eq!(start, Some(0));
    assert_eq!(
        written,
        Some(8),
        "3 credits, 2 customers, 2 subscriptions, 1 attribution"
    );
    assert_eq!(after_reads, written, "reads are not writes");
    assert_eq!(rows, separately);
    assert_eq!(rows[0].customer, None);
    assert_eq!(rows[0].credits, 700);
    assert_eq!(rows[1].customer.as_deref(), Some("cus_R4nW8qLz2TbX1c"));
    assert!(rows[1].subscriptions.is_empty());
    assert_eq!(rows[2].credits, 1_750);
    let ids: Vec<&str> = rows[2]
        .subscriptions
        .iter()
        .map(|s| s.stripe_subscription_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["sub_1Mc3Xr2eZvKYlo2Cw8Lh", "sub_1Tz9Qa2eZvKYlo2Cq0Pe"]
    );
    assert_eq!(rows[3], AccessRows::default());
}
