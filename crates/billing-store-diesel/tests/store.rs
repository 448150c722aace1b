//! The adapter against real databases: every test runs on Postgres and on SQLite, each in its
//! own fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use billing_domain::{Currency, Money};
use billing_ports::{
    BillingStore, Claim, CreditEntry, CreditReason, DisputeStatus, EventStatus, NewEvent,
    PaymentRecord, PaymentStatus, StoreError, TxFuture,
};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, DieselStore};
use chrono::{TimeZone, Utc};

fn event(id: &str) -> NewEvent {
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
        .transaction(move |tx| -> TxFuture<'_, Claim, StoreError> {
            Box::pin(async move {
                let claim = tx.claim_event(&e).await?;
                if let (Claim::Claimed { .. }, Some(status)) = (claim, finish) {
                    tx.finish_event(&e.id, status, e.received_at).await?;
                }
                Ok(claim)
            })
        })
        .await
        .unwrap()
}

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(billing_store_diesel::Backend::Postgres).await }) +
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(billing_store_diesel::Backend::Sqlite).await }) +
        }
    };
}

on_both_backends!(
    migrations_are_applied_and_idempotent,
    a_processed_event_is_claimed_once,
    a_failed_event_is_claimed_again_with_its_attempts,
    recording_a_failure_never_downgrades_a_done_event,
    a_credit_source_key_exists_once,
    check_constraints_refuse_unknown_states,
    purge_deletes_only_old_done_events,
);

async fn migrations_are_applied_and_idempotent(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    assert!(db.store().migrations_applied().await.unwrap());
    db.store().run_migrations().await.unwrap();
    assert_eq!(db.store().backend(), backend);
}

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
        .record_failure(&e, "boom", e.received_at)
        .await
        .unwrap();
    db.store()
        .record_failure(&e, "boom again", e.received_at)
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
        .record_failure(&e, "late", e.received_at)
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
        .transaction(|tx| -> TxFuture<'_, (bool, bool, i64), StoreError> {
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
        .transaction(|tx| -> TxFuture<'_, (), StoreError> {
            Box::pin(async move {
                let payment = PaymentRecord {
                    payment_intent_id: "pi_1".to_owned(),
                    stripe_customer_id: None,
                    user_id: None,
                    amount: Money::new(-5, Currency::parse("usd").unwrap()),
                    status: PaymentStatus::Succeeded,
                    last_error: None,
                    amount_refunded: -1,
                    dispute_status: DisputeStatus::None,
                };
                tx.save_payment(&payment, Utc::now()).await
            })
        })
        .await;
    assert!(
        matches!(result, Err(StoreError::Query(_) | StoreError::Conflict(_))),
        "{result:?}"
    );
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
        .record_failure(&failed, "x", failed.received_at)
        .await
        .unwrap();
    let later = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    assert_eq!(db.store().purge_events(later, 2).await.unwrap(), 2);
    assert_eq!(db.store().purge_events(later, 10).await.unwrap(), 3);
    assert_eq!(db.store().purge_events(later, 10).await.unwrap(), 0);
    assert!(db.store().event("evt_failed").await.unwrap().is_some());
}
