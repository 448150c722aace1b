//! The gate routes in-process, for instruction counts per request: `gate_n ROUTE N` answers N
//! requests of ROUTE (`healthz`, `features` or `entitlements`) through the whole
//! `billing_http::configure` service (request span, request id, metrics, the API key check,
//! the handler and its JSON), wired as `Server::build_with` wires it: the Prometheus recorder
//! installed, bootstrap and stored API keys, the server's default log subscriber (`info`, to a
//! sink). The store is SQLite with one subscribed user whose gate state is cached, so every
//! check is a cache hit, as on a warm server.
//!
//! `valgrind --tool=callgrind` on this binary with two values of N gives the instructions per
//! request as the difference of the totals divided by the difference of N (start-up, the
//! store and the warm-up cancel out); `bins/billing-load/profile/gate-callgrind.sh` does it
//! for the three routes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{App, test, web};
use billing_app::{AppSettings, BillingApp};
use billing_domain::facts::{SubscriptionChange, SubscriptionSnapshot};
use billing_domain::{BillingEvent, Catalog, Fact, SubscriptionStatus};
use billing_http::{ApiKeys, HttpState, LoadKeyHashes};
use billing_ports::SystemClock;
use billing_store_diesel::testing::TestDatabase;
use chrono::{TimeDelta, Utc};
use stripe_webhook_signature::Verifier;

const USER: &str = "user_8d41c2f07b";
const API_KEY: &str = "gate_bench_key_5f0c9e7a1d";
/// Requests of the route answered before the counted ones, in both runs.
const WARM_UP: usize = 50;

fn subscribed() -> BillingEvent {
    let now = Utc::now();
    BillingEvent {
        id: "evt_1TdG4x2eZvKYlo2Cq8LsWb3N".into(),
        event_type: "customer.subscription.created".into(),
        api_version: Some("2025-03-31.basil".into()),
        livemode: false,
        created: now,
        fact: Fact::Subscription {
            change: SubscriptionChange::Created,
            subscription: SubscriptionSnapshot {
                id: "sub_1TdG4w2eZvKYlo2CnS2eQx7R".into(),
                customer_id: "cus_TdG4vQm8LxR2pK".into(),
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

fn main() {
    let mut args = std::env::args().skip(1);
    let route = args
        .next()
        .expect("ROUTE: healthz, features or entitlements");
    let n: usize = args
        .next()
        .map_or(1, |arg| arg.parse().expect("N, a number of requests"));
    let uri = match route.as_str() {
        "healthz" => "/healthz".to_owned(),
        "features" => format!("/v1/users/{USER}/features/advanced_analytics"),
        "entitlements" => format!("/v1/users/{USER}/entitlements"),
        other => panic!("unknown route {other:?}"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .init();
    let metrics = billing_http::install_metrics_recorder().unwrap();
    actix_web::rt::System::new().block_on(async move {
        let db = TestDatabase::sqlite().await;
        let catalog = Catalog::from_toml_str(include_str!("../../../plans.toml")).unwrap();
        let app = BillingApp::new(
            Arc::new(db.store().clone()),
            Arc::new(catalog),
            Arc::new(SystemClock),
            None,
            AppSettings {
                // Longer than the run: every check is a cache hit.
                gate_ttl: Duration::from_secs(3_600),
                ..AppSettings::default()
            },
        );
        app.ingest(subscribed(), "{}".into()).await.unwrap();
        let loader = app.clone();
        let load: LoadKeyHashes = Arc::new(move || {
            let app = loader.clone();
            Box::pin(async move { app.live_api_key_hashes().await.map_err(|e| e.to_string()) })
        });
        let store = db.store().clone();
        let state = web::Data::new(HttpState {
            verifier: Verifier::new(["whsec_gate_bench".to_owned()]).unwrap(),
            api_keys: ApiKeys::new([API_KEY.to_owned()]).with_stored(load, Duration::from_secs(30)),
            webhook_body_limit: 1024 * 1024,
            pool_status: Some(Arc::new(move || {
                let status = store.pool_status();
                (status.in_use, status.waiting)
            })),
            readiness: Arc::new(|| Box::pin(async { Ok(()) })),
            readiness_timeout: billing_http::MAX_READINESS_TIMEOUT,
            request_timeout: Duration::from_secs(5),
            metrics: Some(metrics),
            app,
        });
        let service = test::init_service(
            App::new().configure(|cfg| billing_http::configure(cfg, state.clone())),
        )
        .await;
        let bearer = format!("Bearer {API_KEY}");
        let mut bytes = 0_usize;
        for _ in 0..WARM_UP + n {
            let mut request = test::TestRequest::get().uri(&uri);
            if route != "healthz" {
                request = request.insert_header((header::AUTHORIZATION, bearer.as_str()));
            }
            let request = request.to_request();
            let response = test::call_service(&service, request).await;
            assert!(response.status().is_success(), "{}", response.status());
            bytes += black_box(test::read_body(response).await).len();
        }
        println!("{route}: {} requests, {bytes} bytes answered", WARM_UP + n);
        drop(db);
    });
}
