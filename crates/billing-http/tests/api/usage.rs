//! Entitlements, the feature gate and usage.

use serde_json::{Value, json};

use crate::helpers::{spawn_app, subscription_event};

#[actix_web::test]
async fn entitlements_of_unknown_users_are_the_free_tier_and_need_a_key() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/users/nobody/entitlements").await;
    assert_eq!(status, 200);
    assert_eq!(body["tier"], "FREE");
    assert_eq!(body["status"], Value::Null);
    assert_eq!(body["limits"]["api_calls"], 100);
    assert_eq!(body["features"]["custom_domain"], false);
    assert_eq!(body["credits"], 0);
    let mut response = app
        .client
        .get(format!("{}/v1/users/nobody/entitlements", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_api_key");
    let response = app
        .client
        .get(format!("{}/v1/users/nobody/entitlements", app.address))
        .insert_header(("Authorization", "Bearer wrong_key_wrong_key"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

#[actix_web::test]
async fn the_feature_gate_follows_the_tier() {
    let app = spawn_app().await;
    let event = subscription_event(
        "evt_f1",
        "customer.subscription.created",
        "u_f",
        "active",
        "price_enterprise_monthly",
        1_700_000_000,
    );
    assert_eq!(app.webhook(&event).await.0, 200);
    let (status, body) = app.get("/v1/users/u_f/features/priority_support").await;
    assert_eq!(
        (status, &body["allowed"], &body["tier"]),
        (200, &json!(true), &json!("ENTERPRISE"))
    );
    let (_, entitlements) = app.get("/v1/users/u_f/entitlements").await;
    assert_eq!(
        entitlements["limits"]["api_calls"],
        Value::Null,
        "unlimited is null"
    );
    let (status, body) = app
        .get("/v1/users/someone_else/features/priority_support")
        .await;
    assert_eq!((status, &body["allowed"]), (200, &json!(false)));
    let (status, body) = app.get("/v1/users/u_f/features/teleportation").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_feature"))
    );
}

#[actix_web::test]
async fn a_hundred_concurrent_requests_against_ten_remaining_allow_exactly_ten() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/v1/users/u_q/usage",
            &json!({"metric": "api_calls", "quantity": 90, "idempotency_key": "bulk"}),
            &[],
        )
        .await;
    assert_eq!((status, &body["remaining"]), (200, &json!(10)));
    let requests = (0..100).map(|i| {
        let app = &app;
        async move {
            app.post(
                "/v1/users/u_q/usage",
                &json!({"metric": "api_calls", "quantity": 1, "idempotency_key": format!("k{i}")}),
                &[],
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let allowed = answers.iter().filter(|(s, _)| *s == 200).count();
    let denied = answers
        .iter()
        .filter(|(s, b)| *s == 402 && b["error"]["code"] == "usage_limit_exceeded")
        .count();
    assert_eq!((allowed, denied), (10, 90));
    let (_, entitlements) = app.get("/v1/users/u_q/entitlements").await;
    assert_eq!(entitlements["usage"]["api_calls"], 100);
}

#[actix_web::test]
async fn the_same_idempotency_key_gets_the_same_answer_and_counts_once() {
    let app = spawn_app().await;
    let request = json!({"metric": "ai_generations", "quantity": 3, "idempotency_key": "gen-1"});
    let first = app.post("/v1/users/u_i/usage", &request, &[]).await;
    let second = app.post("/v1/users/u_i/usage", &request, &[]).await;
    assert_eq!(first.0, 200);
    assert_eq!(first.1["used"], second.1["used"]);
    assert_eq!(second.1["replayed"], true);
    let (_, entitlements) = app.get("/v1/users/u_i/entitlements").await;
    assert_eq!(entitlements["usage"]["ai_generations"], 3);
    let other = json!({"metric": "ai_generations", "quantity": 4, "idempotency_key": "gen-1"});
    let (status, body) = app.post("/v1/users/u_i/usage", &other, &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let unknown = json!({"metric": "teleports", "quantity": 1, "idempotency_key": "t"});
    let (status, body) = app.post("/v1/users/u_i/usage", &unknown, &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_metric"))
    );
    let (status, body) = app
        .post("/v1/users/u_i/usage", &json!({"metric": "api_calls"}), &[])
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
}
