//! The gate on a warm cache: `BillingApp::feature` and `BillingApp::entitlements` for a user
//! whose state is cached (one PRO subscription), i.e. the in-process decision every gated
//! request of the product pays. SQLite store (the cache is in front of any store).
//!
//! `cargo bench -p billing-app --bench gate`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_app::{AppSettings, BillingApp};
use billing_domain::facts::{SubscriptionChange, SubscriptionSnapshot};
use billing_domain::{BillingEvent, Catalog, Fact, SubscriptionStatus};
use billing_ports::SystemClock;
use billing_store_diesel::testing::TestDatabase;
use chrono::{TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};

const USER: &str = "user_8d41c2f07b";

fn subscribed() -> BillingEvent {
    let now = Utc::now();
    BillingEvent {
        id: "evt_1TdG4x2eZvKYlo2Cq8Ls".into(),
        event_type: "customer.subscription.created".into(),
        api_version: Some("2025-03-31.basil".into()),
        livemode: false,
        created: now,
        fact: Fact::Subscription {
            change: SubscriptionChange::Created,
            subscription: SubscriptionSnapshot {
                id: "sub_1TdG4w2eZvKYlo2CnS2e".into(),
                customer_id: "cus_TdG4vQm8LxR2p".into(),
                status: SubscriptionStatus::Active,
                price_ids: vec!["price_pro_monthly".into()],
                current_period_start: Some(now - TimeDelta::days(3)),
                current_period_end: Some(now + TimeDelta::days(27)),
                cancel_at_period_end: false,
                cancel_at: None,
                canceled_at: None,
                ended_at: None,
                trial_end: None,
                metadata_user_id: Some(USER.into()),
            },
        },
    }
}

fn gate(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(TestDatabase::sqlite());
    let catalog = Arc::new(Catalog::from_toml_str(include_str!("../../../plans.toml")).unwrap());
    let app = BillingApp::new(
        Arc::new(db.store().clone()),
        catalog,
        Arc::new(SystemClock),
        None,
        AppSettings {
            // Longer than the run: every check below is a cache hit.
            gate_ttl: Duration::from_secs(3_600),
            ..AppSettings::default()
        },
    );
    rt.block_on(async {
        app.ingest(subscribed(), "{}".into()).await.unwrap();
        let warm = app
            .feature(USER, "advanced_analytics")
            .await
            .unwrap()
            .unwrap();
        assert!(warm.allowed);
    });

    let mut group = c.benchmark_group("gate, warm cache");
    group.bench_function("feature check", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    black_box(app.feature(USER, "advanced_analytics").await.unwrap());
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("entitlements", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    black_box(app.entitlements(USER).await.unwrap());
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, gate);
criterion_main!(benches);
