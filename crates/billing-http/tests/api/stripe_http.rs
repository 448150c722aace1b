//! Checkout through the real Stripe client against a local HTTP fake of Stripe's API that keeps
//! Stripe's idempotency-key semantics (the same key returns the object created first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use billing_store_diesel::testing::TestDatabase;
use billing_stripe::client::{StripeClient, StripeClientConfig};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{fake_gateway, spawn_with_gateway};

/// Creates one object per distinct `Idempotency-Key`, like Stripe.
struct IdempotentCreate {
    prefix: &'static str,
    created: Arc<Mutex<HashMap<String, String>>>,
}

impl Respond for IdempotentCreate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Some(key) = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
        else {
            return ResponseTemplate::new(400).set_body_json(json!({"error": {"type": "invalid_request_error", "message": "this fake wants an Idempotency-Key"}}));
        };
        let mut created = self.created.lock().unwrap();
        let n = created.len() + 1;
        let id = created
            .entry(key.to_owned())
            .or_insert_with(|| format!("{}_{n}", self.prefix))
            .clone();
        ResponseTemplate::new(200).set_body_json(json!({
            "id": id, "object": "fake", "url": format!("https://checkout.stripe.test/{id}"),
        }))
    }
}

struct Fake {
    server: MockServer,
    customers: Arc<Mutex<HashMap<String, String>>>,
    sessions: Arc<Mutex<HashMap<String, String>>>,
}

async fn fake_stripe() -> Fake {
    let server = MockServer::start().await;
    let customers = Arc::new(Mutex::new(HashMap::new()));
    let sessions = Arc::new(Mutex::new(HashMap::new()));
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(IdempotentCreate {
            prefix: "cus_http",
            created: customers.clone(),
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(IdempotentCreate {
            prefix: "cs_http",
            created: sessions.clone(),
        })
        .mount(&server)
        .await;
    Fake {
        server,
        customers,
        sessions,
    }
}

fn body(user: &str) -> serde_json::Value {
    json!({
        "user_id": user, "mode": "payment", "price_id": "price_pro_monthly",
        "success_url": "https://app.example/ok", "cancel_url": "https://app.example/no",
    })
}

#[actix_web::test]
async fn through_the_stripe_client_a_retry_is_one_session_and_racing_users_one_customer() {
    let fake = fake_stripe().await;
    let mut config = StripeClientConfig::new("sk_test_http_fake");
    config.api_base = Some(fake.server.uri());
    let client = Arc::new(StripeClient::new(config).unwrap());
    let db = TestDatabase::postgres().await;
    let app = spawn_with_gateway(
        db.store().clone(),
        Some(db),
        1 << 20,
        client,
        fake_gateway(),
    )
    .await;

    // Two first checkouts of one user racing from two tabs.
    let b = body("u_http");
    let (first, second) = futures_util::future::join(
        app.post("/v1/checkout/sessions", &b, &[("Idempotency-Key", "tab-1")]),
        app.post("/v1/checkout/sessions", &b, &[("Idempotency-Key", "tab-2")]),
    )
    .await;
    assert_eq!((first.0, second.0), (200, 200), "{} {}", first.1, second.1);
    assert_eq!(
        fake.customers.lock().unwrap().len(),
        1,
        "one Stripe customer"
    );
    assert_eq!(
        fake.sessions.lock().unwrap().len(),
        2,
        "two keys, two sessions"
    );

    // The first tab retries its click: answered from our record, Stripe is not asked again.
    let requests_before = fake.server.received_requests().await.unwrap().len();
    let retried = app
        .post("/v1/checkout/sessions", &b, &[("Idempotency-Key", "tab-1")])
        .await;
    assert_eq!(retried.0, 200);
    assert_eq!(retried.1["id"], first.1["id"]);
    assert_eq!(retried.1["replayed"], true);
    assert_eq!(
        fake.server.received_requests().await.unwrap().len(),
        requests_before
    );
    assert_eq!(fake.sessions.lock().unwrap().len(), 2);
}
