//! Bounded retries of safe calls only, against wiremock.

use std::time::Duration;

use billing_client::Error;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{client, random_id};

fn entitlements_json(user: &str) -> Value {
    json!({
        "user_id": user, "tier": "FREE", "reason": "no_subscription", "status": null,
        "subscription_id": null, "features": {"custom_domain": false},
        "limits": {"api_calls": 100}, "usage": {},
        "usage_period": {"start": "2026-12-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"},
        "credits": 0, "period_end": null, "grace_period_end": null, "trial_end": null,
        "cancel_at_period_end": false,
    })
}

fn unavailable() -> ResponseTemplate {
    ResponseTemplate::new(503).set_body_json(json!({
        "error": {"code": "database_unavailable", "message": "the database is unreachable; retry later"}
    }))
}

#[tokio::test]
async fn a_get_is_retried_after_a_503_and_answers_the_200() {
    let mock = MockServer::start().await;
    let user = random_id("user");
    let route = format!("/v1/users/{user}/entitlements");
    Mock::given(method("GET"))
        .and(path(route.as_str()))
        .respond_with(unavailable())
        .up_to_n_times(1)
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path(route.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(entitlements_json(&user)))
        .expect(1)
        .mount(&mock)
        .await;
    let billing = client(&mock.uri()).build().unwrap();
    let entitlements = billing.entitlements(&user).await.unwrap();
    assert_eq!(entitlements.tier, "FREE");
}

#[tokio::test]
async fn retries_are_bounded() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(unavailable())
        .expect(3)
        .mount(&mock)
        .await;
    let billing = client(&mock.uri()).retries(2).build().unwrap();
    let error = billing.catalog().await.unwrap_err();
    assert_eq!(
        error,
        Error::Unavailable {
            status: Some(503),
            message: "database_unavailable: the database is unreachable; retry later".into()
        }
    );
}

#[tokio::test]
async fn a_consume_is_retried_with_the_same_idempotency_key() {
    let mock = MockServer::start().await;
    let user = random_id("user");
    let route = format!("/v1/users/{user}/usage");
    Mock::given(method("POST"))
        .and(path(route.as_str()))
        .respond_with(unavailable())
        .up_to_n_times(2)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path(route.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "allowed": true, "used": 1, "limit": 100, "remaining": 99,
            "period_end": "2027-01-01T00:00:00Z", "replayed": true,
        })))
        .mount(&mock)
        .await;
    let billing = client(&mock.uri()).retries(3).build().unwrap();
    let key = random_id("usage");
    let counted = billing.consume(&user, "api_calls", 1, &key).await.unwrap();
    assert!(counted.replayed);
    let requests = mock.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            json!({"metric": "api_calls", "quantity": 1, "idempotency_key": key})
        );
    }
}

#[tokio::test]
async fn a_checkout_is_retried_with_the_same_idempotency_key_header() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(unavailable())
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_1", "url": "https://checkout.stripe.com/c/pay/cs_test_1", "replayed": false,
        })))
        .mount(&mock)
        .await;
    let billing = client(&mock.uri()).build().unwrap();
    let request = billing_client::CheckoutRequest {
        user_id: random_id("user"),
        email: None,
        mode: billing_client::Mode::Subscription,
        price_id: None,
        tier: Some("PRO".into()),
        success_url: "https://product.example/ok".into(),
        cancel_url: "https://product.example/no".into(),
        trial_days: None,
    };
    let key = random_id("checkout");
    billing.checkout(&request, &key).await.unwrap();
    let requests = mock.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.headers["idempotency-key"], key.as_str());
    }
}

#[tokio::test]
async fn a_4xx_and_a_portal_session_are_never_retried() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/portal/sessions"))
        .respond_with(unavailable())
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"code": "invalid_user_id", "message": "user id has a control character"}
        })))
        .expect(1)
        .mount(&mock)
        .await;
    let billing = client(&mock.uri()).retries(5).build().unwrap();
    let error = billing.entitlements("someone").await.unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
    let error = billing
        .portal(&billing_client::PortalRequest {
            user_id: "someone".into(),
            return_url: "https://product.example/".into(),
        })
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
}

#[tokio::test]
async fn a_timeout_is_unavailable_after_its_retries() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(entitlements_json("slow"))
                .set_delay(Duration::from_millis(500)),
        )
        .expect(2)
        .mount(&mock)
        .await;
    let billing = client(&mock.uri())
        .timeout(Duration::from_millis(100))
        .retries(1)
        .build()
        .unwrap();
    let error = billing.entitlements("slow").await.unwrap_err();
    let Error::Unavailable { status, message } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*status, None);
    assert!(message.starts_with("timed out"), "{message}");
}
