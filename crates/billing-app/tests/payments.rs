//! One-time payments, refunds and disputes: found by payment intent, order-independent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use billing_domain::facts::{ChargeFacts, CheckoutMode, CheckoutSession, DisputeFacts};
use billing_domain::{BillingEvent, Fact};
use billing_ports::{BillingStore, DisputeStatus, OrderRecord, RefundStatus, StoreError, TxFuture};
use billing_store_diesel::DieselStore;
use support::{app, t0, usd};

on_both_backends!(
    a_refund_before_its_order_is_not_lost,
    disputes_are_found_by_payment_intent_and_closed_is_final,
);

fn event(id: &str, event_type: &str, at: i64, fact: Fact) -> BillingEvent {
    BillingEvent {
        id: id.to_owned(),
        event_type: event_type.to_owned(),
        api_version: Some("2024-06-20".to_owned()),
        livemode: false,
        created: t0() + chrono::TimeDelta::seconds(at),
        fact,
    }
}

fn checkout(tag: &str) -> BillingEvent {
    event(
        &format!("evt_{tag}_checkout"),
        "checkout.session.completed",
        0,
        Fact::CheckoutCompleted(CheckoutSession {
            id: format!("cs_{tag}"),
            mode: CheckoutMode::Payment,
            customer_id: Some(format!("cus_{tag}")),
            customer_email: None,
            client_reference_id: None,
            metadata_user_id: Some(format!("user_{tag}")),
            subscription_id: None,
            payment_intent_id: Some(format!("pi_{tag}")),
            amount_total: Some(usd(5000)),
            payment_status: Some("paid".to_owned()),
        }),
    )
}

fn refunded(tag: &str, n: u32, total: i64) -> BillingEvent {
    event(
        &format!("evt_{tag}_refund_{n}"),
        "charge.refunded",
        10,
        Fact::ChargeRefunded(ChargeFacts {
            id: format!("ch_{tag}"),
            payment_intent_id: Some(format!("pi_{tag}")),
            amount: usd(5000),
            amount_refunded: total,
        }),
    )
}

fn dispute(tag: &str, closed: bool, status: &str) -> BillingEvent {
    event(
        &format!("evt_{tag}_dispute_{closed}"),
        if closed {
            "charge.dispute.closed"
        } else {
            "charge.dispute.created"
        },
        20,
        Fact::Dispute {
            closed,
            dispute: DisputeFacts {
                id: format!("dp_{tag}"),
                charge_id: Some(format!("ch_{tag}")),
                payment_intent_id: Some(format!("pi_{tag}")),
                amount: usd(5000),
                status: status.to_owned(),
            },
        },
    )
}

async fn order(store: &DieselStore, tag: &str) -> OrderRecord {
    let pi = format!("pi_{tag}");
    store
        .transaction(move |tx| -> TxFuture<'_, _, StoreError> {
            Box::pin(async move { tx.order_by_payment_intent(&pi).await })
        })
        .await
        .unwrap()
        .expect("order exists")
}

async fn a_refund_before_its_order_is_not_lost(store: DieselStore) {
    let app = app(store.clone());
    app.ingest(refunded("r", 1, 2000), "{}".into())
        .await
        .unwrap();
    app.ingest(checkout("r"), "{}".into()).await.unwrap();
    app.ingest(checkout("r"), "{}".into()).await.unwrap();
    let o = order(&store, "r").await;
    assert_eq!(
        (o.refund_status, o.amount_refunded),
        (RefundStatus::Partial, 2000)
    );
    assert_eq!(o.user_id.as_deref(), Some("user_r"));
    assert_eq!(o.amount, usd(5000));
    app.ingest(refunded("r", 2, 5000), "{}".into())
        .await
        .unwrap();
    let o = order(&store, "r").await;
    assert_eq!(
        (o.refund_status, o.amount_refunded),
        (RefundStatus::Full, 5000)
    );
}

async fn disputes_are_found_by_payment_intent_and_closed_is_final(store: DieselStore) {
    let app = app(store.clone());
    app.ingest(checkout("d"), "{}".into()).await.unwrap();
    // Delivered out of order: the closing event first.
    app.ingest(dispute("d", true, "lost"), "{}".into())
        .await
        .unwrap();
    app.ingest(dispute("d", false, "needs_response"), "{}".into())
        .await
        .unwrap();
    assert_eq!(order(&store, "d").await.dispute_status, DisputeStatus::Lost);
}
