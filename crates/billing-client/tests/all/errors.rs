//! Each answer the client can get, mapped to its error variant (wiremock answering as the
//! server would, and for what it never answers: 429, a redirect, a foreign body).

use std::time::Duration;

use billing_client::{Client, Denial, Error};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::client;

/// The error a GET of the catalog ends with when the server answers `response`.
async fn error_of(response: ResponseTemplate) -> Error {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(response)
        .mount(&mock)
        .await;
    client(&mock.uri())
        .retries(0)
        .build()
        .unwrap()
        .catalog()
        .await
        .unwrap_err()
}

fn error_body(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": {"code": code, "message": message}}))
}

#[tokio::test]
async fn every_status_maps_to_its_variant() {
    let cases = [
        (
            error_body(404, "unknown_user", "user \"u\" has no Stripe customer"),
            Error::NotFound {
                code: "unknown_user".into(),
                message: "user \"u\" has no Stripe customer".into(),
            },
        ),
        (
            error_body(401, "invalid_api_key", "the API key is not accepted"),
            Error::Unauthorized {
                code: "invalid_api_key".into(),
                message: "the API key is not accepted".into(),
            },
        ),
        (
            error_body(400, "invalid_cursor", "cursor \"x\" is not a cursor"),
            Error::InvalidInput {
                code: "invalid_cursor".into(),
                message: "cursor \"x\" is not a cursor".into(),
            },
        ),
        (
            error_body(422, "idempotency_key_reused", "reused"),
            Error::InvalidInput {
                code: "idempotency_key_reused".into(),
                message: "reused".into(),
            },
        ),
        (
            ResponseTemplate::new(429).insert_header("Retry-After", "42"),
            Error::RateLimited {
                retry_after: Some(Duration::from_secs(42)),
            },
        ),
        (
            ResponseTemplate::new(429),
            Error::RateLimited { retry_after: None },
        ),
        (
            error_body(500, "internal_error", "the request could not be completed"),
            Error::Unavailable {
                status: Some(500),
                message: "internal_error: the request could not be completed".into(),
            },
        ),
        (
            ResponseTemplate::new(502).set_body_string("Bad Gateway"),
            Error::Unavailable {
                status: Some(502),
                message: "Bad Gateway".into(),
            },
        ),
        (
            error_body(402, "payment_required_somehow", "pay first"),
            Error::Denied {
                reason: Denial::Other {
                    code: "payment_required_somehow".into(),
                    message: "pay first".into(),
                },
            },
        ),
        (
            error_body(405, "method_not_allowed", "this route takes GET only"),
            Error::Unexpected {
                status: 405,
                code: "method_not_allowed".into(),
                message: "this route takes GET only".into(),
            },
        ),
    ];
    for (response, expected) in cases {
        assert_eq!(error_of(response).await, expected);
    }
    let decode = error_of(ResponseTemplate::new(200).set_body_json(json!({"tiers": "none"}))).await;
    assert!(
        matches!(&decode, Error::Decode { status: 200, message } if message.contains("invalid type")),
        "{decode:?}"
    );
    assert!(decode.is_outage());
}

#[tokio::test]
async fn a_usage_over_the_limit_is_denied_with_the_period_end() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(402).set_body_json(json!({
            "allowed": false, "used": 100, "limit": 100, "period_end": "2027-01-01T00:00:00Z",
            "replayed": false,
            "error": {"code": "usage_limit_exceeded", "message": "api_calls would exceed the limit of this period"},
        })))
        .expect(1)
        .mount(&mock)
        .await;
    let billing = client(&mock.uri()).build().unwrap();
    let error = billing
        .consume("u", "api_calls", 1, "k1")
        .await
        .unwrap_err();
    let Some(Denial::UsageLimit(refused)) = error.denial() else {
        panic!("{error:?}");
    };
    assert_eq!((refused.used, refused.limit), (100, Some(100)));
    assert_eq!(
        billing_client::api::time::format(&refused.period_end),
        "2027-01-01T00:00:00Z"
    );
    assert!(!error.is_outage() && !error.is_retryable());
    assert_eq!(
        error.to_string(),
        "denied: usage limit reached (100 used of 100) until 2027-01-01T00:00:00Z"
    );
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let billing = client(&format!("http://{address}"))
        .retries(1)
        .build()
        .unwrap();
    let error = billing.entitlements("u").await.unwrap_err();
    let Error::Unavailable {
        status: None,
        message,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert!(message.starts_with("could not connect"), "{message}");
}

#[test]
fn a_bad_configuration_is_refused_and_the_key_never_shows() {
    for base in [
        "ftp://billing.example",
        "not a url",
        "mailto:billing@example.com",
    ] {
        let error = Client::builder(base).api_key("k").build().unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{base}: {error:?}");
    }
    let error = Client::builder("http://billing.example")
        .build()
        .unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    let builder = Client::builder("http://billing.example").api_key("sk_very_secret_123");
    assert!(!format!("{builder:?}").contains("sk_very_secret_123"));
    let client = builder.cache(Duration::from_secs(5)).build().unwrap();
    let debug = format!("{client:?}");
    assert!(!debug.contains("sk_very_secret_123"), "{debug}");
    assert!(debug.contains("http://billing.example/"), "{debug}");
}
