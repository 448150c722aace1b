//! `/v1` authenticates before it reads a body; bodies must be JSON objects; JSON errors name
//! fields, never our types; the `Bearer` scheme is case-insensitive.

use serde_json::{Value, json};

use crate::helpers::{API_KEY, spawn_app};

async fn post_raw(
    app: &crate::helpers::TestApp,
    path: &str,
    authorization: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .insert_header(("Content-Type", "application/json"));
    if let Some(value) = authorization {
        request = request.insert_header(("Authorization", value));
    }
    let mut response = request.send_body(body).await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[actix_web::test]
async fn anonymous_callers_are_refused_before_their_body_is_read() {
    let app = spawn_app().await;
    let eight = serde_json::to_vec(&json!([1, 2, 3, 4, 5, 6, 7, 8])).unwrap();
    let (status, body) = post_raw(&app, "/v1/checkout/sessions", None, eight).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("missing_api_key")),
        "{body}"
    );
    // A body eight times the API limit: still 401, not 413.
    let huge = vec![b' '; 512 * 1024];
    let (status, body) = post_raw(
        &app,
        "/v1/users/u_1/usage",
        Some("Bearer nope_nope_nope"),
        huge,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key")),
        "{body}"
    );
    let (status, _) = post_raw(
        &app,
        "/v1/portal/sessions",
        Some("Basic dXNlcjpwYXNz"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 401);
}

#[actix_web::test]
async fn json_arrays_are_not_request_bodies_and_errors_do_not_name_our_types() {
    let app = spawn_app().await;
    let bearer = format!("Bearer {API_KEY}");
    let array = serde_json::to_vec(&json!(["api_calls", 1, "k"])).unwrap();
    let (status, body) = post_raw(&app, "/v1/users/u_1QfZ8fArr/usage", Some(&bearer), array).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{body}"
    );
    let (_, entitlements) = app.get("/v1/users/u_1QfZ8fArr/entitlements").await;
    assert_eq!(
        entitlements["usage"]["api_calls"], 0,
        "the array was not counted"
    );

    let eight = serde_json::to_vec(&json!([1, 2, 3, 4, 5, 6, 7, 8])).unwrap();
    let wrong_types = serde_json::to_vec(&json!({"user_id": 7, "mode": "subscription"})).unwrap();
    let bad_variant = serde_json::to_vec(&json!({
        "user_id": "u_1", "mode": "barter", "tier": "PRO",
        "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no",
    }))
    .unwrap();
    for body in [
        eight,
        wrong_types,
        bad_variant,
        b"{\"user_id\":".to_vec(),
        b"null".to_vec(),
    ] {
        let (status, answer) = post_raw(&app, "/v1/checkout/sessions", Some(&bearer), body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_json")),
            "{answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        for internal in [
            "CheckoutBody",
            "UsageBody",
            "PortalBody",
            "Mode",
            "struct",
            "enum",
        ] {
            assert!(!message.contains(internal), "{message:?} names {internal}");
        }
    }
    // Field-level messages still say what is wrong.
    let missing = serde_json::to_vec(&json!({"metric": "api_calls", "quantity": 1})).unwrap();
    let (_, answer) = post_raw(&app, "/v1/users/u_1QfZ8fArr/usage", Some(&bearer), missing).await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("idempotency_key"),
        "{answer}"
    );
    // Not JSON at all.
    let mut response = app
        .client
        .post(format!("{}/v1/users/u_1QfZ8fArr/usage", app.address))
        .insert_header(("Authorization", bearer.as_str()))
        .insert_header(("Content-Type", "text/plain"))
        .send_body("metric=api_calls")
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        (response.status().as_u16(), answer["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
}

#[actix_web::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let mut response = app
            .client
            .get(format!(
                "{}/v1/users/u_1QfZ8fCase/entitlements",
                app.address
            ))
            .insert_header(("Authorization", format!("{scheme} {API_KEY}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{scheme}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["tier"], "FREE");
    }
}
