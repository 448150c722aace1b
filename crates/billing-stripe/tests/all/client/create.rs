//! The creating calls: what they send, and what they read back.

use billing_ports::{CheckoutKind, CheckoutRequest, GatewayError, StripeGateway};
use billing_stripe::client::STRIPE_API_VERSION;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::client::support::{SECRET, client, fake_stripe, field, form, header, received};

fn checkout_request(kind: CheckoutKind, trial_days: Option<u32>) -> CheckoutRequest {
    CheckoutRequest {
        customer_id: "cus_123".to_owned(),
        user_id: "user_42".to_owned(),
        kind,
        price_id: "price_pro_monthly".to_owned(),
        success_url: "https://app.example/billing/success?session={CHECKOUT_SESSION_ID}".to_owned(),
        cancel_url: "https://app.example/billing/cancel".to_owned(),
        trial_days,
    }
}

#[tokio::test]
async fn create_customer_sends_email_user_id_key_auth_and_version() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "cus_new", "object": "customer" })),
        )
        .expect(1)
        .mount(&server)
        .await;

    let id = client(&server)
        .create_customer(
            "user_42",
            Some("ada+billing@example.com"),
            "customer-user_42",
        )
        .await
        .unwrap();
    assert_eq!(id, "cus_new");

    let requests = received(&server).await;
    let request = &requests[0];
    assert_eq!(header(request, "idempotency-key"), Some("customer-user_42"));
    assert_eq!(
        header(request, "authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(header(request, "stripe-version"), Some(STRIPE_API_VERSION));
    assert_eq!(STRIPE_API_VERSION, "2026-09-30.endive");
    let form = form(request);
    assert_eq!(field(&form, "email"), Some("ada+billing@example.com"));
    assert_eq!(field(&form, "metadata[user_id]"), Some("user_42"));
    assert_eq!(form.len(), 2, "{form:?}");
}

#[tokio::test]
async fn create_customer_without_email_sends_only_the_user_id() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "cus_new" })))
        .mount(&server)
        .await;

    client(&server)
        .create_customer("user_42", None, "k1")
        .await
        .unwrap();

    let form = form(&received(&server).await[0]);
    assert_eq!(
        form,
        vec![("metadata[user_id]".to_owned(), "user_42".to_owned())]
    );
}

#[tokio::test]
async fn subscription_checkout_sends_every_field_and_returns_id_and_url() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_a1",
            "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_a1",
        })))
        .expect(1)
        .mount(&server)
        .await;

    let created = client(&server)
        .create_checkout_session(
            &checkout_request(CheckoutKind::Subscription, Some(14)),
            "checkout-user_42-1",
        )
        .await
        .unwrap();
    assert_eq!(created.id, "cs_test_a1");
    assert_eq!(created.url, "https://checkout.stripe.com/c/pay/cs_test_a1");

    let requests = received(&server).await;
    let request = &requests[0];
    assert_eq!(
        header(request, "idempotency-key"),
        Some("checkout-user_42-1")
    );
    assert_eq!(header(request, "stripe-version"), Some(STRIPE_API_VERSION));
    let form = form(request);
    assert_eq!(field(&form, "customer"), Some("cus_123"));
    assert_eq!(field(&form, "client_reference_id"), Some("user_42"));
    assert_eq!(field(&form, "metadata[user_id]"), Some("user_42"));
    assert_eq!(field(&form, "mode"), Some("subscription"));
    assert_eq!(
        field(&form, "line_items[0][price]"),
        Some("price_pro_monthly")
    );
    assert_eq!(field(&form, "line_items[0][quantity]"), Some("1"));
    assert_eq!(
        field(&form, "success_url"),
        Some("https://app.example/billing/success?session={CHECKOUT_SESSION_ID}")
    );
    assert_eq!(
        field(&form, "cancel_url"),
        Some("https://app.example/billing/cancel")
    );
    assert_eq!(
        field(&form, "subscription_data[trial_period_days]"),
        Some("14")
    );
    assert_eq!(
        field(&form, "subscription_data[metadata][user_id]"),
        Some("user_42")
    );
    assert_eq!(form.len(), 10, "{form:?}");
}

#[tokio::test]
async fn subscription_checkout_without_trial_sends_no_trial() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "cs_1", "url": "https://checkout.example/1" })),
        )
        .mount(&server)
        .await;

    client(&server)
        .create_checkout_session(&checkout_request(CheckoutKind::Subscription, None), "k")
        .await
        .unwrap();

    let form = form(&received(&server).await[0]);
    assert_eq!(field(&form, "subscription_data[trial_period_days]"), None);
    assert_eq!(
        field(&form, "subscription_data[metadata][user_id]"),
        Some("user_42")
    );
}

#[tokio::test]
async fn payment_checkout_sends_payment_mode_and_no_subscription_data() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "cs_2", "url": "https://checkout.example/2" })),
        )
        .mount(&server)
        .await;

    let created = client(&server)
        .create_checkout_session(&checkout_request(CheckoutKind::Payment, None), "k-pay")
        .await
        .unwrap();
    assert_eq!(created.id, "cs_2");

    let form = form(&received(&server).await[0]);
    assert_eq!(field(&form, "mode"), Some("payment"));
    assert_eq!(field(&form, "client_reference_id"), Some("user_42"));
    assert_eq!(field(&form, "metadata[user_id]"), Some("user_42"));
    assert_eq!(
        field(&form, "payment_intent_data[metadata][user_id]"),
        Some("user_42")
    );
    assert!(
        form.iter()
            .all(|(key, _)| !key.starts_with("subscription_data")),
        "{form:?}"
    );
}

#[tokio::test]
async fn payment_checkout_with_trial_days_is_rejected_without_a_request() {
    let server = fake_stripe().await;
    let error = client(&server)
        .create_checkout_session(&checkout_request(CheckoutKind::Payment, Some(7)), "k")
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Rejected(_)), "{error:?}");
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn checkout_session_without_url_is_unexpected() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "id": "cs_3", "url": null })),
        )
        .mount(&server)
        .await;

    let error = client(&server)
        .create_checkout_session(&checkout_request(CheckoutKind::Payment, None), "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GatewayError::Unexpected(m) if m.to_string().contains("`url`")),
        "{error:?}"
    );
}

#[tokio::test]
async fn portal_session_sends_customer_and_return_url_and_returns_the_url() {
    let server = fake_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "bps_1",
            "object": "billing_portal.session",
            "url": "https://billing.stripe.com/p/session/test_1",
        })))
        .expect(1)
        .mount(&server)
        .await;

    let url = client(&server)
        .create_portal_session("cus_123", "https://app.example/account")
        .await
        .unwrap();
    assert_eq!(url, "https://billing.stripe.com/p/session/test_1");

    let requests = received(&server).await;
    let form = form(&requests[0]);
    assert_eq!(field(&form, "customer"), Some("cus_123"));
    assert_eq!(
        field(&form, "return_url"),
        Some("https://app.example/account")
    );
    assert_eq!(form.len(), 2);
    assert_eq!(header(&requests[0], "idempotency-key"), None);
}

#[tokio::test]
async fn invalid_idempotency_keys_are_rejected_without_a_request() {
    let server = fake_stripe().await;
    let client = client(&server);
    for key in [String::new(), "k".repeat(256)] {
        let error = client
            .create_customer("user_42", None, &key)
            .await
            .unwrap_err();
        assert!(matches!(error, GatewayError::Rejected(_)), "{error:?}");
    }
    assert!(received(&server).await.is_empty());
}
