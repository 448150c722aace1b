//! Ingest throughput on Postgres (and SQLite for comparison): distinct events applied through
//! the whole exactly-once path (claim, effects, finish, commit), 16 deliveries in flight.
//!
//! `cargo bench -p billing-app --bench ingest` (needs Postgres at TEST_DATABASE_URL or
//! 127.0.0.1:5432).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use billing_app::{AppSettings, BillingApp};
use billing_domain::facts::{
    InvoiceChange, InvoiceFacts, SubscriptionChange, SubscriptionSnapshot,
};
use billing_domain::{BillingEvent, Catalog, Currency, Fact, Money, SubscriptionStatus};
use billing_ports::SystemClock;
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, DieselStore};
use chrono::{TimeDelta, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const IN_FLIGHT: usize = 16;

fn events(n: u64) -> [BillingEvent; 2] {
    let usd = Currency::parse("usd").unwrap();
    let now = Utc::now();
    let created = BillingEvent {
        id: format!("evt_bench_sub_{n}"),
        event_type: "customer.subscription.created".into(),
        api_version: Some("2025-03-31.basil".into()),
        livemode: false,
        created: now,
        fact: Fact::Subscription {
            change: SubscriptionChange::Created,
            subscription: SubscriptionSnapshot {
                id: format!("sub_bench_{n}"),
                customer_id: format!("cus_bench_{n}"),
                status: SubscriptionStatus::Active,
                price_ids: vec!["price_pro_monthly".into()],
                current_period_start: Some(now),
                current_period_end: Some(now + TimeDelta::days(30)),
                cancel_at_period_end: false,
                cancel_at: None,
                canceled_at: None,
                ended_at: None,
                trial_end: None,
                metadata_user_id: Some(format!("user_bench_{n}")),
            },
        },
    };
    let paid = BillingEvent {
        id: format!("evt_bench_inv_{n}"),
        event_type: "invoice.paid".into(),
        api_version: Some("2025-03-31.basil".into()),
        livemode: false,
        created: now + TimeDelta::seconds(1),
        fact: Fact::Invoice {
            change: InvoiceChange::Paid,
            invoice: InvoiceFacts {
                id: format!("in_bench_{n}"),
                customer_id: Some(format!("cus_bench_{n}")),
                subscription_id: Some(format!("sub_bench_{n}")),
                status: Some("paid".into()),
                billing_reason: Some("subscription_cycle".into()),
                amount_paid: Money::new(2000, usd.clone()),
                amount_due: Money::new(2000, usd),
                attempt_count: 1,
                period_start: Some(now),
                period_end: Some(now + TimeDelta::days(30)),
                next_payment_attempt: None,
                price_ids: vec!["price_pro_monthly".into()],
            },
        },
    };
    [created, paid]
}

fn bench_backend(c: &mut Criterion, backend: Backend, name: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(TestDatabase::new(backend));
    let catalog = Catalog::from_toml_str(include_str!("../../../plans.toml")).unwrap();
    let app: BillingApp<DieselStore> = BillingApp::new(
        Arc::new(db.store().clone()),
        Arc::new(catalog),
        Arc::new(SystemClock),
        None,
        AppSettings::default(),
    );
    let next = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(2));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let app = app.clone();
            let next = Arc::clone(&next);
            runtime.block_on(async move {
                let start = Instant::now();
                let mut handles = Vec::with_capacity(IN_FLIGHT);
                for _ in 0..IN_FLIGHT {
                    let app = app.clone();
                    let next = Arc::clone(&next);
                    let per_task = iters.div_ceil(IN_FLIGHT as u64);
                    handles.push(tokio::spawn(async move {
                        for _ in 0..per_task {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            for event in events(n) {
                                app.ingest(event, "{}".into()).await.unwrap();
                            }
                        }
                    }));
                }
                for h in handles {
                    h.await.unwrap();
                }
                // Work was rounded up to whole tasks; report per requested iteration.
                start.elapsed().mul_f64(
                    iters as f64 / (iters.div_ceil(IN_FLIGHT as u64) * IN_FLIGHT as u64) as f64,
                )
            })
        })
    });
    group.finish();
}

fn ingest(c: &mut Criterion) {
    bench_backend(
        c,
        Backend::Postgres,
        "postgres_subscription_created_plus_invoice_paid",
    );
    bench_backend(
        c,
        Backend::Sqlite,
        "sqlite_subscription_created_plus_invoice_paid",
    );
}

criterion_group!(benches, ingest);
criterion_main!(benches);
