//! Clients that stall: a body that stops half-way is answered 408 and its connection closed
//! at the request deadline, a request head that stops is closed too, and connections beyond
//! the cap wait instead of piling up. The server keeps serving throughout.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Limits, spawn_with_limits, subscription_event};

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What the server sent on a connection until it closed it.
struct Closed {
    answer: String,
    /// When the first byte of the answer arrived.
    answered: Option<Instant>,
    /// When the server closed the connection; `None` if it was still open at the limit.
    closed: Option<Instant>,
}

/// Reads until the server closes the connection, or `limit` passes.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Closed {
    let mut received = Vec::new();
    let mut answered = None;
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + limit;
    let closed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break Some(Instant::now()),
            Ok(Ok(n)) => {
                answered.get_or_insert_with(Instant::now);
                received.extend_from_slice(&buffer[..n]);
            }
            Err(_) => break None,
        }
    };
    Closed {
        answer: String::from_utf8_lossy(&received).into_owned(),
        answered,
        closed,
    }
}

/// actix waits this long for a client to close after the last answer (`ServerLimits`).
const LINGER: Duration = Duration::from_secs(1);

fn address(app: &crate::helpers::TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Opens 100 uploads announcing 1 MiB that stall after 256 KiB, and waits for the server to
/// answer and close them all: the slowest answer and the slowest close after the head was sent.
async fn stall_uploads(app: &crate::helpers::TestApp, deadline: Duration) -> (Duration, Duration) {
    let mut stalled = Vec::new();
    for _ in 0..100 {
        let mut stream = TcpStream::connect(address(app)).await.unwrap();
        let head = "POST /webhooks/stripe HTTP/1.1\r\nHost: billing.test\r\nContent-Type: application/json\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: 1048576\r\n\r\n";
        let sent = Instant::now();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&vec![b' '; 256 * 1024]).await.unwrap();
        stalled.push((stream, sent));
    }
    // The server keeps serving while they stall.
    assert_eq!(app.get_text("/healthz").await.0, 200);
    let closes = stalled.into_iter().map(|(mut stream, sent)| async move {
        let seen = read_until_closed(&mut stream, deadline * 4).await;
        let closed = seen.closed.expect("the server closes a stalled upload");
        assert!(seen.answer.starts_with("HTTP/1.1 408"), "{}", seen.answer);
        assert!(
            seen.answer.contains(r#""code":"request_timeout""#),
            "{}",
            seen.answer
        );
        (seen.answered.unwrap_or(closed) - sent, closed - sent)
    });
    let times = futures_util::future::join_all(closes).await;
    (
        times.iter().map(|t| t.0).max().unwrap_or_default(),
        times.iter().map(|t| t.1).max().unwrap_or_default(),
    )
}

#[actix_web::test]
async fn stalled_webhook_bodies_are_answered_408_and_closed_at_the_deadline() {
    let db = billing_store_diesel::testing::TestDatabase::postgres().await;
    let deadline = Duration::from_secs(1);
    let limits = Limits {
        request_timeout: deadline,
        ..Limits::default()
    };
    let app = spawn_with_limits(db.store().clone(), Some(db), limits).await;
    let before = rss_kib();
    let mut rounds = Vec::new();
    for _ in 0..4 {
        let (answered, closed) = stall_uploads(&app, deadline).await;
        rounds.push((answered, closed, rss_kib()));
    }
    for (answered, closed, _) in &rounds {
        assert!(
            *answered >= deadline && *answered <= deadline + Duration::from_millis(500),
            "the slowest stalled upload was answered after {answered:?}"
        );
        assert!(
            *closed <= deadline + LINGER + Duration::from_millis(500),
            "the slowest stalled upload was closed after {closed:?}"
        );
    }
    // A round holds 100 x 256 KiB = 25 MiB in the server while it stalls. Were any of it kept
    // after the close, rounds 3 and 4 would add 50 MiB; released, it is reused (the first
    // rounds only grow the allocator's arenas).
    // The process's RSS only measures this test when it runs alone (nextest: one process per
    // test); under `cargo test` other tests share it.
    let alone = std::env::var_os("NEXTEST_RUN_ID").is_some();
    if let (true, Some(second), Some(fourth)) = (alone, rounds[1].2, rounds[3].2) {
        assert!(
            fourth <= second + 20 * 1024,
            "RSS grew from {second} KiB to {fourth} KiB over two more rounds of stalled uploads"
        );
    }
    let event = subscription_event(
        "evt_1QfZ8bSlowOk",
        "customer.subscription.created",
        "u_slow",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    assert_eq!(app.webhook(&event).await.0, 200);
    eprintln!(
        "4 x 100 stalled 1 MiB uploads (deadline {deadline:?}); RSS before {before:?} KiB; per round (slowest 408, slowest close, RSS KiB after): {rounds:?}"
    );
}

#[actix_web::test]
async fn a_stalled_request_head_is_closed_at_the_deadline() {
    let db = billing_store_diesel::testing::TestDatabase::postgres().await;
    let deadline = Duration::from_secs(1);
    let limits = Limits {
        request_timeout: deadline,
        ..Limits::default()
    };
    let app = spawn_with_limits(db.store().clone(), Some(db), limits).await;
    let mut stream = TcpStream::connect(address(&app)).await.unwrap();
    let sent = Instant::now();
    stream
        .write_all(b"POST /webhooks/stripe HTTP/1.1\r\nHost: billing.test\r\nContent-Le")
        .await
        .unwrap();
    let seen = read_until_closed(&mut stream, deadline * 4).await;
    let took = seen.closed.expect("the server closes a stalled head") - sent;
    assert!(seen.answer.starts_with("HTTP/1.1 408"), "{}", seen.answer);
    assert!(
        took <= deadline + LINGER + Duration::from_millis(500),
        "closed after {took:?}"
    );
}

#[actix_web::test]
async fn connections_beyond_the_cap_wait_until_one_is_free() {
    let db = billing_store_diesel::testing::TestDatabase::postgres().await;
    let deadline = Duration::from_secs(1);
    let limits = Limits {
        request_timeout: deadline,
        max_connections: 2, // one per worker
        ..Limits::default()
    };
    let app = spawn_with_limits(db.store().clone(), Some(db), limits).await;
    // Two idle connections take both slots (until the head deadline closes them).
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(TcpStream::connect(address(&app)).await.unwrap());
    }
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let (status, _) = app.get_text("/healthz").await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        took >= Duration::from_millis(500),
        "a third connection was served at once ({took:?}): the cap did not hold"
    );
    assert!(took <= deadline + Duration::from_millis(1500), "{took:?}");
    drop(idle);
}
