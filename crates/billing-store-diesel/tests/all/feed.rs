//! The change feed's outbox: records written in a unit of work, numbered in commit order (also
//! when a transaction that drew an earlier id commits later, on Postgres), written once per
//! dedupe key, gone with a rolled-back unit of work; and the grace periods that ended.

use billing_domain::{Currency, Money, SubscriptionStatus, TierId};
use billing_ports::{
    AccessSnapshot, AttemptOutcome, BillingStore, ChangeKind, ChangePurge, CustomerRecord,
    DeliveryFilter, FeedStore, NewChange, PushAttempt, PushStore, ReplaySelection, StoreError,
    SubscriptionRecord, TxFuture,
};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, DieselStore, on_both_backends};

use crate::at;
use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

on_both_backends!(
    records_read_back_in_order_after_a_cursor,
    a_dedupe_key_is_written_once_and_a_rollback_writes_nothing,
    records_written_together_are_what_one_by_one_writes,
    ended_grace_periods_are_listed_until_recorded,
    the_retention_purges_the_oldest_records_and_keeps_what_is_still_needed,
    records_written_at_once_after_records_at_commit_come_after_them,
);

/// Records given for the commit, then one written at once, then more for the commit: the
/// feed has them in the order given (the waiting ones are written before the one at once).
async fn records_written_at_once_after_records_at_commit_come_after_them(store: DieselStore) {
    let ids = [
        "chg_Ow1Tq8Kz3Nd6Rb",
        "chg_Ow2Mv5Xs9Lh4Pc",
        "chg_Ow3Gy7Jf2Wu8Ea",
    ];
    store
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                let record = |id: &str| change(id, "user_2Vc8Hn", ChangeKind::TierChanged);
                tx.insert_changes_at_commit(vec![record(ids[0])]).await?;
                tx.insert_change(&record(ids[1])).await?;
                tx.insert_changes_at_commit(vec![record(ids[2])]).await?;
                Ok(())
            })
        })
        .await
        .unwrap();
    let fed = change_ids(&store).await;
    assert_eq!(fed, ids, "in the order given");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_records_written_at_commit_commit_with_their_transaction_or_not_at_all() {
    records_written_at_commit_commit_with_their_transaction_or_not_at_all(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_records_written_at_commit_commit_with_their_transaction_or_not_at_all() {
    records_written_at_commit_commit_with_their_transaction_or_not_at_all(Backend::Sqlite).await;
}

fn snapshot(tier: &str, status: Option<SubscriptionStatus>, reason: &str) -> AccessSnapshot {
    AccessSnapshot {
        tier: TierId::new(tier),
        status,
        reason: reason.to_owned(),
        grace_period_end: None,
        credits: 0,
    }
}

pub(crate) fn change(id: &str, user: &str, kind: ChangeKind) -> NewChange {
    let mut after = snapshot("PRO", Some(SubscriptionStatus::PastDue), "in_grace_period");
    after.grace_period_end = Some(at(259_200));
    after.credits = 1_500;
    NewChange {
        change_id: id.to_owned(),
        user_id: user.to_owned(),
        customer_id: Some("cus_Q8mT2vLx9RkA4e".to_owned()),
        kind,
        before: snapshot("PRO", Some(SubscriptionStatus::Active), "active"),
        after,
        amount: Some(Money::new(4_900, Currency::parse("eur").unwrap())),
        stripe_event_id: Some("evt_1RkZu62eZvKYlo2Cy2Lk".to_owned()),
        dedupe_key: None,
        created_at: at(5),
    }
}

/// The change ids of the first records of the feed, in its order.
async fn change_ids(store: &DieselStore) -> Vec<String> {
    store
        .changes_after(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.change.change_id)
        .collect()
}

async fn insert(store: &DieselStore, change: &NewChange) -> Result<bool, StoreError> {
    let change = change.clone();
    store
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { tx.insert_change(&change).await })
        })
        .await
}

async fn records_read_back_in_order_after_a_cursor(store: DieselStore) {
    assert_eq!(store.change_head().await.unwrap(), 0);
    assert!(store.changes_after(None, 10).await.unwrap().is_empty());
    let mut written = Vec::new();
    for (n, kind) in [
        ChangeKind::StatusChanged,
        ChangeKind::GraceStarted,
        ChangeKind::PaymentFailed,
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = change(
            &format!("chg_4fT0aZ9qLm2Xc8VbN1sKe7R{n}"),
            "user_5d1f0c",
            kind,
        );
        if kind != ChangeKind::PaymentFailed {
            c.amount = None;
        }
        assert!(insert(&store, &c).await.unwrap());
        written.push(c);
    }
    let all = store.changes_after(None, 10).await.unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        all.iter().map(|r| r.change.clone()).collect::<Vec<_>>(),
        written
    );
    let page = store.changes_after(Some(1), 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].seq, 2);
    assert!(store.changes_after(Some(3), 10).await.unwrap().is_empty());
    assert_eq!(store.change_head().await.unwrap(), 3);
    assert!(store.change_exists(2).await.unwrap());
    assert!(!store.change_exists(4).await.unwrap());
}

async fn a_dedupe_key_is_written_once_and_a_rollback_writes_nothing(store: DieselStore) {
    let mut first = change(
        "chg_9pQ2wE4rT6yU8iO0aS2dF4gH",
        "user_5d1f0c",
        ChangeKind::GraceEnded,
    );
    first.dedupe_key = Some("grace_ended:sub_1RkZp42eZvKYlo2CH3sd:1767259200".to_owned());
    first.stripe_event_id = None;
    assert!(insert(&store, &first).await.unwrap());
    let mut again = first.clone();
    again.change_id = "chg_1zX3cV5bN7mQ9wE1rT3yU5iO".to_owned();
    assert!(!insert(&store, &again).await.unwrap());

    let rolled_back = change(
        "chg_7hJ9kL1zX3cV5bN7mQ9wE1rT",
        "user_5d1f0c",
        ChangeKind::Refund,
    );
    let result = store
        .transaction(move |tx| -> TxFuture<'_, '_, (), StoreError> {
            Box::pin(async move {
                tx.insert_change(&rolled_back).await?;
                Err(StoreError::Refused(billing_ports::Cause::msg(
                    "the effects failed",
                )))
            })
        })
        .await;
    assert!(result.is_err());
    let all = store.changes_after(None, 10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].change, first);
}

/// `insert_changes` writes what `insert_change` one by one would: every record in its order
/// (their numbers follow it), every optional column kept (a status, a grace end, an amount, a
/// key, or none), and a record skipped whose dedupe key exists already or came earlier in the
/// same call; the count says how many were written.
async fn records_written_together_are_what_one_by_one_writes(store: DieselStore) {
    let key = "payment:in_1Sd4Kq2eZvKYlo2Cx8Vn";
    let mut stored = change(
        "chg_Hq2Lr8Vt4Xn6Bz0Pc3Wm5Ks7",
        "user_a81Fq3",
        ChangeKind::Refund,
    );
    stored.dedupe_key = Some("refund:re_3Sd4Kr2eZvKYlo2C1Ab2".to_owned());
    assert!(insert(&store, &stored).await.unwrap());
    let mut batch = Vec::new();
    for (n, (user, kind)) in [
        ("user_a81Fq3", ChangeKind::TierChanged),
        ("user_Zc07Np", ChangeKind::StatusChanged),
        ("user_a81Fq3", ChangeKind::PaymentSucceeded),
        ("user_Zc07Np", ChangeKind::PaymentSucceeded),
        ("user_a81Fq3", ChangeKind::Refund),
        ("user_a81Fq3", ChangeKind::CreditsGranted),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = change(&format!("chg_Tb5Wd1Mx9Qk3Jv7Rf2Ng8Ly{n}"), user, kind);
        match n {
            0 => {
                c.amount = None;
                c.before.status = None;
                c.customer_id = None;
            }
            1 => c.after.grace_period_end = None,
            // The same payment reported twice: written once.
            2 | 3 => c.dedupe_key = Some(key.to_owned()),
            // Its key is stored already.
            4 => c.dedupe_key.clone_from(&stored.dedupe_key),
            _ => c.stripe_event_id = None,
        }
        batch.push(c);
    }
    let changes = batch.clone();
    let written = store
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                let none = tx.insert_changes(&[]).await?;
                Ok((none, tx.insert_changes(&changes).await?))
            })
        })
        .await
        .unwrap();
    assert_eq!(written, (0, 4));
    let expected: Vec<NewChange> = [&stored, &batch[0], &batch[1], &batch[2], &batch[5]]
        .into_iter()
        .cloned()
        .collect();
    let all = store.changes_after(None, 10).await.unwrap();
    // Increasing (SQLite numbers a record by its id, which a skipped insert may use up).
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "{all:?}");
    assert_eq!(
        all.into_iter().map(|r| r.change).collect::<Vec<_>>(),
        expected
    );
}

fn past_due(id: &str, customer: &str, grace_end: DateTime<Utc>) -> SubscriptionRecord {
    SubscriptionRecord {
        grace_period_end: Some(grace_end),
        ..crate::pro_subscription(
            id,
            customer,
            SubscriptionStatus::PastDue,
            "evt_1RkZu62eZvKYlo2Cy2Lk",
            10,
        )
    }
}

async fn ended_grace_periods_are_listed_until_recorded(store: DieselStore) {
    let rows = [
        (
            "cus_GraceEnded01",
            Some("user_ended"),
            "sub_GraceEnded01",
            at(100),
        ),
        (
            "cus_GraceLater01",
            Some("user_later"),
            "sub_GraceLater01",
            at(10_000),
        ),
        ("cus_GraceNoUser1", None, "sub_GraceNoUser1", at(100)),
    ];
    store
        .transaction(move |tx| -> TxFuture<'_, '_, (), StoreError> {
            Box::pin(async move {
                for (customer, user, subscription, end) in rows {
                    tx.save_customer(
                        &CustomerRecord {
                            stripe_customer_id: customer.to_owned(),
                            user_id: user.map(str::to_owned),
                            email: None,
                            deleted: false,
                        },
                        at(0),
                    )
                    .await?;
                    tx.save_subscription(&past_due(subscription, customer, end), at(1))
                        .await?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    let ended = store.grace_periods_ended(at(200), 10).await.unwrap();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(
        (ended[0].user_id.as_str(), ended[0].subscription_id.as_str()),
        ("user_ended", "sub_GraceEnded01")
    );
    assert_eq!(ended[0].grace_period_end, at(100));

    // Recorded after the end: listed no more. A record from before the end does not count.
    let mut old = change(
        "chg_0oldGraceEnded0000000000",
        "user_ended",
        ChangeKind::GraceEnded,
    );
    old.created_at = at(50);
    insert(&store, &old).await.unwrap();
    assert_eq!(
        store.grace_periods_ended(at(200), 10).await.unwrap().len(),
        1
    );
    let mut recorded = change(
        "chg_1newGraceEnded0000000000",
        "user_ended",
        ChangeKind::GraceEnded,
    );
    recorded.created_at = at(150);
    insert(&store, &recorded).await.unwrap();
    assert!(
        store
            .grace_periods_ended(at(200), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .grace_periods_ended(at(10_000) + TimeDelta::seconds(1), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// On Postgres a record's id is drawn at insert, not at commit: the transaction that drew the
/// earlier id may commit later. Its record still comes after every record already read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_committed_later_comes_after_what_was_read_postgres() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let store = db.store().clone();
    let (inserted_tx, inserted_rx) = tokio::sync::oneshot::channel::<()>();
    let (commit_tx, commit_rx) = tokio::sync::oneshot::channel::<()>();
    let slow_store = store.clone();
    let slow = tokio::spawn(async move {
        let early = change(
            "chg_AearlyIdLateCommit000000",
            "user_a",
            ChangeKind::TierChanged,
        );
        slow_store
            .transaction(move |tx| -> TxFuture<'_, '_, bool, StoreError> {
                Box::pin(async move {
                    let written = tx.insert_change(&early).await?;
                    let _ = inserted_tx.send(());
                    let _ = commit_rx.await;
                    Ok(written)
                })
            })
            .await
    });
    inserted_rx.await.unwrap();
    let late = change(
        "chg_BlateIdEarlyCommit000000",
        "user_b",
        ChangeKind::TierChanged,
    );
    assert!(insert(&store, &late).await.unwrap());
    let first = store.changes_after(None, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].change.change_id, "chg_BlateIdEarlyCommit000000");
    let cursor = first[0].seq;
    commit_tx.send(()).unwrap();
    assert!(slow.await.unwrap().unwrap());
    let next = store.changes_after(Some(cursor), 10).await.unwrap();
    assert_eq!(next.len(), 1, "the record committed later is not skipped");
    assert_eq!(next[0].change.change_id, "chg_AearlyIdLateCommit000000");
    assert!(next[0].seq > cursor);
}

/// The positions the feed serves from its start.
async fn served(store: &DieselStore) -> Vec<i64> {
    let records = store.changes_after(None, 10).await.unwrap();
    records.iter().map(|r| r.seq).collect()
}

/// Attempts of `deliveries` (delivery id, outcome) recorded at `now`.
async fn attempts(store: &DieselStore, deliveries: &[(i64, AttemptOutcome)], now: DateTime<Utc>) {
    let attempts: Vec<PushAttempt> = deliveries
        .iter()
        .map(|(delivery_id, outcome)| PushAttempt {
            delivery_id: *delivery_id,
            attempt: 1,
            started_at: now,
            duration_ms: 12,
            status_code: Some(if *outcome == AttemptOutcome::Succeeded {
                200
            } else {
                500
            }),
            error: (*outcome != AttemptOutcome::Succeeded).then(|| "HTTP 500".to_owned()),
            outcome: *outcome,
        })
        .collect();
    store.record_push_attempts(&attempts, now).await.unwrap();
}

/// Records older than the retention go, oldest first and a batch at a time, behind a horizon
/// that never passes the newest record; kept are the records of deliveries not yet succeeded
/// (until they succeed) and each user's newest `grace_ended` record, and the succeeded
/// deliveries go with their records except the endpoint's newest.
async fn the_retention_purges_the_oldest_records_and_keeps_what_is_still_needed(
    store: DieselStore,
) {
    assert_eq!(store.change_horizon().await.unwrap(), 0);
    let endpoint = store
        .register_push_endpoint("ep_9fKq2LxW", "https://product.example/hooks", at(1))
        .await
        .unwrap();
    let records = [
        (
            "chg_0aT4mQ9rLk2VzX7pW1sB",
            "user_a8Kd2m",
            ChangeKind::StatusChanged,
            10,
        ),
        (
            "chg_1bR7nP3xJh5YcU0qE8vD",
            "user_g3Wq9z",
            ChangeKind::GraceEnded,
            20,
        ),
        (
            "chg_2cM1kS6wGf8ZbT4oR2yF",
            "user_b5Nx7c",
            ChangeKind::PaymentFailed,
            30,
        ),
        (
            "chg_3dL9jV2uDs4XaQ6iN0tH",
            "user_g3Wq9z",
            ChangeKind::GraceEnded,
            40,
        ),
        (
            "chg_4eK3hY8tBp1WnO5gM7rJ",
            "user_a8Kd2m",
            ChangeKind::TierChanged,
            50,
        ),
        (
            "chg_5fJ6gZ0sAm9VlI2eL4qK",
            "user_c1Pv4e",
            ChangeKind::StatusChanged,
            1_000,
        ),
        (
            "chg_6gH2fX4rZn7UkE8dK1pM",
            "user_a8Kd2m",
            ChangeKind::StatusChanged,
            2_000,
        ),
    ];
    for (id, user, kind, second) in records {
        let mut record = change(id, user, kind);
        record.created_at = at(second);
        assert!(insert(&store, &record).await.unwrap());
    }
    assert_eq!(
        store
            .enqueue_pushes(&endpoint.id, at(2_001), 100)
            .await
            .unwrap(),
        7
    );
    let due = store
        .due_pushes(&endpoint.id, at(2_001), 100)
        .await
        .unwrap();
    let delivery = |seq: i64| {
        due.iter()
            .find(|d| d.record.seq == seq)
            .unwrap()
            .delivery_id
    };
    // Delivered but for the third (given up) and the sixth (still pending).
    let mut outcomes: Vec<(i64, AttemptOutcome)> = [1, 2, 4, 5, 7]
        .into_iter()
        .map(|seq| (delivery(seq), AttemptOutcome::Succeeded))
        .collect();
    outcomes.push((delivery(3), AttemptOutcome::Failed));
    attempts(&store, &outcomes, at(2_002)).await;
    let retention_end = at(100);

    // A batch of two positions: both go, with their deliveries.
    let first = store.purge_changes(retention_end, 2).await.unwrap();
    assert_eq!(
        first,
        ChangePurge {
            horizon: 2,
            advanced: true,
            changes: 2,
            deliveries: 2
        }
    );
    // The next stops before the first record inside the retention (6): of 3, 4 and 5 only 5
    // goes, 3's delivery having failed and 4 being its user's newest grace_ended record.
    let second = store.purge_changes(retention_end, 100).await.unwrap();
    assert_eq!(
        second,
        ChangePurge {
            horizon: 5,
            advanced: true,
            changes: 1,
            deliveries: 2
        }
    );
    let idle = store.purge_changes(retention_end, 100).await.unwrap();
    assert_eq!(
        idle,
        ChangePurge {
            horizon: 5,
            advanced: false,
            changes: 0,
            deliveries: 0
        }
    );
    assert_eq!(store.change_horizon().await.unwrap(), 5);
    // The feed starts after the horizon: the records kept before it are not served.
    assert_eq!(served(&store).await, [6, 7]);
    assert!(store.change_exists(3).await.unwrap());
    assert!(store.change_exists(4).await.unwrap());

    // Once the failed delivery is sent, a sweep takes its record (the delivery goes too).
    let replayed = store
        .replay_pushes(&ReplaySelection::Ids(vec![delivery(3)]), at(2_003))
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    attempts(
        &store,
        &[(delivery(3), AttemptOutcome::Succeeded)],
        at(2_004),
    )
    .await;
    let sweep = store.purge_changes(retention_end, 100).await.unwrap();
    assert_eq!(
        sweep,
        ChangePurge {
            horizon: 5,
            advanced: false,
            changes: 1,
            deliveries: 1
        }
    );
    assert!(!store.change_exists(3).await.unwrap());

    // Everything past the retention: the newest record stays, the numbering goes on from it.
    let all = store.purge_changes(at(10_000), 100).await.unwrap();
    assert_eq!(
        all,
        ChangePurge {
            horizon: 6,
            advanced: true,
            changes: 0,
            deliveries: 0
        },
        "6 is pending"
    );
    let mut next = change(
        "chg_7hG5eW1qYm3TjD9cJ6oN",
        "user_c1Pv4e",
        ChangeKind::TierChanged,
    );
    next.created_at = at(3_000);
    assert!(insert(&store, &next).await.unwrap());
    assert_eq!(served(&store).await, [7, 8]);
    let kept = store
        .push_deliveries(&DeliveryFilter {
            status: None,
            endpoint_id: None,
            limit: 100,
        })
        .await
        .unwrap();
    let mut kept: Vec<i64> = kept.iter().map(|d| d.change_seq).collect();
    kept.sort_unstable();
    assert_eq!(kept, [6, 7], "the pending one and the endpoint's newest");

    // The endpoint's newest delivery outlives its record (the endpoint lags: 8 has none yet);
    // replaying it would leave a delivery nothing can send.
    let lagging = store.purge_changes(at(10_000), 100).await.unwrap();
    assert_eq!(
        lagging,
        ChangePurge {
            horizon: 7,
            advanced: true,
            changes: 1,
            deliveries: 0
        }
    );
    let replayed = store
        .replay_pushes(
            &ReplaySelection::Ids(vec![delivery(6), delivery(7)]),
            at(3_001),
        )
        .await
        .unwrap();
    assert_eq!(replayed, 1, "only 6, whose record is kept");
}

/// A customer, a subscription and records written at commit
/// (`insert_changes_at_commit`, sent with the `COMMIT` on Postgres), through a store of one
/// connection: `ok` commits all three; `refused` (a record the database refuses, a user id
/// over 255 characters) and `failed` (a unit of work that fails after the call) commit none
/// of them; and the one connection, used again after each, is out of any transaction.
async fn records_written_at_commit_commit_with_their_transaction_or_not_at_all(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = DieselStore::connect(db.url(), 1).unwrap();
    let too_long: String = (0..300_usize)
        .map(|n| {
            char::from(
                b"aZ0bY1cX2dW3eV4fU5gT6hS7iR8jQ9kPlOmNnMoLpKqJrIsHtGuFvEwDxCyBzA"[n * 37 % 62],
            )
        })
        .collect();
    // Opened before the store's connection, kept open: its own pid is left out of each look.
    let mut probe = match backend {
        Backend::Postgres => Some(AsyncPgConnection::establish(db.url()).await.unwrap()),
        Backend::Sqlite => None,
    };
    let attempt = |customer: &'static str, user: String, count: usize, fail: bool| {
        let store = store.clone();
        async move {
            store
                .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
                    Box::pin(async move {
                        let record = CustomerRecord {
                            stripe_customer_id: customer.to_owned(),
                            user_id: None,
                            email: None,
                            deleted: false,
                        };
                        tx.save_customer(&record, at(1)).await?;
                        let subscription = crate::pro_subscription(
                            &format!("sub_{}", &customer[4..]),
                            customer,
                            SubscriptionStatus::Active,
                            "evt_1RkZu62eZvKYlo2Cy2Lk",
                            1,
                        );
                        tx.save_subscription(&subscription, at(1)).await?;
                        let records = [
                            change(
                                &format!("chg_{}a", &customer[4..]),
                                &user,
                                ChangeKind::TierChanged,
                            ),
                            change(
                                &format!("chg_{}b", &customer[4..]),
                                &user,
                                ChangeKind::StatusChanged,
                            ),
                        ];
                        tx.insert_changes_at_commit(records[..count].to_vec())
                            .await?;
                        if fail {
                            return Err(StoreError::Refused(billing_ports::Cause::msg(
                                "the unit of work failed after its records",
                            )));
                        }
                        Ok(())
                    })
                })
                .await
        }
    };
    attempt("cus_Rk4Lw8Tz2Qm9Vx", "user_7Hq2Xp".to_owned(), 2, false)
        .await
        .unwrap();
    let connection = backends(probe.as_mut()).await;
    let refused = attempt("cus_Tn5Bv1Yc7Jd3Gs", too_long, 2, false).await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    let failed = attempt("cus_Wm8Fh6Pk0Ea4Lz", "user_3Rn9Ct".to_owned(), 2, true).await;
    assert!(failed.is_err());
    // One record: the same statement as many.
    attempt("cus_Xc2Ud7Sg5Hb1Mq", "user_8Kv4Nw".to_owned(), 1, false)
        .await
        .unwrap();
    assert_eq!(
        backends(probe.as_mut()).await,
        connection,
        "the pool's one connection used throughout, never discarded as left in a transaction"
    );
    let committed = change_ids(&store).await;
    assert_eq!(
        committed,
        [
            "chg_Rk4Lw8Tz2Qm9Vxa",
            "chg_Rk4Lw8Tz2Qm9Vxb",
            "chg_Xc2Ud7Sg5Hb1Mqa"
        ],
        "the records of the committed transactions only"
    );
    let stored = store
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                let mut found = Vec::new();
                for id in [
                    "cus_Rk4Lw8Tz2Qm9Vx",
                    "cus_Tn5Bv1Yc7Jd3Gs",
                    "cus_Wm8Fh6Pk0Ea4Lz",
                    "cus_Xc2Ud7Sg5Hb1Mq",
                ] {
                    let customer = tx.customer(id).await?.is_some();
                    let subscription = tx
                        .subscription(&format!("sub_{}", &id[4..]))
                        .await?
                        .is_some();
                    found.push((customer, subscription));
                }
                Ok(found)
            })
        })
        .await
        .unwrap();
    assert_eq!(
        stored,
        [(true, true), (false, false), (false, false), (true, true)]
    );
}

/// The client backends connected to `probe`'s database other than `probe` itself (none
/// without a probe: SQLite).
async fn backends(probe: Option<&mut AsyncPgConnection>) -> Vec<i32> {
    use diesel::QueryableByName;
    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let Some(probe) = probe else {
        return Vec::new();
    };
    let rows: Vec<Pid> = diesel::sql_query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY pid",
    )
    .load(probe)
    .await
    .unwrap();
    rows.into_iter().map(|row| row.pid).collect()
}
