//! What `billingctl` reads and writes: the event listing and the stored API keys, on both
//! backends.

use billing_ports::{ApiKeyRecord, BillingStore, EventFilter, EventStatus, NewEvent};
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{Backend, on_both_backends};
use chrono::{DateTime, TimeZone, Utc};

use crate::store::event;

on_both_backends!(
    events_are_listed_newest_first_with_every_filter,
    api_keys_are_stored_once_by_name_and_revoked_once,
    pending_migrations_are_none_on_a_migrated_database,
);

fn at(second: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_000_000 + second, 0).unwrap()
}

fn received(id: &str, event_type: &str, second: i64) -> NewEvent {
    NewEvent {
        event_type: event_type.to_owned(),
        received_at: at(second),
        ..event(id)
    }
}

async fn events_are_listed_newest_first_with_every_filter(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store();
    for (id, event_type, second) in [
        ("evt_1QaOld", "invoice.paid", 10),
        ("evt_1QbMid", "customer.subscription.updated", 20),
        ("evt_1QcNew", "invoice.paid", 30),
    ] {
        let e = received(id, event_type, second);
        store
            .record_failure(&e, &crate::transient("boom"), e.received_at)
            .await
            .unwrap();
    }
    let filter = |status, event_type: Option<&str>, since, limit| EventFilter {
        status,
        event_type: event_type.map(str::to_owned),
        since,
        limit,
    };
    let ids = |events: Vec<billing_ports::EventSummary>| {
        events.into_iter().map(|e| e.id).collect::<Vec<_>>()
    };
    let all = store
        .list_events(&filter(None, None, None, 10))
        .await
        .unwrap();
    assert_eq!(all[0].status, EventStatus::Failed);
    assert_eq!(all[0].attempts, 1);
    assert_eq!(all[0].last_error.as_deref(), Some("boom"));
    assert_eq!(ids(all), ["evt_1QcNew", "evt_1QbMid", "evt_1QaOld"]);
    let listed = store
        .list_events(&filter(None, Some("invoice.paid"), None, 10))
        .await
        .unwrap();
    assert_eq!(ids(listed), ["evt_1QcNew", "evt_1QaOld"]);
    let listed = store
        .list_events(&filter(None, None, Some(at(20)), 10))
        .await
        .unwrap();
    assert_eq!(ids(listed), ["evt_1QcNew", "evt_1QbMid"]);
    let listed = store
        .list_events(&filter(None, None, None, 1))
        .await
        .unwrap();
    assert_eq!(ids(listed), ["evt_1QcNew"]);
    let processed = store
        .list_events(&filter(Some(EventStatus::Processed), None, None, 10))
        .await
        .unwrap();
    assert!(processed.is_empty());
}

async fn api_keys_are_stored_once_by_name_and_revoked_once(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store();
    let key = |name: &str, byte: u8| ApiKeyRecord {
        name: name.to_owned(),
        prefix: "bk_Ab3xQ9".to_owned(),
        hash: [byte; 32],
        created_at: at(0),
        revoked_at: None,
    };
    assert!(store.insert_api_key(&key("web", 1)).await.unwrap());
    assert!(store.insert_api_key(&key("jobs", 2)).await.unwrap());
    assert!(
        !store.insert_api_key(&key("web", 3)).await.unwrap(),
        "name taken"
    );
    assert_eq!(
        store.api_keys().await.unwrap(),
        [key("jobs", 2), key("web", 1)]
    );
    let mut live = store.live_api_key_hashes().await.unwrap();
    live.sort();
    assert_eq!(live, [[1; 32], [2; 32]]);

    let revoked = store.revoke_api_key("web", at(5)).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at(5)));
    let again = store.revoke_api_key("web", at(9)).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(at(5)), "the first revocation stays");
    assert_eq!(store.revoke_api_key("nobody", at(9)).await.unwrap(), None);
    assert_eq!(store.live_api_key_hashes().await.unwrap(), [[2; 32]]);
}

async fn pending_migrations_are_none_on_a_migrated_database(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    assert!(db.store().pending_migrations().await.unwrap().is_empty());
}
