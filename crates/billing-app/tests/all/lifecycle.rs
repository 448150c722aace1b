//! Property: any shuffle, with duplicates, of a realistic subscription lifecycle ends in the same
//! billing state as in-order delivery. Runs on Postgres and on SQLite.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::support::{self, Story, app, credits, customer_user, subscription};
use billing_domain::facts::{InvoiceChange, SubscriptionChange};
use billing_domain::{BillingEvent, SubscriptionStatus};
use billing_ports::SubscriptionRecord;
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, DieselStore};
use chrono::TimeDelta;
use proptest::prelude::*;

/// created (trial) → trial invoice → active → paid → payment failed → past_due → paid →
/// active → cancel at period end → deleted.
fn lifecycle(story: &Story) -> Vec<BillingEvent> {
    let mut trial = story.snapshot(SubscriptionStatus::Trialing, 0);
    trial.trial_end = Some(support::t0() + TimeDelta::days(30));
    let mut canceling = story.snapshot(SubscriptionStatus::Active, 2);
    canceling.cancel_at_period_end = true;
    let mut ended = canceling.clone();
    ended.status = SubscriptionStatus::Canceled;
    ended.canceled_at = Some(support::t0() + TimeDelta::seconds(500));
    vec![
        story.subscription("created", SubscriptionChange::Created, 0, trial),
        story.invoice("trial_invoice", InvoiceChange::Paid, 0, "0", 0, 0),
        story.subscription(
            "active1",
            SubscriptionChange::Updated,
            100,
            story.snapshot(SubscriptionStatus::Active, 1),
        ),
        story.invoice("paid1", InvoiceChange::Paid, 100, "1", 1, 2000),
        story.invoice("failed2", InvoiceChange::PaymentFailed, 200, "2", 2, 0),
        story.subscription(
            "past_due2",
            SubscriptionChange::Updated,
            200,
            story.snapshot(SubscriptionStatus::PastDue, 2),
        ),
        story.invoice("paid2", InvoiceChange::Paid, 300, "2", 2, 2000),
        story.subscription(
            "active2",
            SubscriptionChange::Updated,
            300,
            story.snapshot(SubscriptionStatus::Active, 2),
        ),
        story.subscription("canceling", SubscriptionChange::Updated, 400, canceling),
        story.subscription("deleted", SubscriptionChange::Deleted, 500, ended),
    ]
}

#[derive(Debug, PartialEq)]
struct FinalState {
    subscription: Option<SubscriptionRecord>,
    credits: i64,
    user: Option<String>,
}

async fn deliver(store: &DieselStore, tag: &str, order: &[usize]) -> FinalState {
    let story = Story::new(tag);
    let events = lifecycle(&story);
    let app = app(store.clone());
    for &i in order {
        app.ingest(events[i].clone(), "{}".into()).await.unwrap();
    }
    let mut subscription = subscription(store, &story.subscription).await;
    if let Some(s) = subscription.as_mut() {
        // Ids differ per story; the state must not.
        s.stripe_subscription_id.clear();
        s.stripe_customer_id.clear();
        s.snapshot_position.event_id = s.snapshot_position.event_id.replace(tag, "");
        s.status_position.event_id = s.status_position.event_id.replace(tag, "");
    }
    FinalState {
        subscription,
        credits: credits(store, &story.user).await,
        user: customer_user(store, &story.customer)
            .await
            .map(|u| u.replace(tag, "")),
    }
}

fn orders() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..10usize, 0..8).prop_flat_map(|extra| {
        let mut all: Vec<usize> = (0..10).collect();
        all.extend(extra);
        Just(all).prop_shuffle()
    })
}

fn check(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(TestDatabase::new(backend));
    let expected = runtime.block_on(deliver(db.store(), "inorder", &(0..10).collect::<Vec<_>>()));
    assert_eq!(expected.credits, 2000, "two paid periods of PRO");
    assert_eq!(
        expected.subscription.as_ref().map(|s| s.status.clone()),
        Some(SubscriptionStatus::Canceled)
    );
    static CASE: AtomicU32 = AtomicU32::new(0);
    let config = ProptestConfig {
        cases: 32,
        ..ProptestConfig::default()
    };
    proptest!(config, |(order in orders())| {
        let tag = format!("case{}", CASE.fetch_add(1, Ordering::Relaxed));
        let got = runtime.block_on(deliver(db.store(), &tag, &order));
        prop_assert_eq!(&got, &expected);
    });
}

#[test]
fn shuffled_lifecycle_matches_in_order_on_postgres() {
    check(Backend::Postgres);
}

#[test]
fn shuffled_lifecycle_matches_in_order_on_sqlite() {
    check(Backend::Sqlite);
}
