//! Exactly-once ingestion against real databases (Postgres and SQLite, a fresh database each).

use crate::support::{self, Story, app, credits, customer_user, subscription};
use billing_app::{AppError, IngestOutcome};
use billing_domain::facts::{InvoiceChange, SubscriptionChange};
use billing_domain::{BillingEvent, Fact, SubscriptionStatus};
use billing_ports::testing::{FaultyStore, StoreCall};
use billing_ports::{BillingStore, Cause, EventStatus, StoreError};
use billing_store_diesel::DieselStore;
use chrono::TimeDelta;

on_both_backends!(
    fifty_concurrent_deliveries_apply_once,
    one_purchase_delivered_concurrently_grants_credits_once,
    a_failure_midway_leaves_no_partial_rows_and_a_retry_applies,
    an_older_update_never_regresses_a_newer_one,
    subscription_before_customer_is_kept_and_linked_later,
    a_failing_invoice_sets_one_grace_deadline_per_dunning_cycle,
    unknown_event_types_are_ignored,
);

async fn fifty_concurrent_deliveries_apply_once(store: DieselStore) {
    let app = app(store);
    let story = Story::new("fifty");
    let created = story.subscription(
        "created",
        SubscriptionChange::Created,
        0,
        story.snapshot(SubscriptionStatus::Active, 0),
    );
    app.ingest(created, "{}".into()).await.unwrap();
    let paid = story.invoice("paid", InvoiceChange::Paid, 1, "1", 0, 2000);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            let paid = paid.clone();
            tokio::spawn(async move { app.ingest(paid, "{}".into()).await })
        })
        .collect();
    let mut processed = 0;
    let mut duplicates = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            IngestOutcome::Processed => processed += 1,
            IngestOutcome::Duplicate(EventStatus::Processed) => duplicates += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((processed, duplicates), (1, 49));
    assert_eq!(credits(app.store().as_ref(), &story.user).await, 1000);
}

async fn one_purchase_delivered_concurrently_grants_credits_once(store: DieselStore) {
    let app = app(store);
    let story = Story::new("purchase");
    let events = vec![
        story.checkout(0),
        story.subscription(
            "created",
            SubscriptionChange::Created,
            0,
            story.snapshot(SubscriptionStatus::Active, 0),
        ),
        story.invoice("paid", InvoiceChange::Paid, 1, "1", 0, 2000),
        story.invoice(
            "succeeded",
            InvoiceChange::PaymentSucceeded,
            1,
            "1",
            0,
            2000,
        ),
    ];
    let mut tasks = Vec::new();
    for _ in 0..5 {
        for event in &events {
            let app = app.clone();
            let event = event.clone();
            tasks.push(tokio::spawn(
                async move { app.ingest(event, "{}".into()).await },
            ));
        }
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(credits(app.store().as_ref(), &story.user).await, 1000);
    assert_eq!(
        customer_user(app.store().as_ref(), &story.customer).await,
        Some(story.user.clone())
    );
    let sub = subscription(app.store().as_ref(), &story.subscription)
        .await
        .unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(sub.tier, "PRO");
}

async fn a_failure_midway_leaves_no_partial_rows_and_a_retry_applies(store: DieselStore) {
    let story = Story::new("failing");
    // The invoice's credits fail: injected midway, after the customer row was written.
    let faulty = FaultyStore::new(store.clone());
    faulty.fail(
        StoreCall::AddCredit,
        StoreError::Query(Cause::msg("injected failure while adding credits")),
    );
    let failing = app(faulty);
    failing
        .ingest(
            story.subscription(
                "created",
                SubscriptionChange::Created,
                0,
                story.snapshot(SubscriptionStatus::PastDue, 0),
            ),
            "{}".into(),
        )
        .await
        .unwrap();
    let before = subscription(&store, &story.subscription).await.unwrap();
    // The invoice's effects: credits (which fail here), then the subscription back to active.
    let paid = story.invoice("paid", InvoiceChange::Paid, 5, "1", 0, 2000);
    let error = failing.ingest(paid.clone(), "{}".into()).await.unwrap_err();
    assert!(
        matches!(error.cause, AppError::Store(StoreError::Query(_))) && error.recorded,
        "{error:?}"
    );
    assert_eq!(
        subscription(&store, &story.subscription).await.unwrap(),
        before
    );
    assert_eq!(credits(&store, &story.user).await, 0);
    let stored = store.event(&paid.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.attempts), (EventStatus::Failed, 1));
    assert!(stored.last_error.clone().unwrap().contains("injected"));
    // The stored reason is the whole chain, each part once.
    assert_eq!(
        stored.last_error.as_deref(),
        Some("store: query failed: injected failure while adding credits")
    );

    let healthy = app(store.clone());
    assert_eq!(
        healthy.ingest(paid.clone(), "{}".into()).await.unwrap(),
        IngestOutcome::Processed
    );
    assert_eq!(credits(&store, &story.user).await, 1000);
    let after = subscription(&store, &story.subscription).await.unwrap();
    assert_eq!(
        (after.status, after.grace_period_end),
        (SubscriptionStatus::Active, None)
    );
    assert_eq!(
        store.event(&paid.id).await.unwrap().unwrap().status,
        EventStatus::Processed
    );
}

async fn an_older_update_never_regresses_a_newer_one(store: DieselStore) {
    let app = app(store);
    let story = Story::new("order");
    let mut newer = story.snapshot(SubscriptionStatus::Active, 0);
    newer.cancel_at_period_end = true;
    let t2 = story.subscription("t2", SubscriptionChange::Updated, 20, newer);
    let t1 = story.subscription(
        "t1",
        SubscriptionChange::Updated,
        10,
        story.snapshot(SubscriptionStatus::PastDue, 0),
    );
    assert_eq!(
        app.ingest(t2.clone(), "{}".into()).await.unwrap(),
        IngestOutcome::Processed
    );
    assert_eq!(
        app.ingest(t1.clone(), "{}".into()).await.unwrap(),
        IngestOutcome::Stale
    );
    let sub = subscription(app.store().as_ref(), &story.subscription)
        .await
        .unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert!(sub.cancel_at_period_end);
    assert_eq!(sub.snapshot_position.event_id, t2.id);
    let stale = app.store().event(&t1.id).await.unwrap().unwrap();
    assert_eq!(stale.status, EventStatus::Stale);
    // A redelivery of the stale event is a duplicate, not a second look.
    assert_eq!(
        app.ingest(t1, "{}".into()).await.unwrap(),
        IngestOutcome::Duplicate(EventStatus::Stale)
    );
}

async fn subscription_before_customer_is_kept_and_linked_later(store: DieselStore) {
    let app = app(store);
    let story = Story::new("early");
    let mut snapshot = story.snapshot(SubscriptionStatus::Active, 0);
    snapshot.metadata_user_id = None;
    let created = story.subscription("created", SubscriptionChange::Created, 0, snapshot);
    app.ingest(created, "{}".into()).await.unwrap();
    app.ingest(
        story.invoice("paid", InvoiceChange::Paid, 1, "1", 0, 2000),
        "{}".into(),
    )
    .await
    .unwrap();
    // Stored although no user is known yet: nothing is lost.
    assert!(
        subscription(app.store().as_ref(), &story.subscription)
            .await
            .is_some()
    );
    assert_eq!(
        customer_user(app.store().as_ref(), &story.customer).await,
        None
    );
    assert_eq!(credits(app.store().as_ref(), &story.user).await, 0);
    // The checkout names the user: the customer is linked and the credits follow.
    app.ingest(story.checkout(2), "{}".into()).await.unwrap();
    assert_eq!(
        customer_user(app.store().as_ref(), &story.customer).await,
        Some(story.user.clone())
    );
    assert_eq!(credits(app.store().as_ref(), &story.user).await, 1000);
}

async fn a_failing_invoice_sets_one_grace_deadline_per_dunning_cycle(store: DieselStore) {
    let app = app(store);
    let story = Story::new("dunning");
    app.ingest(
        story.subscription(
            "created",
            SubscriptionChange::Created,
            0,
            story.snapshot(SubscriptionStatus::Active, 0),
        ),
        "{}".into(),
    )
    .await
    .unwrap();
    let failed = |n: i64| {
        story.invoice(
            &format!("failed_{n}"),
            InvoiceChange::PaymentFailed,
            100 + n,
            "2",
            1,
            0,
        )
    };
    app.ingest(failed(1), "{}".into()).await.unwrap();
    let first = subscription(app.store().as_ref(), &story.subscription)
        .await
        .unwrap();
    assert_eq!(first.status, SubscriptionStatus::PastDue);
    let deadline = first.grace_period_end.unwrap();
    assert_eq!(
        deadline,
        support::t0() + TimeDelta::days(30) + TimeDelta::days(3)
    );
    // Stripe retries the same invoice days later: the deadline does not move.
    app.ingest(failed(2), "{}".into()).await.unwrap();
    app.ingest(failed(3), "{}".into()).await.unwrap();
    let later = subscription(app.store().as_ref(), &story.subscription)
        .await
        .unwrap();
    assert_eq!(later.grace_period_end, Some(deadline));
    // Recovery clears it.
    app.ingest(
        story.invoice("recovered", InvoiceChange::Paid, 200, "2", 1, 2000),
        "{}".into(),
    )
    .await
    .unwrap();
    let recovered = subscription(app.store().as_ref(), &story.subscription)
        .await
        .unwrap();
    assert_eq!(
        (recovered.status, recovered.grace_period_end),
        (SubscriptionStatus::Active, None)
    );
}

async fn unknown_event_types_are_ignored(store: DieselStore) {
    let app = app(store);
    let event = BillingEvent {
        id: "evt_unknown".into(),
        event_type: "radar.early_fraud_warning.created".into(),
        api_version: None,
        livemode: false,
        created: support::t0(),
        fact: Fact::Unhandled,
    };
    assert_eq!(
        app.ingest(event.clone(), "{}".into()).await.unwrap(),
        IngestOutcome::Ignored
    );
    assert_eq!(
        app.ingest(event, "{}".into()).await.unwrap(),
        IngestOutcome::Duplicate(EventStatus::Ignored)
    );
}
