//! Group commit: concurrent deliveries share one ingest transaction (one lane here, so that
//! what waits while it runs is taken together), each answered after that commit; a failure of
//! one of them rolls the shared transaction back and each is applied again on its own, so only
//! the failing event is recorded as failed.
//!
//! Most run on a current-thread runtime and poll every delivery once before any lane runs
//! (`join_all`), so the deliveries are all waiting when the lane starts: one shared
//! transaction, deterministically. A delivery no lane takes in time is answered as a pool
//! timeout would be, and never applied.

use std::sync::Arc;
use std::time::Duration;

use billing_app::{AppSettings, BillingApp, IngestOutcome};
use billing_domain::facts::{InvoiceChange, SubscriptionChange};
use billing_domain::{BillingEvent, SubscriptionStatus};
use billing_ports::testing::{FaultyStore, StoreCall};
use billing_ports::{BillingStore, Cause, EventStatus, ManualClock, StoreError};
use billing_store_diesel::Backend;
use billing_store_diesel::testing::TestDatabase;
use futures_util::future::join_all;
use tokio::task::JoinHandle;

use crate::support::{Story, catalog, credits, subscription, t0};

/// An app over `store` with `settings`, on a manual clock.
fn app_with<S: BillingStore>(store: S, settings: AppSettings) -> BillingApp<S> {
    BillingApp::new(
        Arc::new(store),
        catalog(),
        Arc::new(ManualClock::new(t0())),
        None,
        settings,
    )
}

/// An app over `store` whose deliveries share transactions, one at a time.
fn grouped<S: BillingStore>(store: S) -> BillingApp<S> {
    app_with(
        store,
        AppSettings {
            ingest_batch: 64,
            ingest_lanes: 1,
            ..AppSettings::default()
        },
    )
}

/// An app over `store` with one lane, whose deliveries wait at most `wait` for it.
fn one_lane<S: BillingStore>(store: S, wait: Duration) -> BillingApp<S> {
    app_with(
        store,
        AppSettings {
            ingest_lanes: 1,
            ingest_wait: wait,
            ..AppSettings::default()
        },
    )
}

/// A session of its own on `db` (the test's, beside the app's pool), and its driver task.
async fn session(db: &TestDatabase) -> (tokio_postgres::Client, JoinHandle<()>) {
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    (
        client,
        tokio::spawn(async move { connection.await.unwrap() }),
    )
}

/// Another session holding `customer`'s lock (as a unit of work elsewhere would) until
/// [`HeldLock::release`].
pub(crate) struct HeldLock {
    client: tokio_postgres::Client,
    driver: JoinHandle<()>,
    customer: String,
}

impl HeldLock {
    pub(crate) async fn take(db: &TestDatabase, customer: &str) -> Self {
        let (client, driver) = session(db).await;
        client
            .execute(
                "SELECT pg_advisory_lock(hashtextextended($1, 0))",
                &[&customer],
            )
            .await
            .unwrap();
        Self {
            client,
            driver,
            customer: customer.to_owned(),
        }
    }

    pub(crate) async fn release(self) {
        self.client
            .execute(
                "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
                &[&self.customer],
            )
            .await
            .unwrap();
        drop(self.client);
        self.driver.await.unwrap();
    }
}

/// A subscription of each of `n` customers, created.
fn created(n: usize, tag: &str) -> Vec<(Story, BillingEvent)> {
    (0..n)
        .map(|i| {
            let story = Story::new(&format!("{tag}_{i}"));
            let event = story.subscription(
                "created",
                SubscriptionChange::Created,
                0,
                story.snapshot(SubscriptionStatus::Active, 0),
            );
            (story, event)
        })
        .collect()
}

/// Delivers `events` at once through `app`: the outcomes in the same order.
async fn deliver_at_once<S: BillingStore>(
    app: &BillingApp<S>,
    events: Vec<BillingEvent>,
) -> Vec<Result<IngestOutcome, billing_app::IngestError>> {
    join_all(
        events
            .into_iter()
            .map(|event| app.ingest(event, "{}".to_owned())),
    )
    .await
}

#[tokio::test]
async fn concurrent_deliveries_commit_together_each_once() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let app = grouped(db.store().clone());
    let stories = created(24, "together");
    let mut events: Vec<BillingEvent> = stories.iter().map(|(_, e)| e.clone()).collect();
    // Each event twice: the second delivery waits for the first and is its duplicate.
    events.extend(events.clone());

    let outcomes = deliver_at_once(&app, events).await;
    let (first, second) = outcomes.split_at(24);
    assert!(
        first
            .iter()
            .all(|o| matches!(o, Ok(IngestOutcome::Processed))),
        "{first:?}"
    );
    assert!(
        second
            .iter()
            .all(|o| matches!(o, Ok(IngestOutcome::Duplicate(EventStatus::Processed)))),
        "{second:?}"
    );
    for (story, _) in &stories {
        let stored = subscription(db.store(), &story.subscription).await.unwrap();
        assert_eq!(stored.status, SubscriptionStatus::Active);
    }

    // One commit for all of them: the rows share the inserting transaction.
    let (client, driver) = session(&db).await;
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT xmin::text) FROM stripe_events",
            &[],
        )
        .await
        .unwrap();
    let (events, transactions): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(events, 24);
    assert_eq!(
        transactions, 1,
        "24 deliveries waiting together share one commit"
    );
    drop(client);
    driver.await.unwrap();
}

/// With the store's database thread, lanes run there (`BillingStore::runtime`), away from the
/// runtime the deliveries wait on: each delivery is still applied once and answered after its
/// commit, a second delivery of an event as its duplicate.
#[tokio::test]
async fn lanes_on_the_database_thread_apply_each_delivery_once() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let settings = billing_store_diesel::StoreSettings {
        database_thread: true,
        ..billing_store_diesel::StoreSettings::new(4)
    };
    let store = billing_store_diesel::DieselStore::connect_with(db.url(), settings).unwrap();
    assert!(store.runtime().is_some());
    let app = app_with(store, AppSettings::default());
    let stories = created(24, "threaded");
    let mut events: Vec<BillingEvent> = stories.iter().map(|(_, e)| e.clone()).collect();
    events.extend(events.clone());
    let outcomes = deliver_at_once(&app, events).await;
    let processed = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(IngestOutcome::Processed)))
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(IngestOutcome::Duplicate(EventStatus::Processed))))
        .count();
    assert_eq!((processed, duplicates), (24, 24), "{outcomes:?}");
    for (story, _) in &stories {
        let stored = subscription(db.store(), &story.subscription).await.unwrap();
        assert_eq!(stored.status, SubscriptionStatus::Active);
    }
    let (client, driver) = session(&db).await;
    let row = client
        .query_one("SELECT count(*) FROM stripe_events", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 24);
    drop(client);
    driver.await.unwrap();
}

#[tokio::test]
async fn a_failure_in_a_shared_transaction_is_recorded_for_its_event_only_postgres() {
    a_failure_in_a_shared_transaction_is_recorded_for_its_event_only(Backend::Postgres).await;
}

#[tokio::test]
async fn a_failure_in_a_shared_transaction_is_recorded_for_its_event_only_sqlite() {
    a_failure_in_a_shared_transaction_is_recorded_for_its_event_only(Backend::Sqlite).await;
}

async fn a_failure_in_a_shared_transaction_is_recorded_for_its_event_only(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().clone();
    let payer = Story::new("shared_payer");
    let setup = grouped(store.clone());
    let first = payer.subscription(
        "created",
        SubscriptionChange::Created,
        0,
        payer.snapshot(SubscriptionStatus::PastDue, 0),
    );
    assert_eq!(
        setup.ingest(first, "{}".into()).await.unwrap(),
        IngestOutcome::Processed
    );

    // Crediting fails: the paid invoice cannot apply, the subscriptions can.
    let faulty = FaultyStore::new(store.clone());
    faulty.fail(
        StoreCall::AddCredit,
        StoreError::Query(Cause::msg("injected: credit ledger unavailable")),
    );
    let app = grouped(faulty.clone());
    let paid = payer.invoice("paid", InvoiceChange::Paid, 5, "1", 0, 2000);
    let others = created(6, "shared_other");
    let mut events: Vec<BillingEvent> = others.iter().map(|(_, e)| e.clone()).collect();
    events.insert(3, paid.clone());

    let outcomes = deliver_at_once(&app, events).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        if i == 3 {
            let error = outcome.as_ref().unwrap_err();
            assert!(error.recorded, "{error:?}");
        } else {
            assert!(
                matches!(outcome, Ok(IngestOutcome::Processed)),
                "{outcome:?}"
            );
        }
    }
    // Tried in the shared transaction, then alone: the failure is counted once.
    assert_eq!(faulty.calls(StoreCall::AddCredit), 2);
    let stored = store.event(&paid.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.attempts), (EventStatus::Failed, 1));
    assert_eq!(credits(&store, &payer.user).await, 0);
    assert_eq!(
        subscription(&store, &payer.subscription)
            .await
            .unwrap()
            .status,
        SubscriptionStatus::PastDue
    );
    for (story, event) in &others {
        let row = store.event(&event.id).await.unwrap().unwrap();
        assert_eq!((row.status, row.attempts), (EventStatus::Processed, 0));
        let stored = subscription(&store, &story.subscription).await.unwrap();
        assert_eq!(stored.status, SubscriptionStatus::Active);
    }

    // A redelivery with the store healthy applies it.
    let healthy = grouped(store.clone());
    assert_eq!(
        healthy.ingest(paid, "{}".into()).await.unwrap(),
        IngestOutcome::Processed
    );
    assert_eq!(credits(&store, &payer.user).await, 1000);
}

#[tokio::test]
async fn a_delivery_waiting_for_a_failed_first_claims_the_event_itself() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let store = db.store().clone();
    let payer = Story::new("follower");
    let setup = grouped(store.clone());
    let first = payer.subscription(
        "created",
        SubscriptionChange::Created,
        0,
        payer.snapshot(SubscriptionStatus::PastDue, 0),
    );
    setup.ingest(first, "{}".into()).await.unwrap();

    let faulty = FaultyStore::new(store.clone());
    faulty.fail(
        StoreCall::AddCredit,
        StoreError::Query(Cause::msg("injected: credit ledger unavailable")),
    );
    let app = grouped(faulty.clone());
    let paid = payer.invoice("paid", InvoiceChange::Paid, 5, "1", 0, 2000);
    let others = created(2, "follower_other");
    let mut events: Vec<BillingEvent> = others.iter().map(|(_, e)| e.clone()).collect();
    events.push(paid.clone());
    events.push(paid.clone());

    let outcomes = deliver_at_once(&app, events).await;
    assert!(matches!(outcomes[0], Ok(IngestOutcome::Processed)));
    assert!(matches!(outcomes[1], Ok(IngestOutcome::Processed)));
    // Both deliveries of the invoice failed, each its own attempt: the second waited for the
    // first instead of being answered as its duplicate.
    assert!(outcomes[2].as_ref().is_err_and(|e| e.recorded));
    assert!(outcomes[3].as_ref().is_err_and(|e| e.recorded));
    let stored = store.event(&paid.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.attempts), (EventStatus::Failed, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_no_lane_takes_in_time_is_answered_unavailable_and_never_applied() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let app = one_lane(db.store().clone(), Duration::from_millis(300));
    let [(held, first), (_, second)]: [(Story, BillingEvent); 2] =
        created(2, "no_lane").try_into().unwrap();

    // Another session holds the first customer's lock: the one lane waits for it.
    let lock = HeldLock::take(&db, &held.customer).await;
    let blocked = {
        let app = app.clone();
        tokio::spawn(async move { app.ingest(first, "{}".into()).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = std::time::Instant::now();
    let answered = tokio::time::timeout(
        Duration::from_secs(5),
        app.ingest(second.clone(), "{}".into()),
    );
    let error = answered
        .await
        .expect("answered without waiting for the lane")
        .expect_err("no lane was free");
    assert!(error.cause.is_unavailable() && !error.recorded, "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    lock.release().await;
    assert_eq!(blocked.await.unwrap().unwrap(), IngestOutcome::Processed);
    // Withdrawn before any lane took it: never applied, and Stripe's retry applies it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(db.store().event(&second.id).await.unwrap().is_none());
    assert_eq!(
        app.ingest(second, "{}".into()).await.unwrap(),
        IngestOutcome::Processed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_dropped_with_its_runtime_gives_its_place_back() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let app = one_lane(db.store().clone(), Duration::from_millis(500));
    let [(held, first), (_, second)]: [(Story, BillingEvent); 2] =
        created(2, "dropped_lane").try_into().unwrap();
    let lock = HeldLock::take(&db, &held.customer).await;

    // The one lane starts on a runtime of its own (an HTTP worker's), and waits there for the
    // held customer; then that runtime shuts down (a worker stopping) with the lane in it.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let waiting = {
        let app = app.clone();
        doomed.spawn(async move { app.ingest(first, "{}".into()).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    doomed.shutdown_background();
    assert!(waiting.await.unwrap_err().is_cancelled());

    // The lane's place is free again once the runtime dropped it (in the background): a
    // delivery queued before that waits out `ingest_wait` and is answered unavailable, the
    // next one (Stripe's retry) starts a lane and is applied.
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let answered = tokio::time::timeout(
            Duration::from_secs(10),
            app.ingest(second.clone(), "{}".into()),
        );
        let outcome = answered.await.expect("answered");
        let applied = outcome.is_ok();
        outcomes.push(outcome);
        if applied {
            break;
        }
    }
    assert!(
        matches!(outcomes.last(), Some(Ok(IngestOutcome::Processed))),
        "{outcomes:?}"
    );
    lock.release().await;
}

#[tokio::test]
async fn a_shared_transaction_that_finds_the_database_unavailable_records_no_failure() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let store = db.store().clone();
    let payer = Story::new("unavailable_payer");
    let first = payer.subscription(
        "created",
        SubscriptionChange::Created,
        0,
        payer.snapshot(SubscriptionStatus::PastDue, 0),
    );
    grouped(store.clone())
        .ingest(first, "{}".into())
        .await
        .unwrap();

    // One event's step finds the database unavailable: which event held it up cannot be
    // told, so none is recorded as failed (a failure recorded must be the event's own).
    let faulty = FaultyStore::new(store.clone());
    faulty.fail(
        StoreCall::AddCredit,
        StoreError::Unavailable(Cause::msg("injected: connection lost")),
    );
    let app = grouped(faulty.clone());
    let paid = payer.invoice("paid", InvoiceChange::Paid, 5, "1", 0, 2000);
    let others = created(3, "unavailable_other");
    let mut events: Vec<BillingEvent> = others.iter().map(|(_, e)| e.clone()).collect();
    events.push(paid.clone());

    let outcomes = deliver_at_once(&app, events.clone()).await;
    for outcome in &outcomes {
        let error = outcome.as_ref().unwrap_err();
        assert!(error.cause.is_unavailable() && !error.recorded, "{error:?}");
    }
    assert_eq!(
        faulty.calls(StoreCall::AddCredit),
        1,
        "not tried again one by one"
    );
    for event in &events {
        assert!(
            store.event(&event.id).await.unwrap().is_none(),
            "{}",
            event.id
        );
    }

    // Stripe's retries, with the database back, apply each.
    let healthy = grouped(store.clone());
    for outcome in deliver_at_once(&healthy, events).await {
        assert_eq!(outcome.unwrap(), IngestOutcome::Processed);
    }
    assert_eq!(credits(&store, &payer.user).await, 1000);
}
