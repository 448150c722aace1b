//! What the local gate adds to a request: the same actix-web route, ungated and behind a
//! guard, called in-process (`actix_web::test::call_service`) for a user whose gate state is
//! cached (one PRO subscription, the example plans, SQLite). The difference of the medians is
//! the guard's cost: user extraction, the cached decision, the `Access` for the handler.
//!
//! `cargo bench -p billing-gate --bench gate`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

#[allow(dead_code)]
#[path = "../../billing-http/tests/api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../examples/product.rs"]
mod product;
#[allow(dead_code)]
#[path = "../tests/all/support.rs"]
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, test, web};
use billing_app::{AppSettings, BillingApp};
use billing_gate::{Gate, LocalBackend, RequireFeature, RequireTier};
use billing_ports::SystemClock;
use billing_store_diesel::testing::TestDatabase;
use criterion::{Criterion, criterion_group, criterion_main};

fn gate(c: &mut Criterion) {
    let system = actix_web::rt::System::new();
    let db = system.block_on(TestDatabase::sqlite());
    let story = support::story(support::now());
    let user = story.user.as_str();
    let app = BillingApp::new(
        Arc::new(db.store().clone()),
        Arc::new(support::catalog()),
        Arc::new(SystemClock),
        None,
        AppSettings {
            // Longer than the run: every decision below is a cache hit.
            gate_ttl: Duration::from_secs(3_600),
            ..AppSettings::default()
        },
    );
    let service = system.block_on(async {
        for body in &story.bought {
            let event = billing_stripe::parse_event(body.as_bytes()).unwrap();
            app.ingest(event, body.clone()).await.unwrap();
        }
        let gate = Gate::builder(LocalBackend::new(app.clone()))
            .user_id(support::user_header)
            .build()
            .await
            .unwrap();
        let feature = gate
            .require(RequireFeature::new("advanced_analytics"))
            .unwrap();
        let tier = gate.require(RequireTier::at_least("PRO")).unwrap();
        test::init_service(
            App::new()
                .route("/plain", web::get().to(HttpResponse::Ok))
                .service(web::resource("/feature").wrap(feature).to(HttpResponse::Ok))
                .service(web::resource("/tier").wrap(tier).to(HttpResponse::Ok)),
        )
        .await
    });
    let request = |path: &str| {
        test::TestRequest::get()
            .uri(path)
            .insert_header(("x-user-id", user))
            .to_request()
    };
    system.block_on(async {
        for path in ["/plain", "/feature", "/tier"] {
            let response = test::call_service(&service, request(path)).await;
            assert_eq!(response.status(), 200, "{path}");
        }
    });

    let mut group = c.benchmark_group("gated route, warm cache");
    for path in ["/plain", "/feature", "/tier"] {
        group.bench_function(path, |b| {
            b.iter_custom(|iters| {
                system.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        // The request is built outside the timed part: only routing, the
                        // guard and the handler are measured.
                        let request = request(path);
                        let started = Instant::now();
                        black_box(test::call_service(&service, request).await);
                        spent += started.elapsed();
                    }
                    spent
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, gate);
criterion_main!(benches);
