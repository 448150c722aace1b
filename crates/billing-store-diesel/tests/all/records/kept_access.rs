//! `lock_then_keep_access`: the access rows of several users read at once under their locks,
//! answered again without a statement until the transaction writes to them.

use billing_domain::SubscriptionStatus;
use billing_ports::{
    AccessRows, BillingStore, BillingTx, CreditEntry, CreditReason, CustomerRecord, ReadAhead,
    StoreError, TxFuture,
};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, DieselStore};

use crate::{at, pro_subscription};

/// A user with credits and no customer.
pub(super) const ALONE: &str = "user_Kq82VdL0";
/// A user whose customer has no subscription.
pub(super) const LINKED: &str = "user_3mXw7TfB";
/// A user whose customer has two subscriptions, and credits.
pub(super) const SUBSCRIBED: &str = "user_Zr5Nc1Hy";
/// A user whose customer has one subscription.
pub(super) const ONE_SUBSCRIPTION: &str = "user_b9QeL4sJ";
/// A user the store knows nothing of.
pub(super) const UNKNOWN: &str = "user_Tn0Gx6Wa";
/// Every user above.
pub(super) const USERS: [&str; 5] = [ALONE, LINKED, SUBSCRIBED, ONE_SUBSCRIPTION, UNKNOWN];

/// A ledger entry of `amount` for `user`, keyed by `key`.
pub(super) fn credit(user: &str, amount: i64, key: &str) -> CreditEntry {
    CreditEntry {
        user_id: Some(user.to_owned()),
        stripe_customer_id: None,
        amount,
        reason: CreditReason::Adjustment,
        source_key: key.to_owned(),
        created_at: at(1),
    }
}

fn customer(id: &str, user: Option<&str>) -> CustomerRecord {
    CustomerRecord {
        stripe_customer_id: id.to_owned(),
        user_id: user.map(str::to_owned),
        email: None,
        deleted: false,
    }
}

/// Stores the users above, committed.
pub(super) async fn seed(store: &DieselStore) {
    store
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                tx.add_credit(&credit(ALONE, 700, "checkout:cs_test_x4Rk9Wq"))
                    .await?;
                tx.add_credit(&credit(SUBSCRIBED, 1_500, "invoice:in_1Qp7Lm2eZvKYlo2C"))
                    .await?;
                for (id, user) in [
                    ("cus_Lz4Rq8Tn2WmX0v", LINKED),
                    ("cus_Ht6Yk1Pw9SdE3b", SUBSCRIBED),
                    ("cus_Ab2Vn7Qc4JxM8r", ONE_SUBSCRIPTION),
                ] {
                    tx.save_customer(&customer(id, Some(user)), at(1)).await?;
                }
                for (id, customer) in [
                    ("sub_1Rc8Wm2eZvKYlo2CkT3a", "cus_Ht6Yk1Pw9SdE3b"),
                    ("sub_1Kd2Xp2eZvKYlo2Cv7Qn", "cus_Ht6Yk1Pw9SdE3b"),
                    ("sub_1Ny5Bq2eZvKYlo2Cs0Lf", "cus_Ab2Vn7Qc4JxM8r"),
                ] {
                    let s = pro_subscription(
                        id,
                        customer,
                        SubscriptionStatus::Active,
                        "evt_1Rc8Wn2eZvKYlo2Cm1Xd",
                        1,
                    );
                    tx.save_subscription(&s, at(1)).await?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
}

/// The feed lock of each user, as the application names them.
pub(super) fn locks() -> Vec<String> {
    USERS.iter().map(|user| format!("feed:{user}")).collect()
}

/// Commits `entries` in a transaction of its own on `store` that takes no user's lock (as no
/// real writer does): what a transaction that kept those users' rows must not see.
async fn credit_skipping_the_locks(
    store: &DieselStore,
    entries: Vec<CreditEntry>,
) -> Result<(), StoreError> {
    store
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                for entry in &entries {
                    tx.add_credit(entry).await?;
                }
                Ok(())
            })
        })
        .await
}

/// Keeps `ALONE`'s access rows under their feed lock.
async fn keep_alone(tx: &mut dyn BillingTx) -> Result<(), StoreError> {
    let users = [ALONE.to_owned()];
    tx.lock_then_keep_access(&[format!("feed:{ALONE}")], &users, ReadAhead::default())
        .await
}

/// Every user's access rows, each read in a transaction of its own (nothing kept).
async fn fresh(store: &DieselStore) -> Vec<AccessRows> {
    let mut rows = Vec::new();
    for user in USERS {
        let read = store
            .read(|tx| -> TxFuture<'_, '_, _, StoreError> {
                Box::pin(async move { tx.access_rows(user).await })
            })
            .await;
        rows.push(read.unwrap());
    }
    rows
}

/// Every user's access rows as `tx` answers them.
async fn answered(tx: &mut dyn BillingTx) -> Result<Vec<AccessRows>, StoreError> {
    let mut rows = Vec::new();
    for user in USERS {
        rows.push(tx.access_rows(user).await?);
    }
    Ok(rows)
}

/// Kept rows are what a read of each user alone finds, for a user with no customer, one with a
/// customer and no subscription, one with two subscriptions, one with one and one unknown; after each kind of write (a credit, a subscription, a customer linked to another
/// user, a customer's rows attributed), every user's answer is again what the transaction
/// would read, since the write forgot what it changed.
pub(super) async fn kept_access_rows_are_what_a_read_finds_after_every_write(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    seed(db.store()).await;
    let before = fresh(db.store()).await;
    let (kept, after_writes, new_answered) = db
        .store()
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                let users: Vec<String> = USERS.iter().map(|u| (*u).to_owned()).collect();
                tx.lock_then_keep_access(&locks(), &users, ReadAhead::default())
                    .await?;
                let kept = answered(tx).await?;
                tx.add_credit(&credit(ALONE, 300, "checkout:cs_test_p2Nw8Hz"))
                    .await?;
                // The same entry again: not added, the balance unchanged.
                tx.add_credit(&credit(ALONE, 300, "checkout:cs_test_p2Nw8Hz"))
                    .await?;
                let mut after_writes = vec![answered(tx).await?];
                // A kept subscription written again (its status changed) is kept as a read
                // of it finds it, its times as precise as stored.
                let mut past_due = pro_subscription(
                    "sub_1Kd2Xp2eZvKYlo2Cv7Qn",
                    "cus_Ht6Yk1Pw9SdE3b",
                    SubscriptionStatus::PastDue,
                    "evt_1Kd2Xq2eZvKYlo2Cz4Hs",
                    2,
                );
                // A time computed from a clock: finer than the database keeps.
                past_due.grace_period_end =
                    Some(at(86_400) + chrono::TimeDelta::nanoseconds(123_456_789));
                tx.save_subscription(&past_due, at(2)).await?;
                let direct = (
                    tx.customer_subscriptions("cus_Ht6Yk1Pw9SdE3b").await?,
                    tx.credit_balance(ALONE).await?,
                );
                let rows = answered(tx).await?;
                if (rows[2].subscriptions.clone(), rows[0].credits) != direct {
                    return Err(StoreError::Refused(billing_ports::Cause::msg(format!(
                        "kept {rows:?} differ from the rows read {direct:?}"
                    ))));
                }
                let mut new = pro_subscription(
                    "sub_1Zx3Cv2eZvKYlo2Cb9Mn",
                    "cus_Ab2Vn7Qc4JxM8r",
                    SubscriptionStatus::Trialing,
                    "evt_1Zx3Cw2eZvKYlo2Cq5Rt",
                    2,
                );
                new.current_period_end =
                    Some(at(2_592_000) + chrono::TimeDelta::nanoseconds(987_654_321));
                tx.save_subscription(&new, at(2)).await?;
                // Written by this transaction, it is answered as stored.
                let new_answered = tx.subscription("sub_1Zx3Cv2eZvKYlo2Cb9Mn").await?;
                // Another, whose id sorts before the customer's first.
                let earlier = pro_subscription(
                    "sub_1Ca7Hw2eZvKYlo2Cd3Pk",
                    "cus_Ab2Vn7Qc4JxM8r",
                    SubscriptionStatus::Active,
                    "evt_1Ca7Hx2eZvKYlo2Cf8Wb",
                    2,
                );
                tx.save_subscription(&earlier, at(2)).await?;
                let rows = answered(tx).await?;
                let direct = tx.customer_subscriptions("cus_Ab2Vn7Qc4JxM8r").await?;
                if rows[3].subscriptions != direct {
                    return Err(StoreError::Refused(billing_ports::Cause::msg(format!(
                        "kept {:?} differ from the rows read {direct:?}",
                        rows[3].subscriptions
                    ))));
                }
                after_writes.push(rows);
                // The customer of LINKED moves to ALONE.
                tx.save_customer(&customer("cus_Lz4Rq8Tn2WmX0v", Some(ALONE)), at(3))
                    .await?;
                after_writes.push(answered(tx).await?);
                // A credit of a customer before its user was known, then attributed.
                tx.add_credit(&CreditEntry {
                    user_id: None,
                    stripe_customer_id: Some("cus_Ht6Yk1Pw9SdE3b".to_owned()),
                    ..credit(SUBSCRIBED, 90, "invoice:in_1Jb6Ws2eZvKYlo2C")
                })
                .await?;
                tx.attribute_customer_rows("cus_Ht6Yk1Pw9SdE3b", SUBSCRIBED)
                    .await?;
                after_writes.push(answered(tx).await?);
                Ok((kept, after_writes, new_answered))
            })
        })
        .await
        .unwrap();
    assert_eq!(kept, before, "kept rows are what each read alone finds");
    assert_eq!(kept[2].subscriptions.len(), 2);
    assert_eq!(kept[4], AccessRows::default());
    // Committed, each state read afresh must be the last answer in the transaction.
    let last = after_writes.last().cloned().unwrap_or_default();
    assert_eq!(fresh(db.store()).await, last);
    let credits: Vec<i64> = after_writes.iter().map(|rows| rows[0].credits).collect();
    assert_eq!(
        credits,
        [1_000, 1_000, 1_000, 1_000],
        "ALONE's credit seen at once"
    );
    let subs: Vec<usize> = after_writes
        .iter()
        .map(|rows| rows[3].subscriptions.len())
        .collect();
    assert_eq!(subs, [1, 3, 3, 3], "the new subscriptions seen at once");
    let stored = db
        .store()
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { tx.subscription("sub_1Zx3Cv2eZvKYlo2Cb9Mn").await })
        })
        .await
        .unwrap();
    assert!(stored.is_some());
    assert_eq!(
        new_answered, stored,
        "a subscription written is answered as stored"
    );
    assert_eq!(
        after_writes[1][1].customer.as_deref(),
        Some("cus_Lz4Rq8Tn2WmX0v")
    );
    assert_eq!(
        after_writes[2][1].customer, None,
        "LINKED lost its customer"
    );
    assert_eq!(
        after_writes[2][0].customer.as_deref(),
        Some("cus_Lz4Rq8Tn2WmX0v"),
        "ALONE gained it"
    );
    assert_eq!(after_writes[2][2].credits, 1_500);
    assert_eq!(
        after_writes[3][2].credits, 1_590,
        "the attributed credit counts"
    );
}

/// On Postgres, kept rows are answered with no statement: a credit committed meanwhile by a
/// writer that skipped the user's lock (which every real writer takes) is not seen by
/// `access_rows` of a kept user, while the balance read directly sees it, and a user the
/// transaction did not keep is read afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_access_rows_are_answered_without_a_statement() {
    let db = TestDatabase::new(Backend::Postgres).await;
    seed(db.store()).await;
    let other = db.store().clone();
    let (kept, direct, not_kept) = db
        .store()
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                keep_alone(tx).await?;
                let entries = vec![
                    credit(ALONE, 55, "checkout:cs_test_r8Dm1Vx"),
                    credit(SUBSCRIBED, 66, "checkout:cs_test_u3Fq7Bn"),
                ];
                credit_skipping_the_locks(&other, entries).await?;
                Ok((
                    tx.access_rows(ALONE).await?.credits,
                    tx.credit_balance(ALONE).await?,
                    tx.access_rows(SUBSCRIBED).await?.credits,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!((kept, direct, not_kept), (700, 755, 1_566));
}

/// On Postgres, users read together after the transaction read some of their customers under
/// the customers' locks (as a shared ingest transaction does) are all kept as a read of each
/// alone finds them: linked to one of those customers or not, with credits and
/// subscriptions, with neither, with no customer, unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_of_customers_read_under_their_locks_are_kept_as_read() {
    let db = TestDatabase::new(Backend::Postgres).await;
    seed(db.store()).await;
    let fresh = fresh(db.store()).await;
    let kept = db
        .store()
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                for customer in ["cus_Ht6Yk1Pw9SdE3b", "cus_Lz4Rq8Tn2WmX0v"] {
                    tx.lock_customer(customer).await?;
                }
                let users: Vec<String> = USERS.iter().map(|u| (*u).to_owned()).collect();
                tx.lock_then_keep_access(&locks(), &users, ReadAhead::default())
                    .await?;
                answered(tx).await
            })
        })
        .await
        .unwrap();
    assert_eq!(kept, fresh);
    assert_eq!(kept[2].credits, 1_500, "the linked user's balance");
}

/// On Postgres, one user with a customer and subscriptions, kept alone (how a transaction of
/// one event keeps its user: the access query, one statement; here with a subscription to
/// lock in the same round trip): their rows are what a read of them finds, and they are answered
/// without a statement afterwards, so a credit committed meanwhile by a writer that skipped
/// the user's lock is not seen; the subscription locked with them is answered as read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_kept_alone_is_answered_as_read() {
    let db = TestDatabase::new(Backend::Postgres).await;
    seed(db.store()).await;
    let fresh = fresh(db.store()).await;
    let other = db.store().clone();
    let (kept, direct, subscription) = db
        .store()
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                let users = vec![SUBSCRIBED.to_owned()];
                let locked = ["sub_1Kd2Xp2eZvKYlo2Cv7Qn".to_owned()];
                tx.lock_then_keep_access(
                    &[format!("feed:{SUBSCRIBED}")],
                    &users,
                    ReadAhead {
                        subscriptions: &locked,
                        ..ReadAhead::default()
                    },
                )
                .await?;
                let entry = credit(SUBSCRIBED, 66, "checkout:cs_test_Wd4Lp9Ns");
                credit_skipping_the_locks(&other, vec![entry]).await?;
                Ok((
                    tx.access_rows(SUBSCRIBED).await?,
                    tx.credit_balance(SUBSCRIBED).await?,
                    tx.subscription(&locked[0]).await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(
        kept, fresh[2],
        "kept as a read of the user alone finds them"
    );
    assert_eq!((kept.credits, direct), (1_500, 1_566));
    assert_eq!(kept.subscriptions.len(), 2);
    assert_eq!(subscription.as_ref(), Some(&kept.subscriptions[0]));
}

/// On Postgres, a transaction that does not wait for locks, finds a user's lock held and goes
/// on (ingest's shared transaction rolls back whole; an embedding service's unit of work may
/// not) keeps nothing of that user: its later reads of them are fresh, and see what the
/// lock's holder committed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_whose_lock_was_busy_is_not_kept() {
    let db = TestDatabase::new(Backend::Postgres).await;
    seed(db.store()).await;
    let lock = format!("feed:{ALONE}");
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let (store, lock) = (db.store().clone(), lock.clone());
        tokio::spawn(async move {
            store
                .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
                    Box::pin(async move {
                        tx.lock_keys(&[lock]).await?;
                        held_tx.send(()).ok();
                        release_rx.await.ok();
                        tx.add_credit(&credit(ALONE, 55, "checkout:cs_test_h5Wz2Lq"))
                            .await?;
                        Ok(())
                    })
                })
                .await
        })
    };
    held_rx.await.unwrap();
    let (busy, before, after) = db
        .store()
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                tx.wait_for_locks(false).await?;
                let busy = tx
                    .lock_then_keep_access(&[lock], &[ALONE.to_owned()], ReadAhead::default())
                    .await;
                let busy = matches!(busy, Err(StoreError::LockBusy(_)));
                let before = tx.access_rows(ALONE).await?.credits;
                release_tx.send(()).ok();
                holder.await.expect("the holder's task")?;
                let after = tx.access_rows(ALONE).await?.credits;
                Ok((busy, before, after))
            })
        })
        .await
        .unwrap();
    assert!(busy, "the held lock is reported busy");
    assert_eq!(
        (before, after),
        (700, 755),
        "read afresh after the holder's commit"
    );
}

/// On Postgres, a subscription new to a kept user's customer is added to their kept rows
/// (no statement reads them again): a credit committed meanwhile by a writer that skipped the
/// user's lock is not seen, and the subscriptions are in the order a read gives, byte by byte
/// (`a` after `Z`) whatever the database's collation: the migrations give the id column the
/// `"C"` collation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_new_to_a_kept_user_is_kept_in_place() {
    use diesel::sql_types::Text;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Collation {
        #[diesel(sql_type = Text)]
        collation: String,
    }
    let db = TestDatabase::new(Backend::Postgres).await;
    let mut admin = AsyncPgConnection::establish(db.url()).await.unwrap();
    let column: Collation = diesel::sql_query(
        "SELECT collation_name::text AS collation FROM information_schema.columns \
         WHERE table_name = 'subscriptions' AND column_name = 'stripe_subscription_id'",
    )
    .get_result(&mut admin)
    .await
    .unwrap();
    assert_eq!(column.collation, "C", "byte order held by the column");
    drop(admin);
    seed(db.store()).await;
    let other = db.store().clone();
    let rows = db
        .store()
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                let users = vec![ONE_SUBSCRIPTION.to_owned()];
                tx.lock_then_keep_access(
                    &[format!("feed:{ONE_SUBSCRIPTION}")],
                    &users,
                    ReadAhead::default(),
                )
                .await?;
                // Last, first, and after the last only byte by byte ('a' > 'Z'; a
                // language's collation would put it first).
                for id in [
                    "sub_1Zb4Lq2eZvKYlo2Cr7Ty",
                    "sub_1Ab6Dn2eZvKYlo2Cw2Gh",
                    "sub_1aB6Dn2eZvKYlo2Cu5Ke",
                ] {
                    let new = pro_subscription(
                        id,
                        "cus_Ab2Vn7Qc4JxM8r",
                        SubscriptionStatus::Trialing,
                        "evt_1Zb4Lr2eZvKYlo2Cx0Vm",
                        2,
                    );
                    tx.save_subscription(&new, at(2)).await?;
                }
                let entry = credit(ONE_SUBSCRIPTION, 40, "checkout:cs_test_k1Pz6Rv");
                credit_skipping_the_locks(&other, vec![entry]).await?;
                tx.access_rows(ONE_SUBSCRIPTION).await
            })
        })
        .await
        .unwrap();
    assert_eq!(rows.credits, 0, "kept: not read again");
    let ids: Vec<&str> = rows
        .subscriptions
        .iter()
        .map(|s| s.stripe_subscription_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "sub_1Ab6Dn2eZvKYlo2Cw2Gh",
            "sub_1Ny5Bq2eZvKYlo2Cs0Lf",
            "sub_1Zb4Lq2eZvKYlo2Cr7Ty",
            "sub_1aB6Dn2eZvKYlo2Cu5Ke"
        ]
    );
    // A fresh read of the committed rows gives that order too, whatever the collation.
    let fresh = db
        .store()
        .read(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { tx.access_rows(ONE_SUBSCRIPTION).await })
        })
        .await
        .unwrap();
    assert_eq!(fresh.subscriptions, rows.subscriptions);
}

/// On Postgres, a kept user with no customer (one a customer is about to be linked to) has
/// none for `customer_of_user`, answered with no statement: a link committed meanwhile by a
/// writer that skipped the user's feed lock is not seen. A user not kept is read: the same
/// kind of link, committed for them, is seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_user_without_a_customer_has_none_without_a_statement() {
    let db = TestDatabase::new(Backend::Postgres).await;
    seed(db.store()).await;
    let other = db.store().clone();
    let (kept, read) = db
        .store()
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                keep_alone(tx).await?;
                other
                    .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
                        Box::pin(async move {
                            tx.save_customer(&customer("cus_Mv5Tq2Xw8RnB4k", Some(ALONE)), at(2))
                                .await?;
                            tx.save_customer(&customer("cus_Jd9Lp3Hs6WcZ1y", Some(UNKNOWN)), at(2))
                                .await
                        })
                    })
                    .await?;
                Ok((
                    tx.customer_of_user(ALONE).await?,
                    tx.customer_of_user(UNKNOWN).await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(kept, None, "kept: no customer, not read again");
    assert_eq!(
        read.map(|c| c.stripe_customer_id).as_deref(),
        Some("cus_Jd9Lp3Hs6WcZ1y"),
        "not kept: read"
    );
}

/// Credit sources read ahead with a kept user: an entry of a key not stored is added (once),
/// the kept balance follows it at once, and the commit writes it, whether change records go
/// with the commit (one round trip on Postgres) or none do; an entry of a key stored adds
/// nothing. On SQLite nothing is read ahead and each entry is written when added: the same
/// answers.
pub(super) async fn credit_sources_read_ahead_are_added_once_and_committed(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    seed(db.store()).await;
    let alone_before = fresh(db.store()).await[0].credits;
    let stored = "invoice:in_1Xd6Pj2eZvKYlo2Cm4Wq";
    credit_skipping_the_locks(db.store(), vec![credit(ALONE, 100, stored)])
        .await
        .unwrap();
    for (key, with_record) in [
        ("invoice:in_1Xd6Pk2eZvKYlo2Ct9Lb", true),
        ("invoice:in_1Xd6Pm2eZvKYlo2Cr2Nz", false),
    ] {
        let balances = db
            .store()
            .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
                Box::pin(async move {
                    let users = [ALONE.to_owned()];
                    let sources = [stored.to_owned(), key.to_owned()];
                    let ahead = ReadAhead {
                        credit_sources: &sources,
                        ..ReadAhead::default()
                    };
                    tx.lock_then_keep_access(&[format!("feed:{ALONE}")], &users, ahead)
                        .await?;
                    let before = tx.access_rows(ALONE).await?.credits;
                    let added = (
                        tx.add_credit(&credit(ALONE, 100, stored)).await?,
                        tx.add_credit(&credit(ALONE, 250, key)).await?,
                        tx.add_credit(&credit(ALONE, 250, key)).await?,
                    );
                    assert_eq!(added, (false, true, false), "{key}");
                    let after = tx.access_rows(ALONE).await?.credits;
                    if with_record {
                        let record = crate::feed::change(
                            &format!("chg_{}", &key[11..]),
                            ALONE,
                            billing_ports::ChangeKind::CreditsGranted,
                        );
                        tx.insert_changes_at_commit(vec![record]).await?;
                    }
                    Ok((before, after))
                })
            })
            .await
            .unwrap();
        assert_eq!(
            balances.1,
            balances.0 + 250,
            "kept balance follows the entry: {key}"
        );
        assert_eq!(
            fresh(db.store()).await[0].credits,
            balances.1,
            "committed: {key}"
        );
    }
    assert_eq!(fresh(db.store()).await[0].credits, alone_before + 100 + 500);
}
