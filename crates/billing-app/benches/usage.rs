//! Usage consume throughput on Postgres: `BillingApp::record_usage` (the whole path the HTTP
//! route takes, without HTTP), `IN_FLIGHT` consumes in flight, for one hot user and spread
//! over `USERS` users, each on an unlimited (ENTERPRISE) subscription so that every consume
//! counts. Prints consumes/s and latency percentiles, then checks that every counter equals
//! the number of consumes answered for its user.
//!
//! `cargo bench -p billing-app --bench usage` (needs Postgres at TEST_DATABASE_URL or
//! 127.0.0.1:5432). Environment: `USAGE_BENCH_SECS` (default 10), `USAGE_BENCH_IN_FLIGHT`
//! (64), `USAGE_BENCH_USERS` (64), `USAGE_BENCH_POOL` (store connections, 64).
//!
//! Compare with pgbench's single-insert rate at the same concurrency, in the same run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use billing_app::{AppSettings, BillingApp};
use billing_domain::facts::{SubscriptionChange, SubscriptionSnapshot};
use billing_domain::{BillingEvent, Catalog, Fact, SubscriptionStatus};
use billing_ports::SystemClock;
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{DieselStore, StoreSettings};
use chrono::{TimeDelta, Utc};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn user(n: u64) -> String {
    format!("user_bench_{n:04}")
}

fn enterprise(n: u64) -> BillingEvent {
    let now = Utc::now();
    BillingEvent {
        id: format!("evt_bench_usage_{n}"),
        event_type: "customer.subscription.created".into(),
        api_version: Some("2025-03-31.basil".into()),
        livemode: false,
        created: now,
        fact: Fact::Subscription {
            change: SubscriptionChange::Created,
            subscription: SubscriptionSnapshot {
                id: format!("sub_bench_usage_{n}"),
                customer_id: format!("cus_bench_usage_{n}"),
                status: SubscriptionStatus::Active,
                price_ids: vec!["price_enterprise_monthly".into()],
                current_period_start: Some(now - TimeDelta::days(3)),
                current_period_end: Some(now + TimeDelta::days(27)),
                cancel_at_period_end: false,
                cancel_at: None,
                canceled_at: None,
                ended_at: None,
                trial_end: None,
                metadata_user_id: Some(user(n)),
            },
        },
    }
}

struct Run {
    rate: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
    counted: u64,
}

async fn run(
    app: &Arc<BillingApp<DieselStore>>,
    label: &str,
    users: u64,
    in_flight: u64,
    secs: u64,
) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for task in 0..in_flight {
        let (app, stop, errors) = (Arc::clone(app), Arc::clone(&stop), Arc::clone(&errors));
        let label = label.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let u = (task + n) % users;
                let key = format!("{label}-{task}-{n}");
                let started = Instant::now();
                match app.record_usage(&user(u), "api_calls", 1, &key).await {
                    Ok(outcome) if outcome.allowed => {
                        latencies.push(started.elapsed());
                    }
                    Ok(_) | Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
            }
            latencies
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Run {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        errors: errors.load(Ordering::Relaxed),
        counted: latencies.len() as u64,
    }
}

fn main() {
    let secs = env("USAGE_BENCH_SECS", 10);
    let in_flight = env("USAGE_BENCH_IN_FLIGHT", 64);
    let users = env("USAGE_BENCH_USERS", 64);
    let pool = env("USAGE_BENCH_POOL", 64) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = TestDatabase::postgres().await;
        let store = DieselStore::connect_with(db.url(), StoreSettings::new(pool)).unwrap();
        let catalog =
            Arc::new(Catalog::from_toml_str(include_str!("../../../plans.toml")).unwrap());
        let app = Arc::new(BillingApp::new(
            Arc::new(store),
            catalog,
            Arc::new(SystemClock),
            None,
            AppSettings::default(),
        ));
        for n in 0..users {
            app.ingest(enterprise(n), "{}".into()).await.unwrap();
        }
        let mut answered = 0;
        for (label, spread) in [("hot", 1), ("spread", users)] {
            // A short warm-up fills the pool and the caches.
            let warm = run(&app, &format!("warm-{label}"), spread, in_flight, 1).await;
            let measured = run(&app, label, spread, in_flight, secs).await;
            println!(
                "usage consume, {label} ({spread} user(s)), {in_flight} in flight, {secs} s: \
                 {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, errors {}",
                measured.rate,
                measured.p50.as_secs_f64() * 1e3,
                measured.p99.as_secs_f64() * 1e3,
                measured.errors + warm.errors,
            );
            answered += warm.counted + measured.counted;
        }
        // Every counter equals what was answered as counted (read past any cache).
        let checker = BillingApp::new(
            Arc::new(db.store().clone()),
            Arc::new(Catalog::from_toml_str(include_str!("../../../plans.toml")).unwrap()),
            Arc::new(SystemClock),
            None,
            AppSettings {
                gate_ttl: Duration::ZERO,
                ..AppSettings::default()
            },
        );
        let mut total = 0;
        for n in 0..users {
            total += checker.entitlements(&user(n)).await.unwrap().usage["api_calls"];
        }
        println!(
            "counted in the database over all users: {total}; answered as counted: {answered}{}",
            if total == answered {
                ""
            } else {
                " — MISMATCH"
            }
        );
    });
}
