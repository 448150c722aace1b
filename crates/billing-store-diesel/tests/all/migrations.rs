//! Migrations: applied once and idempotent, and a database that lacks them told apart from one
//! whose query failed, by the migrations Diesel recorded, never by the database's message.

use billing_ports::{BillingStore, Claim, EventStatus, NewEvent, StoreError, TxFuture};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, DieselStore, on_both_backends};
use chrono::Utc;
use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::store::event;

on_both_backends!(
    migrations_are_applied_and_idempotent,
    a_database_not_migrated_is_reported_as_such,
    a_query_error_on_a_migrated_database_is_not_a_missing_migration,
);

/// Replicas starting together on an empty database: every one's migration run succeeds (they
/// take turns), and the schema is complete once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_migrating_one_database_at_once_all_succeed() {
    let db = TestDatabase::unmigrated(Backend::Postgres).await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let store = db.store().clone();
            tokio::spawn(async move { store.run_migrations().await })
        })
        .collect();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    assert!(db.store().migrations_applied().await.unwrap());
}

async fn migrations_are_applied_and_idempotent(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    assert!(db.store().migrations_applied().await.unwrap());
    db.store().run_migrations().await.unwrap();
    assert_eq!(db.store().backend(), backend);
}

/// Claims `e` in a unit of work of its own, returning the store's verdict.
async fn try_claim(store: &DieselStore, e: &NewEvent) -> Result<Claim, StoreError> {
    store
        .transaction(|tx| -> TxFuture<'_, '_, Claim, StoreError> {
            Box::pin(async move { tx.claim_event(e, EventStatus::Processed, Utc::now()).await })
        })
        .await
}

/// Reads a user's credit balance without a transaction.
async fn try_balance(store: &DieselStore) -> Result<i64, StoreError> {
    store
        .read(|tx| -> TxFuture<'_, '_, i64, StoreError> {
            Box::pin(async move { tx.credit_balance("user_9f2c").await })
        })
        .await
}

async fn a_database_not_migrated_is_reported_as_such(backend: Backend) {
    let db = TestDatabase::unmigrated(backend).await;
    let store = db.store();
    assert!(!store.migrations_applied().await.unwrap());
    let e = event("evt_unmigrated");
    let claimed = try_claim(store, &e).await;
    assert!(
        matches!(claimed, Err(StoreError::NotMigrated(_))),
        "{claimed:?}"
    );
    let balance = try_balance(store).await;
    assert!(
        matches!(balance, Err(StoreError::NotMigrated(_))),
        "{balance:?}"
    );
    let stored = store.event(&e.id).await;
    assert!(
        matches!(stored, Err(StoreError::NotMigrated(_))),
        "{stored:?}"
    );
    // Once migrated, the same calls succeed on the same pool.
    store.run_migrations().await.unwrap();
    assert_eq!(
        try_claim(store, &e).await.unwrap(),
        Claim::Claimed { attempts: 0 }
    );
    assert_eq!(try_balance(store).await.unwrap(), 0);
}

async fn a_query_error_on_a_migrated_database_is_not_a_missing_migration(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    // Every migration is recorded, but a table is gone: the database's message ("relation …
    // does not exist", "no such table") sounds like a missing migration, and is not one.
    let drop = "DROP TABLE credit_ledger";
    match backend {
        Backend::Postgres => {
            let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
            conn.batch_execute(drop).await.unwrap();
        }
        Backend::Sqlite => {
            let path = db.url().strip_prefix("sqlite://").unwrap();
            let mut conn = SyncConnectionWrapper::<SqliteConnection>::establish(path)
                .await
                .unwrap();
            conn.batch_execute(drop).await.unwrap();
        }
    }
    assert!(db.store().migrations_applied().await.unwrap());
    let balance = try_balance(db.store()).await;
    assert!(matches!(balance, Err(StoreError::Query(_))), "{balance:?}");
    let in_transaction = db
        .store()
        .transaction(|tx| -> TxFuture<'_, '_, i64, StoreError> {
            Box::pin(async move {
                tx.claim_event(
                    &event("evt_before_the_error"),
                    EventStatus::Processed,
                    Utc::now(),
                )
                .await?;
                tx.credit_balance("user_9f2c").await
            })
        })
        .await;
    assert!(
        matches!(in_transaction, Err(StoreError::Query(_))),
        "{in_transaction:?}"
    );
    // The failed unit of work rolled back, and the store goes on working.
    assert!(
        db.store()
            .event("evt_before_the_error")
            .await
            .unwrap()
            .is_none()
    );
}

/// The stored event body is compressed with lz4 on this Postgres (built with it), and reads
/// back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_bodies_are_stored_lz4_compressed() {
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        method: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        stored: i32,
    }
    let db = TestDatabase::postgres().await;
    // The largest body of a generated stream: Stripe's shape and size, random ids.
    let options = billing_streamgen::Options {
        events: 60,
        window: None,
        duplicates_percent: 0,
        active_customers: None,
    };
    let scenario = billing_streamgen::Scenario::generate(0x1a_2b3c, &options).unwrap();
    let largest = scenario
        .stream
        .events
        .iter()
        .max_by_key(|e| e.body.len())
        .unwrap();
    let id = largest.id.clone();
    let mut e = event(&id);
    e.payload = largest.body.clone();
    assert!(e.payload.len() > 4_000, "{}", e.payload.len());
    assert_eq!(
        try_claim(db.store(), &e).await.unwrap(),
        Claim::Claimed { attempts: 0 }
    );
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let row: Stored = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT pg_column_compression(payload) AS method, \
             pg_column_size(payload) AS stored FROM stripe_events WHERE id = $1",
        )
        .bind::<diesel::sql_types::Text, _>(&id),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(row.method.as_deref(), Some("lz4"));
    assert!(
        (row.stored as usize) < e.payload.len() / 2,
        "{}",
        row.stored
    );
    let stored = db.store().event(&id).await.unwrap().unwrap();
    assert_eq!(stored.payload, e.payload);
}
