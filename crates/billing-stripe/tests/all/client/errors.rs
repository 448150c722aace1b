//! Mapping Stripe's answers to `GatewayError`, never leaking the key.

use billing_ports::{GatewayError, StripeGateway};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::client::support::{SECRET, client, fake_stripe, received, stripe_error};

#[tokio::test]
async fn not_found_is_not_found() {
    let server = fake_stripe().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_missing"))
        .respond_with(stripe_error(
            404,
            "invalid_request_error",
            Some("resource_missing"),
            "No such subscription: 'sub_missing'",
        ))
        .expect(1)
        .mount(&server)
        .await;

    let error = client(&server)
        .fetch_subscription("sub_missing")
        .await
        .unwrap_err();
    match error {
        GatewayError::NotFound(message) => {
            assert!(message.contains("No such subscription"), "{message}");
            assert!(message.contains("resource_missing"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_request_is_rejected_with_stripes_message_and_param() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({ "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "customer",
            "message": "No such customer: 'cus_gone'",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        }})))
        .mount(&server)
        .await;

    let error = client(&server)
        .create_portal_session("cus_gone", "https://app.example/")
        .await
        .unwrap_err();
    match error {
        GatewayError::Rejected(message) => {
            assert!(message.contains("HTTP 400"), "{message}");
            assert!(message.contains("param customer"), "{message}");
            assert!(
                message.contains("No such customer: 'cus_gone'"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn reusing_a_key_with_other_parameters_is_rejected() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(stripe_error(
            400,
            "idempotency_error",
            None,
            "Keys for idempotent requests can only be used with the same parameters they were first used with.",
        ))
        .expect(1)
        .mount(&server)
        .await;

    let error = client(&server)
        .create_customer("user_1", Some("other@example.com"), "customer-user_1")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GatewayError::Rejected(m) if m.contains("idempotency_error")),
        "{error:?}"
    );
}

#[tokio::test]
async fn other_client_statuses_are_rejected() {
    for (status, kind) in [
        (401, "invalid_request_error"),
        (402, "card_error"),
        (403, "invalid_request_error"),
        (409, "invalid_request_error"),
    ] {
        let server = fake_stripe().await;
        Mock::given(method("POST"))
            .and(path("/v1/customers"))
            .respond_with(stripe_error(status, kind, None, "refused"))
            .expect(1)
            .mount(&server)
            .await;
        let error = client(&server)
            .create_customer("u", None, "k")
            .await
            .unwrap_err();
        assert!(
            matches!(&error, GatewayError::Rejected(m) if m.contains(&format!("HTTP {status}"))),
            "{status}: {error:?}"
        );
    }
}

#[tokio::test]
async fn an_authentication_error_never_carries_the_key() {
    let server = fake_stripe().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(stripe_error(
            401,
            "invalid_request_error",
            None,
            &format!("Invalid API Key provided: {SECRET}; also tried sk_live_abcdef"),
        ))
        .mount(&server)
        .await;

    let error = client(&server)
        .fetch_subscription("sub_1")
        .await
        .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(matches!(error, GatewayError::Rejected(_)));
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains("sk_live_abcdef"), "{shown}");
    assert!(shown.contains("Invalid API Key provided"), "{shown}");
}

#[tokio::test]
async fn an_error_status_without_a_stripe_error_body_is_unexpected() {
    let server = fake_stripe().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"))
        .expect(1)
        .mount(&server)
        .await;

    let error = client(&server)
        .fetch_subscription("sub_1")
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Unexpected(_)), "{error:?}");
}

#[tokio::test]
async fn a_success_that_is_not_json_is_unexpected() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_string("not json"))
        .mount(&server)
        .await;

    let error = client(&server)
        .create_customer("u", None, "k")
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Unexpected(_)), "{error:?}");
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn a_created_object_without_id_is_unexpected() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "object": "customer" })))
        .mount(&server)
        .await;

    let error = client(&server)
        .create_customer("u", None, "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GatewayError::Unexpected(m) if m.contains("`id`")),
        "{error:?}"
    );
}
