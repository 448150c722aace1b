//! What is checked before anything is pushed: the URLs (only absolute http/https with a host;
//! what may be a credential never shown), the secrets (Standard Webhooks keys; never shown),
//! and the signature header during a rotation (each secret's signature verifies alone).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use billing_push::{PushEndpoint, PushError, PushSecret, Signer};

const SECRET_A: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const SECRET_B: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[test]
fn only_absolute_http_and_https_urls_with_a_host_are_accepted() {
    for url in [
        "ftp://product.example/hooks",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "mailto:ops@product.example",
        "/hooks/billing",
        "product.example/hooks",
        "http://",
        "https://product.example/hooks#part",
        "",
    ] {
        let refused = PushEndpoint::parse(url);
        assert!(
            matches!(refused, Err(PushError::InvalidUrl(_))),
            "{url:?} must be refused"
        );
    }
    for url in [
        "http://127.0.0.1:9000/hooks",
        "https://product.example/hooks/billing",
        "https://[::1]:8443/h",
    ] {
        assert!(PushEndpoint::parse(url).is_ok(), "{url:?} is accepted");
    }
}

#[test]
fn a_url_is_shown_without_its_user_info_or_query() {
    let url = "https://ops:pa55w0rd-Kq7@product.example:8443/hooks/billing?token=tok_9fLm2QxZ";
    let endpoint = PushEndpoint::parse(url).unwrap();
    assert_eq!(
        endpoint.display(),
        "https://product.example:8443/hooks/billing"
    );
    let debug = format!("{endpoint:?}");
    for secret in ["pa55w0rd-Kq7", "tok_9fLm2QxZ", "ops:"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    // The id tells apart URLs that differ only in what is hidden.
    let other = PushEndpoint::parse(&url.replace("tok_9fLm2QxZ", "tok_0aBc3DeF")).unwrap();
    assert_eq!(other.display(), endpoint.display());
    assert_ne!(other.id(), endpoint.id());
    assert!(endpoint.id().starts_with("ep_"));
    // …and is stable.
    assert_eq!(PushEndpoint::parse(url).unwrap().id(), endpoint.id());
}

#[test]
fn a_secret_must_be_a_standard_webhooks_key_and_is_never_shown() {
    let secret = PushSecret::parse(SECRET_A).unwrap();
    assert_eq!(secret.expose(), SECRET_A);
    assert!(!format!("{secret:?}").contains("C2FVsBQ"));
    // The prefix may be left out.
    assert!(PushSecret::parse(SECRET_A.trim_start_matches("whsec_")).is_ok());
    for bad in [
        "whsec_not base64!",
        "whsec_c2hvcnQ=", // 5 bytes
        "",
        "whsec_",
    ] {
        let error = PushSecret::parse(bad).unwrap_err();
        assert!(matches!(error, PushError::InvalidSecret(_)));
        let text = error.to_string();
        assert!(bad.len() < 8 || !text.contains(bad), "{text}");
    }
    assert!(Signer::new(Vec::new()).is_err());
}

#[test]
fn during_a_rotation_each_secret_verifies_the_message_alone() {
    let signer = Signer::new(vec![
        PushSecret::parse(SECRET_A).unwrap(),
        PushSecret::parse(SECRET_B).unwrap(),
    ])
    .unwrap();
    let body = br#"{"type":"billing.tier_changed","timestamp":"2026-12-06T07:01:02Z","data":{}}"#;
    let timestamp = chrono::Utc::now().timestamp();
    let id = "chg_3XkQ9mLz2RtB7vWn";
    let header = signer.signature(id, timestamp, body);
    assert_eq!(header.split(' ').count(), 2);
    assert!(header.split(' ').all(|s| s.starts_with("v1,")));
    let mut headers = http::HeaderMap::new();
    headers.insert("webhook-id", http::HeaderValue::from_static(id));
    headers.insert(
        "webhook-timestamp",
        http::HeaderValue::from_str(&timestamp.to_string()).unwrap(),
    );
    headers.insert(
        "webhook-signature",
        http::HeaderValue::from_str(&header).unwrap(),
    );
    for secret in [SECRET_A, SECRET_B] {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(body, &headers)
            .unwrap();
    }
    let stranger = "whsec_9SmB0wDrGzQ2pX8kLmN4vT6yR1cE3fHa";
    assert!(
        standardwebhooks::Webhook::new(stranger)
            .unwrap()
            .verify(body, &headers)
            .is_err()
    );
    // Its own test vector: the specification's example message and secret.
    let spec = Signer::new(vec![
        PushSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
    ])
    .unwrap();
    assert_eq!(
        spec.signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}
