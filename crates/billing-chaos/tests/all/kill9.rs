//! `kill -9` of the server at random moments while a few hundred signed events (duplicates
//! included) are delivered 16 at a time; the server is restarted each time, every event that
//! did not get a 2xx is redelivered, and the final state must equal replaying the events one
//! at a time in the server's own commit order (Postgres `track_commit_timestamp`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use billing_chaos::drive::{
    Pace, acknowledged, deliver, redeliver_until_acknowledged, tally, unacknowledged,
};
use billing_chaos::load::Load;
use billing_chaos::replay::compare_with_serial_replay;
use billing_chaos::scenario::Scenario;
use billing_chaos::state::{event_statuses, is_final};
use rand::{Rng, SeedableRng};

/// Customers in the load (about 16 events each, plus ~15 % duplicate deliveries).
const CUSTOMERS: usize = 24;
/// Kills per run at most; one every 8–30 completed deliveries.
const MAX_KILLS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_under_load_leaves_the_state_of_a_serial_replay_in_commit_order() {
    let started = Instant::now();
    let mut s = Scenario::new("kill9").unwrap();
    let load = Load::generate(&mut s.rng, &s.fixtures, CUSTOMERS);
    let mut server = s.server("live").await.unwrap();
    let client = server.client(Duration::from_secs(20));
    let completed = Arc::new(AtomicUsize::new(0));
    let pace = Pace::stripe_like(Duration::from_secs(120));

    let mut rng = rand::rngs::StdRng::from_rng(&mut s.rng);
    let finished = AtomicBool::new(false);
    let killer = async {
        let mut kills = Vec::new();
        let mut next = rng.random_range(8..30);
        while kills.len() < MAX_KILLS && !finished.load(Ordering::SeqCst) {
            if completed.load(Ordering::SeqCst) >= next {
                // A random moment: some deliveries are mid-request, some mid-transaction.
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..40))).await;
                let before = Instant::now();
                server.kill9().await.unwrap();
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
                server.restart().await.unwrap();
                kills.push(before.elapsed());
                next = completed.load(Ordering::SeqCst) + rng.random_range(8..30);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        kills
    };
    let delivery = async {
        let delivered = deliver(
            &client,
            &s.secrets.webhook,
            &load,
            &load.deliveries,
            &pace,
            completed.clone(),
        )
        .await;
        finished.store(true, Ordering::SeqCst);
        delivered
    };
    let (delivered, kills) = tokio::join!(delivery, killer);
    let load_time = started.elapsed();

    // No 2xx for an uncommitted event: before any redelivery, every acknowledged event is
    // applied in the database.
    let statuses = event_statuses(&s.cluster, "live").await.unwrap();
    let lies: Vec<&str> = acknowledged(&delivered)
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

    let pending = unacknowledged(&load, &delivered);
    let redelivered =
        redeliver_until_acknowledged(&client, &s.secrets.webhook, &load, pending.clone(), 5)
            .await
            .unwrap();
    let comparison = compare_with_serial_replay(
        &s.cluster,
        "live",
        &server,
        "replay",
        &load,
        &s.secrets,
        s.artifacts.path("replay.log"),
    )
    .await
    .unwrap();
    assert!(
        kills.len() >= 5,
        "only {} kills happened during the load; the proof needs several",
        kills.len()
    );
    for table in [
        "subscriptions",
        "customers",
        "credit_ledger",
        "payments",
        "orders",
    ] {
        assert!(
            !comparison.live.rows(table).is_empty(),
            "the load left {table} empty: the comparison would prove little"
        );
    }
    // SIGTERM with a long poll of the change feed in flight (a minute asked): the poll is
    // answered at once and the stop does not wait for it.
    let key = s.secrets.api_keys[0].clone();
    let head = feed_head(&server.client(Duration::from_secs(20)), &key).await;
    let poll = {
        let client = server.client(Duration::from_secs(90));
        tokio::spawn(async move {
            let path = format!("/v1/changes?after={head}&limit=1&wait=60");
            client.get(&path, Some(&key)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = Instant::now();
    server.stop(Duration::from_secs(30)).await.unwrap();
    let stop_took = stopping.elapsed();
    let poll = poll.await.unwrap();
    assert!(
        stop_took < Duration::from_secs(10),
        "SIGTERM waited {stop_took:?} for a long poll"
    );
    assert_eq!(poll.status(), Some(200), "{}", poll.label());
    let scanned = s.assert_no_secrets_in_logs().unwrap();
    let cut = delivered
        .iter()
        .filter(|d| {
            matches!(
                d.exchange.result,
                Err(billing_chaos::client::Failure::Broken(_))
                    | Err(billing_chaos::client::Failure::Timeout)
            )
        })
        .count();
    eprintln!(
        "kill9: {} events ({} duplicate deliveries, {} deliveries in all), {} kills \
         (kill-to-healthy {:?} avg), {} deliveries cut mid-request, answers {:?}; {} events \
         redelivered ({} redeliveries); load {:.1?}, total {:.1?}; rows {:?}; {} log bytes \
         scanned for secrets",
        load.events.len(),
        load.duplicates(),
        delivered.len(),
        kills.len(),
        kills.iter().sum::<Duration>() / kills.len().max(1) as u32,
        cut,
        tally(&delivered),
        pending.len(),
        redelivered.len(),
        load_time,
        started.elapsed(),
        comparison.rows,
        scanned,
    );
}

/// The change feed's newest cursor: its pages read to the end.
async fn feed_head(client: &billing_chaos::client::Client, key: &str) -> String {
    let mut cursor = "0".to_owned();
    loop {
        let path = format!("/v1/changes?after={cursor}&limit=1000");
        let page = client.get(&path, Some(key)).await;
        let page = match &page.result {
            Ok(answer) if answer.is_success() => answer.json(),
            _ => panic!("reading the feed: {}", page.label()),
        };
        let next = page["next_cursor"].as_str().unwrap().to_owned();
        if page["changes"].as_array().is_none_or(Vec::is_empty) {
            return next;
        }
        cursor = next;
    }
}
