//! Re-fetch mode and retention.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use billing_app::{AppSettings, BillingApp, IngestOutcome};
use billing_domain::SubscriptionStatus;
use billing_domain::facts::{SubscriptionChange, SubscriptionSnapshot};
use billing_ports::{
    BillingStore, CheckoutCreated, CheckoutRequest, GatewayError, ManualClock, StripeGateway,
};
use billing_store_diesel::DieselStore;
use chrono::TimeDelta;
use support::{Story, subscription, t0};

on_both_backends!(
    refetch_mode_writes_what_stripe_says_now_not_the_payload,
    purge_deletes_old_done_events_in_batches_and_keeps_recent_ones,
);

/// A gateway that answers with whatever snapshot the test put in it.
struct FakeGateway(Mutex<Option<SubscriptionSnapshot>>);

#[async_trait]
impl StripeGateway for FakeGateway {
    async fn fetch_subscription(&self, id: &str) -> Result<SubscriptionSnapshot, GatewayError> {
        self.0
            .lock()
            .unwrap()
            .clone()
            .filter(|s| s.id == id)
            .ok_or_else(|| GatewayError::NotFound(id.to_owned()))
    }
    async fn customer_subscriptions(
        &self,
        _: &str,
    ) -> Result<Vec<SubscriptionSnapshot>, GatewayError> {
        Ok(self.0.lock().unwrap().clone().into_iter().collect())
    }
    // Ingestion never creates anything at Stripe: a test that reached these would fail on the
    // error they return.
    async fn create_customer(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
    ) -> Result<String, GatewayError> {
        Err(GatewayError::Rejected(
            "ingestion must not create customers".into(),
        ))
    }
    async fn create_checkout_session(
        &self,
        _: &CheckoutRequest,
        _: &str,
    ) -> Result<CheckoutCreated, GatewayError> {
        Err(GatewayError::Rejected(
            "ingestion must not create sessions".into(),
        ))
    }
    async fn create_portal_session(&self, _: &str, _: &str) -> Result<String, GatewayError> {
        Err(GatewayError::Rejected(
            "ingestion must not create portal sessions".into(),
        ))
    }
}

async fn refetch_mode_writes_what_stripe_says_now_not_the_payload(store: DieselStore) {
    let story = Story::new("refetch");
    let mut current = story.snapshot(SubscriptionStatus::Active, 1);
    current.cancel_at_period_end = true;
    let gateway = Arc::new(FakeGateway(Mutex::new(Some(current.clone()))));
    let app = BillingApp::new(
        Arc::new(store.clone()),
        support::catalog(),
        Arc::new(ManualClock::new(t0())),
        Some(gateway.clone() as Arc<dyn StripeGateway>),
        AppSettings {
            refetch: true,
            ..AppSettings::default()
        },
    );
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
    *gateway.0.lock().unwrap() = None;
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
