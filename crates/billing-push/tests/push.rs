//! The push against a real store (Postgres and SQLite) and a local receiver (wiremock):
//! every change record delivered once, signed so that an independent Standard Webhooks
//! implementation verifies it; failures retried with backoff, given up, listed and replayed;
//! a hanging product cut at the timeout while ingest commits unhindered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use billing_api::PushMessage;
use billing_domain::{Currency, Money, SubscriptionStatus, TierId};
use billing_ports::{
    AccessSnapshot, Backoff, BillingStore, ChangeKind, Clock, DeliveryFilter, DeliveryStatus,
    ManualClock, NewChange, PushStore, ReplaySelection, StoreError, TxFuture,
};
use billing_push::{PushEndpoint, PushSecret, PushSettings, Pusher, Signer};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{DieselStore, on_both_backends};
use chrono::{TimeDelta, Utc};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

on_both_backends!(
    every_record_is_pushed_once_signed_for_any_standard_webhooks_library,
    an_endpoint_starts_after_the_records_committed_before_it,
    failures_back_off_then_give_up_and_a_replay_sends_again,
    a_backlog_larger_than_a_round_is_delivered_by_the_run_loop,
);

/// A random Standard Webhooks secret (24 random bytes).
fn secret() -> String {
    let mut key = [0u8; 24];
    getrandom::fill(&mut key).unwrap();
    format!("whsec_{}", STANDARD.encode(key))
}

fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).unwrap();
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let tail: String = bytes
        .iter()
        .map(|b| alphabet[usize::from(*b) % alphabet.len()] as char)
        .collect();
    format!("{prefix}{tail}")
}

fn access(tier: &str, status: SubscriptionStatus, reason: &str) -> AccessSnapshot {
    AccessSnapshot {
        tier: TierId::new(tier),
        status: Some(status),
        reason: reason.to_owned(),
        grace_period_end: None,
        credits: 0,
    }
}

fn change(user: &str, kind: ChangeKind) -> NewChange {
    NewChange {
        change_id: random_id("chg_"),
        user_id: user.to_owned(),
        customer_id: Some(random_id("cus_")),
        kind,
        before: access("FREE", SubscriptionStatus::Incomplete, "no_subscription"),
        after: access("PRO", SubscriptionStatus::Active, "subscription_active"),
        amount: (kind == ChangeKind::PaymentSucceeded)
            .then(|| Money::new(2_900, Currency::parse("usd").unwrap())),
        stripe_event_id: Some(random_id("evt_1")),
        dedupe_key: None,
        created_at: Utc::now(),
    }
}

/// Commits `change` as an ingest transaction would.
async fn commit(store: &DieselStore, change: &NewChange) {
    let change = change.clone();
    let written = store
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { tx.insert_change(&change).await })
        })
        .await
        .unwrap();
    assert!(written);
}

fn settings() -> PushSettings {
    PushSettings {
        timeout: Duration::from_secs(2),
        concurrency: 8,
        batch: 64,
        retry: Backoff {
            base: TimeDelta::seconds(10),
            cap: TimeDelta::seconds(60),
        },
        max_attempts: 3,
        poll: Duration::from_millis(50),
    }
}

fn pusher(
    store: &DieselStore,
    clock: Arc<ManualClock>,
    url: &str,
    secret: &str,
    settings: PushSettings,
) -> Pusher<DieselStore> {
    let signer = Signer::new(vec![PushSecret::parse(secret).unwrap()]).unwrap();
    Pusher::new(
        Arc::new(store.clone()),
        clock,
        PushEndpoint::parse(url).unwrap(),
        signer,
        settings,
    )
    .unwrap()
}

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/billing"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

/// Verifies a received request with the `standardwebhooks` crate (not our code) and reads
/// its message.
fn verified(request: &wiremock::Request, secret: &str) -> PushMessage {
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let value = request.headers.get(name).unwrap().to_str().unwrap();
        headers.insert(name, http::HeaderValue::from_str(value).unwrap());
    }
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&request.body, &headers)
        .expect("the signature verifies with an independent implementation");
    let message: PushMessage = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        request.headers.get("webhook-id").unwrap().to_str().unwrap(),
        message.data.id,
        "webhook-id is the change record's id"
    );
    message
}

async fn every_record_is_pushed_once_signed_for_any_standard_webhooks_library(store: DieselStore) {
    let server = receiver(204).await;
    let secret = secret();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let url = format!("{}/hooks/billing?token={}", server.uri(), random_id("tok_"));
    let pusher = pusher(&store, clock, &url, &secret, settings());
    pusher.register().await.unwrap();
    let user = random_id("user_");
    let kinds = [
        ChangeKind::TierChanged,
        ChangeKind::StatusChanged,
        ChangeKind::PaymentSucceeded,
    ];
    let mut written = Vec::new();
    for kind in kinds {
        let c = change(&user, kind);
        commit(&store, &c).await;
        written.push(c);
    }

    let round = pusher.round().await.unwrap();
    assert_eq!(
        (round.enqueued, round.attempted, round.delivered),
        (3, 3, 3)
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    let mut messages: Vec<PushMessage> = requests.iter().map(|r| verified(r, &secret)).collect();
    messages.sort_by_key(|m| m.data.cursor.parse::<i64>().unwrap());
    for (message, change) in messages.iter().zip(&written) {
        assert_eq!(message.data.id, change.change_id);
        assert_eq!(
            message.event_type,
            format!("billing.{}", change.kind.as_str())
        );
        assert_eq!(message.data.user_id.as_deref(), Some(user.as_str()));
        assert_eq!(message.data.after.tier, "PRO");
    }
    assert_eq!(messages[2].data.amount.as_ref().unwrap().value, 2_900);

    // Nothing new: nothing sent again.
    let again = pusher.round().await.unwrap();
    assert_eq!((again.enqueued, again.attempted), (0, 0));
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    let listed = store
        .push_deliveries(&DeliveryFilter {
            limit: 10,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    for delivery in &listed {
        assert_eq!(delivery.status, DeliveryStatus::Succeeded);
        assert_eq!(delivery.attempts, 1);
        assert_eq!(delivery.last_status_code, Some(204));
        assert!(
            !delivery.endpoint.contains("token"),
            "the query is not shown"
        );
    }
}

async fn an_endpoint_starts_after_the_records_committed_before_it(store: DieselStore) {
    let server = receiver(200).await;
    let secret = secret();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let url = format!("{}/hooks/billing", server.uri());
    let user = random_id("user_");
    commit(&store, &change(&user, ChangeKind::TierChanged)).await;
    commit(&store, &change(&user, ChangeKind::StatusChanged)).await;
    let pusher = pusher(&store, clock, &url, &secret, settings());
    let endpoint = pusher.register().await.unwrap();
    assert_eq!(endpoint.start_after, 2);
    // Registered again (a restart): the start stays.
    assert_eq!(pusher.register().await.unwrap().start_after, 2);
    let after = change(&user, ChangeKind::PaymentSucceeded);
    commit(&store, &after).await;
    let round = pusher.round().await.unwrap();
    assert_eq!(round.delivered, 1);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(verified(&requests[0], &secret).data.id, after.change_id);
}

async fn failures_back_off_then_give_up_and_a_replay_sends_again(store: DieselStore) {
    let server = receiver(503).await;
    let secret = secret();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let url = format!("{}/hooks/billing", server.uri());
    let pusher = pusher(&store, clock.clone(), &url, &secret, settings());
    pusher.register().await.unwrap();
    let c = change(&random_id("user_"), ChangeKind::PaymentFailed);
    commit(&store, &c).await;

    let first = pusher.round().await.unwrap();
    assert_eq!((first.attempted, first.retried), (1, 1));
    // Not due before its backoff (10 s after the first failure).
    assert_eq!(pusher.round().await.unwrap().attempted, 0);
    clock.advance(TimeDelta::seconds(9));
    assert_eq!(pusher.round().await.unwrap().attempted, 0);
    clock.advance(TimeDelta::seconds(1));
    let second = pusher.round().await.unwrap();
    assert_eq!((second.attempted, second.retried), (1, 1));
    // The backoff doubled: 20 s.
    clock.advance(TimeDelta::seconds(19));
    assert_eq!(pusher.round().await.unwrap().attempted, 0);
    clock.advance(TimeDelta::seconds(1));
    let third = pusher.round().await.unwrap();
    assert_eq!((third.attempted, third.given_up), (1, 1));
    clock.advance(TimeDelta::hours(1));
    assert_eq!(pusher.round().await.unwrap().attempted, 0, "given up");

    let failed = store
        .push_deliveries(&DeliveryFilter {
            status: Some(DeliveryStatus::Failed),
            endpoint_id: Some(pusher.endpoint().id().to_owned()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].change_id, c.change_id);
    assert_eq!(failed[0].attempts, 3);
    assert_eq!(failed[0].last_status_code, Some(503));
    assert!(failed[0].last_error.as_deref().unwrap().contains("503"));
    assert_eq!(failed[0].next_attempt_at, None);

    // The product is fixed; the operator replays the failed deliveries (at the receiver's
    // time again: it refuses a timestamp from the future).
    clock.set(Utc::now());
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let replayed = store
        .replay_pushes(
            &ReplaySelection::Failed { endpoint_id: None },
            Clock::now(&*clock),
        )
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    let fourth = pusher.round().await.unwrap();
    assert_eq!(fourth.delivered, 1);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(verified(&requests[0], &secret).data.id, c.change_id);
    let done = store
        .push_deliveries(&DeliveryFilter {
            limit: 10,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(done[0].status, DeliveryStatus::Succeeded);
    assert_eq!(done[0].attempts, 4);
}

async fn a_backlog_larger_than_a_round_is_delivered_by_the_run_loop(store: DieselStore) {
    let server = receiver(200).await;
    let secret = secret();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let url = format!("{}/hooks/billing", server.uri());
    let pusher = Arc::new(pusher(&store, clock, &url, &secret, settings()));
    pusher.register().await.unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for n in 0..150 {
        let c = change(&format!("user_{n:03}"), ChangeKind::TierChanged);
        commit(&store, &c).await;
        ids.insert(c.change_id);
    }
    let (commits, wake) = tokio::sync::watch::channel(0_u64);
    let running = tokio::spawn({
        let pusher = Arc::clone(&pusher);
        async move { pusher.run(wake).await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.received_requests().await.unwrap().len() < ids.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One more, announced by a commit.
    let last = change("user_last", ChangeKind::GraceStarted);
    commit(&store, &last).await;
    ids.insert(last.change_id);
    commits.send_modify(|n| *n += 1);
    while server.received_requests().await.unwrap().len() < ids.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.abort();
    let received: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| verified(r, &secret).data.id)
        .collect();
    let unique: std::collections::BTreeSet<String> = received.iter().cloned().collect();
    assert_eq!(received.len(), unique.len(), "no record delivered twice");
    assert_eq!(unique, ids, "every record delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_product_is_cut_at_the_timeout_and_never_holds_up_ingest() {
    let db = TestDatabase::postgres().await;
    let store = db.store().clone();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let secret = secret();
    let settings = PushSettings {
        timeout: Duration::from_millis(300),
        ..settings()
    };
    let url = format!("{}/hooks/billing", server.uri());
    let pusher = Arc::new(pusher(&store, clock, &url, &secret, settings));
    pusher.register().await.unwrap();
    commit(&store, &change("user_hang", ChangeKind::TierChanged)).await;

    let started = Instant::now();
    let round = tokio::spawn({
        let pusher = Arc::clone(&pusher);
        async move { pusher.round().await }
    });
    // Ingest commits while the product hangs.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ingest = Instant::now();
    commit(&store, &change("user_other", ChangeKind::StatusChanged)).await;
    assert!(ingest.elapsed() < Duration::from_secs(2));
    let round = round.await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cut at the timeout"
    );
    assert_eq!((round.attempted, round.retried), (1, 1));
    let listed = store
        .push_deliveries(&DeliveryFilter {
            limit: 10,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    let error = listed[0].last_error.as_deref().unwrap();
    assert!(error.contains("no answer within 300 ms"), "{error}");
    assert_eq!(listed[0].status, DeliveryStatus::Pending);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_failed_attempt_without_the_url() {
    let db = TestDatabase::postgres().await;
    let store = db.store().clone();
    // A port nobody listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token = random_id("tok_");
    let url = format!("http://127.0.0.1:{port}/hooks/billing?token={token}");
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let pusher = pusher(&store, clock, &url, &secret(), settings());
    pusher.register().await.unwrap();
    commit(&store, &change("user_refused", ChangeKind::TierChanged)).await;
    let round = pusher.round().await.unwrap();
    assert_eq!(round.retried, 1);
    let listed = store
        .push_deliveries(&DeliveryFilter {
            limit: 10,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    let error = listed[0].last_error.as_deref().unwrap();
    assert!(error.contains("could not connect"), "{error}");
    assert!(
        !error.contains(&token),
        "the URL's token is never recorded: {error}"
    );
    assert_eq!(listed[0].last_status_code, None);
    drop(db);
}
