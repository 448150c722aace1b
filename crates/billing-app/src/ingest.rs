//! Ingestion of one verified event: claim, apply, mark done, in one transaction.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use billing_domain::{BillingEvent, Catalog, Fact};
use billing_ports::{
    Backoff, BillingStore, BillingTx, Claim, Clock, CustomerRecord, ErrorChain, EventDecoder,
    EventStatus, Failure, FailureKind, NewChange, NewEvent, ReadAhead, ScopedFutureExt, StoreError,
    StripeGateway,
};
use chrono::{DateTime, TimeDelta, Utc};

use crate::effects::{self, Context};
use crate::error::{AppError, IngestError};
use crate::feed;
use crate::gate::GateCache;

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Its effects were committed now.
    Processed,
    /// A type we do not act on; stored as ignored.
    Ignored,
    /// Older than what was already applied; stored as stale, nothing changed.
    Stale,
    /// Already done by an earlier delivery; nothing was touched.
    Duplicate(EventStatus),
}

/// Settings of the application's use cases: whether ingest re-fetches subscriptions, and the
/// retention of done events.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// How long the gate cache keeps a user's state (zero: no cache). Bounds how stale a
    /// feature check or entitlements answer can be after a change this process did not make
    /// (another replica, an operator); this process's own commits are seen at once.
    pub gate_ttl: std::time::Duration,
    /// How many users the gate cache keeps at most.
    pub gate_capacity: u64,
    /// Re-fetch subscriptions from Stripe instead of trusting the payload (needs a gateway).
    pub refetch: bool,
    /// Done events older than this are purged by [`BillingApp::purge_events`].
    pub retention: TimeDelta,
    /// How many events one purge statement deletes.
    pub purge_batch: u32,
    /// Change feed records older than this are purged by [`BillingApp::purge_changes_batch`]
    /// (a cursor older than what is kept is then answered as expired).
    pub change_retention: TimeDelta,
    /// When a transient failure is retried automatically, from its attempt count.
    pub retry: Backoff,
    /// The sweeper gives an event up after this many failed attempts (it stays failed and an
    /// operator's replay still applies it).
    pub max_attempts: u32,
    /// How many due events one sweep re-applies at most.
    pub sweep_batch: u32,
    /// How many concurrent deliveries one ingest transaction applies at most (group commit:
    /// they are claimed, locked and applied together, with one commit). 1: every delivery
    /// has a transaction of its own.
    pub ingest_batch: usize,
    /// How many ingest transactions run at once when deliveries share them (each holds a
    /// database connection while it runs). A delivery naming a customer another transaction
    /// is applying waits for that one, so they never wait for each other's customer locks.
    pub ingest_lanes: usize,
    /// How long a delivery waits for a lane to take it before it is answered as the
    /// database being unavailable (nothing of it applied; Stripe delivers it again), as a
    /// unit of work waiting for a pooled connection is: set it to the pool's timeout.
    pub ingest_wait: std::time::Duration,
}

/// How many users learnt of only after the effects an ingest retries with (one retry each).
const MAX_LATE_USERS: usize = 4;

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            gate_ttl: std::time::Duration::from_secs(5),
            gate_capacity: 100_000,
            refetch: false,
            retention: TimeDelta::days(30),
            purge_batch: 1_000,
            change_retention: TimeDelta::days(30),
            retry: Backoff::default(),
            max_attempts: 10,
            sweep_batch: 100,
            ingest_batch: 8,
            ingest_lanes: 4,
            ingest_wait: std::time::Duration::from_secs(5),
        }
    }
}

/// The billing application: the use cases over a store, a catalog, a clock and (optionally)
/// a Stripe gateway.
pub struct BillingApp<S> {
    store: Arc<S>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    gateway: Option<Arc<dyn StripeGateway>>,
    settings: AppSettings,
    gate: Arc<GateCache>,
    decoder: Option<Arc<dyn EventDecoder>>,
    feed: Arc<tokio::sync::watch::Sender<u64>>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    queue: Arc<crate::ingest_batch::IngestQueue>,
}

impl<S> Clone for BillingApp<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            catalog: Arc::clone(&self.catalog),
            clock: Arc::clone(&self.clock),
            gateway: self.gateway.clone(),
            settings: self.settings.clone(),
            gate: Arc::clone(&self.gate),
            decoder: self.decoder.clone(),
            feed: Arc::clone(&self.feed),
            stopping: Arc::clone(&self.stopping),
            queue: Arc::clone(&self.queue),
        }
    }
}

impl<S: BillingStore> BillingApp<S> {
    /// Builds the application.
    pub fn new(
        store: Arc<S>,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
        gateway: Option<Arc<dyn StripeGateway>>,
        settings: AppSettings,
    ) -> Self {
        Self {
            gate: Arc::new(GateCache::new(settings.gate_ttl, settings.gate_capacity)),
            queue: Arc::new(crate::ingest_batch::IngestQueue::new(settings.ingest_lanes)),
            store,
            catalog,
            clock,
            gateway,
            settings,
            decoder: None,
            feed: Arc::new(tokio::sync::watch::Sender::new(0)),
            stopping: Arc::default(),
        }
    }

    /// The application with `decoder` to read stored event bodies again (replays and the
    /// sweeper need it; only the adapter that knows Stripe's wire format implements it).
    pub fn with_decoder(mut self, decoder: Arc<dyn EventDecoder>) -> Self {
        self.decoder = Some(decoder);
        self
    }

    /// The event decoder, when configured.
    pub fn decoder(&self) -> Option<&Arc<dyn EventDecoder>> {
        self.decoder.as_ref()
    }

    /// The settings.
    pub fn settings(&self) -> &AppSettings {
        &self.settings
    }

    /// Records a failure of `event` at `now` with this app's retry schedule.
    pub(crate) async fn record_failure(
        &self,
        event: &NewEvent,
        error: &str,
        kind: FailureKind,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let failure = Failure {
            error,
            kind,
            backoff: self.settings.retry,
        };
        self.store.record_failure(event, &failure, now).await
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The plan catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Wakes the change feed's waiters ([`BillingApp::feed_commits`]): records may have been
    /// committed (by this process, or by another one it heard of).
    pub fn changes_committed(&self) {
        self.feed
            .send_modify(|commits| *commits = commits.wrapping_add(1));
    }

    /// A receiver that sees a new value after each [`BillingApp::changes_committed`]: what a
    /// long-polling reader of the feed waits on.
    pub fn feed_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.feed.subscribe()
    }

    /// The process is stopping: long-polling readers of the feed stop waiting and answer with
    /// what they have (an empty page), so a stop is not held up by a wait of up to a minute.
    /// Wakes them ([`BillingApp::feed_commits`]); [`BillingApp::is_stopping`] is true from now.
    pub fn stop_waiting(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        self.changes_committed();
    }

    /// Whether [`BillingApp::stop_waiting`] was called: a reader woken should not wait again.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The deliveries waiting for an ingest transaction (see [`crate::ingest_batch`]).
    pub(crate) fn queue(&self) -> &Arc<crate::ingest_batch::IngestQueue> {
        &self.queue
    }

    /// The gate cache (see [`crate::gate`]).
    pub(crate) fn gate(&self) -> &GateCache {
        &self.gate
    }

    /// The Stripe gateway, when configured.
    pub fn gateway(&self) -> Option<&Arc<dyn StripeGateway>> {
        self.gateway.as_ref()
    }

    /// Applies one verified event exactly once.
    ///
    /// `payload` is the verified raw body, stored with the event. On `Err` nothing of the
    /// event's effects was committed and the event is recorded as failed (attempts + 1), so the
    /// caller must answer with an error status and Stripe will deliver it again. `Ok` comes
    /// only after the commit.
    ///
    /// Concurrent calls share transactions (group commit, see [`AppSettings::ingest_batch`]):
    /// the deliveries waiting when a transaction starts are claimed, locked and applied in it
    /// one after the other, and each call returns once that transaction committed. If any of
    /// them fails, the transaction is rolled back and each is applied again on its own, so a
    /// failure is only ever recorded for the event that failed.
    pub async fn ingest(
        &self,
        event: BillingEvent,
        payload: String,
    ) -> Result<IngestOutcome, IngestError> {
        if self.settings.ingest_batch > 1 {
            return crate::ingest_batch::submit(self, event, payload).await;
        }
        self.ingest_one(&event, payload).await
    }

    /// [`BillingApp::ingest`] in a transaction of its own.
    #[tracing::instrument(
        name = "ingest",
        skip_all,
        fields(event_id = event.id.as_str(), event_type = event.event_type.as_str())
    )]
    pub(crate) async fn ingest_one(
        &self,
        event: &BillingEvent,
        payload: String,
    ) -> Result<IngestOutcome, IngestError> {
        let started = Instant::now();
        let (new_event, ctx) = self.prepare(event, payload);
        let now = ctx.now;
        let (new_event, ctx) = (&new_event, &ctx);
        // Users whose feed lock a first try learnt of only after its effects (see
        // `feed::Before::record`): the retry locks them first, in order.
        let mut late_users: BTreeSet<String> = BTreeSet::new();
        let result = loop {
            let late = &late_users;
            let result = self
                .store
                .transaction(move |tx| {
                    async move {
                        let (claimed, customer) = claim_of(event);
                        // With the claim, the change feed's first step (see `feed`): the
                        // customer's lock (its effects take it first anyway), so its link to a
                        // user cannot change while the users are read, and its row.
                        let (claim, customer) = tx
                            .claim_event_then_lock_customer(new_event, claimed, now, customer)
                            .await?;
                        if let Claim::AlreadyDone(status) = claim {
                            return Ok(IngestOutcome::Duplicate(status));
                        }
                        let mut changes = Vec::new();
                        let outcome =
                            apply_claimed(tx, ctx, event, claimed, customer, late, &mut changes)
                                .await?;
                        tx.insert_changes_at_commit(changes).await?;
                        Ok(outcome)
                    }
                    .scope_boxed()
                })
                .await;
            match result {
                Err(AppError::FeedLockBusy(user))
                    if late_users.len() < MAX_LATE_USERS && !late_users.contains(&user) =>
                {
                    tracing::debug!(
                        event_id = new_event.id.as_str(),
                        user_id = user.as_str(),
                        "a user's feed lock was busy after the effects; retrying with it first"
                    );
                    late_users.insert(user);
                }
                other => break other,
            }
        };
        match result {
            Ok(outcome) => {
                self.committed(event, outcome, started);
                if outcome == IngestOutcome::Processed {
                    self.changes_committed();
                }
                Ok(outcome)
            }
            Err(error) => Err(self.not_applied(new_event, error, started).await),
        }
    }

    /// Records that `new_event` could not be applied because of `error` (failed, attempts + 1,
    /// retried on the schedule unless permanent): the error the caller answers with.
    pub(crate) async fn not_applied(
        &self,
        new_event: &NewEvent,
        error: AppError,
        started: Instant,
    ) -> IngestError {
        // The error is returned, and logged once by the caller that answers it (the HTTP
        // layer, with the request id); here only the event's side of it.
        tracing::warn!(
            event_id = new_event.id.as_str(),
            event_type = new_event.event_type.as_str(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "event could not be applied; recording it as failed for retry"
        );
        // The whole chain is stored, down to the database's or Stripe's own words.
        let last_error = ErrorChain(&error).to_string();
        let kind = error.failure_kind();
        let at = new_event.received_at;
        let recorded = match self.record_failure(new_event, &last_error, kind, at).await {
            Ok(()) => true,
            Err(record_error) => {
                tracing::error!(
                    event_id = new_event.id.as_str(),
                    error = ErrorChain(&record_error).to_string(),
                    "could not record the failure"
                );
                false
            }
        };
        IngestError {
            cause: error,
            recorded,
        }
    }

    /// The stored form of `event` received now, and the context its effects run in.
    pub(crate) fn prepare(&self, event: &BillingEvent, payload: String) -> (NewEvent, Context) {
        let now = self.clock.now();
        let new_event = NewEvent::received(event, payload, now);
        let mut ctx = Context::new(Arc::clone(&self.catalog), now);
        if self.settings.refetch {
            ctx.gateway = self.gateway.clone();
        }
        (new_event, ctx)
    }

    /// What follows the commit of `event`'s ingest: the gate forgets what it changed (the
    /// next check on this replica must see it), and the outcome is logged. The caller wakes
    /// the change feed's waiters once per commit.
    pub(crate) fn committed(&self, event: &BillingEvent, outcome: IngestOutcome, started: Instant) {
        if outcome == IngestOutcome::Processed {
            self.gate.invalidate_event(event);
        }
        tracing::debug!(
            event_id = event.id.as_str(),
            event_type = event.event_type.as_str(),
            outcome = ?outcome,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "event ingested"
        );
    }

    /// Stores a verified event whose object could not be read as `failed` (attempts + 1,
    /// `error` kept, a permanent failure the sweeper leaves alone), so nothing is lost: a fix
    /// and a redelivery or replay can still apply it.
    /// `event.received_at` is set from the clock.
    pub async fn record_unparsed(&self, mut event: NewEvent, error: &str) -> Result<(), AppError> {
        event.received_at = self.clock.now();
        tracing::error!(
            event_id = event.id.as_str(),
            event_type = event.event_type.as_str(),
            error,
            "verified event could not be parsed; stored as failed"
        );
        Ok(self
            .record_failure(&event, error, FailureKind::Permanent, event.received_at)
            .await?)
    }

    /// Deletes done events older than the retention, batch by batch; returns how many.
    pub async fn purge_events(&self) -> Result<u64, StoreError> {
        let before = self.clock.now() - self.settings.retention;
        self.purge_events_with(before, &mut |_| ()).await
    }

    /// Deletes done events (processed, ignored, stale) received before `before`, batch by
    /// batch (each committed on its own), calling `on_batch` with the number each batch
    /// deleted; returns the total. Failed events are never purged.
    pub async fn purge_events_with(
        &self,
        before: DateTime<Utc>,
        on_batch: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = self
                .store
                .purge_events(before, self.settings.purge_batch)
                .await?;
            total += deleted;
            on_batch(deleted);
            if deleted < u64::from(self.settings.purge_batch) {
                return Ok(total);
            }
        }
    }

    /// Deletes one batch of done events older than the retention, committed on its own;
    /// returns how many, and whether a full batch was deleted (more may be left).
    pub async fn purge_events_batch(&self) -> Result<(u64, bool), StoreError> {
        let before = self.clock.now() - self.settings.retention;
        let deleted = self
            .store
            .purge_events(before, self.settings.purge_batch)
            .await?;
        Ok((deleted, deleted >= u64::from(self.settings.purge_batch)))
    }
}

/// The status an event is claimed with (recorded done in the claim itself; only a stale event
/// is corrected after), and the customer it names.
pub(crate) fn claim_of(event: &BillingEvent) -> (EventStatus, Option<&str>) {
    match &event.fact {
        Fact::Unhandled => (EventStatus::Ignored, None),
        fact => (EventStatus::Processed, fact.customer_id()),
    }
}

/// The subscription `event` changes that its transaction may read and lock with its users'
/// access, before the effects: only under the lock of the customer the event names (held from
/// the claim on), so that one not stored may be kept as known absent (its creator would take
/// that lock); never when subscriptions are fetched again from Stripe (`ctx.gateway`), whose
/// snapshot is applied under the lock of the customer Stripe answers, which may be another.
pub(crate) fn subscription_to_lock<'e>(event: &'e BillingEvent, ctx: &Context) -> Option<&'e str> {
    match (claim_of(event), &ctx.gateway) {
        ((EventStatus::Processed, Some(_)), None) => event.fact.subscription_id(),
        _ => None,
    }
}

/// The source key of the ledger entry `event`'s effects may add, that its transaction may read
/// ahead with its users' access: only when the event names a customer, whose lock the claim
/// took (held from then on) and the invoice effect takes before adding (an invoice's lock is its
/// customer's when it has one), so that a key read as not stored stays so until the
/// transaction ends.
pub(crate) fn credit_source_to_read(event: &BillingEvent) -> Option<String> {
    match (claim_of(event), &event.fact) {
        ((EventStatus::Processed, Some(_)), Fact::Invoice { change, invoice }) => {
            effects::invoice::credit_source(*change, invoice)
        }
        _ => None,
    }
}

/// Applies an event this transaction claimed as `claimed`, its customer (if it names one)
/// locked and read: the change feed's users and their access before, the effects, the event's
/// final status when it is not the claimed one, and the feed's records added to `changes`
/// for the caller to write (with
/// [`ChangeTx::insert_changes_at_commit`](billing_ports::ChangeTx::insert_changes_at_commit),
/// as the transaction's last write: a transaction applying several events writes all theirs at
/// once, with its commit).
pub(crate) async fn apply_claimed(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    event: &BillingEvent,
    claimed: EventStatus,
    customer: Option<CustomerRecord>,
    late: &BTreeSet<String>,
    changes: &mut Vec<NewChange>,
) -> Result<IngestOutcome, AppError> {
    let status = match &event.fact {
        Fact::Unhandled => EventStatus::Ignored,
        _ => {
            let mut users = feed::users_named(tx, event, customer).await?;
            users.extend(late.iter().cloned());
            // A shared transaction locked it with all its events' (`ingest_batch`); then
            // nothing is sent for it, unless that statement skipped a row another unit of work
            // held.
            let subscriptions: Vec<String> = subscription_to_lock(event, ctx)
                .map(str::to_owned)
                .into_iter()
                .collect();
            let credit_sources: Vec<String> = credit_source_to_read(event).into_iter().collect();
            let ahead = ReadAhead {
                subscriptions: &subscriptions,
                credit_sources: &credit_sources,
            };
            let before = feed::Before::take(tx, ctx, users, ahead).await?;
            let status = effects::apply(tx, ctx, event).await?;
            if status == EventStatus::Processed {
                let cause = feed::Cause {
                    key: &event.id,
                    stripe_event_id: Some(&event.id),
                };
                // Only the users read before the effects: one they linked meanwhile is a
                // note's, locked late by `record` (or first on a retry, see `late_users`).
                changes.extend(before.changes(tx, ctx, &cause, BTreeSet::new()).await?);
            }
            status
        }
    };
    if status != claimed {
        tx.finish_event(&event.id, status, ctx.now).await?;
    }
    Ok(match status {
        EventStatus::Ignored => IngestOutcome::Ignored,
        EventStatus::Stale => IngestOutcome::Stale,
        _ => IngestOutcome::Processed,
    })
}
