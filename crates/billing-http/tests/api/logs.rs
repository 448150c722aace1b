//! What the logs say: every 5xx once, with its request id and cause, while the answer stays
//! opaque; `/readyz`'s reason in the log only; untrusted ids escaped so they cannot forge lines.
//! The capture uses the server's default human-readable format: `lines_with` sees what the
//! server logs at its default level (INFO), `debug_lines_with` the billing crates' DEBUG too.

use billing_store_diesel::DieselStore;
use billing_store_diesel::testing::TestDatabase;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::helpers::{API_KEY, logs, spawn_with, subscription_event};

#[actix_web::test]
async fn a_5xx_is_logged_once_with_its_request_id_and_cause_and_answered_opaquely() {
    let logs = logs();
    let db = TestDatabase::postgres().await;
    let url = db.url().to_owned();
    let app = spawn_with(db.store().clone(), Some(db), 1 << 20).await;
    // A schema that lost a table: the entitlements query fails in the database.
    let mut admin = AsyncPgConnection::establish(&url).await.unwrap();
    admin
        .batch_execute("DROP TABLE customers CASCADE")
        .await
        .unwrap();
    let request_id = "req_1QfZ8dOpaque500";
    let mut response = app
        .client
        .get(format!("{}/v1/users/u_1QfZ8d/entitlements", app.address))
        .insert_header(("Authorization", format!("Bearer {API_KEY}")))
        .insert_header(("X-Request-Id", request_id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 500);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap(),
        request_id
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": "internal_error", "message": "the request could not be completed"}})
    );
    let with_cause: Vec<String> = logs
        .lines_with(request_id)
        .into_iter()
        .filter(|l| l.contains("customers") && l.contains("does not exist"))
        .collect();
    assert_eq!(with_cause.len(), 1, "{with_cause:#?}");
    let line = &with_cause[0];
    assert!(
        line.contains("request failed") && line.contains("status=500"),
        "{line}"
    );
    assert!(line.contains(r#"code="internal_error""#), "{line}");
    // The cause is the whole chain, each part once: the application's, the store's kind and
    // the database's own message (which the body above never shows).
    assert!(
        line.contains(r#"cause="store: query failed: relation \"customers\" does not exist""#),
        "{line}"
    );
}

#[actix_web::test]
async fn a_webhook_503_is_logged_once_with_request_and_event_ids() {
    let logs = logs();
    let store = DieselStore::connect("postgres://postgres@127.0.0.1:1/nowhere", 2).unwrap();
    let app = spawn_with(store, None, 1 << 20).await;
    let event = subscription_event(
        "evt_1QfZ8dDown503",
        "customer.subscription.created",
        "u_1QfZ8dDown",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    let (status, body) = app.webhook(&event).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"]["message"],
        "the database is unreachable; retry later"
    );
    // The cause of the 503 (the ingest error, "store: …") is logged once, with both ids; ingest's
    // own line and the failure to record the failure are separate lines.
    let failed: Vec<String> = logs
        .lines_with("evt_1QfZ8dDown503")
        .into_iter()
        .filter(|l| l.contains("store: database unavailable"))
        .collect();
    assert_eq!(failed.len(), 1, "the cause is logged once: {failed:#?}");
    assert!(failed[0].contains("request failed"), "{}", failed[0]);
    assert!(failed[0].contains("request_id="), "{}", failed[0]);
    // The chain goes on to the pool's own error.
    let chain = failed[0]
        .split(r#"cause="store: database unavailable: "#)
        .nth(1)
        .unwrap_or("");
    assert!(
        chain.split('"').next().is_some_and(|pool| pool.len() > 3),
        "{}",
        failed[0]
    );
}

#[actix_web::test]
async fn readiness_says_not_ready_and_logs_why() {
    let logs = logs();
    let store = DieselStore::connect("postgres://postgres@127.0.0.1:1/nowhere", 2).unwrap();
    let app = spawn_with(store, None, 1 << 20).await;
    let mut response = app
        .client
        .get(format!("{}/readyz", app.address))
        .insert_header(("X-Request-Id", "req_1QfZ8dNotReady"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": "not_ready", "message": "not ready"}})
    );
    let lines = logs.lines_with("req_1QfZ8dNotReady");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("code=\"not_ready\"") && lines[0].contains("could not connect"),
        "{}",
        lines[0]
    );
}

#[actix_web::test]
async fn an_event_id_with_a_newline_cannot_forge_a_log_line() {
    let logs = logs();
    let db = TestDatabase::postgres().await;
    let app = spawn_with(db.store().clone(), Some(db), 1 << 20).await;
    let forged = "FORGED 2026-11-30T12:00:00.000000Z  INFO billing_http: refund approved";
    let event = subscription_event(
        &format!("evt_1QfZ8dInject\n{forged}"),
        &format!("customer.subscription.created\n{forged}"),
        "u_1QfZ8dInject",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    // An id with a control character is refused with the envelope (it could not be stored
    // or indexed safely); the refusal is logged, and the id in it escaped.
    let (status, _) = app.webhook(&event).await;
    assert_eq!(status, 400);
    let text = logs.text();
    assert!(
        text.contains(r"evt_1QfZ8dInject\nFORGED"),
        "the id is logged, escaped:\n{text}"
    );
    let forged_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("FORGED")).collect();
    assert!(forged_lines.is_empty(), "{forged_lines:#?}");
}

#[actix_web::test]
async fn request_ids_are_answered_and_unsafe_ones_replaced() {
    let db = TestDatabase::postgres().await;
    let app = spawn_with(db.store().clone(), Some(db), 1 << 20).await;
    let id_of = |response: &awc::ClientResponse<_>| {
        response
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let ok = app
        .client
        .get(format!("{}/healthz", app.address))
        .insert_header(("X-Request-Id", "lb-7f3a.91:c"))
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&ok).as_deref(), Some("lb-7f3a.91:c"));
    let unsafe_id = app
        .client
        .get(format!("{}/v1/users/u_1/entitlements", app.address))
        .insert_header(("X-Request-Id", "has spaces \"and quotes\""))
        .send()
        .await
        .unwrap();
    assert_eq!(unsafe_id.status().as_u16(), 401);
    let generated = id_of(&unsafe_id).unwrap();
    assert!(
        !generated.contains(' ') && !generated.is_empty(),
        "{generated}"
    );
    let other = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_ne!(
        id_of(&other).unwrap(),
        generated,
        "each request gets its own id"
    );
}

#[actix_web::test]
async fn a_delivery_is_logged_once_and_ingest_logs_carry_its_event() {
    let logs = logs();
    let db = TestDatabase::postgres().await;
    let app = spawn_with(db.store().clone(), Some(db), 1 << 20).await;
    let event = subscription_event(
        "evt_1QfZ8dOneLine",
        "customer.subscription.created",
        "u_1QfZ8dOneLine",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    let (status, body) = app.webhook(&event).await;
    assert_eq!(status, 200, "{body}");
    // At INFO, the server's default level, the delivery is one line: the request log's, which
    // names the event.
    let at_info = logs.lines_with("evt_1QfZ8dOneLine");
    assert_eq!(at_info.len(), 1, "{at_info:#?}");
    let line = &at_info[0];
    assert!(
        line.contains("webhook delivery")
            && line.contains(r#"event_id="evt_1QfZ8dOneLine""#)
            && line.contains(r#"event_type="customer.subscription.created""#)
            && line.contains(r#"outcome="processed""#)
            && line.contains("request_id="),
        "{line}"
    );
    // The request span names the event too (both fields, recorded together), so any line the
    // request writes carries it.
    assert!(
        line.contains(
            r#"event_id="evt_1QfZ8dOneLine" event_type="customer.subscription.created"}"#
        ),
        "{line}"
    );
    // At DEBUG, ingest's own lines run inside its span, which names the event.
    let ingest: Vec<String> = logs
        .debug_lines_with("ingest{")
        .into_iter()
        .filter(|l| {
            l.contains(r#"event_id="evt_1QfZ8dOneLine""#)
                && l.contains(r#"event_type="customer.subscription.created""#)
        })
        .collect();
    assert!(
        ingest
            .iter()
            .any(|l| l.contains("DEBUG") && l.contains("event ingested")),
        "{}",
        logs.text()
    );
}
