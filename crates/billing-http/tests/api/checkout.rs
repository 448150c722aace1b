//! Checkout, portal and sync through the (fake) Stripe gateway.

use billing_domain::SubscriptionStatus;
use billing_domain::facts::SubscriptionSnapshot;
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
        *app.stripe.session_calls.lock().unwrap(),
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
    let customers = app.stripe.customers.lock().unwrap().clone();
    assert_eq!(customers.len(), 1, "one Stripe customer: {customers:?}");
    let customer = customers.values().next().unwrap().clone();
    assert!(ba["url"].as_str().unwrap().ends_with(&customer));
    assert!(bb["url"].as_str().unwrap().ends_with(&customer));
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
    let (status, portal) = app.post("/v1/portal/sessions", &body, &[]).await;
    assert_eq!(status, 200);
    assert!(
        portal["url"]
            .as_str()
            .unwrap()
            .starts_with("https://billing.stripe.test/p/cus_fake_1")
    );

    // The user came back from Checkout before the webhook: sync asks Stripe.
    let now = chrono::Utc::now();
    app.stripe
        .subscriptions
        .lock()
        .unwrap()
        .push(SubscriptionSnapshot {
            id: "sub_synced".into(),
            customer_id: "cus_fake_1".into(),
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
