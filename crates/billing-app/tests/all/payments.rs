//! One-time payments, refunds and disputes: found by payment intent, order-independent.

use crate::support::{app, t0, usd};
use billing_app::IngestOutcome;
use billing_domain::facts::{
    ChargeFacts, CheckoutMode, CheckoutSession, DisputeFacts, PaymentIntentChange,
    PaymentIntentFacts, RefundFacts,
};
use billing_domain::{BillingEvent, Fact};
use billing_ports::testing::{FaultyStore, StoreCall};
use billing_ports::{
    BillingStore, ChangeKind, DisputeStatus, OrderRecord, PaymentRecord, PaymentStatus,
    RefundStatus, StoreError, TxFuture,
};
use billing_store_diesel::DieselStore;

on_both_backends!(
    a_refund_before_its_order_is_not_lost,
    disputes_are_found_by_payment_intent_and_closed_is_final,
    a_payment_intent_seen_first_starts_in_the_event_status,
    a_late_event_never_undoes_a_final_payment_status,
    charges_without_a_payment_intent_keep_refunds_and_disputes,
    a_row_known_by_its_charge_joins_its_payment_intent,
    dispute_statuses_are_kept_with_their_outcome,
    a_payment_is_one_change_record_whichever_event_reports_it_first,
    access_is_read_again_only_after_effects_that_wrote_it,
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
            customer_id: None,
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
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
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

fn intent(tag: &str, change: PaymentIntentChange, at: i64, charge: Option<&str>) -> BillingEvent {
    let (event_type, status, last_error) = match change {
        PaymentIntentChange::Succeeded => ("payment_intent.succeeded", "succeeded", None),
        PaymentIntentChange::PaymentFailed => (
            "payment_intent.payment_failed",
            "requires_payment_method",
            Some("Your card was declined.".to_owned()),
        ),
        PaymentIntentChange::Processing => ("payment_intent.processing", "processing", None),
        PaymentIntentChange::RequiresAction => {
            ("payment_intent.requires_action", "requires_action", None)
        }
        PaymentIntentChange::Canceled => ("payment_intent.canceled", "canceled", None),
    };
    event(
        &format!("evt_{tag}_{status}_{at}"),
        event_type,
        at,
        Fact::PaymentIntent {
            change,
            payment_intent: PaymentIntentFacts {
                id: format!("pi_{tag}"),
                customer_id: None,
                amount: usd(5000),
                status: status.to_owned(),
                last_error,
                latest_charge_id: charge.map(str::to_owned),
                metadata_user_id: Some(format!("user_{tag}")),
            },
        },
    )
}

fn charge_refunded(charge: &str, pi: Option<&str>, n: u32, total: i64) -> BillingEvent {
    event(
        &format!("evt_{charge}_refund_{n}"),
        "charge.refunded",
        30 + i64::from(n),
        Fact::ChargeRefunded(ChargeFacts {
            id: charge.to_owned(),
            payment_intent_id: pi.map(str::to_owned),
            customer_id: Some("cus_L0wq7Fz2RmXk8c".to_owned()),
            amount: usd(5000),
            amount_refunded: total,
        }),
    )
}

fn charge_dispute(
    n: u32,
    charge: &str,
    pi: Option<&str>,
    event_type: &str,
    status: &str,
) -> BillingEvent {
    event(
        &format!("evt_{charge}_dispute_{n}"),
        event_type,
        40 + i64::from(n),
        Fact::Dispute {
            closed: event_type == "charge.dispute.closed",
            dispute: DisputeFacts {
                id: format!("du_{charge}"),
                charge_id: Some(charge.to_owned()),
                payment_intent_id: pi.map(str::to_owned),
                amount: usd(5000),
                status: status.to_owned(),
            },
        },
    )
}

async fn payments(
    store: &DieselStore,
    pi: Option<&str>,
    charge: Option<&str>,
) -> Vec<PaymentRecord> {
    let (pi, charge) = (pi.map(str::to_owned), charge.map(str::to_owned));
    store
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { tx.payments_matching(pi.as_deref(), charge.as_deref()).await })
        })
        .await
        .unwrap()
}

async fn payment(store: &DieselStore, pi: Option<&str>, charge: Option<&str>) -> PaymentRecord {
    let mut rows = payments(store, pi, charge).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.remove(0)
}

async fn a_payment_intent_seen_first_starts_in_the_event_status(store: DieselStore) {
    let app = app(store.clone());
    app.ingest(
        intent("f", PaymentIntentChange::PaymentFailed, 5, Some("ch_f1")),
        "{}".into(),
    )
    .await
    .unwrap();
    let p = payment(&store, Some("pi_f"), None).await;
    assert_eq!(p.status, PaymentStatus::Failed);
    assert_eq!(p.last_error.as_deref(), Some("Your card was declined."));
    assert_eq!(p.charge_id.as_deref(), Some("ch_f1"));
    assert_eq!(p.user_id.as_deref(), Some("user_f"));
    for (tag, change, status) in [
        (
            "p",
            PaymentIntentChange::Processing,
            PaymentStatus::Processing,
        ),
        (
            "a",
            PaymentIntentChange::RequiresAction,
            PaymentStatus::RequiresAction,
        ),
        ("c", PaymentIntentChange::Canceled, PaymentStatus::Canceled),
    ] {
        app.ingest(intent(tag, change, 5, None), "{}".into())
            .await
            .unwrap();
        let p = payment(&store, Some(&format!("pi_{tag}")), None).await;
        assert_eq!((p.status, p.last_error), (status, None), "{tag}");
    }
}

async fn a_late_event_never_undoes_a_final_payment_status(store: DieselStore) {
    let app = app(store.clone());
    // The retry succeeded at 20; the failure of the first attempt (10) and an even older
    // "processing" (5) arrive afterwards.
    for e in [
        intent("s", PaymentIntentChange::Succeeded, 20, Some("ch_s2")),
        intent("s", PaymentIntentChange::PaymentFailed, 10, Some("ch_s1")),
        intent("s", PaymentIntentChange::Processing, 5, None),
    ] {
        app.ingest(e, "{}".into()).await.unwrap();
    }
    let p = payment(&store, Some("pi_s"), None).await;
    assert_eq!((p.status, p.last_error), (PaymentStatus::Succeeded, None));
    // Among non-final states the newest event decides: requires_action (8) then a late
    // processing (6) leaves requires_action.
    for e in [
        intent("n", PaymentIntentChange::RequiresAction, 8, None),
        intent("n", PaymentIntentChange::Processing, 6, None),
    ] {
        app.ingest(e, "{}".into()).await.unwrap();
    }
    let p = payment(&store, Some("pi_n"), None).await;
    assert_eq!(p.status, PaymentStatus::RequiresAction);
}

async fn charges_without_a_payment_intent_keep_refunds_and_disputes(store: DieselStore) {
    let app = app(store.clone());
    let charge = "ch_1GqJ4k2eZvKYlo2C7sTf";
    app.ingest(charge_refunded(charge, None, 1, 1500), "{}".into())
        .await
        .unwrap();
    app.ingest(
        event(
            "evt_1GqJ5m2eZvKYlo2Cre01",
            "charge.refund.updated",
            35,
            Fact::RefundUpdated(RefundFacts {
                id: "re_1GqJ5m2eZvKYlo2CxQ8d".to_owned(),
                charge_id: Some(charge.to_owned()),
                payment_intent_id: None,
                amount: usd(2500),
                status: "succeeded".to_owned(),
            }),
        ),
        "{}".into(),
    )
    .await
    .unwrap();
    app.ingest(
        charge_dispute(1, charge, None, "charge.dispute.created", "needs_response"),
        "{}".into(),
    )
    .await
    .unwrap();
    let p = payment(&store, None, Some(charge)).await;
    assert_eq!(p.key, charge);
    assert_eq!(p.payment_intent_id, None);
    assert_eq!(p.amount_refunded, 2500);
    assert_eq!(p.amount, usd(5000));
    assert_eq!(p.stripe_customer_id.as_deref(), Some("cus_L0wq7Fz2RmXk8c"));
    assert_eq!(p.dispute_status, DisputeStatus::Open);
    assert_eq!(p.dispute_stripe_status.as_deref(), Some("needs_response"));
}

async fn a_row_known_by_its_charge_joins_its_payment_intent(store: DieselStore) {
    let app = app(store.clone());
    // An old dispute rendering names only the charge; a refund names the charge only too.
    // Then the payment intent's own event names both: one payment remains, with everything.
    app.ingest(
        charge_dispute(
            1,
            "ch_j",
            None,
            "charge.dispute.created",
            "warning_needs_response",
        ),
        "{}".into(),
    )
    .await
    .unwrap();
    app.ingest(checkout("j"), "{}".into()).await.unwrap();
    app.ingest(charge_refunded("ch_j", None, 1, 700), "{}".into())
        .await
        .unwrap();
    assert_eq!(payments(&store, Some("pi_j"), Some("ch_j")).await.len(), 2);
    app.ingest(
        intent("j", PaymentIntentChange::Succeeded, 50, Some("ch_j")),
        "{}".into(),
    )
    .await
    .unwrap();
    let p = payment(&store, Some("pi_j"), Some("ch_j")).await;
    assert_eq!(p.key, "pi_j");
    assert_eq!(p.charge_id.as_deref(), Some("ch_j"));
    assert_eq!(p.amount_refunded, 700);
    assert_eq!(p.status, PaymentStatus::Succeeded);
    assert_eq!(
        p.dispute_stripe_status.as_deref(),
        Some("warning_needs_response")
    );
    // The order is reached through the payment intent from now on.
    app.ingest(charge_refunded("ch_j", Some("pi_j"), 2, 900), "{}".into())
        .await
        .unwrap();
    let o = order(&store, "j").await;
    assert_eq!(
        (o.refund_status, o.amount_refunded),
        (RefundStatus::Partial, 900)
    );
}

async fn dispute_statuses_are_kept_with_their_outcome(store: DieselStore) {
    let app = app(store.clone());
    let cases = [
        (
            "ch_inq",
            &[
                ("charge.dispute.created", "warning_needs_response"),
                ("charge.dispute.updated", "warning_under_review"),
                ("charge.dispute.closed", "warning_closed"),
            ][..],
            DisputeStatus::ClosedWithoutChargeback,
            "warning_closed",
        ),
        (
            "ch_prev",
            &[
                ("charge.dispute.created", "needs_response"),
                ("charge.dispute.closed", "prevented"),
            ][..],
            DisputeStatus::ClosedWithoutChargeback,
            "prevented",
        ),
        (
            "ch_won",
            &[
                ("charge.dispute.created", "needs_response"),
                ("charge.dispute.funds_withdrawn", "under_review"),
                ("charge.dispute.closed", "won"),
            ][..],
            DisputeStatus::Won,
            "won",
        ),
        (
            "ch_lost",
            &[
                ("charge.dispute.closed", "lost"),
                ("charge.dispute.created", "needs_response"),
            ][..],
            DisputeStatus::Lost,
            "lost",
        ),
    ];
    for (charge, events, outcome, stripe_status) in cases {
        for (n, (event_type, status)) in events.iter().enumerate() {
            let n = u32::try_from(n).unwrap();
            app.ingest(
                charge_dispute(n, charge, None, event_type, status),
                "{}".into(),
            )
            .await
            .unwrap();
        }
        let p = payment(&store, None, Some(charge)).await;
        assert_eq!(
            (p.dispute_status, p.dispute_stripe_status.as_deref()),
            (outcome, Some(stripe_status)),
            "{charge}"
        );
    }
}

/// `intent` without `metadata.user_id`: an invoice's payment intent, or one made outside our
/// Checkout.
fn foreign_intent(tag: &str, change: PaymentIntentChange, at: i64) -> BillingEvent {
    let mut event = intent(tag, change, at, Some(&format!("ch_{tag}")));
    if let Fact::PaymentIntent { payment_intent, .. } = &mut event.fact {
        payment_intent.metadata_user_id = None;
        payment_intent.customer_id = Some(format!("cus_{tag}"));
    }
    event
}

async fn payment_records(app: &billing_app::BillingApp<DieselStore>, tag: &str) -> usize {
    crate::feed::all_changes(app)
        .await
        .iter()
        .filter(|r| r.change.user_id == format!("user_{tag}"))
        .filter(|r| {
            matches!(
                r.change.kind,
                ChangeKind::PaymentSucceeded | ChangeKind::PaymentFailed
            )
        })
        .count()
}

async fn a_payment_is_one_change_record_whichever_event_reports_it_first(store: DieselStore) {
    let app = app(store.clone());
    let cases: [(&str, Vec<BillingEvent>); 4] = [
        // Our Checkout's intent (metadata) before its session, and after it.
        (
            "ours_first",
            vec![
                intent(
                    "ours_first",
                    PaymentIntentChange::Succeeded,
                    1,
                    Some("ch_a"),
                ),
                checkout("ours_first"),
            ],
        ),
        (
            "session_first",
            vec![
                checkout("session_first"),
                intent(
                    "session_first",
                    PaymentIntentChange::Succeeded,
                    1,
                    Some("ch_b"),
                ),
            ],
        ),
        // An intent without metadata, then the session that makes it a one-time purchase.
        (
            "bare_first",
            vec![
                foreign_intent("bare_first", PaymentIntentChange::Succeeded, 1),
                checkout("bare_first"),
            ],
        ),
        (
            "bare_last",
            vec![
                checkout("bare_last"),
                foreign_intent("bare_last", PaymentIntentChange::Succeeded, 1),
            ],
        ),
    ];
    for (tag, events) in cases {
        for event in events {
            app.ingest(event, "{}".into()).await.unwrap();
        }
        assert_eq!(payment_records(&app, tag).await, 1, "{tag}");
    }
    // An invoice's intent (no metadata, no Checkout session) of a linked customer, failed then
    // succeeded: its invoice reports the payment, the intent writes nothing.
    let customer = crate::support::Story::new("invoice_pi").customer_created(0);
    app.ingest(customer, "{}".into()).await.unwrap();
    for change in [
        PaymentIntentChange::PaymentFailed,
        PaymentIntentChange::Succeeded,
    ] {
        app.ingest(foreign_intent("invoice_pi", change, 5), "{}".into())
            .await
            .unwrap();
    }
    assert_eq!(payment_records(&app, "invoice_pi").await, 0);
    assert_eq!(
        payment(&store, Some("pi_invoice_pi"), None).await.status,
        PaymentStatus::Succeeded,
        "the payment row itself is kept"
    );
}

/// The feed reads a user's access before an event's effects, and again after only when the
/// effects wrote what access is read from: a one-time payment's intent (a payment row, no
/// subscription, customer or credit) reads it once; its Checkout session (a customer) twice.
/// The feed still chains and ends on the user's entitlements.
async fn access_is_read_again_only_after_effects_that_wrote_it(store: DieselStore) {
    let faulty = FaultyStore::new(store);
    let app = app(faulty.clone());
    let tag = "reads_Pq7Zx2";
    let reads = || faulty.calls(StoreCall::AccessRows);

    let at_start = reads();
    app.ingest(checkout(tag), "{}".into()).await.unwrap();
    assert_eq!(
        reads() - at_start,
        2,
        "the session links a customer: read again"
    );

    let at_intent = reads();
    let outcome = app
        .ingest(
            intent(
                tag,
                PaymentIntentChange::Succeeded,
                5,
                Some("ch_reads_Pq7Zx2"),
            ),
            "{}".into(),
        )
        .await
        .unwrap();
    assert_eq!(outcome, IngestOutcome::Processed);
    assert_eq!(reads() - at_intent, 1, "a payment row only: read once");

    let problems = crate::feed::check_replay(&app, [format!("user_{tag}")]).await;
    assert!(problems.is_empty(), "{problems:#?}");
}
