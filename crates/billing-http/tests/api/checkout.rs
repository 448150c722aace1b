//! Checkout, portal and sync through the (fake) Stripe gateway.

use billing_domain::SubscriptionStatus;
use billing_domain::facts::SubscriptionSnapshot;
use billing_ports::testing::GatewayCall;
use serde_json::json;

use crate::helpers::spawn_app;

fn checkout_body(user: &str) -> serde_json::Value {
    json!({
        "user_id": user, "email": format!("{user}@example.com"), "mode": "subscription", "tier": "PRO",
        "success_url": "https://app.example/ok", "cancel_url": "https://app.example/cancel", "trial_days": 14,
    })
}

#[actix_web::test]
async fn a_retried_checkout_with_the_same_key_is_one_stripe_session() {
    let app = spawn_app().await;
    let (status, first) = app
        .post(
            "/v1/checkout/sessions",
            &checkout_body("u_c"),
            &[("Idempotency-Key", "click-1")],
        )
        .await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = app
        .post(
            "/v1/checkout/sessions",
            &checkout_body("u_c"),
            &[("Idempotency-Key", "click-1")],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (first["id"].clone(), first["url"].clone()),
        (again["id"].clone(), again["url"].clone())
    );
    assert_eq!(again["replayed"], true);
    assert_eq!(
        app.stripe.calls(GatewayCall::CreateCheckoutSession),
        1,
        "answered from our record, Stripe not called again"
    );
    let mut changed = checkout_body("u_c");
    changed["tier"] = json!("ENTERPRISE");
    let (status, body) = app
        .post(
            "/v1/checkout/sessions",
            &changed,
            &[("Idempotency-Key", "click-1")],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let (status, body) = app
        .post("/v1/checkout/sessions", &checkout_body("u_c"), &[])
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("missing_idempotency_key"))
    );
    let mut bad = checkout_body("u_c");
    bad["price_id"] = json!("price_unknown");
    bad.as_object_mut().unwrap().remove("tier");
    let (status, body) = app
        .post(
            "/v1/checkout/sessions",
            &bad,
            &[("Idempotency-Key", "click-2")],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_price"))
    );
}

/// Trial days outside Stripe's 1 to 730 are refused before Stripe is called, however large
/// (the API contract's fuzzing sent 2^31).
#[actix_web::test]
async fn trial_days_outside_stripes_limits_are_400_without_a_stripe_call() {
    let app = spawn_app().await;
    for (days, key) in [
        (0_u64, "trial-0"),
        (731, "trial-731"),
        (2_147_483_648, "trial-2-31"),
    ] {
        let mut body = checkout_body("u_trial");
        body["trial_days"] = json!(days);
        let (status, answer) = app
            .post("/v1/checkout/sessions", &body, &[("Idempotency-Key", key)])
            .await;
        assert_eq!(status, 400, "{days}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("1 to 730"), "{days}: {answer}");
    }
    assert_eq!(app.stripe.calls(GatewayCall::CreateCheckoutSession), 0);
    let mut longest = checkout_body("u_trial");
    longest["trial_days"] = json!(730);
    let (status, answer) = app
        .post(
            "/v1/checkout/sessions",
            &longest,
            &[("Idempotency-Key", "trial-730")],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

#[actix_web::test]
async fn two_racing_first_checkouts_of_one_user_make_one_stripe_customer() {
    let app = spawn_app().await;
    let body = checkout_body("u_r");
    let a = app.post(
        "/v1/checkout/sessions",
        &body,
        &[("Idempotency-Key", "tab-a")],
    );
    let b = app.post(
        "/v1/checkout/sessions",
        &body,
        &[("Idempotency-Key", "tab-b")],
    );
    let ((sa, ba), (sb, bb)) = futures_util::future::join(a, b).await;
    assert_eq!((sa, sb), (200, 200), "{ba} {bb}");
    assert_ne!(ba["id"], bb["id"], "two keys, two sessions");
    let customers = app.stripe.customers();
    assert_eq!(customers.len(), 1, "one Stripe customer: {customers:?}");
    let customer = &customers[0].id;
    for answer in [&ba, &bb] {
        let session = app
            .stripe
            .checkout_session(answer["id"].as_str().unwrap())
            .unwrap();
        assert_eq!(answer["url"], session.created.url.as_str());
        assert_eq!(&session.request.customer_id, customer);
    }
}

#[actix_web::test]
async fn portal_and_sync_need_a_known_customer() {
    let app = spawn_app().await;
    let body = json!({"user_id": "u_p", "return_url": "https://app.example/billing"});
    let (status, error) = app.post("/v1/portal/sessions", &body, &[]).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("unknown_user"))
    );
    let (status, _) = app.post("/v1/users/u_p/sync", &json!({}), &[]).await;
    assert_eq!(status, 404);

    let (status, _) = app
        .post(
            "/v1/checkout/sessions",
            &checkout_body("u_p"),
            &[("Idempotency-Key", "k")],
        )
        .await;
    assert_eq!(status, 200);
    let customer = app.stripe.customers()[0].id.clone();
    let (status, portal) = app.post("/v1/portal/sessions", &body, &[]).await;
    assert_eq!(status, 200);
    let portals = app.stripe.portal_sessions();
    assert_eq!(portals.len(), 1);
    assert_eq!(portal["url"], portals[0].url.as_str());
    assert_eq!(
        (
            portals[0].customer_id.as_str(),
            portals[0].return_url.as_str()
        ),
        (customer.as_str(), "https://app.example/billing")
    );

    // The user came back from Checkout before the webhook: sync asks Stripe.
    let now = chrono::Utc::now();
    app.stripe.put_subscription(SubscriptionSnapshot {
        id: "sub_synced".into(),
        customer_id: customer,
        status: SubscriptionStatus::Trialing,
        price_ids: vec!["price_pro_yearly".into()],
        current_period_start: Some(now),
        current_period_end: Some(now + chrono::TimeDelta::days(14)),
        cancel_at_period_end: false,
        cancel_at: None,
        canceled_at: None,
        ended_at: None,
        trial_end: Some(now + chrono::TimeDelta::days(14)),
        metadata_user_id: Some("u_p".into()),
    });
    let (status, synced) = app.post("/v1/users/u_p/sync", &json!({}), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        (synced["tier"].as_str(), synced["status"].as_str()),
        (Some("PRO"), Some("trialing"))
    );
    assert_eq!(synced["synced_subscriptions"], 1);
}
