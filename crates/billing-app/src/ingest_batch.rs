//! Group commit for ingest: concurrent deliveries share one transaction.
//!
//! A delivery waits in the [`IngestQueue`], on the *lane* of the customer it names (of its id
//! when it names none; [`AppSettings::ingest_lanes`](crate::AppSettings::ingest_lanes) lanes),
//! so two lanes never apply events of one customer and never wait for each other's customer
//! locks. A task serves a lane while anything waits on it: it takes what is waiting, up to
//! [`AppSettings::ingest_batch`](crate::AppSettings::ingest_batch) deliveries, and applies
//! them in one transaction:
//!
//! 1. the events are claimed by one call ([`EventTx::claim_events`](billing_ports::EventTx::claim_events), one statement on
//!    Postgres), in the order of their ids, so that two transactions claiming overlapping
//!    sets (replicas) wait for each other in one direction only;
//! 2. the customers they name are locked and read by one call
//!    ([`CustomerTx::lock_customers`](billing_ports::CustomerTx::lock_customers), sorted, one round trip on Postgres);
//! 3. each claimed event is applied in turn, in the order of their ids, exactly as a
//!    delivery alone is ([`crate::ingest::apply_claimed`]): its customer is then already locked
//!    and known to the transaction;
//! 4. one commit; then every delivery is answered.
//!
//! The order of ids is also the order in which a serial replay of the commit order (commit
//! time, then id) applies them.
//!
//! A delivery never waits for a transaction to fill: a lane takes what is waiting when it is
//! free, so at one delivery in flight every transaction holds one event (applied by
//! [`BillingApp::ingest_one`], as without batching).
//!
//! If anything in the shared transaction fails, it rolls back and each of its deliveries is
//! applied again on its own by [`BillingApp::ingest_one`], which records a failure for the
//! event that fails, and only for it. So the shared transaction is only ever an
//! optimisation: what commits, and what is recorded, is what the deliveries alone would have
//! given.
//!
//! A second delivery of an event while a lane applies the first waits for it instead of
//! claiming (which would wait for the lane's commit on the event's row, holding up its own
//! transaction's other events): when the first committed, it is answered as a duplicate with
//! the first's status; when the first failed, it is queued again and claims the event.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use billing_domain::BillingEvent;
use billing_ports::{
    BillingStore, Cause, Claim, ErrorChain, EventStatus, NewEvent, ScopedFutureExt, StoreError,
};
use futures_util::future::join_all;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::effects::Context;
use crate::error::{AppError, IngestError};
use crate::ingest::{BillingApp, IngestOutcome, apply_claimed, claim_of};

/// The deliveries waiting for an ingest transaction, and the events being applied: one queue
/// per lane. A delivery goes to the lane of the customer it names (of its id when it names
/// none), so two lanes never apply events of one customer, and never wait for each other's
/// customer locks.
pub(crate) struct IngestQueue {
    lanes: Vec<Mutex<Lane>>,
    hasher: RandomState,
}

/// One lane's queue.
#[derive(Default)]
struct Lane {
    /// Deliveries the lane has not taken yet, oldest first.
    waiting: VecDeque<Job>,
    /// The ids of the events the lane is applying, each with the further deliveries of that
    /// event that arrived meanwhile.
    running: HashMap<String, Vec<Job>>,
    /// Whether a task is serving the lane (it clears this when it finds nothing waiting).
    active: bool,
}

/// One delivery waiting for its answer.
struct Job {
    event: BillingEvent,
    payload: String,
    /// The caller's span: the delivery's logs stay under its request.
    caller: tracing::Span,
    started: Instant,
    reply: oneshot::Sender<Result<IngestOutcome, IngestError>>,
}

impl IngestQueue {
    /// A queue served by `lanes` transactions at most (at least one).
    pub(crate) fn new(lanes: usize) -> Self {
        Self {
            lanes: (0..lanes.max(1)).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn lane(&self, index: usize) -> std::sync::MutexGuard<'_, Lane> {
        self.lanes[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The lane of `event`: by the customer it names, else by its id.
    fn lane_of(&self, event: &BillingEvent) -> usize {
        let key = claim_of(event).1.unwrap_or(&event.id);
        // The modulo of a u64 by a usize that fits in it: below the lane count, so it fits.
        (self.hasher.hash_one(key) % self.lanes.len() as u64) as usize
    }

    /// Queues `job` on its lane; true when no task serves the lane (the caller starts one).
    fn push(&self, index: usize, job: Job) -> bool {
        let mut lane = self.lane(index);
        lane.waiting.push_back(job);
        !std::mem::replace(&mut lane.active, true)
    }

    /// Up to `max` waiting deliveries of lane `index`, of distinct events it is not applying,
    /// now marked as being applied; a further delivery of one of those waits for it. Empty
    /// when nothing waits, and the lane is then no longer served.
    fn take(&self, index: usize, max: usize) -> Vec<Job> {
        let mut lane = self.lane(index);
        let mut batch = Vec::new();
        while batch.len() < max.max(1) {
            let Some(job) = lane.waiting.pop_front() else {
                break;
            };
            match lane.running.get_mut(&job.event.id) {
                Some(followers) => followers.push(job),
                None => {
                    lane.running.insert(job.event.id.clone(), Vec::new());
                    batch.push(job);
                }
            }
        }
        if batch.is_empty() {
            lane.active = false;
        }
        batch
    }

    /// Answers the delivery of `job` (taken from lane `index`) with `result`, and the further
    /// deliveries of its event that waited for it: as duplicates when it committed, queued
    /// again (first in line) when it failed, to claim the event themselves.
    fn finish(&self, index: usize, job: Job, result: Result<IngestOutcome, IngestError>) {
        let mut lane = self.lane(index);
        let followers = lane.running.remove(&job.event.id).unwrap_or_default();
        match &result {
            Ok(outcome) => {
                let status = status_of(*outcome);
                for follower in followers {
                    let _ = follower.reply.send(Ok(IngestOutcome::Duplicate(status)));
                }
            }
            Err(_) => {
                for follower in followers.into_iter().rev() {
                    lane.waiting.push_front(follower);
                }
            }
        }
        drop(lane);
        // The caller may have gone (its request cancelled): the event is applied all the same.
        let _ = job.reply.send(result);
    }
}

/// The stored status an outcome stands for (what a later delivery of the event finds).
fn status_of(outcome: IngestOutcome) -> EventStatus {
    match outcome {
        IngestOutcome::Processed => EventStatus::Processed,
        IngestOutcome::Ignored => EventStatus::Ignored,
        IngestOutcome::Stale => EventStatus::Stale,
        IngestOutcome::Duplicate(status) => status,
    }
}

/// [`BillingApp::ingest`] with group commit: queues the delivery, makes sure a lane will take
/// it, and waits for its answer.
pub(crate) async fn submit<S: BillingStore>(
    app: &BillingApp<S>,
    event: BillingEvent,
    payload: String,
) -> Result<IngestOutcome, IngestError> {
    let (reply, answer) = oneshot::channel();
    let job = Job {
        event,
        payload,
        caller: tracing::Span::current(),
        started: Instant::now(),
        reply,
    };
    let lane = app.queue().lane_of(&job.event);
    if app.queue().push(lane, job) {
        tokio::spawn(serve(app.clone(), lane));
    }
    answer.await.unwrap_or_else(|_| {
        // Only a panic in the lane drops a delivery unanswered: nothing of it committed
        // after the answer was lost, and Stripe will deliver it again.
        Err(IngestError {
            cause: AppError::Store(StoreError::Unavailable(Cause::msg(
                "the ingest transaction stopped before answering",
            ))),
            recorded: false,
        })
    })
}

/// Serves lane `index`: takes and applies what waits there until nothing does.
async fn serve<S: BillingStore>(app: BillingApp<S>, index: usize) {
    loop {
        let batch = app.queue().take(index, app.settings().ingest_batch);
        if batch.is_empty() {
            return;
        }
        run(&app, index, batch).await;
    }
}

/// One delivery being applied in a shared transaction.
struct Entry {
    job: Job,
    new_event: NewEvent,
    ctx: Context,
    span: tracing::Span,
}

/// Applies `batch` (deliveries of distinct events) and answers each.
async fn run<S: BillingStore>(app: &BillingApp<S>, lane: usize, mut batch: Vec<Job>) {
    if batch.len() == 1 {
        let Some(mut job) = batch.pop() else { return };
        let event = job.event.clone();
        let payload = std::mem::take(&mut job.payload);
        let result = app
            .ingest_one(event, payload)
            .instrument(job.caller.clone())
            .await;
        app.queue().finish(lane, job, result);
        return;
    }
    batch.sort_by(|a, b| a.event.id.cmp(&b.event.id));
    let entries: Vec<Entry> = batch
        .into_iter()
        .map(|mut job| {
            let (new_event, ctx) = app.prepare(&job.event, std::mem::take(&mut job.payload));
            let span = tracing::info_span!(
                parent: &job.caller,
                "ingest",
                event_id = job.event.id.as_str(),
                event_type = job.event.event_type.as_str(),
            );
            Entry {
                job,
                new_event,
                ctx,
                span,
            }
        })
        .collect();
    match apply_together(app, &entries).await {
        Ok(outcomes) => {
            if outcomes.contains(&IngestOutcome::Processed) {
                app.changes_committed();
            }
            for (entry, outcome) in entries.into_iter().zip(outcomes) {
                entry.span.in_scope(|| {
                    app.committed(&entry.job.event, outcome, entry.job.started);
                });
                app.queue().finish(lane, entry.job, Ok(outcome));
            }
        }
        Err(error) if error.is_unavailable() => {
            // Not the fault of one event: applying them again one by one would only wait for
            // the database as many times. Each is recorded failed (at once), as alone.
            let failed = join_all(entries.iter().map(|entry| {
                app.not_applied(&entry.new_event, error.clone(), entry.job.started)
                    .instrument(entry.span.clone())
            }))
            .await;
            for (entry, failure) in entries.into_iter().zip(failed) {
                app.queue().finish(lane, entry.job, Err(failure));
            }
        }
        Err(error) => {
            tracing::info!(
                events = entries.len(),
                error = ErrorChain(&error).to_string(),
                "a shared ingest transaction failed; applying its events one by one"
            );
            // At once: a failure that takes its time (a lock or statement timeout) is waited
            // for once more, not once per delivery.
            let results = join_all(entries.iter().map(|entry| {
                app.ingest_one(entry.job.event.clone(), entry.new_event.payload.clone())
                    .instrument(entry.job.caller.clone())
            }))
            .await;
            for (entry, result) in entries.into_iter().zip(results) {
                app.queue().finish(lane, entry.job, result);
            }
        }
    }
}

/// The shared transaction: claims every event, locks and reads their customers, applies each
/// claimed event in turn; the outcomes in the order of `entries`.
async fn apply_together<S: BillingStore>(
    app: &BillingApp<S>,
    entries: &[Entry],
) -> Result<Vec<IngestOutcome>, AppError> {
    let at = app.clock().now();
    app.store()
        .transaction(move |tx| {
            async move {
                let claims: Vec<(&NewEvent, EventStatus)> = entries
                    .iter()
                    .map(|entry| (&entry.new_event, claim_of(&entry.job.event).0))
                    .collect();
                let claims = tx.claim_events(&claims, at).await?;
                let customers: Vec<String> = entries
                    .iter()
                    .zip(&claims)
                    .filter(|(_, claim)| matches!(claim, Claim::Claimed { .. }))
                    .filter_map(|(entry, _)| claim_of(&entry.job.event).1)
                    .map(str::to_owned)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                tx.lock_customers(&customers).await?;
                let mut outcomes = Vec::with_capacity(entries.len());
                for (entry, claim) in entries.iter().zip(claims) {
                    let outcome = match claim {
                        Claim::AlreadyDone(status) => IngestOutcome::Duplicate(status),
                        Claim::Claimed { .. } => {
                            let event = &entry.job.event;
                            let (claimed, customer) = claim_of(event);
                            let customer = match customer {
                                Some(id) => tx.lock_customer(id).await?,
                                None => None,
                            };
                            let late = BTreeSet::new();
                            apply_claimed(&mut *tx, &entry.ctx, event, claimed, customer, &late)
                                .instrument(entry.span.clone())
                                .await?
                        }
                    };
                    outcomes.push(outcome);
                }
                Ok::<_, AppError>(outcomes)
            }
            .scope_boxed()
        })
        .await
}
