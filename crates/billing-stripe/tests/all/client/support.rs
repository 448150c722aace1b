//! A fake Stripe on 127.0.0.1 and helpers to look at what the client sent.

use std::path::PathBuf;
use std::time::Duration;

use billing_stripe::client::{StripeClient, StripeClientConfig};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use wiremock::{MockServer, Request, ResponseTemplate};

/// The key every test client uses.
pub(crate) const SECRET: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

/// A `wiremock` server bound to 127.0.0.1 on a free port.
pub(crate) async fn fake_stripe() -> MockServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    MockServer::builder().listener(listener).start().await
}

/// A client of `server` with 2 retries, a 1 ms backoff and a 2 s timeout.
pub(crate) fn client(server: &MockServer) -> StripeClient {
    StripeClient::new(config(server)).unwrap()
}

/// The configuration [`client`] uses, to adjust.
pub(crate) fn config(server: &MockServer) -> StripeClientConfig {
    StripeClientConfig {
        api_base: Some(server.uri()),
        timeout: Duration::from_secs(2),
        max_retries: 2,
        retry_backoff: Duration::from_millis(1),
        ..StripeClientConfig::new(SECRET)
    }
}

/// A Stripe error answer.
pub(crate) fn stripe_error(
    status: u16,
    kind: &str,
    code: Option<&str>,
    message: &str,
) -> ResponseTemplate {
    let mut error = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    ResponseTemplate::new(status).set_body_json(json!({ "error": error }))
}

/// The requests `server` received.
pub(crate) async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

/// A header of a request, as a string.
pub(crate) fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request
        .headers
        .get(name)
        .map(|value| value.to_str().unwrap())
}

/// The decoded `application/x-www-form-urlencoded` body of a request, in order.
pub(crate) fn form(request: &Request) -> Vec<(String, String)> {
    assert_eq!(
        header(request, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    decode_pairs(std::str::from_utf8(&request.body).unwrap())
}

/// The decoded query of a request, in order.
pub(crate) fn query(request: &Request) -> Vec<(String, String)> {
    decode_pairs(request.url.query().unwrap_or(""))
}

/// The value of `key` in decoded pairs, when present once.
pub(crate) fn field<'p>(pairs: &'p [(String, String)], key: &str) -> Option<&'p str> {
    let mut found = pairs.iter().filter(|(k, _)| k == key);
    let value = found.next().map(|(_, v)| v.as_str());
    assert!(found.next().is_none(), "{key} is sent more than once");
    value
}

fn decode_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn decode(text: &str) -> String {
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8()
        .unwrap()
        .into_owned()
}

/// The webhook fixture `shape/name.json` of the wire tests.
pub(crate) fn fixture(shape: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", shape, name]
        .iter()
        .collect();
    std::fs::read(path).unwrap()
}

/// The `data.object` of a webhook fixture: an object as the API would answer it.
pub(crate) fn fixture_object(shape: &str, name: &str) -> Value {
    let event: Value = serde_json::from_slice(&fixture(shape, name)).unwrap();
    event["data"]["object"].clone()
}
