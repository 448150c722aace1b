//! Group commit for ingest: concurrent deliveries share one transaction.
//!
//! A delivery waits in the [`IngestQueue`]; a *lane* (a task holding one of
//! [`AppSettings::ingest_lanes`](crate::AppSettings::ingest_lanes) permits) takes what is
//! waiting, up to [`AppSettings::ingest_batch`](crate::AppSettings::ingest_batch) deliveries,
//! and applies them in one transaction:
//!
//! 1. the events are claimed by one call ([`EventTx::claim_events`], one statement on
//!    Postgres), in the order of their ids, so that two lanes claiming overlapping sets wait
//!    for each other in one direction only;
//! 2. the customers they name are locked and read by one call
//!    ([`CustomerTx::lock_customers`], sorted, one round trip on Postgres);
//! 3. each claimed event is applied in turn, in the order of their ids, exactly as a
//!    delivery alone is ([`crate::ingest::apply_claimed`]): its customer is then already locked
//!    and known to the transaction;
//! 4. one commit; then every delivery is answered.
//!
//! The order of ids is also the order in which a serial replay of the commit order (commit
//! time, then id) applies them.
//!
//! A delivery never waits for a transaction that has not started: a lane takes what is
//! waiting when it is free, so at one delivery in flight every transaction holds one event
//! (applied by [`BillingApp::ingest_one`], as without batching).
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
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use billing_domain::BillingEvent;
use billing_ports::{
    BillingStore, Cause, Claim, ErrorChain, EventStatus, NewEvent, ScopedFutureExt, StoreError,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tracing::Instrument;

use crate::effects::Context;
use crate::error::{AppError, IngestError};
use crate::ingest::{BillingApp, IngestOutcome, apply_claimed, claim_of};

/// The deliveries waiting for an ingest transaction, and the events being applied.
pub(crate) struct IngestQueue {
    state: Mutex<State>,
    /// One permit per lane that may run.
    lanes: Arc<Semaphore>,
}

#[derive(Default)]
struct State {
    /// Deliveries no lane has taken yet, oldest first.
    waiting: VecDeque<Job>,
    /// The ids of the events lanes are applying, each with the further deliveries of that
    /// event that arrived meanwhile.
    running: HashMap<String, Vec<Job>>,
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
    /// A queue served by at most `lanes` transactions at once (at least one).
    pub(crate) fn new(lanes: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            lanes: Arc::new(Semaphore::new(lanes.max(1))),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A lane's permit, when one is free.
    fn free_lane(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.lanes).try_acquire_owned().ok()
    }

    /// Up to `max` waiting deliveries of distinct events no lane is applying, now marked as
    /// being applied; a further delivery of one of those waits for it.
    fn take(&self, max: usize) -> Vec<Job> {
        let mut state = self.state();
        let mut batch = Vec::new();
        while batch.len() < max.max(1) {
            let Some(job) = state.waiting.pop_front() else {
                break;
            };
            match state.running.get_mut(&job.event.id) {
                Some(followers) => followers.push(job),
                None => {
                    state.running.insert(job.event.id.clone(), Vec::new());
                    batch.push(job);
                }
            }
        }
        batch
    }

    /// Whether a delivery is waiting for a lane.
    fn has_waiting(&self) -> bool {
        !self.state().waiting.is_empty()
    }

    /// Answers the delivery of `job` with `result`, and the further deliveries of its event
    /// that waited for it: as duplicates when it committed, queued again (first in line) when
    /// it failed, to claim the event themselves.
    fn finish(&self, job: Job, result: Result<IngestOutcome, IngestError>) {
        let followers = self.state().running.remove(&job.event.id);
        let followers = followers.unwrap_or_default();
        match &result {
            Ok(outcome) => {
                let status = status_of(*outcome);
                for follower in followers {
                    let _ = follower.reply.send(Ok(IngestOutcome::Duplicate(status)));
                }
            }
            Err(_) => {
                let mut state = self.state();
                for follower in followers.into_iter().rev() {
                    state.waiting.push_front(follower);
                }
            }
        }
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
    app.queue().state().waiting.push_back(job);
    if let Some(permit) = app.queue().free_lane() {
        tokio::spawn(lane(app.clone(), permit));
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

/// A lane: takes and applies what is waiting until nothing is, then gives its permit back.
async fn lane<S: BillingStore>(app: BillingApp<S>, permit: OwnedSemaphorePermit) {
    let mut permit = Some(permit);
    loop {
        let batch = app.queue().take(app.settings().ingest_batch);
        if batch.is_empty() {
            drop(permit.take());
            // A delivery queued after `take` and before the permit was back started no lane:
            // look once more, now that the permit is free.
            if !app.queue().has_waiting() {
                return;
            }
            match app.queue().free_lane() {
                Some(again) => permit = Some(again),
                None => return,
            }
            continue;
        }
        run(&app, batch).await;
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
async fn run<S: BillingStore>(app: &BillingApp<S>, mut batch: Vec<Job>) {
    if batch.len() == 1 {
        let Some(mut job) = batch.pop() else { return };
        let event = job.event.clone();
        let payload = std::mem::take(&mut job.payload);
        let result = app
            .ingest_one(event, payload)
            .instrument(job.caller.clone())
            .await;
        app.queue().finish(job, result);
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
                app.queue().finish(entry.job, Ok(outcome));
            }
        }
        Err(error) => {
            tracing::info!(
                events = entries.len(),
                error = ErrorChain(&error).to_string(),
                "a shared ingest transaction failed; applying its events one by one"
            );
            for entry in entries {
                let Entry { job, new_event, .. } = entry;
                let result = app
                    .ingest_one(job.event.clone(), new_event.payload)
                    .instrument(job.caller.clone())
                    .await;
                app.queue().finish(job, result);
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
