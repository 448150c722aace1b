//! The gate cache's freshness contract: what this process commits is seen by its next check
//! (read-your-writes); a change made behind its back (another replica, an operator's SQL) is
//! seen once the entry's time to live has passed, and not served from the database before.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{self, Story, app};
use billing_app::{AppSettings, BillingApp};
use billing_domain::SubscriptionStatus;
use billing_domain::facts::SubscriptionChange;
use billing_ports::ManualClock;
use billing_store_diesel::DieselStore;

on_both_backends!(
    a_webhook_or_a_consume_is_seen_by_the_next_check,
    a_change_behind_the_cache_shows_after_the_time_to_live,
);

async fn a_webhook_or_a_consume_is_seen_by_the_next_check(store: DieselStore) {
    let app = app(store);
    let story = Story::new("gate_ryw");
    // Cached as a free user with nothing used.
    let before = app.entitlements(&story.user).await.unwrap();
    assert_eq!(
        (before.tier.as_str(), before.usage["api_calls"]),
        ("FREE", 0)
    );
    let feature = app
        .feature(&story.user, "advanced_analytics")
        .await
        .unwrap()
        .unwrap();
    assert!(!feature.allowed);

    let created = story.subscription(
        "created",
        SubscriptionChange::Created,
        0,
        story.snapshot(SubscriptionStatus::Active, 0),
    );
    app.ingest(created, "{}".into()).await.unwrap();
    let feature = app
        .feature(&story.user, "advanced_analytics")
        .await
        .unwrap()
        .unwrap();
    assert!(feature.allowed, "the webhook's upgrade must show at once");
    assert_eq!(feature.tier.as_str(), "PRO");

    for n in 1..=3u64 {
        let outcome = app
            .record_usage(&story.user, "api_calls", 5, &format!("req_gate_{n}"))
            .await
            .unwrap();
        assert!(outcome.allowed);
        let now = app.entitlements(&story.user).await.unwrap();
        assert_eq!(
            now.usage["api_calls"],
            5 * n,
            "consume {n} must show at once"
        );
    }
}

async fn a_change_behind_the_cache_shows_after_the_time_to_live(store: DieselStore) {
    let ttl = Duration::from_millis(300);
    let cached = BillingApp::new(
        Arc::new(store.clone()),
        support::catalog(),
        Arc::new(ManualClock::new(support::t0())),
        None,
        AppSettings {
            gate_ttl: ttl,
            ..AppSettings::default()
        },
    );
    // Another replica: same database, its own cache.
    let other = app(store.clone());
    let story = Story::new("gate_ttl");
    assert_eq!(
        cached.entitlements(&story.user).await.unwrap().usage["api_calls"],
        0
    );

    other
        .record_usage(&story.user, "api_calls", 7, "req_other_replica")
        .await
        .unwrap();
    // Within the time to live the cached answer stands (the cache is really used)…
    assert_eq!(
        cached.entitlements(&story.user).await.unwrap().usage["api_calls"],
        0
    );
    // …while an uncached reader sees the database's 7.
    let uncached = BillingApp::new(
        Arc::new(store.clone()),
        support::catalog(),
        Arc::new(ManualClock::new(support::t0())),
        None,
        AppSettings {
            gate_ttl: Duration::ZERO,
            ..AppSettings::default()
        },
    );
    assert_eq!(
        uncached.entitlements(&story.user).await.unwrap().usage["api_calls"],
        7
    );

    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert_eq!(
        cached.entitlements(&story.user).await.unwrap().usage["api_calls"],
        7
    );
}
