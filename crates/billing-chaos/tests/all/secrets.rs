//! At `RUST_LOG=trace` (every server of this suite runs so, and every scenario scans its logs
//! at the end), no secret reaches the server's output: not the webhook secrets (current and
//! rotated), not the Stripe secret key, not the API keys, not the database password — while
//! every path that handles one is exercised: signed, rotated, wrongly signed and unsigned
//! webhooks; the API with right, near-miss and missing keys; Checkout, portal and sync calls
//! that reach a local fake of Stripe's API; `migrate`; a start refused for bad configuration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use billing_chaos::client::unix_now;
use billing_chaos::load::Load;
use billing_chaos::logs::count_lines_with;
use billing_chaos::scenario::Scenario;
use billing_chaos::server::{Server, run_once};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A stand-in for Stripe's API on 127.0.0.1 that records each request head and refuses it
/// the way Stripe refuses a bad request (400 `invalid_request_error`).
///
/// An HTTP server, not billing-ports' in-process `FakeGateway`: the server under test is a
/// separate process whose real Stripe client must send the secret key over the wire, and
/// that request is what this test has to see.
struct RefusingStripeApi {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RefusingStripeApi {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0_u8; 4096];
                    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buffer).into_owned());
                    let body = r#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such customer"}}"#;
                    let answer = format!(
                        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
                         request-id: req_chaosFake01\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self { url, heads }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_reaches_the_logs_at_trace_level() {
    let mut s = Scenario::new("secrets").unwrap();
    let stripe = RefusingStripeApi::start().await;
    let mut spec = s
        .spec("live", "live")
        .await
        .unwrap()
        .env("LOG_FORMAT", "pretty");
    spec.rotation = true;
    spec.stripe_api_base = Some(stripe.url.clone());
    let mut server = Server::start(spec.clone()).await.unwrap();
    let client = server.client(Duration::from_secs(60));
    let secrets = s.secrets.clone();

    // Webhooks signed with the current and the rotated secret are applied.
    let load = Load::generate(&mut s.rng, &s.fixtures, 2);
    for (n, &i) in load.deliveries.iter().enumerate() {
        let secret = if n % 2 == 0 {
            &secrets.webhook
        } else {
            &secrets.old_webhook
        };
        let answer = client.webhook(&load.events[i].body, secret).await;
        assert_eq!(answer.status(), Some(200), "{:?}", answer.result);
    }
    // Wrong secret, no header, a mangled header: refused.
    let body = load.events[0].body.to_vec();
    let wrong = stripe_webhook_signature::sign(&body, "whsec_someone_elses_secret", unix_now());
    for header in [
        Some(wrong.as_bytes().to_vec()),
        None,
        Some(b"t=1,v1=00".to_vec()),
    ] {
        let answer = client.webhook_raw(body.clone(), header.as_deref()).await;
        assert_eq!(answer.status(), Some(400), "{:?}", answer.result);
    }

    // The API with each key, a near miss and no key.
    let user = &load.users[0];
    for key in &secrets.api_keys {
        let answer = client
            .get(&format!("/v1/users/{user}/entitlements"), Some(key))
            .await;
        assert_eq!(answer.status(), Some(200), "{:?}", answer.result);
        let answer = client
            .post_json(
                &format!("/v1/users/{user}/usage"),
                key,
                &[],
                &json!({"metric": "api_calls", "quantity": 1, "idempotency_key": format!("k-{key}")[..12]}),
            )
            .await;
        assert!(
            answer.status().is_some_and(|st| st == 200 || st == 402),
            "{:?}",
            answer.result
        );
    }
    let mut near_miss = secrets.api_keys[0].clone();
    near_miss.pop();
    near_miss.push('!');
    for key in [Some(near_miss.as_str()), None] {
        let answer = client
            .get(&format!("/v1/users/{user}/entitlements"), key)
            .await;
        assert_eq!(answer.status(), Some(401), "{:?}", answer.result);
    }

    // Calls that reach Stripe (the fake) with the secret key.
    let key = &secrets.api_keys[1];
    let checkout = client
        .post_json(
            "/v1/checkout/sessions",
            key,
            &[("idempotency-key", "chaos-checkout-1")],
            &json!({"user_id": "user_new_chaos", "email": "new@example.com", "mode": "subscription",
                    "tier": "PRO", "success_url": "https://app.example/ok", "cancel_url": "https://app.example/no"}),
        )
        .await;
    let portal = client
        .post_json(
            "/v1/portal/sessions",
            key,
            &[],
            &json!({"user_id": user, "return_url": "https://app.example/billing"}),
        )
        .await;
    let sync = client
        .post_json(&format!("/v1/users/{user}/sync"), key, &[], &json!({}))
        .await;
    for answer in [&checkout, &portal, &sync] {
        let status = answer.status();
        assert!(
            status.is_some_and(|st| st >= 400),
            "Stripe refused, yet {:?}",
            answer.result
        );
    }
    let heads = stripe.heads.lock().unwrap().clone();
    assert!(
        heads
            .iter()
            .any(|h| h.to_ascii_lowercase().contains(&format!(
                "bearer {}",
                secrets.stripe_key.to_ascii_lowercase()
            ))),
        "the fake Stripe never saw the secret key ({} requests): the Stripe paths were not exercised",
        heads.len()
    );
    for path in ["/metrics", "/readyz", "/openapi.yaml", "/healthz"] {
        assert_eq!(client.get(path, None).await.status(), Some(200), "{path}");
    }
    server.stop(Duration::from_secs(30)).await.unwrap();

    // `migrate`, and a start refused for a bad configuration, log to the same file.
    assert_eq!(
        run_once(&spec, "127.0.0.1:9", &["migrate"]).await.unwrap(),
        Some(0)
    );
    let refused_key = format!("pk_live_{}", &secrets.stripe_key[8..]);
    let mut bad = spec.clone().env("STRIPE_SECRET_KEY", &refused_key);
    bad.extra_env
        .push(("EVENT_RETENTION_DAYS".to_owned(), "soon".to_owned()));
    assert_eq!(
        run_once(&bad, "localhost", &["serve"]).await.unwrap(),
        Some(2)
    );

    let log = server.log().to_path_buf();
    let trace_lines = count_lines_with(&log, "TRACE").unwrap();
    assert!(
        trace_lines > 1_000,
        "only {trace_lines} TRACE lines: was RUST_LOG=trace in effect?"
    );
    assert!(
        count_lines_with(&log, &load.events[0].id).unwrap() > 0,
        "deliveries were not logged"
    );
    let scanned = s.assert_no_secrets_in_logs().unwrap();
    eprintln!(
        "secrets: {} webhooks, {} Stripe requests seen by the fake; {trace_lines} TRACE lines, \
         {scanned} log bytes scanned: no secret",
        load.events.len() + 3,
        heads.len()
    );
}
