//! The store when the database misbehaves: stalled (a freezable TCP proxy in front of the shared
//! Postgres server, which is never stopped), connections cut or terminated by an administrator
//! in the middle of a transaction, settings that cannot work. Every failure must be a bounded,
//! clean `StoreError::Unavailable`, and the store must recover on its own.

use std::time::{Duration, Instant};

use billing_ports::{BillingStore, EventStatus, NewEvent, StoreError, TxFuture};
use billing_store_diesel::testing::{FreezableProxy, TestDatabase};
use billing_store_diesel::{DieselStore, SetupError, StoreSettings};
use chrono::{TimeZone, Utc};
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// Small limits so the tests are quick: a call is abandoned after 300 + 500 = 800 ms.
fn quick() -> StoreSettings {
    StoreSettings {
        max_connections: 4,
        pool_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        recycle_timeout: Duration::from_millis(200),
        statement_timeout: Duration::from_millis(500),
        ..Default::default()
    }
}

fn event(id: &str) -> NewEvent {
    NewEvent {
        id: id.to_owned(),
        event_type: "customer.subscription.updated".to_owned(),
        api_version: Some("2025-03-31.basil".to_owned()),
        livemode: false,
        created: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        payload: format!(r#"{{"id":"{id}","object":"event"}}"#),
        received_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 1).unwrap(),
    }
}

/// One unit of work that reads (the customer of a user).
async fn read(store: &DieselStore) -> Result<(), StoreError> {
    store
        .transaction(|tx| -> TxFuture<'_, '_, (), StoreError> {
            Box::pin(async move {
                tx.customer_of_user("u_1QfZ7sLk").await?;
                Ok(())
            })
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_fails_calls_within_the_limit_and_the_store_recovers_on_its_own() {
    let db = TestDatabase::postgres().await;
    let proxy = FreezableProxy::start(db.url()).await;
    let store = DieselStore::connect_with(&proxy.url(db.url()), quick()).unwrap();
    read(&store).await.unwrap();
    assert!(store.migrations_applied().await.unwrap());

    proxy.freeze();
    let limit = store.settings().call_limit();
    let calls = (0..6).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            (read(&store).await, started.elapsed())
        })
    });
    for call in futures_join(calls).await {
        let (result, took) = call;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
        assert!(
            took <= limit + Duration::from_millis(300),
            "a frozen call took {took:?} (limit {limit:?})"
        );
    }
    let started = Instant::now();
    let single = store.event("evt_1QfZ7sLkAbCdEf").await;
    assert!(
        matches!(single, Err(StoreError::Unavailable(_))),
        "{single:?}"
    );
    assert!(started.elapsed() <= limit + Duration::from_millis(300));
    let started = Instant::now();
    let ready = store.migrations_applied().await;
    assert!(
        matches!(
            ready,
            Err(SetupError::Unavailable(_) | SetupError::Connect(_))
        ),
        "{ready:?}"
    );
    assert!(started.elapsed() <= limit + Duration::from_millis(300));

    proxy.thaw();
    let started = Instant::now();
    read(&store).await.unwrap();
    assert!(store.migrations_applied().await.unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "recovery took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_freezing_in_the_middle_of_a_transaction_is_abandoned_at_the_call_limit() {
    let db = TestDatabase::postgres().await;
    let proxy = std::sync::Arc::new(FreezableProxy::start(db.url()).await);
    let store = DieselStore::connect_with(&proxy.url(db.url()), quick()).unwrap();
    let limit = store.settings().call_limit();
    let started = Instant::now();
    let during = proxy.clone();
    let result = store
        .transaction(move |tx| -> TxFuture<'_, '_, (), StoreError> {
            Box::pin(async move {
                tx.claim_event(
                    &event("evt_1QfZ7sFrozenMidTx"),
                    EventStatus::Processed,
                    Utc::now(),
                )
                .await?;
                during.freeze();
                tx.customer_of_user("u_1QfZ7sLk").await?;
                Ok(())
            })
        })
        .await;
    let took = started.elapsed();
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        took >= Duration::from_millis(400) && took <= limit + Duration::from_millis(300),
        "took {took:?}, limit {limit:?}"
    );
    proxy.thaw();
    // The abandoned transaction was rolled back; its connection was not reused.
    assert_eq!(store.event("evt_1QfZ7sFrozenMidTx").await.unwrap(), None);
    read(&store).await.unwrap();
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_in_the_middle_of_a_transaction_is_unavailable_not_a_query_error() {
    let db = TestDatabase::postgres().await;
    let proxy = FreezableProxy::start(db.url()).await;
    let store = DieselStore::connect_with(&proxy.url(db.url()), quick()).unwrap();
    let cut = {
        let proxy_cut = std::sync::Arc::new(proxy);
        let during = proxy_cut.clone();
        let result = store
            .transaction(move |tx| -> TxFuture<'_, '_, (), StoreError> {
                Box::pin(async move {
                    tx.claim_event(
                        &event("evt_1QfZ7sCutMidTx"),
                        EventStatus::Processed,
                        Utc::now(),
                    )
                    .await?;
                    during.cut();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    tx.customer_of_user("u_1QfZ7sLk").await?;
                    Ok(())
                })
            })
            .await;
        (result, proxy_cut)
    };
    let (result, _proxy) = cut;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    // Nothing of the cut transaction was committed, and the store works again at once.
    assert_eq!(store.event("evt_1QfZ7sCutMidTx").await.unwrap(), None);
}

/// The pid of the backend of `database` waiting on a lock, once there is one.
async fn waiting_backend(admin: &mut AsyncPgConnection, database: &str) -> i32 {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    for _ in 0..200 {
        let pids: Vec<Pid> = diesel::sql_query(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
        )
        .bind::<Text, _>(database)
        .load(admin)
        .await
        .unwrap();
        if let Some(p) = pids.into_iter().next() {
            return p.pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no backend started waiting on the lock");
}

async fn terminate(admin: &mut AsyncPgConnection, pid: i32) {
    diesel::sql_query(format!("SELECT pg_terminate_backend({pid})"))
        .execute(admin)
        .await
        .unwrap();
}

pub(crate) fn database_name(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_terminating_the_backend_mid_transaction_is_unavailable() {
    let db = TestDatabase::postgres().await;
    let store = DieselStore::connect_with(
        db.url(),
        StoreSettings {
            statement_timeout: Duration::from_secs(10),
            ..quick()
        },
    )
    .unwrap();
    // Another session holds the advisory lock the unit of work will wait for.
    let mut holder = AsyncPgConnection::establish(db.url()).await.unwrap();
    holder.batch_execute("BEGIN").await.unwrap();
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<Text, _>("usage:u_1QfZ7sTerm")
        .execute(&mut holder)
        .await
        .unwrap();
    let waiting = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .transaction(|tx| -> TxFuture<'_, '_, (), StoreError> {
                    Box::pin(async move {
                        tx.claim_event(
                            &event("evt_1QfZ7sTerminated"),
                            EventStatus::Processed,
                            Utc::now(),
                        )
                        .await?;
                        tx.lock_key("usage:u_1QfZ7sTerm").await?;
                        Ok(())
                    })
                })
                .await
        }
    });
    let mut admin = AsyncPgConnection::establish(db.url()).await.unwrap();
    let pid = waiting_backend(&mut admin, &database_name(db.url())).await;
    terminate(&mut admin, pid).await; // SQLSTATE 57P01 to the waiting statement
    let result = waiting.await.unwrap();
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(store.event("evt_1QfZ7sTerminated").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_terminating_a_single_statement_is_unavailable() {
    let db = TestDatabase::postgres().await;
    let store = DieselStore::connect_with(
        db.url(),
        StoreSettings {
            statement_timeout: Duration::from_secs(10),
            ..quick()
        },
    )
    .unwrap();
    let e = event("evt_1QfZ7sRowLocked");
    store
        .record_failure(&e, &crate::transient("first try"), e.received_at)
        .await
        .unwrap();
    // Another session holds the event's row; recording the next failure waits for it.
    let mut holder = AsyncPgConnection::establish(db.url()).await.unwrap();
    holder.batch_execute("BEGIN").await.unwrap();
    diesel::sql_query("SELECT id FROM stripe_events WHERE id = $1 FOR UPDATE")
        .bind::<Text, _>(&e.id)
        .execute(&mut holder)
        .await
        .unwrap();
    let waiting = tokio::spawn({
        let (store, e) = (store.clone(), e.clone());
        async move {
            store
                .record_failure(&e, &crate::transient("second try"), e.received_at)
                .await
        }
    });
    let mut admin = AsyncPgConnection::establish(db.url()).await.unwrap();
    let pid = waiting_backend(&mut admin, &database_name(db.url())).await;
    terminate(&mut admin, pid).await;
    let result = waiting.await.unwrap();
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_error_on_a_live_connection_stays_a_query_error() {
    let db = TestDatabase::postgres().await;
    let store = db.store();
    // NUL is not valid in Postgres text: the statement fails, the connection is fine.
    let result = store.event("evt_\u{0}nul").await;
    assert!(matches!(result, Err(StoreError::Query(_))), "{result:?}");
    assert_eq!(store.event("evt_1QfZ7sFine").await.unwrap(), None);
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let url = "postgres://postgres@127.0.0.1:5432/postgres";
    for (settings, expected) in [
        (StoreSettings::new(0), "max_connections must be at least 1"),
        (
            StoreSettings {
                pool_timeout: Duration::ZERO,
                ..StoreSettings::new(4)
            },
            "pool_timeout must be longer than 0",
        ),
        (
            StoreSettings {
                statement_timeout: Duration::ZERO,
                ..StoreSettings::new(4)
            },
            "statement_timeout must be longer than 0",
        ),
    ] {
        match DieselStore::connect_with(url, settings) {
            Err(SetupError::InvalidSettings(text)) => assert!(text.contains(expected), "{text}"),
            other => panic!("{settings:?} accepted: {other:?}"),
        }
    }
    assert!(matches!(
        DieselStore::connect("sqlite:///tmp/never_opened.sqlite", 0),
        Err(SetupError::InvalidSettings(_))
    ));
}

/// A transaction whose last round trip (its change records and its `COMMIT`, pipelined) meets
/// a frozen database is abandoned at the call limit and answered unavailable; whatever became
/// of it, its customer and its records are both stored or both absent, and the next
/// transaction, on the pool's one connection, commits on its own (the abandoned connection,
/// counted inside a transaction, is never lent out again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_sent_with_the_records_into_a_frozen_database_leaves_all_or_nothing() {
    let db = TestDatabase::postgres().await;
    let proxy = std::sync::Arc::new(FreezableProxy::start(db.url()).await);
    let settings = StoreSettings {
        max_connections: 1,
        ..quick()
    };
    let store = DieselStore::connect_with(&proxy.url(db.url()), settings).unwrap();
    let limit = store.settings().call_limit();
    let write = |customer: &'static str, freeze: Option<std::sync::Arc<FreezableProxy>>| {
        store.transaction(move |tx| -> TxFuture<'_, '_, (), StoreError> {
            Box::pin(async move {
                let record = billing_ports::CustomerRecord {
                    stripe_customer_id: customer.to_owned(),
                    user_id: None,
                    email: None,
                    deleted: false,
                };
                tx.save_customer(&record, Utc::now()).await?;
                let change = crate::feed::change(
                    &format!("chg_{}", &customer[4..]),
                    "user_6Jw2Rb",
                    billing_ports::ChangeKind::TierChanged,
                );
                tx.insert_changes_at_commit(vec![change]).await?;
                if let Some(proxy) = freeze {
                    proxy.freeze();
                }
                Ok(())
            })
        })
    };
    // Warm: every statement of the last round trip prepared on the connection.
    write("cus_Fz1Qa7Lm3Kd8Wn", None).await.unwrap();
    let started = Instant::now();
    let frozen = write("cus_Fz2Hb4Xp9Tc6Vr", Some(proxy.clone())).await;
    let took = started.elapsed();
    assert!(
        matches!(frozen, Err(StoreError::Unavailable(_))),
        "{frozen:?}"
    );
    assert!(took <= limit + Duration::from_millis(300), "took {took:?}");
    proxy.thaw();
    write("cus_Fz3Ne5Gy2Us7Jq", None).await.unwrap();

    let mut direct = AsyncPgConnection::establish(db.url()).await.unwrap();
    let stored = |table: &'static str, column: &'static str, value: String| {
        diesel::sql_query(format!(
            "SELECT {column} AS v FROM {table} WHERE {column} = $1"
        ))
        .bind::<Text, _>(value)
    };
    #[derive(diesel::QueryableByName)]
    struct V {
        #[diesel(sql_type = Text)]
        #[allow(dead_code)]
        v: String,
    }
    for (customer, must) in [
        ("cus_Fz1Qa7Lm3Kd8Wn", Some(true)),
        ("cus_Fz2Hb4Xp9Tc6Vr", None),
        ("cus_Fz3Ne5Gy2Us7Jq", Some(true)),
    ] {
        let rows: Vec<V> = stored("customers", "stripe_customer_id", customer.to_owned())
            .load(&mut direct)
            .await
            .unwrap();
        let records: Vec<V> = stored("changes", "change_id", format!("chg_{}", &customer[4..]))
            .load(&mut direct)
            .await
            .unwrap();
        assert_eq!(rows.len(), records.len(), "{customer}: all or nothing");
        if let Some(must) = must {
            assert_eq!(rows.len() == 1, must, "{customer} committed");
        }
    }
}
