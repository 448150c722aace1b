//! Push throughput: change records committed to a fresh Postgres database, then pushed to a
//! local receiver until every one is delivered; prints changes/s per concurrency.
//!
//! `cargo bench -p billing-push --bench push` (needs Postgres at `DATABASE_ADMIN_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). `PUSH_BENCH_CHANGES` sets the count
//! (default 5 000). Figures go to docs/benchmarks.md.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_domain::{SubscriptionStatus, TierId};
use billing_ports::{
    AccessSnapshot, BillingStore, ChangeKind, NewChange, StoreError, SystemClock, TxFuture,
};
use billing_push::{PushEndpoint, PushSecret, PushSettings, Pusher, Signer};
use billing_store_diesel::testing::TestDatabase;
use chrono::Utc;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn access(tier: &str) -> AccessSnapshot {
    AccessSnapshot {
        tier: TierId::new(tier),
        status: Some(SubscriptionStatus::Active),
        reason: "subscription_active".to_owned(),
        grace_period_end: None,
        credits: 0,
    }
}

fn change(n: usize) -> NewChange {
    NewChange {
        change_id: format!("chg_b{n:08x}{:08x}", n.wrapping_mul(2_654_435_761) as u32),
        user_id: format!("user_{:x}", n.wrapping_mul(40_503)),
        customer_id: Some(format!("cus_{:x}", n.wrapping_mul(9_973))),
        kind: ChangeKind::TierChanged,
        before: access("FREE"),
        after: access("PRO"),
        amount: None,
        stripe_event_id: Some(format!("evt_1{:016x}", n.wrapping_mul(2_246_822_519))),
        dedupe_key: None,
        created_at: Utc::now(),
    }
}

async fn run(changes: usize, concurrency: usize) {
    let db = TestDatabase::postgres().await;
    let store = Arc::new(db.store().clone());
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let endpoint = PushEndpoint::parse(&format!("{}/hooks/billing", receiver.uri())).unwrap();
    let signer = Signer::new(vec![
        PushSecret::parse("whsec_Vq3Zb8LmT2xR7kNw4JcY9sHd6FgA1eUp").unwrap(),
    ])
    .unwrap();
    let settings = PushSettings {
        concurrency,
        ..PushSettings::default()
    };
    let pusher = Pusher::new(
        Arc::clone(&store),
        Arc::new(SystemClock),
        endpoint,
        signer,
        settings,
    )
    .unwrap();
    pusher.register().await.unwrap();
    for chunk in (0..changes).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<NewChange> = chunk.iter().map(|n| change(*n)).collect();
        store
            .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
                Box::pin(async move {
                    for c in &batch {
                        tx.insert_change(c).await?;
                    }
                    Ok(())
                })
            })
            .await
            .unwrap();
    }
    let started = Instant::now();
    let mut delivered = 0;
    let mut rounds = 0;
    while delivered < changes {
        let round = pusher.round().await.unwrap();
        assert_eq!(round.retried + round.given_up, 0, "no failed attempt");
        delivered += round.delivered;
        rounds += 1;
        assert!(started.elapsed() < Duration::from_secs(300), "stalled");
    }
    let elapsed = started.elapsed();
    let received = receiver.received_requests().await.unwrap().len();
    assert_eq!(received, changes, "each change received once");
    println!(
        "push: {changes} changes delivered in {:.2} s = {:.0} changes/s \
         (concurrency {concurrency}, {rounds} rounds of up to 256)",
        elapsed.as_secs_f64(),
        changes as f64 / elapsed.as_secs_f64()
    );
}

fn main() {
    // `cargo test --benches` runs benches with `--test`: a short run proves it works.
    let quick = std::env::args().any(|a| a == "--test");
    let changes = std::env::var("PUSH_BENCH_CHANGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 300 } else { 5_000 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for concurrency in [1, 16, 64] {
        runtime.block_on(run(changes, concurrency));
    }
}
