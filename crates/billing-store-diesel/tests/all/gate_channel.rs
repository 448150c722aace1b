//! The gate channel between two processes on one database: what one publishes reaches the
//! other, and under a stream of commits the invalidations share sends (at most one `NOTIFY`
//! per `SEND_EVERY`) instead of one statement each.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing_ports::{GateBroadcast, GateInvalidation};
use billing_store_diesel::notify::SEND_EVERY;
use billing_store_diesel::testing::TestDatabase;
use billing_store_diesel::{GateChannel, GateEvent};

/// How long a condition may take before the test fails (a failure bound, not a timing claim).
const DEADLINE: Duration = Duration::from_secs(15);

/// A channel on `db` that records every change it hears; returned once it listens.
async fn listening(db: &TestDatabase) -> (GateChannel, Arc<Mutex<Vec<GateInvalidation>>>) {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let connected = Arc::new(Mutex::new(false));
    let (log, up) = (Arc::clone(&heard), Arc::clone(&connected));
    let channel = db
        .store()
        .gate_channel(move |event| match event {
            GateEvent::Changed(change) => log.lock().unwrap().push(change),
            GateEvent::Connected { .. } => *up.lock().unwrap() = true,
            GateEvent::Disconnected { .. } => {}
        })
        .unwrap()
        .expect("a Postgres store has a gate channel");
    let started = Instant::now();
    while !*connected.lock().unwrap() {
        assert!(started.elapsed() < DEADLINE, "the channel never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (channel, heard)
}

fn user(n: usize) -> String {
    format!("user_{n:03}_9kTq2Wm")
}

/// The change of user `n` alone.
fn one_user(n: usize) -> GateInvalidation {
    GateInvalidation::Keys {
        customers: Vec::new(),
        users: vec![user(n)],
    }
}

/// The users named by `changes`.
fn users(changes: &[GateInvalidation]) -> BTreeSet<String> {
    changes
        .iter()
        .flat_map(|change| match change {
            GateInvalidation::Keys { users, .. } => users.clone(),
            GateInvalidation::All => panic!("a few users never become everything"),
        })
        .collect()
}

/// Sixty invalidations published a millisecond apart (commits arriving faster than a
/// `NOTIFY` round trip) all reach the other process, in about one notification per
/// `SEND_EVERY` of the burst rather than one each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_invalidations_reaches_the_other_process_in_few_notifications() {
    let db = TestDatabase::postgres().await;
    let (sender, _) = listening(&db).await;
    let (_receiver, heard) = listening(&db).await;

    // A lone change after a quiet spell goes out at once.
    sender.publish(&one_user(999));
    let started = Instant::now();
    while heard.lock().unwrap().is_empty() {
        assert!(
            started.elapsed() < DEADLINE,
            "the first change never arrived"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    heard.lock().unwrap().clear();

    let burst = Instant::now();
    for n in 0..60 {
        sender.publish(&one_user(n));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = burst.elapsed();
    let expected: BTreeSet<String> = (0..60).map(user).collect();
    let started = Instant::now();
    while users(&heard.lock().unwrap()) != expected {
        assert!(
            started.elapsed() < DEADLINE,
            "not every change arrived: {:?}",
            users(&heard.lock().unwrap())
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let notifications = heard.lock().unwrap().len();
    // One send per `SEND_EVERY` of the burst, the first at once and the last after it, with
    // room for a late timer; one send per publish would be 60.
    let bound = (took.as_millis() / SEND_EVERY.as_millis()) as usize * 3 / 2 + 3;
    assert!(
        notifications <= bound,
        "{notifications} notifications for a burst of {took:?} (at most {bound})"
    );
}
