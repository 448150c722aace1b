//! The usage consume against real databases: the limit, idempotency keys, the BIGINT range,
//! periods, and what concurrent consumes of one user may and may not do.

use std::collections::HashSet;

use billing_ports::{BillingStore, StoreError, TxFuture, UsageConsumed, UsageRecord, UsageRequest};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, DieselStore, on_both_backends};
use chrono::{DateTime, TimeZone, Utc};
use tokio::task::JoinSet;

use crate::store::count_rows;

on_both_backends!(
    usage_counters_add_up_allowed_requests_per_user_metric_and_period,
    a_key_is_recorded_once_per_user_and_replays_its_first_answer,
    a_denied_request_is_recorded_and_replayed_as_denied,
    usage_beyond_the_database_range_is_refused_without_panicking,
    concurrent_consumes_of_one_user_never_pass_the_limit,
    concurrent_requests_with_one_key_count_once,
    a_new_period_starts_from_zero,
);

fn period(month: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0).unwrap()
}

fn request(user: &str, metric: &str, month: u32, quantity: u64, key: &str) -> UsageRequest {
    UsageRequest {
        user_id: user.to_owned(),
        metric: metric.to_owned(),
        period_start: period(month),
        quantity,
        idempotency_key: key.to_owned(),
        limit: Some(100),
        recorded_at: Utc.with_ymd_and_hms(2026, month, 2, 3, 4, 5).unwrap(),
    }
}

/// The record a first request of `r` gets when it is decided with `allowed` and `used_after`.
fn record(r: &UsageRequest, allowed: bool, used_after: u64) -> UsageRecord {
    UsageRecord {
        user_id: r.user_id.clone(),
        metric: r.metric.clone(),
        period_start: r.period_start,
        quantity: r.quantity,
        idempotency_key: r.idempotency_key.clone(),
        allowed,
        used_after,
        limit: r.limit,
        recorded_at: r.recorded_at,
    }
}

async fn consume(store: &DieselStore, r: &UsageRequest) -> UsageConsumed {
    store.consume_usage(r).await.unwrap()
}

async fn used(store: &DieselStore, user: &str, metric: &str, month: u32) -> u64 {
    let (user, metric) = (user.to_owned(), metric.to_owned());
    store
        .read(move |tx| -> TxFuture<'_, '_, u64, StoreError> {
            Box::pin(async move { tx.usage_used(&user, &metric, period(month)).await })
        })
        .await
        .unwrap()
}

async fn usage_counters_add_up_allowed_requests_per_user_metric_and_period(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store();
    let first = request("u1", "api_calls", 1, 3, "k1");
    assert_eq!(
        consume(store, &first).await,
        UsageConsumed::Recorded(record(&first, true, 3))
    );
    let second = request("u1", "api_calls", 1, 4, "k2");
    assert_eq!(
        consume(store, &second).await,
        UsageConsumed::Recorded(record(&second, true, 7))
    );
    let unlimited = UsageRequest {
        limit: None,
        ..request("u1", "api_calls", 1, 1000, "k3")
    };
    assert_eq!(
        consume(store, &unlimited).await,
        UsageConsumed::Recorded(record(&unlimited, true, 1007))
    );
    for r in [
        request("u1", "api_calls", 2, 5, "k4"),
        request("u1", "exports", 1, 2, "k5"),
        request("u2", "api_calls", 1, 9, "k1"),
    ] {
        assert!(matches!(consume(store, &r).await, UsageConsumed::Recorded(rec) if rec.allowed));
    }
    // A quantity of 0 asks without counting.
    let query = UsageRequest {
        limit: None,
        ..request("u1", "api_calls", 1, 0, "k6")
    };
    assert_eq!(
        consume(store, &query).await,
        UsageConsumed::Recorded(record(&query, true, 1007))
    );

    assert_eq!(used(store, "u1", "api_calls", 1).await, 1007);
    assert_eq!(used(store, "u1", "api_calls", 2).await, 5);
    assert_eq!(used(store, "u1", "exports", 1).await, 2);
    assert_eq!(used(store, "u2", "api_calls", 1).await, 9);
    assert_eq!(used(store, "u1", "exports", 2).await, 0);
    assert_eq!(used(store, "nobody", "api_calls", 1).await, 0);
    assert_eq!(count_rows(&db, "usage").await, 7);
    assert_eq!(count_rows(&db, "usage_counters").await, 4);
}

async fn a_key_is_recorded_once_per_user_and_replays_its_first_answer(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store();
    let first = request("u1", "api_calls", 1, 3, "same");
    let answer = record(&first, true, 3);
    assert_eq!(
        consume(store, &first).await,
        UsageConsumed::Recorded(answer.clone())
    );
    // The same key again, even for another metric or quantity, or later with another limit,
    // gets the first record back and counts nothing.
    for again in [
        first.clone(),
        request("u1", "exports", 1, 4, "same"),
        UsageRequest {
            limit: Some(1),
            recorded_at: Utc.with_ymd_and_hms(2026, 1, 9, 0, 0, 0).unwrap(),
            ..first.clone()
        },
    ] {
        assert_eq!(
            consume(store, &again).await,
            UsageConsumed::Replayed(answer.clone())
        );
    }
    assert_eq!(used(store, "u1", "api_calls", 1).await, 3);
    assert_eq!(used(store, "u1", "exports", 1).await, 0);
    // The key is per user.
    let other_user = request("u2", "api_calls", 1, 6, "same");
    assert_eq!(
        consume(store, &other_user).await,
        UsageConsumed::Recorded(record(&other_user, true, 6))
    );
    assert_eq!(count_rows(&db, "usage").await, 2);
}

async fn a_denied_request_is_recorded_and_replayed_as_denied(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store();
    consume(store, &request("u1", "api_calls", 1, 95, "k1")).await;
    let over = request("u1", "api_calls", 1, 6, "k2");
    // Denied against the usage it was checked against, before it.
    let denied = record(&over, false, 95);
    assert_eq!(
        consume(store, &over).await,
        UsageConsumed::Recorded(denied.clone())
    );
    // Room appears (a larger limit), but the key keeps its first answer.
    let retried = UsageRequest {
        limit: Some(1000),
        ..over.clone()
    };
    assert_eq!(
        consume(store, &retried).await,
        UsageConsumed::Replayed(denied)
    );
    // What fits exactly is allowed; past a limit already passed (a downgrade) even 0 is denied.
    let exact = request("u1", "api_calls", 1, 5, "k3");
    assert_eq!(
        consume(store, &exact).await,
        UsageConsumed::Recorded(record(&exact, true, 100))
    );
    let downgraded = UsageRequest {
        limit: Some(10),
        ..request("u1", "api_calls", 1, 0, "k4")
    };
    assert_eq!(
        consume(store, &downgraded).await,
        UsageConsumed::Recorded(record(&downgraded, false, 100))
    );
    assert_eq!(used(store, "u1", "api_calls", 1).await, 100);
    assert_eq!(count_rows(&db, "usage").await, 4);
}

async fn usage_beyond_the_database_range_is_refused_without_panicking(store: DieselStore) {
    let store = &store;
    let too_big = store
        .consume_usage(&request("u1", "api_calls", 1, u64::MAX, "k1"))
        .await;
    assert!(matches!(too_big, Err(StoreError::Query(_))), "{too_big:?}");
    let limit_too_big = UsageRequest {
        limit: Some(u64::MAX),
        ..request("u1", "api_calls", 1, 1, "k1")
    };
    let result = store.consume_usage(&limit_too_big).await;
    assert!(matches!(result, Err(StoreError::Query(_))), "{result:?}");

    let max = u64::try_from(i64::MAX).unwrap();
    let unlimited = |quantity, key| UsageRequest {
        limit: None,
        ..request("u1", "api_calls", 1, quantity, key)
    };
    assert!(matches!(
        consume(store, &unlimited(max, "k2")).await,
        UsageConsumed::Recorded(r) if r.allowed && r.used_after == max
    ));
    // The counter would pass BIGINT: refused, with nothing recorded or counted.
    assert_eq!(
        consume(store, &unlimited(1, "k3")).await,
        UsageConsumed::TooLarge { used: max }
    );
    assert_eq!(used(store, "u1", "api_calls", 1).await, max);
    // k3 was not recorded: the key is still free.
    assert!(matches!(
        consume(store, &unlimited(0, "k3")).await,
        UsageConsumed::Recorded(r) if r.allowed && r.used_after == max
    ));
}

async fn concurrent_consumes_of_one_user_never_pass_the_limit(store: DieselStore) {
    const LIMIT: u64 = 100;
    let mut consumes = JoinSet::new();
    for n in 0..64u64 {
        let store = store.clone();
        consumes.spawn(async move {
            let r = UsageRequest {
                limit: Some(LIMIT),
                ..request("hot", "api_calls", 1, 1 + n % 5, &format!("k{n}"))
            };
            (r.quantity, store.consume_usage(&r).await.unwrap())
        });
    }
    let mut allowed = 0;
    let mut totals = HashSet::new();
    while let Some(joined) = consumes.join_next().await {
        let (quantity, consumed) = joined.unwrap();
        let UsageConsumed::Recorded(record) = consumed else {
            panic!("a first request: {consumed:?}");
        };
        assert!(record.used_after <= LIMIT, "{record:?}");
        if record.allowed {
            allowed += quantity;
            // Every allowed request saw its own total: no two share one.
            assert!(totals.insert(record.used_after), "{record:?}");
        } else {
            assert!(record.used_after + quantity > LIMIT, "{record:?}");
        }
    }
    // 64 requests of 1 to 5 ask for 192: the limit is reached, never passed.
    assert!(allowed > LIMIT - 5, "{allowed}");
    assert!(allowed <= LIMIT, "{allowed}");
    assert_eq!(used(&store, "hot", "api_calls", 1).await, allowed);
}

async fn concurrent_requests_with_one_key_count_once(store: DieselStore) {
    let mut consumes = JoinSet::new();
    for _ in 0..32 {
        let store = store.clone();
        consumes.spawn(async move {
            store
                .consume_usage(&request("u1", "api_calls", 1, 7, "once"))
                .await
                .unwrap()
        });
    }
    let mut recorded = Vec::new();
    let mut replayed = Vec::new();
    while let Some(joined) = consumes.join_next().await {
        match joined.unwrap() {
            UsageConsumed::Recorded(r) => recorded.push(r),
            UsageConsumed::Replayed(r) => replayed.push(r),
            other => panic!("{other:?}"),
        }
    }
    let first = record(&request("u1", "api_calls", 1, 7, "once"), true, 7);
    assert_eq!(recorded, std::slice::from_ref(&first));
    assert_eq!(replayed, vec![first; 31]);
    assert_eq!(used(&store, "u1", "api_calls", 1).await, 7);
}

async fn a_new_period_starts_from_zero(store: DieselStore) {
    let full = request("u1", "api_calls", 1, 100, "january");
    assert!(matches!(consume(&store, &full).await, UsageConsumed::Recorded(r) if r.allowed));
    let denied = request("u1", "api_calls", 1, 1, "january-more");
    assert!(matches!(consume(&store, &denied).await, UsageConsumed::Recorded(r) if !r.allowed));
    let february = request("u1", "api_calls", 2, 30, "february");
    assert_eq!(
        consume(&store, &february).await,
        UsageConsumed::Recorded(record(&february, true, 30))
    );
    assert_eq!(used(&store, "u1", "api_calls", 1).await, 100);
    assert_eq!(used(&store, "u1", "api_calls", 2).await, 30);
}
