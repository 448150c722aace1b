//! Input the store cannot hold is refused at the edge with a specific 400, never a 500:
//! NUL and control characters, ids over 255 bytes, quantities and sums past BIGINT.

use billing_ports::testing::GatewayCall;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, subscription_event};

fn code(answer: &(u16, Value)) -> (u16, Option<&str>) {
    (answer.0, answer.1["error"]["code"].as_str())
}

#[actix_web::test]
async fn user_ids_with_nul_or_too_many_bytes_are_400_on_every_route() {
    let app = spawn_app().await;
    let long = "u".repeat(2800); // past Postgres' ~2.7 KB index row limit
    for path in [
        "/v1/users/a%00b/entitlements".to_owned(),
        "/v1/users/line%0Abreak/entitlements".to_owned(),
        format!("/v1/users/{long}/entitlements"),
        format!("/v1/users/{long}/features/priority_support"),
    ] {
        assert_eq!(
            code(&app.get(&path).await),
            (400, Some("invalid_user_id")),
            "{path}"
        );
    }
    let usage = json!({"metric": "api_calls", "quantity": 1, "idempotency_key": "k-1"});
    assert_eq!(
        code(
            &app.post(&format!("/v1/users/{long}/usage"), &usage, &[])
                .await
        ),
        (400, Some("invalid_user_id"))
    );
    assert_eq!(
        code(&app.post("/v1/users/a%00b/sync", &json!({}), &[]).await),
        (400, Some("invalid_user_id"))
    );
    let checkout = json!({
        "user_id": "x".repeat(3000), "mode": "subscription", "tier": "PRO",
        "success_url": "https://app.example/ok", "cancel_url": "https://app.example/no",
    });
    assert_eq!(
        code(
            &app.post(
                "/v1/checkout/sessions",
                &checkout,
                &[("Idempotency-Key", "click-long")]
            )
            .await
        ),
        (400, Some("invalid_user_id"))
    );
    let portal = json!({"user_id": "a\u{0}b", "return_url": "https://app.example/billing"});
    assert_eq!(
        code(&app.post("/v1/portal/sessions", &portal, &[]).await),
        (400, Some("invalid_user_id"))
    );
    // 255 bytes is fine.
    let (status, _) = app
        .get(&format!("/v1/users/{}/entitlements", "u".repeat(255)))
        .await;
    assert_eq!(status, 200);
}

/// `/`, `?`, `#` and `%` cannot be in a user id: a URL path cannot carry them as they are, so an
/// id holding one could be sent in a body but never asked for in a path. Refused the same way
/// (400 `invalid_user_id`) wherever a user id arrives, percent-encoded in a path or in a body,
/// before anything is stored; the served document gives every user id the same pattern.
#[actix_web::test]
async fn user_ids_with_url_delimiters_are_400_in_paths_and_bodies() {
    let app = spawn_app().await;
    for encoded in ["a%2Fb", "a%3Fb", "a%23b", "100%25", "%252F"] {
        for path in [
            format!("/v1/users/{encoded}/entitlements"),
            format!("/v1/users/{encoded}/features/custom_domain"),
        ] {
            assert_eq!(
                code(&app.get(&path).await),
                (400, Some("invalid_user_id")),
                "{path}"
            );
        }
        let usage = json!({"metric": "api_calls", "quantity": 1, "idempotency_key": "k-1"});
        let path = format!("/v1/users/{encoded}/usage");
        assert_eq!(
            code(&app.post(&path, &usage, &[]).await),
            (400, Some("invalid_user_id")),
            "{path}"
        );
        let path = format!("/v1/users/{encoded}/sync");
        assert_eq!(
            code(&app.post(&path, &json!({}), &[]).await),
            (400, Some("invalid_user_id")),
            "{path}"
        );
    }
    for user in ["a/b", "a?b", "a#b", "100%", "%2F"] {
        let checkout = json!({
            "user_id": user, "mode": "subscription", "tier": "PRO",
            "success_url": "https://app.example/ok", "cancel_url": "https://app.example/no",
        });
        assert_eq!(
            code(
                &app.post(
                    "/v1/checkout/sessions",
                    &checkout,
                    &[("Idempotency-Key", "click-delimiter")]
                )
                .await
            ),
            (400, Some("invalid_user_id")),
            "{user}"
        );
        let portal = json!({"user_id": user, "return_url": "https://app.example/billing"});
        assert_eq!(
            code(&app.post("/v1/portal/sessions", &portal, &[]).await),
            (400, Some("invalid_user_id")),
            "{user}"
        );
    }
    assert_eq!(app.stripe.calls(GatewayCall::CreateCheckoutSession), 0);
    assert!(app.stripe.customers().is_empty());
    // Other punctuation, spaces and non-ASCII are ids like any other, decoded from the path.
    let (status, body) = app.get("/v1/users/a+b%20c%3B%C3%BC!/entitlements").await;
    assert_eq!(
        (status, &body["user_id"]),
        (200, &json!("a+b c;ü!")),
        "{body}"
    );
    // The document says the same of every user id, path or body.
    let (status, document) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let mut patterns = Vec::new();
    for (route, item) in document["paths"].as_object().unwrap() {
        for operation in item.as_object().unwrap().values() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["name"] == "user_id" {
                    patterns.push((route.clone(), parameter["schema"]["pattern"].clone()));
                }
            }
        }
    }
    let schemas = &document["components"]["schemas"];
    for body in ["PortalRequest", "CheckoutRequest"] {
        let schema = &schemas[body];
        let properties = if schema["allOf"].is_array() {
            &schema["allOf"][0]["properties"]
        } else {
            &schema["properties"]
        };
        patterns.push((body.to_owned(), properties["user_id"]["pattern"].clone()));
    }
    assert_eq!(patterns.len(), 6, "{patterns:#?}");
    for (place, pattern) in &patterns {
        assert_eq!(pattern, &json!(r"^[^\x00-\x1F\x7F-\x9F%/?#]+$"), "{place}");
    }
}

#[actix_web::test]
async fn idempotency_keys_emails_and_urls_are_checked_before_anything_is_stored() {
    let app = spawn_app().await;
    for key in ["k\u{0}1", "", &"k".repeat(256)] {
        let usage = json!({"metric": "api_calls", "quantity": 1, "idempotency_key": key});
        assert_eq!(
            code(&app.post("/v1/users/u_1QfZ8cKeys/usage", &usage, &[]).await),
            (400, Some("invalid_idempotency_key")),
            "{key:?}"
        );
    }
    let checkout = |email: &str, success: &str| {
        json!({
            "user_id": "u_1QfZ8cKeys", "email": email, "mode": "payment", "price_id": "price_pro_monthly",
            "success_url": success, "cancel_url": "https://app.example/no",
        })
    };
    assert_eq!(
        code(
            &app.post(
                "/v1/checkout/sessions",
                &checkout("ana\u{0}@example.com", "https://app.example/ok"),
                &[("Idempotency-Key", "c-1")]
            )
            .await
        ),
        (400, Some("invalid_email"))
    );
    assert_eq!(
        code(
            &app.post(
                "/v1/checkout/sessions",
                &checkout("ana@example.com", "javascript:alert(1)"),
                &[("Idempotency-Key", "c-2")]
            )
            .await
        ),
        (400, Some("invalid_url"))
    );
    assert_eq!(
        code(
            &app.post(
                "/v1/checkout/sessions",
                &checkout("ana@example.com", "https://app.example/ok"),
                &[("Idempotency-Key", &"k".repeat(300))]
            )
            .await
        ),
        (400, Some("invalid_idempotency_key"))
    );
    assert_eq!(app.stripe.calls(GatewayCall::CreateCheckoutSession), 0);
    assert!(app.stripe.customers().is_empty());
}

#[actix_web::test]
async fn quantities_past_the_stored_range_are_400() {
    let app = spawn_app().await;
    let past_i64 = i64::MAX as u64 + 1;
    let usage = json!({"metric": "api_calls", "quantity": past_i64, "idempotency_key": "big-1"});
    assert_eq!(
        code(&app.post("/v1/users/u_1QfZ8cBig/usage", &usage, &[]).await),
        (400, Some("quantity_out_of_range"))
    );
    // Past u64 altogether: not a whole number serde can read.
    let body =
        r#"{"metric": "api_calls", "quantity": 100000000000000000000, "idempotency_key": "big-2"}"#;
    let mut response = app
        .client
        .post(format!("{}/v1/users/u_1QfZ8cBig/usage", app.address))
        .insert_header((
            "Authorization",
            format!("Bearer {}", crate::helpers::API_KEY),
        ))
        .insert_header(("Content-Type", "application/json"))
        .send_body(body)
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        (response.status().as_u16(), answer["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let (_, entitlements) = app.get("/v1/users/u_1QfZ8cBig/entitlements").await;
    assert_eq!(entitlements["usage"]["api_calls"], 0);
}

#[actix_web::test]
async fn a_sum_past_the_stored_range_on_an_unlimited_tier_is_refused_not_a_500() {
    let app = spawn_app().await;
    let event = subscription_event(
        "evt_1QfZ8cUnlimited",
        "customer.subscription.created",
        "u_1QfZ8cEnt",
        "active",
        "price_enterprise_monthly",
        1_700_000_000,
    );
    assert_eq!(app.webhook(&event).await.0, 200);
    let max = json!({"metric": "api_calls", "quantity": i64::MAX, "idempotency_key": "max"});
    let (status, body) = app.post("/v1/users/u_1QfZ8cEnt/usage", &max, &[]).await;
    assert_eq!((status, &body["used"]), (200, &json!(i64::MAX)), "{body}");
    let one = json!({"metric": "api_calls", "quantity": 1, "idempotency_key": "one-more"});
    let (status, body) = app.post("/v1/users/u_1QfZ8cEnt/usage", &one, &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("largest countable total"),
        "{body}"
    );
    let (status, entitlements) = app.get("/v1/users/u_1QfZ8cEnt/entitlements").await;
    assert_eq!(
        (status, &entitlements["usage"]["api_calls"]),
        (200, &json!(i64::MAX))
    );
}
