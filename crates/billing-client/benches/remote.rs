//! A feature check through the client against the real server on loopback: the server
//! (`Server::build_with`, as billing-http's tests start it, SQLite store, its gate cache warm)
//! runs on its own threads; the client asks for one PRO user's feature.
//!
//! - `raw_http`: a bare reqwest GET of the feature route and `serde_json::Value` (the floor);
//! - `feature_uncached`: `Client::feature` without a cache (the server's feature route);
//! - `feature_cache_miss`: with a cache, forgotten before each check (one entitlements fetch);
//! - `feature_cache_hit`: with a cache holding the user.
//!
//! `cargo bench -p billing-client --bench remote`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use billing_client::Client;
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../../billing-http/tests/api/helpers.rs"]
#[allow(dead_code)]
mod server;

const USER: &str = "user_8d41c2f07b";
const FEATURE: &str = "advanced_analytics";

/// Starts the server on its own thread; its base URL once a PRO subscription is ingested.
fn start_server() -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let db = billing_store_diesel::testing::TestDatabase::sqlite().await;
            let store = db.store().clone();
            let settings = billing_http::Settings {
                // Longer than the run: the server answers from its gate cache, as when warm.
                gate_cache_ttl: Duration::from_secs(3_600),
                ingest: billing_http::IngestSettings::default(),
                ..server::settings(server::Limits::default())
            };
            let stripe = server::fake_gateway();
            let app =
                server::spawn_server(settings, store, Some(db), Arc::new(stripe.clone()), stripe)
                    .await;
            let event = server::subscription_event(
                "evt_1TdG4x2eZvKYlo2Cq8LsWb3N",
                "customer.subscription.created",
                USER,
                "active",
                "price_pro_monthly",
                chrono::Utc::now().timestamp(),
            );
            assert_eq!(app.webhook(&event).await.0, 200);
            sender.send(app.address.clone()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    receiver.recv().unwrap()
}

fn remote(c: &mut Criterion) {
    let base = start_server();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let uncached = Client::builder(&base)
        .api_key(server::API_KEY)
        .build()
        .unwrap();
    let cached = Client::builder(&base)
        .api_key(server::API_KEY)
        .cache(Duration::from_secs(3_600))
        .build()
        .unwrap();
    let raw = reqwest::Client::new();
    let url = format!("{base}/v1/users/{USER}/features/{FEATURE}");
    let bearer = format!("Bearer {}", server::API_KEY);
    runtime.block_on(async {
        assert!(uncached.feature(USER, FEATURE).await.unwrap().allowed);
        assert!(cached.feature(USER, FEATURE).await.unwrap().allowed);
    });

    let mut group = c.benchmark_group("remote_feature_check");
    group.bench_function("raw_http", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = raw
                    .get(&url)
                    .header("authorization", &bearer)
                    .send()
                    .await
                    .unwrap();
                black_box(response.json::<serde_json::Value>().await.unwrap())
            })
        })
    });
    group.bench_function("feature_uncached", |b| {
        b.iter(|| {
            runtime.block_on(async { black_box(uncached.feature(USER, FEATURE).await.unwrap()) })
        })
    });
    group.bench_function("feature_cache_miss", |b| {
        b.iter(|| {
            cached.forget(USER);
            runtime.block_on(async { black_box(cached.feature(USER, FEATURE).await.unwrap()) })
        })
    });
    group.bench_function("feature_cache_hit", |b| {
        b.iter(|| {
            runtime.block_on(async { black_box(cached.feature(USER, FEATURE).await.unwrap()) })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = remote
}
criterion_main!(benches);
