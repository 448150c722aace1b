//! Database faults on a private cluster under load: a restart (immediate, then fast) and a
//! freeze (SIGSTOP of the postmaster and every backend). No 2xx for an event that is not
//! committed; answers while the database is away are 5xx, never 4xx, and come within a
//! bound while it is frozen; the same server process recovers by itself; the final state
//! equals the serial replay in commit order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use billing_chaos::client::{Client, Exchange};
use billing_chaos::cluster::StopMode;
use billing_chaos::drive::{
    Delivered, Pace, acknowledged, deliver, redeliver_until_acknowledged, tally, unacknowledged,
};
use billing_chaos::load::Load;
use billing_chaos::replay::compare_with_serial_replay;
use billing_chaos::scenario::Scenario;
use billing_chaos::server::Server;
use billing_chaos::state::{event_statuses, is_final};

/// How long the database stays frozen.
const FREEZE: Duration = Duration::from_secs(15);
/// The longest a request may wait for an answer while the database is frozen.
const FROZEN_LATENCY_BOUND: Duration = Duration::from_secs(10);
/// The longest the server may take to serve again once the database is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);

async fn wait_for(completed: &AtomicUsize, at_least: usize) {
    while completed.load(Ordering::SeqCst) < at_least {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every acknowledged event is applied in `live` (checked before any redelivery).
async fn assert_no_2xx_for_uncommitted(s: &Scenario, load: &Load, delivered: &[Delivered]) {
    let statuses = event_statuses(&s.cluster, "live").await.unwrap();
    let lies: Vec<&str> = acknowledged(delivered)
        .into_iter()
        .filter(|&i| {
            !statuses
                .get(&load.events[i].id)
                .is_some_and(|st| is_final(st))
        })
        .map(|i| load.events[i].id.as_str())
        .collect();
    assert!(
        lies.is_empty(),
        "2xx answered for events not committed: {lies:?}"
    );
}

/// Non-2xx answers are 5xx: the database being away is never the sender's fault.
fn assert_failures_are_5xx(delivered: &[Delivered]) {
    let wrong: Vec<String> = delivered
        .iter()
        .filter_map(|d| d.exchange.result.as_ref().ok())
        .filter(|a| !a.is_success() && a.status < 500)
        .map(|a| format!("{} {}", a.status, a.text()))
        .collect();
    assert!(
        wrong.is_empty(),
        "4xx answers during database faults: {wrong:?}"
    );
}

/// Time from `up` to the start of the first delivery after it that got a 2xx.
fn recovery_after(delivered: &[Delivered], up: Instant) -> Option<Duration> {
    delivered
        .iter()
        .filter(|d| d.exchange.started >= up && d.exchange.is_success())
        .map(|d| d.exchange.ended() - up)
        .min()
}

/// Redelivers what is missing, compares with the serial replay, stops the server, scans logs.
async fn finish(s: &Scenario, mut server: Server, load: &Load, delivered: &[Delivered]) -> String {
    let client = server.client(Duration::from_secs(30));
    let pending = unacknowledged(load, delivered);
    redeliver_until_acknowledged(&client, &s.secrets.webhook, load, pending.clone(), 5)
        .await
        .unwrap();
    let comparison = compare_with_serial_replay(
        &s.cluster,
        "live",
        &server,
        "replay",
        load,
        &s.secrets,
        s.artifacts.path("replay.log"),
    )
    .await
    .unwrap();
    server.stop(Duration::from_secs(30)).await.unwrap();
    let scanned = s.assert_no_secrets_in_logs().unwrap();
    format!(
        "{} events redelivered; final state of {} events equals the serial replay; \
         {scanned} log bytes scanned",
        pending.len(),
        comparison.events
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_restarts_mid_load_lose_nothing_and_need_no_server_restart() {
    let started = Instant::now();
    let mut s = Scenario::new("db-restart").unwrap();
    let load = Load::generate(&mut s.rng, &s.fixtures, 16);
    let mut server = s.server("live").await.unwrap();
    let pid = server.pid();
    let client = server.client(Duration::from_secs(30));
    let completed = Arc::new(AtomicUsize::new(0));
    let total = load.deliveries.len();
    let pace = Pace {
        pause_after_failure: Duration::from_millis(400),
        ..Pace::stripe_like(Duration::from_secs(120))
    };
    let cluster = &s.cluster;
    let faults = async {
        let mut windows = Vec::new();
        for (at, mode, down_for) in [
            (total / 4, StopMode::Immediate, Duration::from_millis(1_500)),
            (total * 3 / 5, StopMode::Fast, Duration::from_millis(1_000)),
        ] {
            wait_for(&completed, at).await;
            let down = Instant::now();
            cluster.stop(mode).await.unwrap();
            tokio::time::sleep(down_for).await;
            cluster.start_again().await.unwrap();
            windows.push((mode, down, Instant::now()));
        }
        windows
    };
    let delivery = deliver(
        &client,
        &s.secrets.webhook,
        &load,
        &load.deliveries,
        &pace,
        completed.clone(),
    );
    let (delivered, windows) = tokio::join!(delivery, faults);

    assert!(
        server.is_running(),
        "the server died during the database restarts"
    );
    assert_eq!(server.pid(), pid, "the server was restarted");
    assert_eq!(server.starts(), 1);
    assert_no_2xx_for_uncommitted(&s, &load, &delivered).await;
    assert_failures_are_5xx(&delivered);
    let mut report = Vec::new();
    for (mode, down, up) in &windows {
        let during: Vec<Delivered> = delivered
            .iter()
            .filter(|d| d.exchange.started >= *down && d.exchange.started < *up)
            .cloned()
            .collect();
        let recovery = recovery_after(&delivered, *up);
        assert!(
            recovery.is_some_and(|r| r <= RECOVERY_BOUND),
            "no 2xx within {RECOVERY_BOUND:?} after the {mode:?} restart (first after {recovery:?})"
        );
        report.push(format!(
            "{mode:?} restart: down {:.1?}, answers while down {:?}, first 2xx {:.1?} after it was back",
            *up - *down,
            tally(&during),
            recovery.unwrap_or_default()
        ));
    }
    let ready = client.get("/readyz", None).await;
    assert_eq!(ready.status(), Some(200), "not ready after the restarts");
    let summary = finish(&s, server, &load, &delivered).await;
    eprintln!(
        "db-restart: {} events, {} deliveries, answers {:?}; {}; {summary}; {:.1?}",
        load.events.len(),
        delivered.len(),
        tally(&delivered),
        report.join("; "),
        started.elapsed()
    );
}

/// One `/readyz` probe every 500 ms while `frozen` says so.
async fn probe_readiness(
    client: &Client,
    frozen_until: &std::sync::Mutex<Option<Instant>>,
) -> Vec<Exchange> {
    let mut probes = Vec::new();
    let mut running = Vec::new();
    loop {
        let state = *frozen_until.lock().unwrap();
        match state {
            Some(until) if Instant::now() >= until => break,
            Some(_) => {
                let client = client.clone();
                running.push(tokio::spawn(
                    async move { client.get("/readyz", None).await },
                ));
            }
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for probe in running {
        probes.push(probe.await.unwrap());
    }
    probes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_database_gets_503_within_a_bound_and_the_server_recovers_alone() {
    let started = Instant::now();
    let mut s = Scenario::new("db-freeze").unwrap();
    let load = Load::generate(&mut s.rng, &s.fixtures, 12);
    // Limits an operator would set for a webhook endpoint (Stripe gives up on a delivery
    // after some seconds): a connection within 2 s, a unit of work within 2 + 3 s, so a
    // webhook is answered within about 7 s even while the database is frozen.
    let mut spec = s.spec("live", "live").await.unwrap();
    spec.extra_env.extend([
        ("DATABASE_POOL_TIMEOUT_MS".to_owned(), "2000".to_owned()),
        (
            "DATABASE_STATEMENT_TIMEOUT_MS".to_owned(),
            "3000".to_owned(),
        ),
    ]);
    let mut server = billing_chaos::server::Server::start(spec).await.unwrap();
    let pid = server.pid();
    // Long client timeout: measure the server's own latency, not ours.
    let client = server.client(Duration::from_secs(60));
    let (warm, rest) = load.deliveries.split_at(16);
    let pace = Pace {
        pause_after_failure: Duration::from_millis(300),
        ..Pace::stripe_like(Duration::from_secs(120))
    };
    let mut delivered = deliver(
        &client,
        &s.secrets.webhook,
        &load,
        warm,
        &pace,
        Arc::default(),
    )
    .await;

    let completed = Arc::new(AtomicUsize::new(0));
    let frozen_until = std::sync::Mutex::new(None);
    let Scenario {
        cluster, secrets, ..
    } = &mut s;
    let fault = async {
        wait_for(&completed, 8).await;
        let processes = cluster.freeze().unwrap();
        let frozen_at = Instant::now();
        *frozen_until.lock().unwrap() = Some(frozen_at + FREEZE);
        tokio::time::sleep(FREEZE).await;
        cluster.thaw().unwrap();
        (processes, frozen_at, Instant::now())
    };
    let delivery = deliver(
        &client,
        &secrets.webhook,
        &load,
        rest,
        &pace,
        completed.clone(),
    );
    let (more, (processes, frozen_at, thawed_at), probes) =
        tokio::join!(delivery, fault, probe_readiness(&client, &frozen_until));
    delivered.extend(more);

    assert!(
        server.is_running(),
        "the server died while the database was frozen"
    );
    assert_eq!(
        (server.pid(), server.starts()),
        (pid, 1),
        "the server was restarted"
    );
    // While frozen: nothing is acknowledged, and every request touching the database gets
    // its answer within the bound — those in flight at the freeze and those sent during it.
    let touched = |e: &Exchange| e.ended() > frozen_at && e.started < thawed_at;
    let acked_while_frozen: Vec<&str> = delivered
        .iter()
        .filter(|d| {
            d.exchange.started >= frozen_at
                && d.exchange.ended() < thawed_at
                && d.exchange.is_success()
        })
        .map(|d| load.events[d.event].id.as_str())
        .collect();
    // A request sent before the freeze may have committed just before it and be answered
    // 2xx just after: its database work was done (checked below with every 2xx's commit),
    // so only the bound applies to it, not the 503.
    let committed_before_freeze = |e: &Exchange| e.started < frozen_at && e.is_success();
    let must_answer =
        |e: &Exchange| touched(e) && e.started.max(frozen_at) + FROZEN_LATENCY_BOUND < thawed_at;
    let slow: Vec<String> = delivered
        .iter()
        .map(|d| &d.exchange)
        .chain(probes.iter())
        .filter(|e| must_answer(e))
        .filter(|e| {
            e.ended() > e.started.max(frozen_at) + FROZEN_LATENCY_BOUND
                || (e.status() != Some(503) && !committed_before_freeze(e))
        })
        .map(|e| format!("{} after {:.1?}", e.label(), e.latency))
        .collect();
    let latencies: Vec<Duration> = delivered
        .iter()
        .map(|d| &d.exchange)
        .chain(probes.iter())
        .filter(|e| touched(e))
        .map(|e| e.ended() - e.started.max(frozen_at))
        .collect();
    let worst = latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "db-freeze: {processes} Postgres processes stopped for {:.1?}; {} requests touched \
         the freeze, worst wait while frozen {worst:.1?}; readiness probes {:?}",
        thawed_at - frozen_at,
        latencies.len(),
        probes.iter().map(Exchange::label).collect::<Vec<_>>()
    );
    assert!(
        acked_while_frozen.is_empty(),
        "2xx while the database was frozen: {acked_while_frozen:?}"
    );
    assert!(
        slow.is_empty(),
        "requests while frozen must get 503 within {FROZEN_LATENCY_BOUND:?}; these did not: {slow:?}"
    );
    let recovery = recovery_after(&delivered, thawed_at);
    assert!(
        recovery.is_some_and(|r| r <= RECOVERY_BOUND),
        "no 2xx within {RECOVERY_BOUND:?} after the thaw (first after {recovery:?})"
    );
    assert_no_2xx_for_uncommitted(&s, &load, &delivered).await;
    assert_failures_are_5xx(&delivered);
    let summary = finish(&s, server, &load, &delivered).await;
    eprintln!(
        "db-freeze: {} events, answers {:?}; first 2xx {:.1?} after the thaw; {summary}; {:.1?}",
        load.events.len(),
        tally(&delivered),
        recovery.unwrap_or_default(),
        started.elapsed()
    );
}
