//! Three `billing-server` processes on one Postgres database, each running the background
//! jobs every second: signed deliveries spread round-robin over them, some events sent to all
//! three at once, one event left to the sweeper (stored as a due transient failure and never
//! delivered). Exactly once holds (the state equals a serial replay in commit order, every
//! racing event applied by one replica and a duplicate on the others), the sweeper applies its
//! event once across the replicas, and each job runs on one replica at a time: the runs the
//! replicas report add up to the lease row's count, at most one run per interval in all.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use billing_chaos::client::Client;
use billing_chaos::drive::{Pace, deliver, redeliver_until_acknowledged, unacknowledged};
use billing_chaos::load::Load;
use billing_chaos::replay::compare_with_serial_replay;
use billing_chaos::scenario::Scenario;
use billing_chaos::server::{Server, ServerSpec};
use rand::Rng;
use rand::seq::IndexedRandom;

const CUSTOMERS: usize = 12;
const REPLICAS: usize = 3;
const RACES: usize = 12;
const JOBS: [&str; 2] = ["retention", "sweeper"];

/// The sum over `text`'s samples of `metric` whose labels include every one of `labels`.
fn sample_sum(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics(client: &Client) -> String {
    let exchange = client.send("GET", "/metrics", &[], Vec::new()).await;
    let answer = exchange.result.expect("/metrics answers");
    assert_eq!(answer.status, 200);
    String::from_utf8_lossy(&answer.body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_apply_each_event_once_and_run_each_job_on_one_at_a_time() {
    let mut s = Scenario::new("replicas").unwrap();
    let load = Load::generate(&mut s.rng, &s.fixtures, CUSTOMERS);
    let base = s.spec("live", "replica-1").await.unwrap();
    let started = Instant::now();
    let mut servers = Vec::new();
    for i in 1..=REPLICAS {
        let spec = ServerSpec {
            log: s.artifacts.path(&format!("replica-{i}.log")),
            ..base.clone()
        }
        .env("DATABASE_STATEMENT_TIMEOUT_MS", "3000")
        .env("JOB_LEASE_TTL_SECS", "5")
        .env("JOB_RETENTION_INTERVAL_SECS", "1")
        .env("JOB_SWEEPER_INTERVAL_SECS", "1")
        .env("SWEEPER_BACKOFF_BASE_SECS", "1")
        .env("SWEEPER_BACKOFF_CAP_SECS", "2");
        servers.push(Server::start(spec).await.unwrap());
    }
    let clients: Vec<Client> = servers
        .iter()
        .map(|s| s.client(Duration::from_secs(20)))
        .collect();

    // One event is never delivered: it is stored as a transient failure due now, as a
    // delivery during a database outage leaves it, for the sweeper.
    let swept = s.rng.random_range(0..load.events.len());
    let event = &load.events[swept];
    let body = String::from_utf8(event.body.to_vec()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let created = json["created"].as_i64().unwrap();
    let api_version = json["api_version"].as_str().unwrap();
    let livemode = json["livemode"].as_bool().unwrap();
    s.cluster
        .psql(
            "live",
            &format!(
                "INSERT INTO stripe_events (id, event_type, api_version, livemode, created, \
                 payload, status, attempts, last_error, received_at, failure_kind, \
                 next_attempt_at) VALUES ('{}', '{}', '{api_version}', {livemode}, \
                 to_timestamp({created}), $body${body}$body$, 'failed', 1, \
                 'database unavailable', now(), 'transient', now())",
                event.id, event.event_type
            ),
        )
        .await
        .unwrap();

    // Some events sent to all three replicas at once: one applies it, the others wait on its
    // claim and answer duplicate.
    let candidates: Vec<usize> = (0..load.events.len()).filter(|&i| i != swept).collect();
    let racing: Vec<usize> = candidates
        .choose_multiple(&mut s.rng, RACES)
        .copied()
        .collect();
    for &i in &racing {
        let body = load.events[i].body.clone();
        let sends = clients.iter().map(|c| {
            let (c, body, secret) = (c.clone(), body.clone(), s.secrets.webhook.clone());
            tokio::spawn(async move { c.webhook(&body, &secret).await })
        });
        let mut fresh = 0;
        for send in sends.collect::<Vec<_>>() {
            let answer = send.await.unwrap().result.expect("answered");
            assert_eq!(
                answer.status,
                200,
                "{}",
                String::from_utf8_lossy(&answer.body)
            );
            let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
            fresh += usize::from(json.get("duplicate").is_none());
        }
        assert_eq!(
            fresh, 1,
            "{} applied by one replica only",
            load.events[i].id
        );
    }

    // The rest round-robin, duplicates included.
    let order: Vec<usize> = load
        .deliveries
        .iter()
        .copied()
        .filter(|&i| i != swept && !racing.contains(&i))
        .collect();
    let pace = Pace::stripe_like(Duration::from_secs(30));
    let deliveries = (0..REPLICAS).map(|r| {
        let part: Vec<usize> = order.iter().copied().skip(r).step_by(REPLICAS).collect();
        let (client, load, pace, secret) = (
            clients[r].clone(),
            load.clone(),
            pace.clone(),
            s.secrets.webhook.clone(),
        );
        tokio::spawn(async move {
            let done = Arc::new(AtomicUsize::new(0));
            deliver(&client, &secret, &load, &part, &pace, done).await
        })
    });
    let mut delivered = Vec::new();
    for part in deliveries.collect::<Vec<_>>() {
        delivered.extend(part.await.unwrap());
    }
    let mut pending = unacknowledged(&load, &delivered);
    pending.remove(&swept);
    for &i in &racing {
        pending.remove(&i);
    }
    redeliver_until_acknowledged(&clients[0], &s.secrets.webhook, &load, pending, 5)
        .await
        .unwrap();

    // The sweeper, on whichever replica holds its lease, applies the failed event.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = s
            .cluster
            .psql(
                "live",
                &format!("SELECT status FROM stripe_events WHERE id = '{}'", event.id),
            )
            .await
            .unwrap();
        if status.trim() != "failed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sweeper never applied {}",
            event.id
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the jobs run a few more intervals on the three replicas.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let lease_runs = async || {
        let mut runs = BTreeMap::new();
        for job in JOBS {
            let sql = format!("SELECT runs FROM job_leases WHERE job = '{job}'");
            let text = s.cluster.psql("live", &sql).await.unwrap();
            runs.insert(job, text.trim().parse::<u64>().unwrap());
        }
        runs
    };
    let before = lease_runs().await;
    let mut scraped = Vec::new();
    for client in &clients {
        scraped.push(metrics(client).await);
    }
    let after = lease_runs().await;
    let elapsed = started.elapsed();
    let mut reported = BTreeMap::new();
    for job in JOBS {
        let label = format!("job=\"{job}\"");
        let per_replica: Vec<f64> = scraped
            .iter()
            .map(|m| sample_sum(m, "billing_job_runs_total", &[&label]))
            .collect();
        let failed: f64 = scraped
            .iter()
            .map(|m| {
                sample_sum(
                    m,
                    "billing_job_runs_total",
                    &[&label, "outcome=\"failure\""],
                )
            })
            .sum();
        let total = per_replica.iter().sum::<f64>() as u64;
        // The lease counts a run when it is taken, a replica when it ends: every run a
        // replica reports was taken, and of the runs taken before the scrape at most the one
        // in progress then is not reported yet.
        let (taken_before, taken) = (before[job], after[job]);
        assert!(
            taken_before <= total + 1 && total <= taken,
            "{job}: the replicas report {per_replica:?} runs, the lease row {taken_before}..{taken}"
        );
        // One run per interval across the replicas (three replicas on their own: ~3×).
        let intervals = elapsed.as_secs() + 1;
        assert!(
            taken <= intervals + 1 && taken >= intervals / 3,
            "{job}: {taken} runs in {elapsed:?} at one per second"
        );
        assert_eq!(failed, 0.0, "{job} failed on a replica");
        reported.insert(job, per_replica);
    }
    let sweeps = |outcome: &str| -> f64 {
        scraped
            .iter()
            .map(|m| {
                sample_sum(
                    m,
                    "billing_sweeper_replays_total",
                    &[&format!("outcome=\"{outcome}\"")],
                )
            })
            .sum()
    };
    let applied = sweeps("applied") + sweeps("stale") + sweeps("ignored");
    assert_eq!(
        applied, 1.0,
        "the swept event was re-applied once across the replicas"
    );
    assert_eq!(sweeps("failed") + sweeps("duplicate"), 0.0);

    // Exactly once: the final state is that of the events applied one by one in commit order.
    let comparison = compare_with_serial_replay(
        &s.cluster,
        "live",
        &servers[0],
        "replay",
        &load,
        &s.secrets,
        s.artifacts.path("replay.log"),
    )
    .await
    .unwrap();
    for server in &mut servers {
        server.stop(Duration::from_secs(30)).await.unwrap();
    }
    let scanned = s.assert_no_secrets_in_logs().unwrap();
    eprintln!(
        "replicas: {} events ({} deliveries, {RACES} sent to all three at once, 1 swept), \
         job runs per replica {reported:?}, lease counts {after:?}, in {elapsed:.1?}; rows {:?}; \
         {scanned} log bytes scanned",
        load.events.len(),
        delivered.len(),
        comparison.rows,
    );
}
