//! Re-fetch mode and retention.

use std::sync::Arc;

use crate::support::{self, Story, subscription, t0};
use billing_app::{AppSettings, BillingApp, IngestOutcome};
use billing_domain::Fact;
use billing_domain::SubscriptionStatus;
use billing_domain::facts::SubscriptionChange;
use billing_ports::testing::{FakeGateway, GatewayCall};
use billing_ports::{BillingStore, GatewayError, ManualClock};
use billing_store_diesel::Backend;
use billing_store_diesel::DieselStore;
use billing_store_diesel::testing::TestDatabase;
use chrono::TimeDelta;

use crate::group_commit::HeldLock;

on_both_backends!(
    refetch_mode_writes_what_stripe_says_now_not_the_payload,
    purge_deletes_old_done_events_in_batches_and_keeps_recent_ones,
);

/// An app on `store` in re-fetch mode, fetching from `stripe`.
fn refetching(store: &DieselStore, stripe: &FakeGateway) -> BillingApp<DieselStore> {
    BillingApp::new(
        Arc::new(store.clone()),
        support::catalog(),
        Arc::new(ManualClock::new(t0())),
        Some(Arc::new(stripe.clone())),
        AppSettings {
            refetch: true,
            ..AppSettings::default()
        },
    )
}

async fn refetch_mode_writes_what_stripe_says_now_not_the_payload(store: DieselStore) {
    let story = Story::new("refetch");
    let mut current = story.snapshot(SubscriptionStatus::Active, 1);
    current.cancel_at_period_end = true;
    let stripe = FakeGateway::new();
    stripe.put_subscription(current.clone());
    let app = refetching(&store, &stripe);
    // The payload is old news (trialing, period 0); Stripe now says active and canceling.
    let payload = story.snapshot(SubscriptionStatus::Trialing, 0);
    let event = story.subscription("updated", SubscriptionChange::Updated, 5, payload);
    assert_eq!(
        app.ingest(event, "{}".into()).await.unwrap(),
        IngestOutcome::Processed
    );
    let stored = subscription(&store, &story.subscription).await.unwrap();
    assert_eq!(stored.status, SubscriptionStatus::Active);
    assert!(stored.cancel_at_period_end);
    assert_eq!(stored.current_period_start, current.current_period_start);

    // Stripe unreachable: the event fails (and is retried later), nothing is written.
    stripe.fail(
        GatewayCall::FetchSubscription,
        GatewayError::Unavailable("connection refused".into()),
    );
    let next = story.subscription(
        "again",
        SubscriptionChange::Updated,
        6,
        story.snapshot(SubscriptionStatus::Canceled, 1),
    );
    assert!(app.ingest(next.clone(), "{}".into()).await.is_err());
    assert_eq!(
        subscription(&store, &story.subscription).await.unwrap(),
        stored
    );
    assert_eq!(store.event(&next.id).await.unwrap().unwrap().attempts, 1);
}

async fn purge_deletes_old_done_events_in_batches_and_keeps_recent_ones(store: DieselStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let app = BillingApp::new(
        Arc::new(store.clone()),
        support::catalog(),
        clock.clone(),
        None,
        AppSettings {
            purge_batch: 2,
            ..AppSettings::default()
        },
    );
    let story = Story::new("purge");
    let old: Vec<_> = (0..5)
        .map(|i| {
            story.subscription(
                &format!("old{i}"),
                SubscriptionChange::Updated,
                i,
                story.snapshot(SubscriptionStatus::Active, 0),
            )
        })
        .collect();
    for e in &old {
        app.ingest(e.clone(), "{}".into()).await.unwrap();
    }
    clock.advance(TimeDelta::days(31));
    let recent = story.subscription(
        "recent",
        SubscriptionChange::Updated,
        100,
        story.snapshot(SubscriptionStatus::Active, 1),
    );
    app.ingest(recent.clone(), "{}".into()).await.unwrap();
    assert_eq!(app.purge_events().await.unwrap(), 5);
    assert!(store.event(&old[0].id).await.unwrap().is_none());
    assert!(store.event(&recent.id).await.unwrap().is_some());
}

/// A Checkout session that names no customer, in re-fetch mode: the subscription fetched
/// from Stripe is created only under its customer's lock (as every creator of a subscription
/// does: what lets a transaction holding that lock know a subscription absent until it
/// commits), with that customer stored and linked to the session's user. With the lock held
/// elsewhere, the delivery waits, and applies once it is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_naming_no_customer_creates_its_subscription_under_the_customers_lock() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let store = db.store().clone();
    let story = Story::new("nocustomer");
    let stripe = FakeGateway::new();
    stripe.put_subscription(story.snapshot(SubscriptionStatus::Active, 0));
    let app = refetching(&store, &stripe);
    let mut event = story.checkout(1);
    if let Fact::CheckoutCompleted(session) = &mut event.fact {
        session.customer_id = None;
    }
    let held = HeldLock::take(&db, &story.customer).await;
    let ingest = tokio::spawn({
        let app = app.clone();
        async move { app.ingest(event, "{}".into()).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!ingest.is_finished(), "waits for the customer's lock");
    assert_eq!(subscription(&store, &story.subscription).await, None);
    held.release().await;
    assert_eq!(ingest.await.unwrap().unwrap(), IngestOutcome::Processed);
    let stored = subscription(&store, &story.subscription).await.unwrap();
    assert_eq!(stored.stripe_customer_id, story.customer);
    assert_eq!(
        support::customer_user(&store, &story.customer).await,
        Some(story.user.clone())
    );
}
