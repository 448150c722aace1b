//! Group commit for ingest: concurrent deliveries share one transaction.
//!
//! A delivery waits in the [`IngestQueue`]. A *lane* (a task; at most
//! [`AppSettings::ingest_lanes`](crate::AppSettings::ingest_lanes) run) takes what is waiting,
//! oldest first, up to [`AppSettings::ingest_batch`](crate::AppSettings::ingest_batch)
//! deliveries, leaving those that name a customer another lane is applying (they wait for that
//! lane, which takes them next), so two lanes never apply events of one customer nor wait for
//! each other's customer locks, while one customer's waiting events go together. It applies
//! them in one transaction:
//!
//! 1. the events are claimed, then the customers they name are locked and read, by one call
//!    ([`EventTx::claim_events_then_lock_customers`](billing_ports::EventTx::claim_events_then_lock_customers);
//!    one round trip on Postgres): the events in the order of their ids, so that two
//!    transactions claiming overlapping sets (replicas) wait for each other in one direction
//!    only, the customers sorted;
//! 2. the feed locks of the users the claimed events name and the locks of the payments they
//!    name are tried, all those users' access is read and kept, the subscriptions they
//!    change (of the events that name a customer, locked in step 1) are read and locked, and
//!    the credit sources they may add read ([`feed::lock_then_keep`]; one round trip on
//!    Postgres);
//! 3. each claimed event is applied in turn, in the order of their ids, exactly as a
//!    delivery alone is ([`crate::ingest::apply_claimed`]): its customer is then already locked
//!    and known to the transaction. Every other lock is only tried
//!    ([`LockTx::wait_for_locks`](billing_ports::LockTx::wait_for_locks)): taken after other
//!    events' locks, out of the locking rule's order, waiting for it could deadlock with a
//!    transaction that follows the order; a busy one fails the shared transaction (below);
//! 4. one commit; then every delivery is answered.
//!
//! The order of ids is also the order in which a serial replay of the commit order (commit
//! time, then id) applies them.
//!
//! A delivery never waits for a transaction to fill: a lane takes what is waiting when it is
//! free, so at one delivery in flight every transaction holds one event (applied by
//! [`BillingApp::ingest_one`], as without batching). A lane stops when nothing it may take is
//! waiting. A delivery no lane has taken within
//! [`AppSettings::ingest_wait`](crate::AppSettings::ingest_wait) (the pool's timeout: a lane
//! is a pooled connection) is withdrawn and answered as the database being unavailable,
//! nothing of it applied, as a unit of work that waited that long for a connection is.
//!
//! If anything in the shared transaction fails, it rolls back and each of its deliveries is
//! applied again on its own by [`BillingApp::ingest_one`], one after the other, which records
//! a failure for the event that fails, and only for it. So the shared transaction is only
//! ever an optimisation: what commits, and what is recorded, is what the deliveries alone
//! would have given. The one exception is the database being unavailable (unreachable, or
//! the transaction over its time limit): which event held it up cannot be told, so each
//! delivery is answered unavailable and none is recorded as failed; Stripe delivers each
//! again.
//!
//! A second delivery of an event while a lane applies the first waits for it instead of
//! claiming (which would wait for the lane's commit on the event's row, holding up its own
//! transaction's other events): when the first committed, it is answered as a duplicate with
//! the first's status; when the first failed, it is queued again and claims the event.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use billing_domain::BillingEvent;
use billing_ports::{
    BillingStore, Cause, Claim, ErrorChain, EventStatus, NewEvent, ScopedFutureExt, StoreError,
};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::effects::{Context, customer};
use crate::error::{AppError, IngestError};
use crate::feed;
use crate::ingest::{
    BillingApp, IngestOutcome, apply_claimed, claim_of, credit_source_to_read, subscription_to_lock,
};

/// The histogram: deliveries per ingest transaction a lane ran (1 for a delivery it applied
/// alone). Small batches under load mean each delivery pays a whole transaction's statements.
pub const TRANSACTION_DELIVERIES_METRIC: &str = "billing_ingest_transaction_deliveries";

/// The histogram: seconds from a delivery's queueing to a lane taking it (the wait for a free
/// lane, or for the lane applying an event of the same customer).
pub const QUEUE_WAIT_METRIC: &str = "billing_ingest_queue_wait_seconds";

/// The counter: shared ingest transactions that failed, by `outcome`: `applied_alone` (each
/// delivery then applied in a transaction of its own) or `unavailable` (the database could not
/// be reached or the transaction ran out of time: each delivery answered so, Stripe retries).
pub const SHARED_FAILURES_METRIC: &str = "billing_ingest_shared_failures_total";

/// [`SHARED_FAILURES_METRIC`]'s `outcome` when each delivery was then applied alone.
const APPLIED_ALONE: &str = "applied_alone";

/// [`SHARED_FAILURES_METRIC`]'s `outcome` when each delivery was answered unavailable.
const UNAVAILABLE: &str = "unavailable";

/// The `outcome` labels of [`SHARED_FAILURES_METRIC`].
pub const SHARED_FAILURE_OUTCOMES: [&str; 2] = [APPLIED_ALONE, UNAVAILABLE];

/// The deliveries waiting for an ingest transaction, the events and customers being applied,
/// and how many lanes run.
pub(crate) struct IngestQueue {
    state: Mutex<State>,
    /// How many lanes may run at once.
    lanes: usize,
}

#[derive(Default)]
struct State {
    /// Deliveries no lane has taken yet, oldest first.
    waiting: VecDeque<Job>,
    /// The ids of the events lanes are applying: by which lane, and the further deliveries
    /// of that event that arrived meanwhile.
    running: HashMap<String, Running>,
    /// The customers named by the events lanes are applying: a delivery naming one waits
    /// until that lane is done, so two lanes never apply events of one customer (nor wait
    /// for each other's customer locks).
    busy: HashSet<String>,
    /// How many lanes run.
    active: usize,
    /// The number of the next lane started.
    next_lane: u64,
    /// The number of the next delivery queued.
    next: u64,
}

impl State {
    /// Queues `followers` again, first in line and in their order, to claim their event
    /// themselves (the delivery they waited for did not commit it).
    fn requeue(&mut self, followers: Vec<Job>) {
        for follower in followers.into_iter().rev() {
            self.waiting.push_front(follower);
        }
    }

    /// Deliveries naming `customers` may be taken again.
    fn release(&mut self, customers: &[String]) {
        for customer in customers {
            self.busy.remove(customer);
        }
    }
}

/// An event a lane is applying.
struct Running {
    /// The lane's number.
    lane: u64,
    /// Further deliveries of the event, waiting for it.
    followers: Vec<Job>,
}

/// One delivery waiting for its answer.
struct Job {
    /// Its number in the queue (what [`IngestQueue::withdraw`] finds it by).
    number: u64,
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
            state: Mutex::default(),
            lanes: lanes.max(1),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job`: its number, and the number of a lane to start for it when fewer than
    /// the maximum run (the caller starts it, counted as running already).
    fn push(&self, mut job: Job) -> (u64, Option<u64>) {
        let mut state = self.state();
        let number = state.next;
        state.next += 1;
        job.number = number;
        state.waiting.push_back(job);
        if state.active >= self.lanes {
            return (number, None);
        }
        state.active += 1;
        let lane = state.next_lane;
        state.next_lane += 1;
        (number, Some(lane))
    }

    /// Up to `max` waiting deliveries, oldest first, of distinct events no lane is applying
    /// and of customers no other lane is applying, now marked as being applied (a further
    /// delivery of one of those events waits for it), with the customers they name. Empty
    /// when nothing can be taken: the calling lane then stops (a delivery left waiting waits
    /// for a running lane, which takes it once done with its customer).
    fn take(&self, lane: u64, max: usize) -> (Vec<Job>, Vec<String>) {
        let mut guard = self.state();
        let state = &mut *guard;
        let mut batch = Vec::new();
        let mut customers: Vec<String> = Vec::new();
        let mut index = 0;
        while batch.len() < max.max(1) && index < state.waiting.len() {
            let job = &state.waiting[index];
            let customer = claim_of(&job.event).1;
            let blocked = !state.running.contains_key(&job.event.id)
                && customer.is_some_and(|customer| {
                    state.busy.contains(customer) && !customers.iter().any(|c| c == customer)
                });
            if blocked {
                index += 1;
                continue;
            }
            let customer = customer.map(str::to_owned);
            let Some(job) = state.waiting.remove(index) else {
                break;
            };
            if let Some(running) = state.running.get_mut(&job.event.id) {
                running.followers.push(job);
                continue;
            }
            if let Some(customer) = customer
                && state.busy.insert(customer.clone())
            {
                customers.push(customer);
            }
            let running = Running {
                lane,
                followers: Vec::new(),
            };
            state.running.insert(job.event.id.clone(), running);
            batch.push(job);
        }
        if batch.is_empty() {
            state.active -= 1;
        }
        drop(guard);
        (batch, customers)
    }

    /// Answers the delivery of `job` with `result`, and the further deliveries of its event
    /// that waited for it: as duplicates when it committed, queued again (first in line) when
    /// it failed, to claim the event themselves.
    fn finish(&self, job: Job, result: Result<IngestOutcome, IngestError>) {
        let mut state = self.state();
        let followers = state
            .running
            .remove(&job.event.id)
            .map(|running| running.followers)
            .unwrap_or_default();
        match &result {
            Ok(outcome) => {
                let status = status_of(*outcome);
                for follower in followers {
                    let _ = follower.reply.send(Ok(IngestOutcome::Duplicate(status)));
                }
            }
            Err(_) => state.requeue(followers),
        }
        drop(state);
        // The caller may have gone (its request cancelled): the event is applied all the same.
        let _ = job.reply.send(result);
    }

    /// Takes back the delivery numbered `number` when no lane has taken it yet (waiting, or
    /// waiting for another delivery of its event): true when it was withdrawn, and will never
    /// be applied by the queue.
    fn withdraw(&self, number: u64) -> bool {
        let mut state = self.state();
        if let Some(index) = state.waiting.iter().position(|job| job.number == number) {
            state.waiting.remove(index);
            return true;
        }
        for running in state.running.values_mut() {
            if let Some(index) = running
                .followers
                .iter()
                .position(|job| job.number == number)
            {
                running.followers.remove(index);
                return true;
            }
        }
        false
    }

    /// A lane is done with `customers`: deliveries naming them may be taken again.
    fn release(&self, customers: &[String]) {
        self.state().release(customers);
    }

    /// Lane `lane` stopped in the middle of its work (a panic, or its runtime shutting down):
    /// what it held is given back, so nothing waits for it. Its own deliveries, unanswered,
    /// see their answer dropped (answered unavailable); those waiting for one of its events
    /// are queued again, first in line, to claim it themselves. No lane is started here (the
    /// runtime may be going away): the next delivery queued starts one, and one waiting
    /// meanwhile is answered unavailable after `ingest_wait` if none does.
    fn abandon(&self, lane: u64, customers: &[String]) {
        let mut guard = self.state();
        let state = &mut *guard;
        state.active -= 1;
        state.release(customers);
        let abandoned: Vec<String> = state
            .running
            .iter()
            .filter(|(_, running)| running.lane == lane)
            .map(|(id, _)| id.clone())
            .collect();
        for id in abandoned {
            if let Some(running) = state.running.remove(&id) {
                state.requeue(running.followers);
            }
        }
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
    let (reply, mut answer) = oneshot::channel();
    let job = Job {
        number: 0,
        event,
        payload,
        caller: tracing::Span::current(),
        started: Instant::now(),
        reply,
    };
    let (number, lane) = app.queue().push(job);
    if let Some(lane) = lane {
        // On the store's own runtime when it has one (its connections' thread), else here.
        let runtime = app.store().runtime();
        drop(
            runtime
                .unwrap_or_else(Handle::current)
                .spawn(serve(app.clone(), lane)),
        );
    }
    let wait = app.settings().ingest_wait;
    let answered = match tokio::time::timeout(wait, &mut answer).await {
        Ok(answered) => answered,
        // Not taken in time: as a pool timeout, the database is taken as unavailable.
        Err(_) if app.queue().withdraw(number) => {
            return Err(not_applied_unavailable(Cause::msg(format!(
                "waited {wait:?} for an ingest transaction (a free one, or another delivery \
                 of the event) without being taken"
            ))));
        }
        // Taken by a lane: its transaction is bounded by the store's own limits.
        Err(_) => answer.await,
    };
    answered.unwrap_or_else(|_| {
        // Only a lane dropped mid-work (a panic, its runtime stopping) leaves a delivery
        // unanswered: nothing of it commits after that, and Stripe will deliver it again.
        Err(not_applied_unavailable(Cause::msg(
            "the ingest transaction stopped before answering",
        )))
    })
}

/// The answer of a delivery not applied because the database was, or is taken as,
/// unavailable: no failure recorded (none is the event's own); Stripe delivers it again.
fn not_applied_unavailable(cause: Cause) -> IngestError {
    IngestError {
        cause: AppError::Store(StoreError::Unavailable(cause)),
        recorded: false,
    }
}

/// A lane: takes and applies what is waiting until nothing can be taken.
async fn serve<S: BillingStore>(app: BillingApp<S>, lane: u64) {
    let mut serving = Serving {
        queue: Arc::clone(app.queue()),
        lane,
        customers: Vec::new(),
        stopped: false,
    };
    loop {
        let (batch, customers) = app.queue().take(lane, app.settings().ingest_batch);
        if batch.is_empty() {
            // `take` counted the lane out.
            serving.stopped = true;
            return;
        }
        serving.customers = customers;
        let waited = metrics::histogram!(QUEUE_WAIT_METRIC);
        for job in &batch {
            waited.record(job.started.elapsed().as_secs_f64());
        }
        metrics::histogram!(TRANSACTION_DELIVERIES_METRIC).record(batch.len() as f64);
        run(&app, batch).await;
        app.queue().release(&std::mem::take(&mut serving.customers));
    }
}

/// A running lane: if it is dropped before it stopped (a panic in its work, or its runtime
/// shutting down), what it held is given back ([`IngestQueue::abandon`]).
struct Serving {
    queue: Arc<IngestQueue>,
    lane: u64,
    /// The customers of the batch being applied.
    customers: Vec<String>,
    stopped: bool,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if !self.stopped {
            self.queue.abandon(self.lane, &self.customers);
        }
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
        let payload = std::mem::take(&mut job.payload);
        let result = app
            .ingest_one(&job.event, payload)
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
        Err(AppError::Store(error)) if error.is_unavailable() => {
            // The database could not be reached, or did not finish in time. Which event, if
            // any, held it up cannot be told, and applying them again one by one would wait
            // as many times: each is answered unavailable, none recorded as failed (a
            // recorded failure must be the event's own); Stripe delivers each again.
            tracing::warn!(
                events = entries.len(),
                error = ErrorChain(&error).to_string(),
                "a shared ingest transaction found the database unavailable; \
                 answering each of its deliveries so"
            );
            metrics::counter!(SHARED_FAILURES_METRIC, "outcome" => UNAVAILABLE).increment(1);
            for entry in entries {
                let failure = not_applied_unavailable(error.cause().clone());
                app.queue().finish(entry.job, Err(failure));
            }
        }
        Err(error) => {
            tracing::info!(
                events = entries.len(),
                error = ErrorChain(&error).to_string(),
                "a shared ingest transaction failed; applying its events one by one"
            );
            metrics::counter!(SHARED_FAILURES_METRIC, "outcome" => APPLIED_ALONE).increment(1);
            // One after the other: the lane holds one connection at a time.
            for entry in entries {
                let Entry { job, new_event, .. } = entry;
                let result = app
                    .ingest_one(&job.event, new_event.payload)
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
                // The customers of every event, claimed or found done (the claims are not
                // known yet): locked and read in the claims' round trip.
                let customers: Vec<String> = entries
                    .iter()
                    .filter_map(|entry| claim_of(&entry.job.event).1)
                    .map(str::to_owned)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let claims = tx
                    .claim_events_then_lock_customers(&claims, at, &customers)
                    .await?;
                // Every later lock (an event's feed locks, its payment's) comes after locks
                // of other events, out of the rule's order: only tried, so that the
                // transaction never waits in a cycle; a busy one rolls it back and each
                // delivery is applied alone.
                tx.wait_for_locks(false).await?;
                // Before any effect, in the rule's order (customers, users, payments, links):
                // the feed locks of the users every event names itself or through its
                // customer, the locks of the payments they name and the link locks of the
                // users an event's effect links its customer to (`customer::link_of`), in one
                // statement, with all those users' access read in the same round trip; then
                // the subscriptions they change (of the events naming a customer), read and
                // locked in one statement (skipping any another transaction holds; those not
                // stored known absent), and which of the credit sources their effects may add
                // are stored (those not stored are added with the commit). The store keeps
                // what it read for each event's turn, following this transaction's writes.
                let (mut users, mut payments, mut links, mut subscriptions, mut credit_sources) = (
                    BTreeSet::new(),
                    BTreeSet::new(),
                    BTreeSet::new(),
                    BTreeSet::new(),
                    BTreeSet::new(),
                );
                for (entry, claim) in entries.iter().zip(&claims) {
                    let event = &entry.job.event;
                    if let (Claim::Claimed { .. }, (EventStatus::Processed, customer_id)) =
                        (claim, claim_of(event))
                    {
                        let customer = match customer_id {
                            Some(id) => tx.lock_customer(id).await?,
                            None => None,
                        };
                        let link = customer::link_of(&event.fact, customer.as_ref());
                        links.extend(link.map(str::to_owned));
                        users.extend(feed::users_of(event, customer));
                        if let Some((intent, charge)) = feed::payment_ids(&event.fact) {
                            payments.extend(intent.into_iter().chain(charge).map(str::to_owned));
                        }
                        subscriptions
                            .extend(subscription_to_lock(event, &entry.ctx).map(str::to_owned));
                        credit_sources.extend(credit_source_to_read(event));
                    }
                }
                feed::lock_then_keep(
                    &mut *tx,
                    users,
                    payments,
                    links,
                    subscriptions,
                    credit_sources,
                )
                .await?;
                let mut outcomes = Vec::with_capacity(entries.len());
                let mut changes = Vec::new();
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
                            let apply = apply_claimed(
                                &mut *tx,
                                &entry.ctx,
                                event,
                                claimed,
                                customer,
                                &late,
                                &mut changes,
                            );
                            apply.instrument(entry.span.clone()).await?
                        }
                    };
                    outcomes.push(outcome);
                }
                // Every event's feed records in one statement, in event order.
                tx.insert_changes_at_commit(changes).await?;
                Ok::<_, AppError>(outcomes)
            }
            .scope_boxed()
        })
        .await
}
