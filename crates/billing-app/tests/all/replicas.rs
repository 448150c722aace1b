//! Several replicas on one Postgres database keep their gate caches in step through the gate
//! channel (`LISTEN`/`NOTIFY`): a change committed by one is seen by another's next check long
//! before the time to live (an hour here, so only a notification can explain it); a replica
//! whose listening connection is killed reconnects and forgets everything; a transaction that
//! rolls back tells nobody anything.
//!
//! Waits are on a condition with a generous deadline (a failure bound, not a timing claim).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing_app::{AppSettings, BillingApp};
use billing_domain::SubscriptionStatus;
use billing_domain::facts::SubscriptionChange;
use billing_ports::testing::{FaultyStore, StoreCall};
use billing_ports::{BillingStore, Cause, GateInvalidation, ManualClock, StoreError};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{DieselStore, GateChannel, GateEvent};

use crate::support::{self, Story};

/// Long enough that only a notification (or a flush) can make a cached entry go.
const TTL: Duration = Duration::from_secs(3600);

/// How long a condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(15);

/// One replica: an app with an hour-long gate cache, wired to its own gate channel as the
/// server wires it, and what its channel reported.
struct Replica<S: BillingStore> {
    app: BillingApp<S>,
    events: Arc<Mutex<Vec<GateEvent>>>,
    _channel: Arc<GateChannel>,
}

impl<S: BillingStore> Replica<S> {
    /// Starts the replica's channel on `db` and waits until it listens.
    async fn start(store: S, db: &DieselStore) -> Self {
        let app = BillingApp::new(
            Arc::new(store),
            support::catalog(),
            Arc::new(ManualClock::new(support::t0())),
            None,
            AppSettings {
                gate_ttl: TTL,
                ..AppSettings::default()
            },
        );
        let events = Arc::new(Mutex::new(Vec::new()));
        let (listener, log) = (app.clone(), Arc::clone(&events));
        let channel = db
            .gate_channel(move |event| {
                match &event {
                    GateEvent::Connected { .. } => {
                        listener.forget_gate_state(&GateInvalidation::All)
                    }
                    GateEvent::Changed(change) => listener.forget_gate_state(change),
                    GateEvent::Disconnected { .. } => {}
                }
                log.lock().unwrap().push(event);
            })
            .unwrap()
            .expect("a Postgres store has a gate channel");
        let channel = Arc::new(channel);
        assert!(app.broadcast_gate_changes(channel.clone()));
        let replica = Self {
            app,
            events,
            _channel: channel,
        };
        eventually("the channel listens", || async {
            replica.connections().len() == 1
        })
        .await;
        replica
    }

    /// The backend pids of every `Connected` so far, with whether it was a reconnect.
    fn connections(&self) -> Vec<(bool, i32)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                GateEvent::Connected {
                    reconnect,
                    backend_pid,
                } => Some((*reconnect, *backend_pid)),
                _ => None,
            })
            .collect()
    }

    /// Every change received so far.
    fn changes(&self) -> Vec<GateInvalidation> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                GateEvent::Changed(change) => Some(change.clone()),
                _ => None,
            })
            .collect()
    }

    async fn tier(&self, user: &str) -> String {
        self.app
            .entitlements(user)
            .await
            .unwrap()
            .tier
            .as_str()
            .to_owned()
    }

    async fn used(&self, user: &str) -> u64 {
        self.app.entitlements(user).await.unwrap().usage["api_calls"]
    }
}

/// Waits until `check` holds, failing the test past [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// True when `change` names `user` or everything.
fn names_user(change: &GateInvalidation, user: &str) -> bool {
    match change {
        GateInvalidation::All => true,
        GateInvalidation::Keys { users, .. } => users.iter().any(|u| u == user),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_on_one_replica_shows_on_the_others_next_check() {
    let db = TestDatabase::postgres().await;
    let a = Replica::start(db.store().clone(), db.store()).await;
    let b = Replica::start(db.store().clone(), db.store()).await;
    let story = Story::new("replica_webhook");
    assert_eq!(b.tier(&story.user).await, "FREE");

    a.app
        .ingest(story.customer_created(0), "{}".into())
        .await
        .unwrap();
    let created = story.subscription(
        "created",
        SubscriptionChange::Created,
        1,
        story.snapshot(SubscriptionStatus::Active, 0),
    );
    a.app.ingest(created, "{}".into()).await.unwrap();
    eventually("B sees the upgrade", || async {
        b.tier(&story.user).await == "PRO"
    })
    .await;

    // An event that names only the customer, on a third replica (whose channel has nothing
    // else queued to coalesce it with): B finds the user through its customer index.
    let c = Replica::start(db.store().clone(), db.store()).await;
    let mut snapshot = story.snapshot(SubscriptionStatus::Canceled, 0);
    snapshot.metadata_user_id = None;
    let canceled = story.subscription("deleted", SubscriptionChange::Deleted, 2, snapshot);
    c.app.ingest(canceled, "{}".into()).await.unwrap();
    // C's notification names the customer alone (A's may still be arriving and explain a
    // reload too, so wait for C's), and once B has it the cancelation shows.
    eventually("B hears C's notification", || async {
        b.changes().iter().any(|c| {
            matches!(
                c,
                GateInvalidation::Keys { customers, users }
                    if customers == std::slice::from_ref(&story.customer) && users.is_empty()
            )
        })
    })
    .await;
    assert_eq!(b.tier(&story.user).await, "FREE");
    // A skips its own notifications (it forgot those entries when it committed): only C's
    // reaches it, and that one names no user.
    assert!(
        !a.changes().iter().any(|c| names_user(c, &story.user)),
        "{:?}",
        a.changes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consume_on_one_replica_shows_on_the_others_next_check() {
    let db = TestDatabase::postgres().await;
    let a = Replica::start(db.store().clone(), db.store()).await;
    let b = Replica::start(db.store().clone(), db.store()).await;
    let story = Story::new("replica_consume");
    assert_eq!(b.used(&story.user).await, 0);
    for n in 1..=3u64 {
        let outcome = a
            .app
            .record_usage(&story.user, "api_calls", 2, &format!("req_replica_{n}"))
            .await
            .unwrap();
        assert!(outcome.allowed);
        eventually(&format!("B counts consume {n}"), || async {
            b.used(&story.user).await == 2 * n
        })
        .await;
    }
    // And the other way round.
    b.app
        .record_usage(&story.user, "api_calls", 1, "req_replica_b")
        .await
        .unwrap();
    eventually("A counts B's consume", || async {
        a.used(&story.user).await == 7
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_connection_is_killed_reconnects_and_forgets_everything() {
    let db = TestDatabase::postgres().await;
    let a = Replica::start(db.store().clone(), db.store()).await;
    let b = Replica::start(db.store().clone(), db.store()).await;
    let story = Story::new("replica_killed");
    assert_eq!(b.used(&story.user).await, 0);

    // A change nobody announces (an operator, a replica that died before it could notify).
    let silent = support::app(db.store().clone());
    silent
        .record_usage(&story.user, "api_calls", 4, "req_silent")
        .await
        .unwrap();
    // B's cache really holds: an hour-long entry and no notification.
    assert_eq!(b.used(&story.user).await, 0);

    let (reconnect, killed) = b.connections()[0];
    assert!(!reconnect);
    let (admin, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let row = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&killed])
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "the listener's backend is terminated"
    );

    eventually("B listens again", || async { b.connections().len() == 2 }).await;
    let (reconnect, backend) = b.connections()[1];
    assert!(reconnect);
    assert_ne!(backend, killed);
    // The flush after the reconnect is what shows the silent change.
    assert_eq!(b.used(&story.user).await, 4);
    assert!(
        b.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, GateEvent::Disconnected { .. }))
    );

    // And notifications flow on the new connection.
    a.app
        .record_usage(&story.user, "api_calls", 1, "req_after_reconnect")
        .await
        .unwrap();
    eventually("B counts A's consume after the reconnect", || async {
        b.used(&story.user).await == 5
    })
    .await;
    drop(admin);
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_transaction_tells_no_replica() {
    let db = TestDatabase::postgres().await;
    // A's store fails the credits of an invoice midway: the transaction that saved the
    // subscription rolls back.
    let faulty = FaultyStore::new(db.store().clone());
    faulty.fail(
        StoreCall::AddCredit,
        StoreError::Query(Cause::msg("injected failure while adding credits")),
    );
    let a = Replica::start(faulty, db.store()).await;
    let b = Replica::start(db.store().clone(), db.store()).await;
    let failed = Story::new("replica_rolled_back");
    // The subscription exists, written by a replica that announces nothing.
    support::app(db.store().clone())
        .ingest(
            failed.subscription(
                "created",
                SubscriptionChange::Created,
                0,
                failed.snapshot(SubscriptionStatus::PastDue, 0),
            ),
            "{}".into(),
        )
        .await
        .unwrap();
    let error = a
        .app
        .ingest(
            failed.invoice(
                "paid",
                billing_domain::facts::InvoiceChange::Paid,
                5,
                "1",
                0,
                2000,
            ),
            "{}".into(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error.cause,
            billing_app::AppError::Store(StoreError::Query(_))
        ) && error.recorded,
        "{error:?}"
    );

    // A marker committed after it: notifications arrive in order, so once the marker's is
    // in, anything about the failed one would be too.
    let marker = Story::new("replica_marker");
    a.app
        .record_usage(&marker.user, "api_calls", 1, "req_marker")
        .await
        .unwrap();
    eventually("B hears the marker", || async {
        b.changes().iter().any(|c| names_user(c, &marker.user))
    })
    .await;
    let changes = b.changes();
    assert!(
        !changes.iter().any(|c| match c {
            GateInvalidation::All => true,
            GateInvalidation::Keys { customers, users } =>
                customers.contains(&failed.customer) || users.contains(&failed.user),
        }),
        "the rolled-back event was announced: {changes:?}"
    );
}
