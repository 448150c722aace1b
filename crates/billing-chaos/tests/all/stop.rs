//! Stopping the real binary with signals: SIGTERM lets a request in flight finish (within the
//! request and shutdown limits), and a second SIGTERM during that wait stops at once.

use std::time::{Duration, Instant};

use billing_chaos::scenario::Scenario;
use billing_chaos::server::Server;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_stops_at_once_what_the_first_waits_for() {
    let s = Scenario::new("stop").unwrap();
    let spec = s
        .spec("live", "live")
        .await
        .unwrap()
        .env("HTTP_REQUEST_TIMEOUT_MS", "30000");
    let mut server = Server::start(spec).await.unwrap();
    // A webhook whose body never comes: in flight until the request timeout (30 s here).
    let mut hanging = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    hanging
        .write_all(
            b"POST /webhooks/stripe HTTP/1.1\r\nHost: billing\r\n\
              Content-Type: application/json\r\nStripe-Signature: t=1,v1=0a\r\n\
              Content-Length: 4096\r\n\r\n{\"id\":\"evt_1Sd",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = server.pid().unwrap().to_string();
    let first = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(first.success());
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(
        server.is_running(),
        "the first SIGTERM waits for the request in flight"
    );
    // `stop` sends the second SIGTERM.
    let started = Instant::now();
    server
        .stop(Duration::from_secs(5))
        .await
        .expect("the second SIGTERM stops at once");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    eprintln!("stopped {took:?} after the second SIGTERM");
    drop(hanging);
}
