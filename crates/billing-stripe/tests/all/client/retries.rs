//! Bounded retries: what is retried, how often, and that a create re-sends its key.

use std::error::Error as _;
use std::time::Duration;

use billing_ports::{ErrorChain, GatewayError, StripeGateway};
use billing_stripe::client::StripeClient;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::client::support::{client, config, fake_stripe, header, received, stripe_error};

#[tokio::test]
async fn a_500_then_success_re_sends_the_same_idempotency_key_and_body() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(stripe_error(
            500,
            "api_error",
            None,
            "Something went wrong.",
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "cus_after_retry" })))
        .mount(&server)
        .await;

    let id = client(&server)
        .create_customer("user_42", Some("a@example.com"), "customer-user_42")
        .await
        .unwrap();
    assert_eq!(id, "cus_after_retry");

    let requests = received(&server).await;
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(header(request, "idempotency-key"), Some("customer-user_42"));
    }
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn persistent_503_gives_unavailable_after_one_plus_max_retries_attempts() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(stripe_error(503, "api_error", None, "Service unavailable."))
        .expect(3)
        .mount(&server)
        .await;

    let error = client(&server)
        .create_customer("user_42", None, "k-503")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GatewayError::Unavailable(m) if m.to_string().contains("503")),
        "{error:?}"
    );
    let requests = received(&server).await;
    assert_eq!(requests.len(), 3);
    assert!(
        requests
            .iter()
            .all(|r| header(r, "idempotency-key") == Some("k-503"))
    );
}

#[tokio::test]
async fn rate_limiting_is_retried_then_succeeds() {
    let server = fake_stripe().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(stripe_error(
            429,
            "invalid_request_error",
            Some("rate_limit"),
            "Too many requests.",
        ))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active",
        })))
        .mount(&server)
        .await;

    let snapshot = client(&server).fetch_subscription("sub_1").await.unwrap();
    assert_eq!(snapshot.id, "sub_1");
    assert_eq!(received(&server).await.len(), 3);
}

#[tokio::test]
async fn zero_retries_means_one_attempt() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(stripe_error(500, "api_error", None, "boom"))
        .mount(&server)
        .await;
    let client = StripeClient::new(billing_stripe::client::StripeClientConfig {
        max_retries: 0,
        ..config(&server)
    })
    .unwrap();

    let error = client.create_customer("u", None, "k").await.unwrap_err();
    assert!(matches!(error, GatewayError::Unavailable(_)), "{error:?}");
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn a_concurrent_use_of_the_key_409_is_retried_with_the_same_key() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(stripe_error(
            409,
            "idempotency_error",
            Some("idempotency_key_in_use"),
            "There is currently another in-progress request using this Idempotent Key.",
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "cs_1", "url": "https://checkout.example/1" })),
        )
        .mount(&server)
        .await;

    let request = billing_ports::CheckoutRequest {
        customer_id: "cus_1".to_owned(),
        user_id: "user_1".to_owned(),
        kind: billing_ports::CheckoutKind::Payment,
        price_id: "price_1".to_owned(),
        success_url: "https://app.example/ok".to_owned(),
        cancel_url: "https://app.example/no".to_owned(),
        trial_days: None,
    };
    let created = client(&server)
        .create_checkout_session(&request, "checkout-1")
        .await
        .unwrap();
    assert_eq!(created.id, "cs_1");
    let requests = received(&server).await;
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|r| header(r, "idempotency-key") == Some("checkout-1"))
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(stripe_error(
            400,
            "invalid_request_error",
            Some("parameter_invalid_string"),
            "Invalid email address: x",
        ))
        .expect(1)
        .mount(&server)
        .await;

    let error = client(&server)
        .create_customer("u", Some("x"), "k")
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Rejected(_)), "{error:?}");
}

#[tokio::test]
async fn a_slow_answer_times_out_is_retried_and_ends_unavailable() {
    let server = fake_stripe().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "sub_slow" }))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let client = StripeClient::new(billing_stripe::client::StripeClientConfig {
        timeout: Duration::from_millis(200),
        max_retries: 1,
        ..config(&server)
    })
    .unwrap();

    let started = std::time::Instant::now();
    let error = client.fetch_subscription("sub_slow").await.unwrap_err();
    assert!(
        matches!(&error, GatewayError::Unavailable(m) if m.to_string().contains("timed out")),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn an_unreachable_stripe_is_unavailable() {
    // A port that was free a moment ago: connections are refused.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = StripeClient::new(billing_stripe::client::StripeClientConfig {
        api_base: Some(format!("http://127.0.0.1:{port}/")),
        timeout: Duration::from_secs(2),
        max_retries: 1,
        retry_backoff: Duration::from_millis(1),
        ..billing_stripe::client::StripeClientConfig::new(crate::client::support::SECRET)
    })
    .unwrap();

    let error = client
        .create_portal_session("cus_1", "https://app.example/")
        .await
        .unwrap_err();
    assert!(matches!(&error, GatewayError::Unavailable(_)), "{error:?}");
    // The call's name is the cause; async-stripe's report of the connection failure is its
    // source.
    let call = error.source().map(ToString::to_string);
    assert_eq!(
        call.as_deref(),
        Some("create portal session: could not reach Stripe")
    );
    let transport = error.source().and_then(|s| s.source());
    assert!(
        transport.is_some_and(|t| !t.to_string().is_empty()),
        "{}",
        ErrorChain(&error)
    );
}
