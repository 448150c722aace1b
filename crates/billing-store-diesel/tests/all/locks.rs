//! What the store promises about concurrency: a row read by `subscription()`, and a payment
//! read under its ids' locks, stay locked until commit, and a read-only unit of work never
//! waits for a writer.

use std::time::Duration;

use billing_domain::SubscriptionStatus;
use billing_ports::{
    BillingStore, BillingTx, Claim, CustomerRecord, EventStatus, NewEvent, ReadAhead,
    ScopedFutureExt, StoreError, SubscriptionRecord,
};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, DieselStore, on_both_backends};
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::at;

on_both_backends!(
    a_subscription_read_to_change_it_stays_locked_until_commit,
    a_payment_read_by_one_id_holds_off_a_writer_knowing_it_by_the_other,
    a_read_does_not_wait_for_a_writer,
    a_read_with_its_lock_sees_the_holders_commit,
);

const CUSTOMER: &str = "cus_R3kV9qWm2XbT7p";
const SUBSCRIPTION: &str = "sub_1Sb4Hq2eZvKYlo2C8nXw";
const USER: &str = "user_7c2e9a41";

fn subscription(status: SubscriptionStatus, event: &str, second: i64) -> SubscriptionRecord {
    crate::pro_subscription(SUBSCRIPTION, CUSTOMER, status, event, second)
}

async fn seed(db: &TestDatabase) {
    let customer = CustomerRecord {
        stripe_customer_id: CUSTOMER.to_owned(),
        user_id: Some(USER.to_owned()),
        email: None,
        deleted: false,
    };
    let active = subscription(SubscriptionStatus::Active, "evt_1Sb4Ja2eZvKYlo2Cq0Tn", 1);
    db.store()
        .transaction(|tx| {
            async move {
                tx.save_customer(&customer, at(1)).await?;
                tx.save_subscription(&active, at(1)).await
            }
            .scope_boxed()
        })
        .await
        .unwrap();
}

/// A writer that takes the locks of `keys`, gives the customer a new email and the
/// subscription the status past_due (read first, locking its row, as every writer of a
/// subscription does: the save itself is written at the commit), then holds its transaction
/// open until the returned sender is used; returned once it holds them.
async fn open_writer(
    db: &TestDatabase,
    keys: Vec<String>,
) -> (
    tokio::task::JoinHandle<Result<(), StoreError>>,
    oneshot::Sender<()>,
) {
    let (started_tx, started_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let store = db.store().clone();
    let writer = tokio::spawn(async move {
        store
            .transaction(move |tx| {
                async move {
                    tx.lock_keys(&keys).await?;
                    let mut customer = tx.customer(CUSTOMER).await?.unwrap();
                    customer.email = Some("t.nakamura@example.org".to_owned());
                    tx.save_customer(&customer, at(5)).await?;
                    let past_due =
                        subscription(SubscriptionStatus::PastDue, "evt_1Sb4Lc2eZvKYlo2Cm5Ue", 5);
                    tx.subscription(&past_due.stripe_subscription_id).await?;
                    tx.save_subscription(&past_due, at(5)).await?;
                    started_tx.send(()).ok();
                    release_rx.await.ok();
                    Ok::<_, StoreError>(())
                }
                .scope_boxed()
            })
            .await
    });
    started_rx.await.unwrap();
    (writer, release_tx)
}

/// A second writer reading the same subscription waits until the first commits, then sees
/// what the first wrote (not the "before" both read).
async fn a_subscription_read_to_change_it_stays_locked_until_commit(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    seed(&db).await;
    let (read_tx, read_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let first_store = db.store().clone();
    let first = tokio::spawn(async move {
        first_store
            .transaction(move |tx| {
                async move {
                    let before = tx.subscription(SUBSCRIPTION).await?;
                    read_tx.send(before).ok();
                    release_rx.await.ok();
                    let canceled =
                        subscription(SubscriptionStatus::Canceled, "evt_1Sb4Kb2eZvKYlo2CzK8d", 9);
                    tx.save_subscription(&canceled, at(9)).await
                }
                .scope_boxed()
            })
            .await
    });
    let before = read_rx.await.unwrap().unwrap();
    assert_eq!(before.status, SubscriptionStatus::Active);

    let second_store = db.store().clone();
    let second = tokio::spawn(async move {
        second_store
            .transaction(|tx| async move { tx.subscription(SUBSCRIPTION).await }.scope_boxed())
            .await
    });
    let seen = waits_for_first_commit(first, release_tx, second).await;
    assert_eq!(seen.unwrap().status, SubscriptionStatus::Canceled);
}

/// Checks that `second` is still waiting 400 ms on, then lets `first` commit (`release`)
/// and returns what `second` read once it could.
async fn waits_for_first_commit<T>(
    first: JoinHandle<Result<(), StoreError>>,
    release: oneshot::Sender<()>,
    mut second: JoinHandle<Result<T, StoreError>>,
) -> T {
    assert!(
        tokio::time::timeout(Duration::from_millis(400), &mut second)
            .await
            .is_err(),
        "the second reader must wait for the first writer's commit"
    );
    release.send(()).unwrap();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap()
}

const INTENT: &str = "pi_3Sc1Fq2eZvKYlo2C4Hd7";
const CHARGE: &str = "ch_3Sc1Fq2eZvKYlo2C9Lw2";

/// Stores a payment known by `INTENT` and `CHARGE` (1 200 refunded), then opens a writer
/// that takes only the intent's lock, reads the payment by the intent, and, once released,
/// raises its refund to 4 900 and commits; returned once it has read.
async fn open_payment_writer(
    db: &TestDatabase,
) -> (
    tokio::task::JoinHandle<Result<(), StoreError>>,
    oneshot::Sender<()>,
) {
    let stored = crate::records::payment(INTENT, Some(INTENT), Some(CHARGE));
    db.store()
        .transaction(|tx| async move { tx.save_payment(&stored, at(1)).await }.scope_boxed())
        .await
        .unwrap();
    let (read_tx, read_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let store = db.store().clone();
    let writer = tokio::spawn(async move {
        store
            .transaction(move |tx| {
                async move {
                    tx.lock_keys(&[INTENT.to_owned()]).await?;
                    let mut rows = tx.payments_matching(Some(INTENT), None).await?;
                    let mut refunded = rows.pop().expect("the stored payment");
                    read_tx.send(refunded.amount_refunded).ok();
                    release_rx.await.ok();
                    refunded.amount_refunded = 4_900;
                    tx.save_payment(&refunded, at(9)).await
                }
                .scope_boxed()
            })
            .await
    });
    assert_eq!(read_rx.await.unwrap(), 1_200);
    (writer, release_tx)
}

/// Reads the payment by `CHARGE` alone under that id's lock, in a transaction of its own
/// that waits for locks (`wait`) or only tries them.
fn read_by_charge(
    db: &TestDatabase,
    wait: bool,
) -> tokio::task::JoinHandle<Result<Vec<billing_ports::PaymentRecord>, StoreError>> {
    let store = db.store().clone();
    tokio::spawn(async move {
        store
            .transaction(move |tx| {
                async move {
                    tx.wait_for_locks(wait).await?;
                    tx.lock_keys(&[CHARGE.to_owned()]).await?;
                    tx.payments_matching(None, Some(CHARGE)).await
                }
                .scope_boxed()
            })
            .await
    })
}

/// A payment stored with its payment intent and its charge, read by a transaction holding
/// only the intent's lock: a second transaction that knows it by its charge alone (a dispute
/// naming only the charge) takes the charge's lock at once, then waits for the row until the
/// first commits, and reads what the first wrote: no refund lost between two "befores".
async fn a_payment_read_by_one_id_holds_off_a_writer_knowing_it_by_the_other(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let (first, release_tx) = open_payment_writer(&db).await;
    let second = read_by_charge(&db, true);
    let seen = waits_for_first_commit(first, release_tx, second).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].amount_refunded, 4_900, "the first writer's refund");
}

/// The same second reader in a transaction that does not wait for locks (group commit): the
/// locked row is reported busy at once instead of waited for, since a wait there could close
/// a cycle with another shared transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_row_locked_elsewhere_is_busy_for_a_transaction_that_does_not_wait() {
    let db = TestDatabase::postgres().await;
    let (first, release_tx) = open_payment_writer(&db).await;
    let started = std::time::Instant::now();
    let second = tokio::time::timeout(Duration::from_secs(5), read_by_charge(&db, false))
        .await
        .expect("answered at once, not after the first's commit")
        .unwrap();
    assert!(matches!(second, Err(StoreError::LockBusy(_))), "{second:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    release_tx.send(()).unwrap();
    first.await.unwrap().unwrap();
    // Free again: read and locked as usual.
    let after = read_by_charge(&db, false).await.unwrap().unwrap();
    assert_eq!(after[0].amount_refunded, 4_900);
}

/// Claims `event` done in a transaction of its own on `store`, naming the seeded customer.
async fn claim_naming_customer(
    store: DieselStore,
    event: NewEvent,
) -> Result<(Claim, Option<CustomerRecord>), StoreError> {
    store
        .transaction(move |tx| {
            async move {
                tx.claim_event_then_lock_customer(
                    &event,
                    EventStatus::Processed,
                    at(6),
                    Some(CUSTOMER),
                )
                .await
            }
            .scope_boxed()
        })
        .await
}

/// `lock_customer`, `lock_then_access_rows`, `claim_event_then_lock_customer` and
/// `claim_events_then_lock_customers` (one round trip each on Postgres) wait for the
/// transaction holding their lock and read what it committed, not what stood before it; the
/// claim of an event done already names no customer and, on Postgres, does not wait for the
/// lock.
async fn a_read_with_its_lock_sees_the_holders_commit(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    seed(&db).await;
    let event = crate::store::event("evt_1Sb4Ne2eZvKYlo2CpT4x");
    let claim = |event: NewEvent| tokio::spawn(claim_naming_customer(db.store().clone(), event));
    let done = crate::store::event("evt_1Sb4Mx2eZvKYlo2CkV7r");
    let (first, _) = claim(done.clone()).await.unwrap().unwrap();
    assert!(matches!(first, Claim::Claimed { .. }), "{first:?}");
    let feed_key = format!("feed:{USER}");
    let (writer, release_tx) = open_writer(&db, vec![CUSTOMER.to_owned(), feed_key.clone()]).await;
    if backend == Backend::Postgres {
        // A delivery of an event done already does not wait for the customer's lock (on
        // SQLite every writer waits for the one writer).
        let duplicate = tokio::time::timeout(Duration::from_secs(2), claim(done)).await;
        let (again, none) = duplicate.expect("answered at once").unwrap().unwrap();
        assert_eq!(again, Claim::AlreadyDone(EventStatus::Processed));
        assert_eq!(none, None);
    }
    let store = db.store().clone();
    let mut customer = tokio::spawn(async move {
        store
            .transaction(|tx| async move { tx.lock_customer(CUSTOMER).await }.scope_boxed())
            .await
    });
    let store = db.store().clone();
    let mut access = tokio::spawn(async move {
        store
            .transaction(move |tx| {
                async move { tx.lock_then_access_rows(&[feed_key], USER).await }.scope_boxed()
            })
            .await
    });
    let claimed = claim(event.clone());
    let store = db.store().clone();
    let (together, done_too) = (
        crate::store::event("evt_1Sb4Pk2eZvKYlo2CwE6d"),
        crate::store::event("evt_1Sb4Mx2eZvKYlo2CkV7r"),
    );
    let mut batch = tokio::spawn(async move {
        store
            .transaction(move |tx| {
                async move {
                    let events = [
                        (&done_too, EventStatus::Processed),
                        (&together, EventStatus::Processed),
                    ];
                    let customers = [CUSTOMER.to_owned()];
                    let claims = tx
                        .claim_events_then_lock_customers(&events, at(6), &customers)
                        .await?;
                    let customer = tx.customer(CUSTOMER).await?;
                    Ok::<_, StoreError>((claims, customer))
                }
                .scope_boxed()
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !customer.is_finished()
            && !access.is_finished()
            && !claimed.is_finished()
            && !batch.is_finished(),
        "all wait for the holder"
    );
    release_tx.send(()).unwrap();
    writer.await.unwrap().unwrap();
    let (first, claimed_customer) = claimed.await.unwrap().unwrap();
    assert!(matches!(first, Claim::Claimed { attempts: 0 }), "{first:?}");
    let email = claimed_customer.unwrap().email;
    assert_eq!(email.as_deref(), Some("t.nakamura@example.org"));
    let (again, none) = claim(event).await.unwrap().unwrap();
    assert_eq!(again, Claim::AlreadyDone(EventStatus::Processed));
    assert_eq!(none, None);
    let customer = (&mut customer).await.unwrap().unwrap().unwrap();
    assert_eq!(customer.email.as_deref(), Some("t.nakamura@example.org"));
    let access = (&mut access).await.unwrap().unwrap();
    assert_eq!(access.customer.as_deref(), Some(CUSTOMER));
    assert_eq!(access.subscriptions.len(), 1);
    assert_eq!(access.subscriptions[0].status, SubscriptionStatus::PastDue);
    let (claims, customer) = (&mut batch).await.unwrap().unwrap();
    assert_eq!(claims[0], Claim::AlreadyDone(EventStatus::Processed));
    assert!(
        matches!(claims[1], Claim::Claimed { attempts: 0 }),
        "{claims:?}"
    );
    let email = customer.unwrap().email;
    assert_eq!(email.as_deref(), Some("t.nakamura@example.org"));
}

/// While a writer holds its transaction open, entitlement-style reads still answer.
async fn a_read_does_not_wait_for_a_writer(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    seed(&db).await;
    let (writer, release_tx) = open_writer(&db, vec![CUSTOMER.to_owned()]).await;
    let read = tokio::time::timeout(
        Duration::from_secs(2),
        db.store().read(|tx| {
            async move {
                let customer = tx
                    .customer_of_user(USER)
                    .await?
                    .expect("the seeded customer");
                let subscriptions = tx
                    .customer_subscriptions(&customer.stripe_customer_id)
                    .await?;
                Ok::<_, StoreError>(subscriptions)
            }
            .scope_boxed()
        }),
    )
    .await
    .expect("a read must not wait for the open write transaction")
    .unwrap();
    // The writer has not committed: the read sees the committed state only.
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].status, SubscriptionStatus::Active);
    release_tx.send(()).unwrap();
    writer.await.unwrap().unwrap();
}

/// `lock_keys` takes every key it is given (one statement on Postgres): while its transaction
/// is open another one can take none of them, and after the commit it takes them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_locked_together_are_each_held_until_commit() {
    let db = TestDatabase::postgres().await;
    seed(&db).await;
    let keys: Vec<String> = ["feed:user_7Hq2xK", "feed:user_c91LmP", "feed:user_Zr04tW"]
        .map(str::to_owned)
        .to_vec();
    let (holder, release_tx) = open_writer(&db, keys.clone()).await;
    let try_all = |keys: Vec<String>| {
        let store = db.store().clone();
        async move {
            store
                .transaction(move |tx| {
                    async move {
                        let mut taken = Vec::new();
                        for key in &keys {
                            taken.push(tx.try_lock_key(key).await?);
                        }
                        Ok::<_, StoreError>(taken)
                    }
                    .scope_boxed()
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(try_all(keys.clone()).await, [false, false, false]);
    release_tx.send(()).unwrap();
    holder.await.unwrap().unwrap();
    assert_eq!(try_all(keys).await, [true, true, true]);
}

/// The last statement of the one backend of `database` that is idle in a transaction.
async fn last_statement(admin: &mut AsyncPgConnection, database: &str) -> String {
    last_statement_in(admin, database, "").await
}

/// The last statement of the one backend of `database` whose state is `idle in transaction`
/// followed by what `LIKE` matches with `rest` (`""`: that state only; `"%"`: an aborted
/// transaction too). Waited for, up to five seconds: Postgres sends an error as soon as it is
/// raised, and reports its backend idle only once it has read the statement's `Sync`, so a
/// caller that just saw an error may find the backend still active for a moment.
async fn last_statement_in(admin: &mut AsyncPgConnection, database: &str, rest: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Activity {
        #[diesel(sql_type = Text)]
        query: String,
    }
    let started = std::time::Instant::now();
    loop {
        let rows: Vec<Activity> = diesel::sql_query(
            "SELECT query FROM pg_stat_activity \
             WHERE datname = $1 AND state LIKE 'idle in transaction' || $2",
        )
        .bind::<Text, _>(database)
        .bind::<Text, _>(rest)
        .load(&mut *admin)
        .await
        .unwrap();
        if rows.len() == 1 || started.elapsed() > Duration::from_secs(5) {
            assert_eq!(rows.len(), 1, "one transaction open");
            return rows.into_iter().next().unwrap().query;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a transaction already knows costs no statement: a key it holds is taken again by
/// each of the three lock calls, and a customer read under its own lock is read again,
/// without one (its backend's last statement stays what it was); a new key still costs one,
/// and a read after the transaction saved the customer answers what it saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_and_a_customer_read_under_it_cost_no_second_statement() {
    let db = TestDatabase::postgres().await;
    seed(&db).await;
    let database = crate::faults::database_name(db.url());
    let mut admin = AsyncPgConnection::establish(db.url()).await.unwrap();
    let saved = db
        .store()
        .transaction(move |tx| {
            async move {
                tx.lock_key(CUSTOMER).await?;
                let first = tx.customer(CUSTOMER).await?.unwrap();
                let read = last_statement(&mut admin, &database).await;
                assert!(read.contains("customers"), "{read}");
                tx.lock_key(CUSTOMER).await?;
                assert!(tx.try_lock_key(CUSTOMER).await?);
                tx.lock_keys(&[CUSTOMER.to_owned()]).await?;
                assert_eq!(tx.customer(CUSTOMER).await?.as_ref(), Some(&first));
                assert_eq!(last_statement(&mut admin, &database).await, read);
                tx.lock_keys(&[CUSTOMER.to_owned(), format!("feed:{USER}")])
                    .await?;
                let lock = last_statement(&mut admin, &database).await;
                assert!(lock.contains("pg_advisory_xact_lock"), "{lock}");
                assert_eq!(tx.customer(CUSTOMER).await?.as_ref(), Some(&first));
                assert_eq!(last_statement(&mut admin, &database).await, lock);
                let changed = CustomerRecord {
                    email: Some("r.okafor@example.net".to_owned()),
                    ..first
                };
                tx.save_customer(&changed, at(5)).await?;
                assert_eq!(tx.customer(CUSTOMER).await?.as_ref(), Some(&changed));
                Ok::<_, StoreError>(changed)
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    let committed = db
        .store()
        .transaction(|tx| async move { tx.customer(CUSTOMER).await }.scope_boxed())
        .await
        .unwrap();
    assert_eq!(committed, Some(saved));
}

/// Whether another transaction could take `key` now (taken and released at once).
async fn lock_is_free(db: &TestDatabase, key: &str) -> bool {
    let key = key.to_owned();
    db.store()
        .transaction(move |tx| async move { tx.try_lock_key(&key).await }.scope_boxed())
        .await
        .unwrap()
}

/// The first, pipelined round trip of [`open_failing`]'s transaction.
enum First {
    /// `claim_event_then_lock_customer` of the event, naming the seeded customer.
    Claim(NewEvent),
    /// `lock_then_access_rows` of the seeded user, after the lock of the key.
    LockThenRead(String),
}

/// A transaction that makes its `first` round trip, holds open until the returned sender is
/// used, then fails (`Conflict`); returned once the round trip is done.
async fn open_failing(
    store: &DieselStore,
    first: First,
) -> (
    tokio::task::JoinHandle<Result<(), StoreError>>,
    oneshot::Sender<()>,
) {
    let (opened_tx, opened_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let store = store.clone();
    let work = tokio::spawn(async move {
        store
            .transaction(move |tx| {
                async move {
                    match first {
                        First::Claim(event) => {
                            let (claim, customer) = tx
                                .claim_event_then_lock_customer(
                                    &event,
                                    EventStatus::Processed,
                                    at(6),
                                    Some(CUSTOMER),
                                )
                                .await?;
                            assert!(matches!(claim, Claim::Claimed { .. }), "{claim:?}");
                            assert!(customer.is_some());
                        }
                        First::LockThenRead(key) => {
                            let access = tx.lock_then_access_rows(&[key], USER).await?;
                            assert_eq!(access.customer.as_deref(), Some(CUSTOMER));
                        }
                    }
                    opened_tx.send(()).ok();
                    release_rx.await.ok();
                    Err::<(), _>(StoreError::Conflict(billing_ports::Cause::msg(
                        "the unit of work gave up",
                    )))
                }
                .scope_boxed()
            })
            .await
    });
    opened_rx.await.unwrap();
    (work, release_tx)
}

/// What a Postgres transaction's first, pipelined statements (the claim's round trip, a lock
/// and its read) lock stays locked, and what they write stays invisible, until the
/// transaction ends; a unit of work that fails after them leaves nothing. (A guard for any
/// change to how a transaction begins, such as sending its BEGIN in that round trip.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_holds_and_hides_its_first_round_trip_to_its_end() {
    let db = TestDatabase::postgres().await;
    seed(&db).await;
    let event = crate::store::event("evt_1Sb4Qf2eZvKYlo2CwJ6m");
    let feed_key = format!("feed:{USER}");
    for (first, key) in [
        (First::Claim(event.clone()), CUSTOMER),
        (First::LockThenRead(feed_key.clone()), feed_key.as_str()),
    ] {
        let (work, release_tx) = open_failing(db.store(), first).await;
        assert!(!lock_is_free(&db, key).await, "{key}: the lock is held");
        assert!(
            db.store().event(&event.id).await.unwrap().is_none(),
            "{key}"
        );
        release_tx.send(()).unwrap();
        assert!(matches!(work.await.unwrap(), Err(StoreError::Conflict(_))));
        assert!(lock_is_free(&db, key).await, "{key}: released at the end");
        assert!(
            db.store().event(&event.id).await.unwrap().is_none(),
            "{key}"
        );
    }
}

/// A transaction whose first round trip (the claim, carrying its `BEGIN`) failed sends
/// nothing more: a statement its unit of work tries after that is refused without reaching
/// the database, whose last statement for that backend stays the claim. (Were the `BEGIN` the
/// part that failed, a statement sent then would run outside any transaction.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_first_round_trip_that_failed_nothing_more_is_sent() {
    let db = TestDatabase::postgres().await;
    let database = crate::faults::database_name(db.url());
    let mut admin = AsyncPgConnection::establish(db.url()).await.unwrap();
    let event = crate::store::event("evt_1Sb4Tj2eZvKYlo2CaP3r");
    let id = event.id.clone();
    let result = db
        .store()
        .transaction(move |tx| {
            async move {
                // `failed` with a processing time: the table's `CHECK` refuses the claim.
                let refused = tx.claim_event(&event, EventStatus::Failed, at(1)).await;
                assert!(refused.is_err(), "{refused:?}");
                let claim = last_statement_in(&mut admin, &database, "%").await;
                assert!(claim.contains("stripe_events"), "{claim}");
                let after = tx.lock_key(CUSTOMER).await;
                assert!(after.is_err(), "{after:?}");
                assert_eq!(last_statement_in(&mut admin, &database, "%").await, claim);
                after
            }
            .scope_boxed()
        })
        .await;
    assert!(result.is_err());
    assert!(db.store().event(&id).await.unwrap().is_none());
}

/// A transaction cancelled while its first round trip (the claim, a try of the customer's
/// lock) waits, here for another delivery of the same event that is being claimed, never
/// commits, even when the pool's one connection is lent again: the pool does not lend a
/// connection inside a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_cancelled_in_its_first_round_trip_never_commits() {
    let db = TestDatabase::postgres().await;
    seed(&db).await;
    let one = DieselStore::connect(db.url(), 1).unwrap();
    // A clean connection first, so the cancelled transaction runs on a warm one.
    let warm = crate::store::event("evt_1Sb4Rg2eZvKYlo2CyL8p");
    claim_naming_customer(one.clone(), warm).await.unwrap();
    // Another delivery of the event holds its claim open, then fails.
    let cancelled = crate::store::event("evt_1Sb4Sh2eZvKYlo2CzM9q");
    let (other, release_tx) = open_failing(db.store(), First::Claim(cancelled.clone())).await;
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        claim_naming_customer(one.clone(), cancelled.clone()),
    )
    .await;
    assert!(waited.is_err(), "the claim waits for the other delivery's");
    release_tx.send(()).unwrap();
    assert!(other.await.unwrap().is_err());
    let next = crate::store::event("evt_1Sb4Ti2eZvKYlo2Ca1Nr");
    let (done, _) = claim_naming_customer(one.clone(), next.clone())
        .await
        .unwrap();
    assert!(matches!(done, Claim::Claimed { .. }), "{done:?}");
    assert!(db.store().event(&next.id).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        db.store().event(&cancelled.id).await.unwrap().is_none(),
        "the cancelled claim committed with the next transaction"
    );
}

/// A unit of work that sends no statement ends cleanly, whether it succeeds or fails, and
/// the connection serves the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_of_work_that_sends_nothing_leaves_the_connection_usable() {
    let db = TestDatabase::postgres().await;
    seed(&db).await;
    let one = DieselStore::connect(db.url(), 1).unwrap();
    let nothing = one
        .transaction(|_| async move { Ok::<_, StoreError>(7) }.scope_boxed())
        .await;
    assert_eq!(nothing.unwrap(), 7);
    let failed = one
        .transaction(|_| {
            async move { Err::<(), _>(StoreError::Conflict(billing_ports::Cause::msg("no"))) }
                .scope_boxed()
        })
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict(_))));
    let event = crate::store::event("evt_1Sb4Uj2eZvKYlo2Cb2Os");
    let claimed = event.clone();
    one.transaction(move |tx| {
        async move {
            tx.claim_event_then_lock_customer(&claimed, EventStatus::Processed, at(6), None)
                .await
        }
        .scope_boxed()
    })
    .await
    .unwrap();
    assert!(db.store().event(&event.id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_does_not_wait_for_locks_fails_on_a_held_one_at_once() {
    let db = TestDatabase::postgres().await;
    seed(&db).await;
    let held = "feed:user_Hq7xK2".to_owned();
    let (holder, release_tx) = open_writer(&db, vec![held.clone()]).await;
    let free = [
        "pi_3Qm8ZtLk2vRp9Xw".to_owned(),
        "ch_3Qm8ZtLk2vRp9Xw".to_owned(),
    ];
    let attempt = |keys: Vec<String>, read_after: bool| {
        let store = db.store().clone();
        async move {
            let started = std::time::Instant::now();
            let result = store
                .transaction(move |tx| {
                    async move {
                        tx.wait_for_locks(false).await?;
                        if read_after {
                            tx.lock_then_access_rows(&keys, USER).await?;
                        } else {
                            tx.lock_keys(&keys).await?;
                        }
                        Ok::<_, StoreError>(())
                    }
                    .scope_boxed()
                })
                .await;
            (result, started.elapsed())
        }
    };
    for read_after in [false, true] {
        let keys = vec![free[0].clone(), held.clone()];
        let (result, took) = attempt(keys, read_after).await;
        assert!(matches!(result, Err(StoreError::LockBusy(_))), "{result:?}");
        assert!(took < Duration::from_secs(1), "waited {took:?}");
        // Rolled back: what it took with the busy one is free again.
        assert!(lock_is_free(&db, &free[0]).await);
    }
    // Free locks are taken and held as usual.
    let (result, _) = attempt(free.to_vec(), false).await;
    result.unwrap();
    release_tx.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let (result, _) = attempt(vec![held], true).await;
    result.unwrap();
}

/// `lock_subscriptions` on Postgres: a subscription another transaction holds is skipped at
/// once (not waited for) and read afresh by `subscription` once that one commits; one nobody
/// holds is kept, locked, and answered as this transaction wrote it; an unknown id is nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_subscriptions_skips_one_held_elsewhere_and_keeps_the_rest() {
    subscriptions_locked_skip_one_held_elsewhere(false).await;
}

/// The same through `lock_then_keep_access`, where the subscriptions are locked in the round
/// trip of the users' locks and access reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_locked_with_the_users_skip_one_held_elsewhere_and_keep_the_rest() {
    subscriptions_locked_skip_one_held_elsewhere(true).await;
}

/// Locks and reads `ids` in `tx`: through `lock_then_keep_access` with the seeded user's feed
/// lock and access when `with_users`, else through `lock_subscriptions`.
async fn lock_subscriptions(
    tx: &mut dyn BillingTx,
    ids: &[String],
    with_users: bool,
) -> Result<(), StoreError> {
    if !with_users {
        return tx.lock_subscriptions(ids).await;
    }
    let (lock, user) = ([format!("feed:{USER}")], [USER.to_owned()]);
    let ahead = ReadAhead {
        subscriptions: ids,
        ..ReadAhead::default()
    };
    tx.lock_then_keep_access(&lock, &user, ahead).await
}

/// The subscription-locking test; `with_users`: through `lock_then_keep_access` (with the
/// seeded user's feed lock and access), else through `lock_subscriptions`.
async fn subscriptions_locked_skip_one_held_elsewhere(with_users: bool) {
    const OTHER: &str = "sub_1Hx7Mv2eZvKYlo2Ct3Qa";
    let db = TestDatabase::new(Backend::Postgres).await;
    seed(&db).await;
    let other = crate::pro_subscription(
        OTHER,
        CUSTOMER,
        SubscriptionStatus::Trialing,
        "evt_1Hx7Mw2eZvKYlo2Cp8Zd",
        1,
    );
    let saved = other.clone();
    db.store()
        .transaction(|tx| async move { tx.save_subscription(&saved, at(1)).await }.scope_boxed())
        .await
        .unwrap();
    let (writer, release) = open_writer(&db, Vec::new()).await;
    let (locked_tx, locked_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let store = db.store().clone();
    let reader = tokio::spawn(async move {
        store
            .transaction(move |tx| {
                async move {
                    let ids = [SUBSCRIPTION, OTHER, "sub_1Zq0Nn2eZvKYlo2Cx1Wb"].map(str::to_owned);
                    lock_subscriptions(tx, &ids, with_users).await?;
                    locked_tx.send(()).ok();
                    let mut canceled = other.clone();
                    canceled.status = SubscriptionStatus::Canceled;
                    canceled.canceled_at = Some(at(7) + chrono::TimeDelta::nanoseconds(4_321));
                    tx.save_subscription(&canceled, at(7)).await?;
                    let kept = tx.subscription(OTHER).await?;
                    let unknown = tx.subscription("sub_1Zq0Nn2eZvKYlo2Cx1Wb").await?;
                    go_rx.await.ok();
                    let skipped = tx.subscription(SUBSCRIPTION).await?;
                    Ok::<_, StoreError>((kept, unknown, skipped))
                }
                .scope_boxed()
            })
            .await
    });
    skipped_then_let_go(locked_rx, release, writer, go_tx).await;
    let (kept, unknown, skipped) = reader.await.unwrap().unwrap();
    let kept = kept.unwrap();
    assert_eq!(kept.status, SubscriptionStatus::Canceled);
    assert_eq!(
        kept.canceled_at,
        Some(at(7) + chrono::TimeDelta::microseconds(4))
    );
    let stored = db
        .store()
        .transaction(|tx| async move { tx.subscription(OTHER).await }.scope_boxed())
        .await
        .unwrap();
    assert_eq!(Some(kept), stored, "kept as a read finds it");
    assert_eq!(unknown, None);
    assert_eq!(
        skipped.unwrap().status,
        SubscriptionStatus::PastDue,
        "the skipped one is read after the holder's commit"
    );
}

/// Once the reader says it locked its subscriptions (`locked`, within 5 s: a subscription held
/// elsewhere is skipped, not waited for), the writer holding one is let commit, then the
/// reader is told to go on (`go`).
async fn skipped_then_let_go(
    locked: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
    writer: JoinHandle<Result<(), StoreError>>,
    go: oneshot::Sender<()>,
) {
    tokio::time::timeout(Duration::from_secs(5), locked)
        .await
        .expect("a subscription held elsewhere is skipped, not waited for")
        .unwrap();
    release.send(()).unwrap();
    writer.await.unwrap().unwrap();
    go.send(()).unwrap();
}

/// A subscription of `CUSTOMER` the tests below create meanwhile.
const NEW: &str = "sub_1Tf6Jr2eZvKYlo2Cw9Pz";

/// Commits `NEW` as a writer that skips its customer's lock would (every real writer takes it
/// first): what a transaction that read the table after this commit sees.
async fn create_new_skipping_the_lock(store: &DieselStore) -> Result<(), StoreError> {
    let created = crate::pro_subscription(
        NEW,
        CUSTOMER,
        SubscriptionStatus::Active,
        "evt_1Tf6Js2eZvKYlo2Cb3Kv",
        3,
    );
    store
        .transaction(move |tx| {
            async move { tx.save_subscription(&created, at(3)).await }.scope_boxed()
        })
        .await
}

/// On Postgres, subscriptions locked with none skipped: one not stored is kept as absent and
/// answered `None` with no statement (a subscription committed meanwhile by a writer that
/// skipped the customer's lock is not seen, as no real writer can create it while the lock
/// is held), and once this transaction saves it, it is answered as saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_not_stored_is_kept_as_absent_when_none_was_skipped() {
    subscription_not_stored_kept_as_absent(false, true).await;
}

/// The same through `lock_then_keep_access`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_not_stored_locked_with_the_users_is_kept_as_absent() {
    subscription_not_stored_kept_as_absent(true, true).await;
}

/// The same when none of those asked for is stored (the statement's one row locks none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_none_of_them_stored_are_all_kept_as_absent() {
    subscription_not_stored_kept_as_absent(false, false).await;
}

/// The kept-as-absent test; `with_users`: through `lock_then_keep_access`, else through
/// `lock_subscriptions`; `with_stored`: a stored subscription is asked for beside `NEW`.
async fn subscription_not_stored_kept_as_absent(with_users: bool, with_stored: bool) {
    let db = TestDatabase::new(Backend::Postgres).await;
    seed(&db).await;
    let other = db.store().clone();
    let (absent, stored, saved, saved_read) = db
        .store()
        .transaction(move |tx| {
            async move {
                let ids: Vec<String> = [SUBSCRIPTION, NEW]
                    .into_iter()
                    .filter(|id| with_stored || *id == NEW)
                    .map(str::to_owned)
                    .collect();
                lock_subscriptions(tx, &ids, with_users).await?;
                create_new_skipping_the_lock(&other).await?;
                let absent = tx.subscription(NEW).await?;
                let stored = tx.subscription(SUBSCRIPTION).await?;
                let saved = crate::pro_subscription(
                    NEW,
                    CUSTOMER,
                    SubscriptionStatus::Trialing,
                    "evt_1Tf6Jt2eZvKYlo2Cn5Rw",
                    4,
                );
                tx.save_subscription(&saved, at(4)).await?;
                let saved_read = tx.subscription(NEW).await?;
                Ok::<_, StoreError>((absent, stored, saved, saved_read))
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    assert_eq!(absent, None, "kept as absent: not read again");
    // Read (when not asked for) or kept: the seeded one either way.
    assert_eq!(stored.unwrap().status, SubscriptionStatus::Active);
    assert_eq!(
        saved_read,
        Some(saved),
        "answered as this transaction saved it"
    );
}

/// On Postgres, when a subscription asked for was skipped (locked elsewhere), which of those
/// not locked exist cannot be told: one not stored is not kept as absent, and its read at its
/// turn sees what was committed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_not_stored_is_read_at_its_turn_when_one_was_skipped() {
    let db = TestDatabase::new(Backend::Postgres).await;
    seed(&db).await;
    let (writer, release) = open_writer(&db, Vec::new()).await;
    let (locked_tx, locked_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let store = db.store().clone();
    let reader = tokio::spawn(async move {
        let other = store.clone();
        store
            .transaction(move |tx| {
                async move {
                    tx.lock_subscriptions(&[SUBSCRIPTION, NEW].map(str::to_owned))
                        .await?;
                    locked_tx.send(()).ok();
                    // The holder has committed (its customer row no longer holds off the
                    // new subscription's foreign key check).
                    go_rx.await.ok();
                    create_new_skipping_the_lock(&other).await?;
                    tx.subscription(NEW).await
                }
                .scope_boxed()
            })
            .await
    });
    skipped_then_let_go(locked_rx, release, writer, go_tx).await;
    let created = reader.await.unwrap().unwrap();
    assert_eq!(
        created.map(|s| s.status),
        Some(SubscriptionStatus::Active),
        "read at its turn, after the other writer's commit"
    );
}
