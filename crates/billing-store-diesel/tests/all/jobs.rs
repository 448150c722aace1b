//! What the sweeper and the job runner rely on: a failure's kind and next attempt, the due
//! failures, pages of failed events, and job leases that one holder at a time gets.

use billing_ports::{
    Backoff, BillingStore, EventStatus, Failure, FailureKind, LeaseStore, RetryStore,
};
use billing_store_diesel::{DieselStore, on_both_backends};
use chrono::{DateTime, TimeDelta, Utc};

use crate::store::event;

const BACKOFF: Backoff = Backoff {
    base: TimeDelta::seconds(10),
    cap: TimeDelta::seconds(35),
};

fn failure(kind: FailureKind) -> Failure<'static> {
    Failure {
        error: "database unavailable: connection refused",
        kind,
        backoff: BACKOFF,
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    event("evt_x").received_at + TimeDelta::seconds(seconds)
}

on_both_backends!(
    a_transient_failure_is_due_after_its_backoff,
    a_permanent_failure_has_no_next_attempt,
    a_claim_clears_the_failure,
    failed_events_are_paged_by_id_and_since,
    a_lease_is_held_by_one_holder_until_released_or_expired,
    racing_holders_take_a_lease_once,
);

async fn a_transient_failure_is_due_after_its_backoff(store: DieselStore) {
    let e = event("evt_1QfZ9aTransientFailure01");
    store
        .record_failure(&e, &failure(FailureKind::Transient), at(0))
        .await
        .unwrap();
    let stored = store.event(&e.id).await.unwrap().unwrap();
    assert_eq!(stored.failure_kind, Some(FailureKind::Transient));
    assert_eq!(stored.next_attempt_at, Some(at(10)));
    assert!(store.due_retries(at(9), 5, 10).await.unwrap().is_empty());
    assert_eq!(
        store.due_retries(at(10), 5, 10).await.unwrap(),
        std::slice::from_ref(&e.id)
    );

    // Attempts 2, 3, 4: 20 s, then the 35 s cap.
    for (failed_at, delay) in [(10, 20), (30, 35), (65, 35)] {
        store
            .record_failure(&e, &failure(FailureKind::Transient), at(failed_at))
            .await
            .unwrap();
        let stored = store.event(&e.id).await.unwrap().unwrap();
        assert_eq!(stored.next_attempt_at, Some(at(failed_at + delay)));
    }
    assert_eq!(store.event(&e.id).await.unwrap().unwrap().attempts, 4);
    assert_eq!(
        store.due_retries(at(100), 5, 10).await.unwrap(),
        std::slice::from_ref(&e.id)
    );
    assert!(
        store.due_retries(at(100), 4, 10).await.unwrap().is_empty(),
        "given up after max attempts"
    );
}

async fn a_permanent_failure_has_no_next_attempt(store: DieselStore) {
    let e = event("evt_1QfZ9aPermanentFailure1");
    store
        .record_failure(&e, &failure(FailureKind::Permanent), at(0))
        .await
        .unwrap();
    let stored = store.event(&e.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.failure_kind, stored.next_attempt_at),
        (EventStatus::Failed, Some(FailureKind::Permanent), None)
    );
    assert!(
        store
            .due_retries(at(100_000), 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.failed_events(None, None, 10).await.unwrap(),
        std::slice::from_ref(&e.id)
    );
}

async fn a_claim_clears_the_failure(store: DieselStore) {
    let e = event("evt_1QfZ9aClaimedAfterFail");
    store
        .record_failure(&e, &failure(FailureKind::Transient), at(0))
        .await
        .unwrap();
    store
        .transaction(
            |tx| -> billing_ports::TxFuture<'_, '_, _, billing_ports::StoreError> {
                let e = e.clone();
                Box::pin(async move { tx.claim_event(&e, EventStatus::Processed, at(20)).await })
            },
        )
        .await
        .unwrap();
    let stored = store.event(&e.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.failure_kind, stored.next_attempt_at),
        (EventStatus::Processed, None, None)
    );
    assert!(store.due_retries(at(100), 5, 10).await.unwrap().is_empty());
}

async fn failed_events_are_paged_by_id_and_since(store: DieselStore) {
    let ids = [
        "evt_1QfZ9aPagedA0000000001",
        "evt_1QfZ9aPagedB0000000002",
        "evt_1QfZ9aPagedC0000000003",
    ];
    for (i, id) in ids.iter().enumerate() {
        store
            .record_failure(&event(id), &failure(FailureKind::Transient), at(i as i64))
            .await
            .unwrap();
    }
    let first = store.failed_events(None, None, 2).await.unwrap();
    assert_eq!(first, ids[..2]);
    let rest = store.failed_events(None, Some(ids[1]), 2).await.unwrap();
    assert_eq!(rest, ids[2..]);
    let recent = store.failed_events(Some(at(1)), None, 10).await.unwrap();
    assert_eq!(recent, ids[1..]);
}

async fn a_lease_is_held_by_one_holder_until_released_or_expired(store: DieselStore) {
    let ttl = TimeDelta::seconds(30);
    let (a, b) = ("replica-a-5f2c", "replica-b-91d0");
    assert!(store.take_lease("retention", a, at(0), ttl).await.unwrap());
    assert!(!store.take_lease("retention", b, at(1), ttl).await.unwrap());
    assert!(!store.renew_lease("retention", b, at(1), ttl).await.unwrap());
    assert!(
        store
            .renew_lease("retention", a, at(20), ttl)
            .await
            .unwrap()
    );
    assert!(
        !store.take_lease("retention", b, at(31), ttl).await.unwrap(),
        "renewed until 50"
    );
    assert!(
        !store
            .release_lease("retention", b, at(32), at(90))
            .await
            .unwrap()
    );
    assert!(
        store
            .release_lease("retention", a, at(32), at(90))
            .await
            .unwrap()
    );
    assert!(
        !store.take_lease("retention", b, at(60), ttl).await.unwrap(),
        "released, next run not due"
    );
    assert!(store.take_lease("retention", b, at(90), ttl).await.unwrap());
    // b dies holding it: the lease expires and a takes the run over.
    assert!(
        !store
            .take_lease("retention", a, at(119), ttl)
            .await
            .unwrap()
    );
    assert!(
        store
            .take_lease("retention", a, at(120), ttl)
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_lease("retention", b, at(121), ttl)
            .await
            .unwrap(),
        "b lost it"
    );
    let lease = store.lease("retention").await.unwrap().unwrap();
    assert_eq!(
        (
            lease.holder.as_str(),
            lease.runs,
            lease.expires_at,
            lease.next_run_at
        ),
        (a, 3, at(150), at(90))
    );
    assert!(store.lease("sweeper").await.unwrap().is_none());
}

async fn racing_holders_take_a_lease_once(store: DieselStore) {
    let ttl = TimeDelta::seconds(30);
    let takes = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let holder = format!("replica-{i}-{:04x}", 0x3a7 * (i + 1));
            store
                .take_lease("sweeper", &holder, at(0), ttl)
                .await
                .unwrap()
        })
    });
    let mut taken = 0;
    for take in takes {
        taken += usize::from(take.await.unwrap());
    }
    assert_eq!(taken, 1);
    assert_eq!(store.lease("sweeper").await.unwrap().unwrap().runs, 1);
}
