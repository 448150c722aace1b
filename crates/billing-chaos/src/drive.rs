//! Delivering a load the way Stripe does: many in flight, each delivery signed at send time,
//! every answer recorded; then redelivery rounds until every event got a 2xx.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::client::{Client, Exchange, Failure};
use crate::error::{ChaosError, Result};
use crate::load::Load;

/// One delivery and what came of it.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Index of the event in the load.
    pub event: usize,
    pub exchange: Exchange,
}

/// Counts answers by label (`"200"`, `"503"`, `"refused"`, …).
pub fn tally(delivered: &[Delivered]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for d in delivered {
        *counts.entry(d.exchange.label()).or_insert(0) += 1;
    }
    counts
}

/// How deliveries are paced.
#[derive(Debug, Clone)]
pub struct Pace {
    /// Concurrent senders.
    pub in_flight: usize,
    /// Put a delivery whose connection was refused (the request never reached a server) back
    /// at the end of the queue, as Stripe retries it.
    pub requeue_refused: bool,
    /// How long a sender waits after a delivery without a 2xx (Stripe backs off too).
    pub pause_after_failure: Duration,
    /// No more requeuing after this instant.
    pub give_up_at: Instant,
}

impl Pace {
    /// 16 in flight, refused deliveries requeued for at most `budget`.
    pub fn stripe_like(budget: Duration) -> Self {
        Self {
            in_flight: 16,
            requeue_refused: true,
            pause_after_failure: Duration::from_millis(100),
            give_up_at: Instant::now() + budget,
        }
    }
}

/// Delivers `order` (indices into `load.events`) as `pace` says. `completed` counts finished
/// deliveries (fault injectors watch it).
pub async fn deliver(
    client: &Client,
    secret: &str,
    load: &Load,
    order: &[usize],
    pace: &Pace,
    completed: Arc<AtomicUsize>,
) -> Vec<Delivered> {
    let queue = Arc::new(Mutex::new(order.iter().copied().collect::<VecDeque<_>>()));
    let results = Arc::new(Mutex::new(Vec::with_capacity(order.len())));
    let bodies: Arc<Vec<bytes::Bytes>> =
        Arc::new(load.events.iter().map(|e| e.body.clone()).collect());
    let mut senders = Vec::new();
    for _ in 0..pace.in_flight.max(1) {
        let (queue, results, bodies, completed) = (
            queue.clone(),
            results.clone(),
            bodies.clone(),
            completed.clone(),
        );
        let client = client.clone();
        let secret = secret.to_owned();
        let pace = pace.clone();
        senders.push(tokio::spawn(async move {
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop_front();
                let Some(event) = next else { break };
                let exchange = client.webhook(&bodies[event], &secret).await;
                let refused = matches!(exchange.result, Err(Failure::Refused));
                let failed = !exchange.is_success();
                results
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Delivered { event, exchange });
                completed.fetch_add(1, Ordering::SeqCst);
                if refused && pace.requeue_refused && Instant::now() < pace.give_up_at {
                    queue
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push_back(event);
                }
                if failed {
                    tokio::time::sleep(pace.pause_after_failure).await;
                }
            }
        }));
    }
    for sender in senders {
        let _ = sender.await;
    }
    let mut results = std::mem::take(&mut *results.lock().unwrap_or_else(PoisonError::into_inner));
    results.sort_by_key(|d| d.exchange.started);
    results
}

/// Events of `delivered` that got a 2xx at least once.
pub fn acknowledged(delivered: &[Delivered]) -> BTreeSet<usize> {
    delivered
        .iter()
        .filter(|d| d.exchange.is_success())
        .map(|d| d.event)
        .collect()
}

/// Events of the load never acknowledged in `delivered`.
pub fn unacknowledged(load: &Load, delivered: &[Delivered]) -> BTreeSet<usize> {
    let acked = acknowledged(delivered);
    (0..load.events.len())
        .filter(|i| !acked.contains(i))
        .collect()
}

/// Redelivers every event in `pending` (each once per round, 16 in flight) until all got a
/// 2xx, for at most `rounds` rounds. Returns every redelivery made.
pub async fn redeliver_until_acknowledged(
    client: &Client,
    secret: &str,
    load: &Load,
    mut pending: BTreeSet<usize>,
    rounds: usize,
) -> Result<Vec<Delivered>> {
    let mut all = Vec::new();
    for _ in 0..rounds {
        if pending.is_empty() {
            return Ok(all);
        }
        let order: Vec<usize> = pending.iter().copied().collect();
        let pace = Pace {
            requeue_refused: false,
            ..Pace::stripe_like(Duration::ZERO)
        };
        let round = deliver(
            client,
            secret,
            load,
            &order,
            &pace,
            Arc::new(AtomicUsize::new(0)),
        )
        .await;
        for event in acknowledged(&round) {
            pending.remove(&event);
        }
        all.extend(round);
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    if pending.is_empty() {
        Ok(all)
    } else {
        let sample: Vec<String> = all
            .iter()
            .rev()
            .filter(|d| pending.contains(&d.event))
            .take(3)
            .map(|d| match &d.exchange.result {
                Ok(a) => format!("{} {} {}", load.events[d.event].id, a.status, a.text()),
                Err(e) => format!("{} {e}", load.events[d.event].id),
            })
            .collect();
        Err(ChaosError::Timeout(format!(
            "{} events still without a 2xx after {rounds} redelivery rounds: {sample:?}",
            pending.len()
        )))
    }
}
