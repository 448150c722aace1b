//! Mapping Stripe's answers to `GatewayError`, never leaking the key.

use std::error::Error as _;

use billing_ports::{Cause, ErrorChain, GatewayError, StripeGateway};
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
    let message = ErrorChain(&error).to_string();
    match error {
        GatewayError::NotFound(_) => {
            assert!(message.contains("No such subscription"), "{message}");
            assert!(message.contains("resource_missing"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_http_answer_is_the_cause() {
    let server = fake_stripe().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_missing"))
        .respond_with(stripe_error(
            404,
            "invalid_request_error",
            Some("resource_missing"),
            "No such subscription: 'sub_missing'",
        ))
        .mount(&server)
        .await;

    let error = client(&server)
        .fetch_subscription("sub_missing")
        .await
        .unwrap_err();
    // The kind is the error's own message; what Stripe answered is its source, said once.
    assert_eq!(error.to_string(), "not found at stripe");
    let cause = error.source().and_then(|s| s.downcast_ref::<Cause>());
    assert_eq!(
        cause.map(ToString::to_string).as_deref(),
        Some(
            "fetch subscription: HTTP 404 invalid_request_error (resource_missing): \
             No such subscription: 'sub_missing'"
        ),
        "{error:?}"
    );
    assert_eq!(
        ErrorChain(&error).to_string(),
        "not found at stripe: fetch subscription: HTTP 404 invalid_request_error \
         (resource_missing): No such subscription: 'sub_missing'"
    );
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
    let message = ErrorChain(&error).to_string();
    match error {
        GatewayError::Rejected(_) => {
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
        matches!(&error, GatewayError::Rejected(m) if m.to_string().contains("idempotency_error")),
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
            matches!(&error, GatewayError::Rejected(m) if m.to_string().contains(&format!("HTTP {status}"))),
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
    let shown = format!("{} {error:?}", ErrorChain(&error));
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
    // async-stripe's report of the parse failure is kept under the call's name.
    let text = error.source().map(ToString::to_string).unwrap_or_default();
    assert_eq!(text, "create customer: unreadable Stripe response");
    let parser = error.source().and_then(|s| s.source());
    assert!(
        parser.is_some_and(|p| !p.to_string().is_empty()),
        "{}",
        ErrorChain(&error)
    );
}

#[tokio::test]
async fn an_answer_too_deeply_nested_keeps_the_json_parsers_error() {
    let server = fake_stripe().await;
    let nested = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            format!(r#"{{"id": "cus_1", "deep": {nested}}}"#),
            "application/json",
        ))
        .mount(&server)
        .await;

    let error = client(&server)
        .create_customer("u", None, "k")
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Unexpected(_)), "{error:?}");
    let sources = std::iter::successors(error.source(), |e| (*e).source());
    let parser = sources
        .filter_map(|e| e.downcast_ref::<serde_json::Error>())
        .next();
    assert!(
        parser.is_some_and(|p| p.to_string().contains("recursion limit")),
        "{}",
        ErrorChain(&error)
    );
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
        matches!(&error, GatewayError::Unexpected(m) if m.to_string().contains("`id`")),
        "{error:?}"
    );
}
