//! The adapter against real databases: every test runs on Postgres and on SQLite, each in its
//! own fresh database. Usage has its own module (`usage`).

use billing_domain::{Currency, Money};
use billing_ports::{
    BillingStore, Claim, CreditEntry, CreditReason, DisputeStatus, EventStatus, NewEvent,
    PaymentRecord, PaymentStatus, StoreError, StripeRequest, StripeRequestStatus, TxFuture,
};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, DieselStore, on_both_backends};
use chrono::{TimeZone, Utc};

/// An `invoice.paid` event with id `id`.
pub(crate) fn event(id: &str) -> NewEvent {
    NewEvent {
        id: id.to_owned(),
        event_type: "invoice.paid".to_owned(),
        api_version: Some("2025-03-31.basil".to_owned()),
        livemode: false,
        created: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        payload: "{}".to_owned(),
        received_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 1).unwrap(),
    }
}

async fn claim(store: &DieselStore, e: NewEvent, finish: Option<EventStatus>) -> Claim {
    store
        .transaction(move |tx| -> TxFuture<'_, '_, Claim, StoreError> {
            Box::pin(async move {
                let claimed = finish.unwrap_or(EventStatus::Processed);
                let claim = tx.claim_event(&e, claimed, e.received_at).await?;
                if let (Claim::Claimed { .. }, Some(status)) = (claim, finish) {
                    tx.finish_event(&e.id, status, e.received_at).await?;
                }
                Ok(claim)
            })
        })
        .await
        .unwrap()
}

on_both_backends!(
    a_processed_event_is_claimed_once,
    a_failed_event_is_claimed_again_with_its_attempts,
    recording_a_failure_never_downgrades_a_done_event,
    a_credit_source_key_exists_once,
    check_constraints_refuse_unknown_states,
    purge_deletes_only_old_done_events,
    a_stripe_request_is_begun_once_and_keeps_its_first_fingerprint,
    a_finished_stripe_request_is_returned_by_the_next_begin,
    a_stripe_request_succeeds_exactly_when_it_has_a_stripe_id,
);

async fn a_processed_event_is_claimed_once(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let first = claim(db.store(), event("evt_1"), Some(EventStatus::Processed)).await;
    assert_eq!(first, Claim::Claimed { attempts: 0 });
    let again = claim(db.store(), event("evt_1"), Some(EventStatus::Processed)).await;
    assert_eq!(again, Claim::AlreadyDone(EventStatus::Processed));
    let stored = db.store().event("evt_1").await.unwrap().unwrap();
    assert_eq!(stored.status, EventStatus::Processed);
    assert!(stored.processed_at.is_some());
}

async fn a_failed_event_is_claimed_again_with_its_attempts(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let e = event("evt_2");
    db.store()
        .record_failure(&e, &crate::transient("boom"), e.received_at)
        .await
        .unwrap();
    db.store()
        .record_failure(&e, &crate::transient("boom again"), e.received_at)
        .await
        .unwrap();
    let stored = db.store().event("evt_2").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.attempts), (EventStatus::Failed, 2));
    assert_eq!(stored.last_error.as_deref(), Some("boom again"));
    let retry = claim(db.store(), e, Some(EventStatus::Processed)).await;
    assert_eq!(retry, Claim::Claimed { attempts: 2 });
    let stored = db.store().event("evt_2").await.unwrap().unwrap();
    assert_eq!(stored.status, EventStatus::Processed);
    assert_eq!(stored.last_error, None);
}

async fn recording_a_failure_never_downgrades_a_done_event(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let e = event("evt_3");
    claim(db.store(), e.clone(), Some(EventStatus::Processed)).await;
    db.store()
        .record_failure(&e, &crate::transient("late"), e.received_at)
        .await
        .unwrap();
    let stored = db.store().event("evt_3").await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.attempts),
        (EventStatus::Processed, 0)
    );
}

async fn a_credit_source_key_exists_once(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let added = db
        .store()
        .transaction(|tx| -> TxFuture<'_, '_, (bool, bool, i64), StoreError> {
            Box::pin(async move {
                let entry = CreditEntry {
                    user_id: Some("user_1".to_owned()),
                    stripe_customer_id: None,
                    amount: 1000,
                    reason: CreditReason::SubscriptionPeriod,
                    source_key: "invoice:in_1".to_owned(),
                    created_at: Utc::now(),
                };
                let first = tx.add_credit(&entry).await?;
                let second = tx.add_credit(&entry).await?;
                Ok((first, second, tx.credit_balance("user_1").await?))
            })
        })
        .await
        .unwrap();
    assert_eq!(added, (true, false, 1000));
}

async fn check_constraints_refuse_unknown_states(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    // An order refunded beyond its amount, or a payment in a state we never write, is refused
    // by the database itself, whatever the application does.
    let result = db
        .store()
        .transaction(|tx| -> TxFuture<'_, '_, (), StoreError> {
            Box::pin(async move {
                let payment = PaymentRecord {
                    key: "pi_1".to_owned(),
                    payment_intent_id: Some("pi_1".to_owned()),
                    charge_id: None,
                    stripe_customer_id: None,
                    user_id: None,
                    amount: Money::new(-5, Currency::parse("usd").unwrap()),
                    status: PaymentStatus::Succeeded,
                    status_at: None,
                    last_error: None,
                    amount_refunded: -1,
                    dispute_status: DisputeStatus::None,
                    dispute_stripe_status: None,
                };
                tx.save_payment(&payment, Utc::now()).await
            })
        })
        .await;
    assert!(matches!(result, Err(StoreError::Refused(_))), "{result:?}");
}

async fn purge_deletes_only_old_done_events(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    for i in 0..5 {
        claim(
            db.store(),
            event(&format!("evt_done_{i}")),
            Some(EventStatus::Processed),
        )
        .await;
    }
    let failed = event("evt_failed");
    db.store()
        .record_failure(&failed, &crate::transient("x"), failed.received_at)
        .await
        .unwrap();
    let later = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    assert_eq!(db.store().purge_events(later, 2).await.unwrap(), 2);
    assert_eq!(db.store().purge_events(later, 10).await.unwrap(), 3);
    assert_eq!(db.store().purge_events(later, 10).await.unwrap(), 0);
    assert!(db.store().event("evt_failed").await.unwrap().is_some());
}

fn request(stable_id: &str, key: &str, fingerprint: &str) -> StripeRequest {
    StripeRequest {
        operation: "checkout.create".to_owned(),
        stable_id: stable_id.to_owned(),
        idempotency_key: key.to_owned(),
        fingerprint: fingerprint.to_owned(),
        status: StripeRequestStatus::Pending,
        stripe_id: None,
        response: None,
        last_error: None,
    }
}

async fn begin(store: &DieselStore, r: &StripeRequest) -> Result<StripeRequest, StoreError> {
    let r = r.clone();
    store
        .transaction(move |tx| -> TxFuture<'_, '_, StripeRequest, StoreError> {
            Box::pin(async move { tx.begin_stripe_request(&r, Utc::now()).await })
        })
        .await
}

async fn finish(store: &DieselStore, r: &StripeRequest) -> Result<(), StoreError> {
    let r = r.clone();
    store
        .transaction(move |tx| -> TxFuture<'_, '_, (), StoreError> {
            Box::pin(async move { tx.finish_stripe_request(&r, Utc::now()).await })
        })
        .await
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Counts the rows of `table` through a connection of its own (outside the store).
pub(crate) async fn count_rows(db: &TestDatabase, table: &str) -> i64 {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let query = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"));
    let rows: Vec<Count> = match db.store().backend() {
        Backend::Postgres => {
            let mut conn = diesel_async::AsyncPgConnection::establish(db.url())
                .await
                .unwrap();
            query.load(&mut conn).await.unwrap()
        }
        Backend::Sqlite => {
            let path = db.url().strip_prefix("sqlite://").unwrap();
            let mut conn = diesel_async::sync_connection_wrapper::SyncConnectionWrapper::<
                diesel::SqliteConnection,
            >::establish(path)
            .await
            .unwrap();
            query.load(&mut conn).await.unwrap()
        }
    };
    rows[0].n
}

async fn a_stripe_request_is_begun_once_and_keeps_its_first_fingerprint(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store();
    let first = request("user_1", "key-1", "fp-a");
    assert_eq!(begin(store, &first).await.unwrap(), first);
    // The same operation and stable id with other parameters (and another key) gets the
    // first row back, so the caller sees the fingerprint differs; no second row is written.
    let second = request("user_1", "key-2", "fp-b");
    assert_eq!(begin(store, &second).await.unwrap(), first);
    assert_eq!(begin(store, &first).await.unwrap(), first);
    assert_eq!(count_rows(&db, "stripe_requests").await, 1);
    // Another operation on the same stable id is its own request.
    let portal = StripeRequest {
        operation: "portal.create".to_owned(),
        ..request("user_1", "key-3", "fp-a")
    };
    assert_eq!(begin(store, &portal).await.unwrap(), portal);
    // An idempotency key already used by another request is refused.
    let reused = begin(store, &request("user_2", "key-1", "fp-c")).await;
    assert!(matches!(reused, Err(StoreError::Conflict(_))), "{reused:?}");
    assert_eq!(count_rows(&db, "stripe_requests").await, 2);
}

async fn a_finished_stripe_request_is_returned_by_the_next_begin(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store();
    let pending = request("user_1", "key-1", "fp-a");
    begin(store, &pending).await.unwrap();

    let failed = StripeRequest {
        status: StripeRequestStatus::Failed,
        last_error: Some("stripe unavailable".to_owned()),
        ..pending.clone()
    };
    finish(store, &failed).await.unwrap();
    assert_eq!(begin(store, &pending).await.unwrap(), failed);

    let succeeded = StripeRequest {
        status: StripeRequestStatus::Succeeded,
        stripe_id: Some("cs_test_1".to_owned()),
        response: Some("https://checkout.stripe.com/c/pay/cs_test_1".to_owned()),
        last_error: None,
        ..pending.clone()
    };
    finish(store, &succeeded).await.unwrap();
    let replayed = begin(store, &pending).await.unwrap();
    assert_eq!(replayed, succeeded);
    assert_eq!(count_rows(&db, "stripe_requests").await, 1);

    // Finishing a request that was never begun is an error, not a silent no-op.
    let unknown = finish(store, &request("user_9", "key-9", "fp-z")).await;
    assert!(matches!(unknown, Err(StoreError::Query(_))), "{unknown:?}");
}

async fn a_stripe_request_succeeds_exactly_when_it_has_a_stripe_id(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store();
    let pending = request("user_1", "key-1", "fp-a");
    begin(store, &pending).await.unwrap();

    let succeeded_without_id = StripeRequest {
        status: StripeRequestStatus::Succeeded,
        ..pending.clone()
    };
    let result = finish(store, &succeeded_without_id).await;
    assert!(matches!(result, Err(StoreError::Refused(_))), "{result:?}");
    let failed_with_id = StripeRequest {
        status: StripeRequestStatus::Failed,
        stripe_id: Some("cs_test_1".to_owned()),
        ..pending.clone()
    };
    let result = finish(store, &failed_with_id).await;
    assert!(matches!(result, Err(StoreError::Refused(_))), "{result:?}");
    // The refused updates changed nothing.
    assert_eq!(begin(store, &pending).await.unwrap(), pending);

    // Nor can a request be recorded as succeeded without its Stripe id in the first place.
    let result = begin(store, &request("user_2", "key-2", "fp-b")).await;
    assert!(result.is_ok(), "{result:?}");
    let begun_succeeded = StripeRequest {
        status: StripeRequestStatus::Succeeded,
        ..request("user_3", "key-3", "fp-c")
    };
    let result = begin(store, &begun_succeeded).await;
    assert!(matches!(result, Err(StoreError::Refused(_))), "{result:?}");
    assert_eq!(count_rows(&db, "stripe_requests").await, 2);
}
