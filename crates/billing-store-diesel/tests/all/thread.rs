//! `StoreSettings::database_thread`: the store's connections run on a thread of its own.

use billing_ports::{BillingStore, CustomerRecord, StoreError, TxFuture};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, DieselStore, StoreSettings};
use diesel::sql_types::Integer;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::at;

const CUSTOMER: &str = "cus_Tz5Wq1Lm8RcY3v";

/// Saves a customer in a transaction of its own.
async fn save(store: &DieselStore, email: &str) -> Result<(), StoreError> {
    let customer = CustomerRecord {
        stripe_customer_id: CUSTOMER.to_owned(),
        user_id: Some("user_Hd6Ks9Pq".to_owned()),
        email: Some(email.to_owned()),
        deleted: false,
    };
    store
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { tx.save_customer(&customer, at(1)).await })
        })
        .await
}

/// The server processes of the other client connections to the database of `url`.
async fn backends(url: &str) -> Vec<i32> {
    #[derive(diesel::QueryableByName)]
    struct Backend {
        #[diesel(sql_type = Integer)]
        pid: i32,
    }
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let rows: Vec<Backend> = diesel::sql_query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND backend_type = 'client backend' ORDER BY pid",
    )
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|row| row.pid).collect()
}

/// A store with one pooled connection, opened (and used) by a runtime that is then dropped,
/// and used again from another: with the database thread the connection was opened there and
/// keeps working (the same server process serves the next unit of work), and units of work
/// spawned on `BillingStore::runtime` run on that thread; without it, the connection died with the
/// runtime that opened it (the pool opens another).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_on_the_database_thread_outlive_the_runtime_that_opened_them() {
    let db = TestDatabase::new(Backend::Postgres).await;
    for database_thread in [true, false] {
        let settings = StoreSettings {
            database_thread,
            ..StoreSettings::new(1)
        };
        let store = DieselStore::connect_with(db.url(), settings).unwrap();
        assert_eq!(store.runtime().is_some(), database_thread);
        let opener = store.clone();
        let url = db.url().to_owned();
        let opened = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                save(&opener, "first@example.org").await.unwrap();
                backends(&url).await
            })
        })
        .join()
        .unwrap();
        assert_eq!(opened.len(), 1, "{opened:?}");
        save(&store, "second@example.org").await.unwrap();
        if database_thread {
            assert_eq!(
                backends(db.url()).await,
                opened,
                "the connection opened first serves again"
            );
            let spawned = store.clone();
            let runtime = store.runtime().unwrap();
            let on_thread = runtime
                .spawn(async move {
                    let name = std::thread::current().name().map(str::to_owned);
                    save(&spawned, "third@example.org").await.map(|()| name)
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(on_thread.as_deref(), Some("billing-db"));
        } else {
            // Its socket closed with the runtime: the server process ends.
            let mut gone = false;
            for _ in 0..50 {
                if !backends(db.url()).await.contains(&opened[0]) {
                    gone = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert!(gone, "the connection's driver went with its runtime");
        }
        drop(store);
    }
}
