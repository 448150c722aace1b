//! The server's push of the change feed (PUSH_URLS): a webhook's committed changes reach the
//! product's URL as Standard Webhooks messages, verified here by an independent
//! implementation, while the webhook was answered without waiting for the product.

use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_api::PushMessage;
use billing_ports::PushStore;
use billing_push::{PushConfig, PushEndpoint, PushSecret, PushSettings, Signer};
use billing_store_diesel::testing::TestDatabase;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Limits, fake_gateway, settings, spawn_server, subscription_event};

const SECRET: &str = "whsec_q3Tn8VbLx2ZmR7kPw4JcY9sHd6FgA1eU";

fn verified(request: &wiremock::Request) -> PushMessage {
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let value = request.headers.get(name).unwrap().to_str().unwrap();
        headers.insert(name, http::HeaderValue::from_str(value).unwrap());
    }
    standardwebhooks::Webhook::new(SECRET)
        .unwrap()
        .verify(&request.body, &headers)
        .unwrap();
    serde_json::from_slice(&request.body).unwrap()
}

#[actix_web::test]
async fn a_webhooks_changes_are_pushed_signed_while_the_webhook_did_not_wait() {
    let receiver = MockServer::start().await;
    // A slow product: each answer takes 1.5 s.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1_500)))
        .mount(&receiver)
        .await;
    let db = TestDatabase::postgres().await;
    let store = db.store().clone();
    let endpoint = PushEndpoint::parse(&format!("{}/hooks/billing", receiver.uri())).unwrap();
    // Registered before the first commit (the server registers it too, idempotently, when
    // its push starts; a new endpoint starts after the records already committed).
    store
        .register_push_endpoint(endpoint.id(), endpoint.display(), chrono::Utc::now())
        .await
        .unwrap();
    let server_settings = billing_http::Settings {
        push: Some(PushConfig {
            endpoints: vec![endpoint],
            signer: Signer::new(vec![PushSecret::parse(SECRET).unwrap()]).unwrap(),
            settings: PushSettings {
                poll: Duration::from_millis(100),
                ..PushSettings::default()
            },
        }),
        ..settings(Limits::default())
    };
    let stripe = fake_gateway();
    let app = spawn_server(
        server_settings,
        store.clone(),
        Some(db),
        Arc::new(stripe.clone()),
        stripe,
    )
    .await;

    let event = subscription_event(
        "evt_1QpushE2eKq7Lm3Zx9Vb",
        "customer.subscription.created",
        "u_push_7fk2",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    let answered = Instant::now();
    assert_eq!(app.webhook(&event).await.0, 200);
    assert!(
        answered.elapsed() < Duration::from_millis(1_500),
        "the webhook is answered before the product answers the push"
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut received = Vec::new();
    while received.len() < 2 && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        received = receiver.received_requests().await.unwrap();
    }
    let mut messages: Vec<PushMessage> = received.iter().map(verified).collect();
    messages.sort_by_key(|m| m.data.cursor.parse::<i64>().unwrap());
    let types: Vec<&str> = messages.iter().map(|m| m.event_type.as_str()).collect();
    assert_eq!(types, ["billing.tier_changed", "billing.status_changed"]);
    for message in &messages {
        assert_eq!(message.data.user_id.as_deref(), Some("u_push_7fk2"));
        assert_eq!(
            message.data.stripe_event_id.as_deref(),
            Some("evt_1QpushE2eKq7Lm3Zx9Vb")
        );
    }
    assert_eq!(messages[0].data.before.tier, "FREE");
    assert_eq!(messages[0].data.after.tier, "PRO");

    // The same records the pull feed serves.
    let (status, page) = app.get("/v1/changes").await;
    assert_eq!(status, 200);
    let pulled: Vec<String> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let pushed: Vec<String> = messages.iter().map(|m| m.data.id.clone()).collect();
    assert_eq!(pushed, pulled);
}
