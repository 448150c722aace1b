//! What the store promises about concurrency: a row read by `subscription()` stays locked until
//! commit, and a read-only unit of work never waits for a writer.

use std::time::Duration;

use billing_domain::SubscriptionStatus;
use billing_ports::{
    BillingStore, CustomerRecord, ScopedFutureExt, StoreError, SubscriptionRecord,
};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, on_both_backends};
use tokio::sync::oneshot;

use crate::at;

on_both_backends!(
    a_subscription_read_to_change_it_stays_locked_until_commit,
    a_read_does_not_wait_for_a_writer,
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
    let mut second = tokio::spawn(async move {
        second_store
            .transaction(|tx| async move { tx.subscription(SUBSCRIPTION).await }.scope_boxed())
            .await
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(400), &mut second)
            .await
            .is_err(),
        "the second reader must wait for the first writer's commit"
    );
    release_tx.send(()).unwrap();
    first.await.unwrap().unwrap();
    let seen: Result<_, StoreError> = second.await.unwrap();
    assert_eq!(seen.unwrap().unwrap().status, SubscriptionStatus::Canceled);
}

/// While a writer holds its transaction open, entitlement-style reads still answer.
async fn a_read_does_not_wait_for_a_writer(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    seed(&db).await;
    let (started_tx, started_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let writer_store = db.store().clone();
    let writer = tokio::spawn(async move {
        writer_store
            .transaction(move |tx| {
                async move {
                    tx.lock_key(CUSTOMER).await?;
                    let past_due =
                        subscription(SubscriptionStatus::PastDue, "evt_1Sb4Lc2eZvKYlo2Cm5Ue", 5);
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
    let keys: Vec<String> = ["feed:user_7Hq2xK", "feed:user_c91LmP", "feed:user_Zr04tW"]
        .map(str::to_owned)
        .to_vec();
    let (started_tx, started_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let holder_store = db.store().clone();
    let held = keys.clone();
    let holder = tokio::spawn(async move {
        holder_store
            .transaction(move |tx| {
                async move {
                    tx.lock_keys(&held).await?;
                    started_tx.send(()).ok();
                    release_rx.await.ok();
                    Ok::<_, StoreError>(())
                }
                .scope_boxed()
            })
            .await
    });
    started_rx.await.unwrap();
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
