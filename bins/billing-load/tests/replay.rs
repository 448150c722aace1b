//! The tool against a stand-in endpoint (plain threads and sockets, HTTP/1.1 keep-alive) that
//! verifies every signature as the billing server does and answers like it: `received`, or
//! `duplicate` for an event id it already had. The report must count what the endpoint saw.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use stripe_webhook_signature::Verifier;

const SECRET: &str = "whsec_billing_load_test";

/// What the endpoint saw.
#[derive(Default)]
struct Seen {
    requests: usize,
    bad_signatures: usize,
    event_ids: HashSet<String>,
    connections: usize,
}

/// Starts the endpoint on a free port; its URL and what it saw.
fn endpoint() -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let verifier = Arc::new(Verifier::new([SECRET]).unwrap());
    let shared = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let (seen, verifier) = (Arc::clone(&shared), Arc::clone(&verifier));
            seen.lock().unwrap().connections += 1;
            std::thread::spawn(move || serve(stream.unwrap(), &seen, &verifier));
        }
    });
    (url, seen)
}

/// Answers requests on one keep-alive connection until the client closes it.
fn serve(stream: TcpStream, seen: &Mutex<Seen>, verifier: &Verifier) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        assert!(line.starts_with("POST /webhooks/stripe HTTP/1.1"), "{line}");
        let (mut length, mut signature) = (0, String::new());
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "stripe-signature" => value.trim().clone_into(&mut signature),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let (status, answer) = {
            let mut seen = seen.lock().unwrap();
            seen.requests += 1;
            if verifier.verify(&body, &signature).is_err() {
                seen.bad_signatures += 1;
                (
                    "400 Bad Request",
                    r#"{"error":{"code":"invalid_signature"}}"#,
                )
            } else {
                let event: Value = serde_json::from_slice(&body).unwrap();
                let id = event["id"].as_str().unwrap().to_owned();
                if seen.event_ids.insert(id) {
                    ("200 OK", r#"{"received":true}"#)
                } else {
                    ("200 OK", r#"{"received":true,"duplicate":true}"#)
                }
            }
        };
        write!(
            writer,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
    }
}

/// Runs the tool with `secret` and returns its JSON report.
fn run_tool(url: &str, secret: &str, concurrency: &str) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_billing-load"))
        .args(["--url", url, "--secret", secret, "--events", "150"])
        .args(["--concurrency", concurrency, "--seed", "0x10ad", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn every_delivery_is_signed_sent_once_and_counted() {
    let (url, seen) = endpoint();
    let report = run_tool(&url, SECRET, "1,4");
    let levels = report["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2);
    let (mut deliveries, mut unique) = (0, 0);
    for (level, in_flight) in levels.iter().zip([1, 4]) {
        assert_eq!(level["in_flight"], in_flight);
        assert_eq!(level["errors"].as_object().unwrap().len(), 0, "{level}");
        let n = level["deliveries"].as_u64().unwrap();
        let events = level["unique_events"].as_u64().unwrap();
        assert!(events >= 150 && n > events, "{level}");
        assert!(level["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
        assert!(level["deliveries_per_second"].as_f64().unwrap() > 0.0);
        deliveries += n;
        unique += events;
    }
    assert_eq!(levels[0]["seed"], 0x10ad);
    assert_eq!(levels[1]["seed"], 0x10ae);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.bad_signatures, 0);
    assert_eq!(seen.requests as u64, deliveries);
    // Each level is a fresh stream: no event id of level 1 comes back in level 2.
    assert_eq!(seen.event_ids.len() as u64, unique);
    // One keep-alive connection per delivery in flight.
    assert_eq!(seen.connections, 1 + 4);
    assert!(report["check"].is_null());
}

#[test]
fn refused_deliveries_are_errors_by_status() {
    let (url, seen) = endpoint();
    let report = run_tool(&url, "whsec_another_secret", "2");
    let level = &report["levels"][0];
    let n = level["deliveries"].as_u64().unwrap();
    assert_eq!(level["errors"]["400"].as_u64(), Some(n), "{level}");
    assert_eq!(seen.lock().unwrap().bad_signatures as u64, n);
}
