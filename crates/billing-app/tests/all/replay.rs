//! End to end below HTTP: the Stripe adapter's fixture stories (pre-basil and basil shapes)
//! parsed from JSON and ingested, in order and reversed, end in the same billing state.

use std::path::PathBuf;

use crate::support::{self, app, credits, customer_user};
use billing_app::IngestOutcome;
use billing_domain::SubscriptionStatus;
use billing_ports::BillingStore;
use billing_store_diesel::DieselStore;

on_both_backends!(
    basil_story_replays_to_the_same_state,
    pre_basil_story_replays_to_the_same_state
);

/// The story's bodies, sorted by Stripe's `created` then by event id.
pub(crate) fn story(shape: &str) -> Vec<(billing_domain::BillingEvent, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../billing-stripe/tests/fixtures")
        .join(shape);
    let mut events: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let body = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            (billing_stripe::parse_event(body.as_bytes()).unwrap(), body)
        })
        .collect();
    assert_eq!(events.len(), 19, "one fixture per handled event type");
    events.sort_by(|a, b| (a.0.created, &a.0.id).cmp(&(b.0.created, &b.0.id)));
    events
}

async fn replay(store: DieselStore, shape: &str) {
    let events = story(shape);
    let forward = app(store.clone());
    for (event, body) in events.iter().cloned() {
        let outcome = forward.ingest(event, body).await.unwrap();
        assert_ne!(outcome, IngestOutcome::Ignored);
    }
    let customer = events
        .iter()
        .find_map(|(e, _)| e.fact.customer_id().map(str::to_owned))
        .unwrap();
    assert_eq!(
        customer_user(&store, &customer).await.as_deref(),
        Some("user_123")
    );
    // One paid invoice of PRO: 1 000 credits, although it is announced three times
    // (payment_succeeded, paid, and the checkout).
    assert_eq!(credits(&store, "user_123").await, 1000);
    let subscription_id = events
        .iter()
        .find_map(|(e, _)| match &e.fact {
            billing_domain::Fact::Subscription { subscription, .. } => {
                Some(subscription.id.clone())
            }
            _ => None,
        })
        .unwrap();
    let sub = support::subscription(&store, &subscription_id)
        .await
        .unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Canceled);

    // Every event delivered again, newest first: all duplicates, nothing changes.
    for (event, body) in events.iter().rev().cloned() {
        assert!(matches!(
            forward.ingest(event, body).await.unwrap(),
            IngestOutcome::Duplicate(_)
        ));
    }
    assert_eq!(
        support::subscription(&store, &subscription_id)
            .await
            .unwrap(),
        sub
    );
    assert_eq!(credits(&store, "user_123").await, 1000);
    for (event, _) in &events {
        assert!(
            store
                .event(&event.id)
                .await
                .unwrap()
                .unwrap()
                .status
                .is_final()
        );
    }
}

async fn basil_story_replays_to_the_same_state(store: DieselStore) {
    replay(store, "basil").await;
}

async fn pre_basil_story_replays_to_the_same_state(store: DieselStore) {
    replay(store, "pre-basil").await;
}
