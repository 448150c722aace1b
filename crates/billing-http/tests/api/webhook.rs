//! `POST /webhooks/stripe`.

use billing_ports::{BillingStore, EventStatus};
use billing_store_diesel::DieselStore;
use serde_json::json;

use crate::helpers::{SECRET, spawn_app, spawn_with, subscription_event};

#[actix_web::test]
async fn a_verified_event_is_applied_once_and_redeliveries_are_duplicates() {
    let app = spawn_app().await;
    let event = subscription_event(
        "evt_w1",
        "customer.subscription.created",
        "u_w1",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    let (status, body) = app.webhook(&event).await;
    assert_eq!((status, body), (200, json!({"received": true})));
    let (status, body) = app.webhook(&event).await;
    assert_eq!(
        (status, body),
        (200, json!({"received": true, "duplicate": true}))
    );
    let (_, entitlements) = app.get("/v1/users/u_w1/entitlements").await;
    assert_eq!(entitlements["tier"], "PRO");
}

#[actix_web::test]
async fn signatures_are_checked_before_anything_is_parsed() {
    let app = spawn_app().await;
    let event = subscription_event(
        "evt_w2",
        "customer.subscription.created",
        "u_w2",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    let bytes = serde_json::to_vec(&event).unwrap();
    let (status, body) = app.raw_webhook(bytes.clone(), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("missing_signature"))
    );
    let wrong =
        stripe_webhook_signature::sign(&bytes, "whsec_wrong", chrono::Utc::now().timestamp());
    let (status, body) = app.raw_webhook(bytes.clone(), Some(wrong)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("signature_mismatch"))
    );
    let stale =
        stripe_webhook_signature::sign(&bytes, SECRET, chrono::Utc::now().timestamp() - 3600);
    let (status, body) = app.raw_webhook(bytes.clone(), Some(stale)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("timestamp_outside_tolerance"))
    );
    let (status, body) = app.raw_webhook(bytes, Some("t=abc".into())).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("malformed_signature"))
    );
    // None of the refused deliveries reached the store.
    assert!(app.store.event("evt_w2").await.unwrap().is_none());
    // The old (rotated) secret is still accepted.
    let bytes = serde_json::to_vec(&event).unwrap();
    let rotated =
        stripe_webhook_signature::sign(&bytes, "whsec_old_rotated", chrono::Utc::now().timestamp());
    assert_eq!(app.raw_webhook(bytes, Some(rotated)).await.0, 200);
}

#[actix_web::test]
async fn oversized_unknown_and_unreadable_bodies() {
    let db = billing_store_diesel::testing::TestDatabase::postgres().await;
    let app = spawn_with(db.store().clone(), None, 2048).await;
    let big = json!({"id": "evt_big", "object": "event", "type": "x", "created": 1, "data": {"object": {"pad": "a".repeat(4096)}}});
    let (status, body) = app.webhook(&big).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("body_too_large"))
    );

    let unknown = json!({"id": "evt_unknown", "object": "event", "type": "radar.early_fraud_warning.created", "created": 1_700_000_000, "livemode": false, "data": {"object": {"id": "issfr_1"}}});
    assert_eq!(
        app.webhook(&unknown).await,
        (200, json!({"received": true, "ignored": true}))
    );

    // A known type whose object lacks a required field: stored as failed (nothing lost), 422.
    let mut broken = subscription_event(
        "evt_broken",
        "customer.subscription.updated",
        "u_b",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    broken["data"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("customer");
    let (status, body) = app.webhook(&broken).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("unprocessable_event"))
    );
    let stored = db.store().event("evt_broken").await.unwrap().unwrap();
    assert_eq!(stored.status, EventStatus::Failed);
    assert!(stored.last_error.unwrap().contains("customer"));

    let (status, body) = app.webhook(&json!([1, 2])).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_payload"))
    );
}

#[actix_web::test]
async fn an_unreachable_database_answers_503_so_stripe_retries() {
    let store = DieselStore::connect("postgres://postgres@127.0.0.1:1/nowhere", 2).unwrap();
    let app = spawn_with(store, None, 1 << 20).await;
    let event = subscription_event(
        "evt_down",
        "customer.subscription.created",
        "u_d",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    let (status, body) = app.webhook(&event).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("database_unavailable"))
    );
    let (status, _) = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 503);
}

/// The stored body is the verified body, byte for byte. A body that is not UTF-8 is refused
/// before anything is stored (the Stripe SDKs verify a string), so the stored text never needs
/// a replacement character.
#[actix_web::test]
async fn the_body_is_stored_as_sent_and_one_not_utf8_is_refused_unstored() {
    let app = spawn_app().await;
    let sent = subscription_event(
        "evt_1QhT4wStoredAsSent",
        "customer.subscription.created",
        "u_1QhT4wStored",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    let (status, _) = app.webhook(&sent).await;
    assert_eq!(status, 200);
    let stored = app
        .store
        .event("evt_1QhT4wStoredAsSent")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.payload, serde_json::to_string(&sent).unwrap());

    let mangled_event = subscription_event(
        "evt_1QhT4wNotUtf8Kept",
        "customer.subscription.created",
        "u_1QhT4wNotUtf8",
        "active",
        "price_pro_monthly",
        1_700_000_001,
    );
    let text = serde_json::to_vec(&mangled_event).unwrap();
    let mut body = b"{\"x_note\":\"caf\xe9 \xff\",".to_vec();
    body.extend_from_slice(&text[1..]);
    let signature = stripe_webhook_signature::sign(&body, SECRET, chrono::Utc::now().timestamp());
    let (status, answer) = app.raw_webhook(body, Some(signature)).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("unverifiable_body"))
    );
    assert!(
        app.store
            .event("evt_1QhT4wNotUtf8Kept")
            .await
            .unwrap()
            .is_none()
    );
}
