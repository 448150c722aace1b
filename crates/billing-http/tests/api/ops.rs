//! Health, readiness, metrics, OpenAPI, unknown routes.

use serde_json::Value;

use crate::helpers::{spawn_app, subscription_event};

#[actix_web::test]
async fn health_readiness_metrics_and_openapi() {
    let app = spawn_app().await;
    let get = |path: &'static str| {
        let client = app.client.clone();
        let url = format!("{}{path}", app.address);
        async move {
            let mut response = client.get(url).send().await.unwrap();
            (
                response.status().as_u16(),
                String::from_utf8(response.body().await.unwrap().to_vec()).unwrap(),
            )
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    let event = subscription_event(
        "evt_m1",
        "customer.subscription.created",
        "u_m",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    app.webhook(&event).await;
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("billing_webhook_deliveries_total"),
        "{metrics}"
    );
    assert!(metrics.contains("outcome=\"processed\""), "{metrics}");
    let (status, openapi) = get("/openapi.yaml").await;
    assert_eq!(status, 200);
    assert!(openapi.contains("/v1/users/{user_id}/usage"));
    let (status, body) = get("/nope").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}
