//! Failed events re-applied: an operator's replay and the sweeper's backoff, with the real
//! Stripe decoder over the fixture story's bodies, a failure injected into the store (a broken
//! deploy or database) or a body the running release could not read, and a manual clock.
//! Also the job runner's leases: one holder at a time, a lost lease stops the work.

use std::sync::Arc;

use billing_app::{AppSettings, BillingApp, EventReplay, JobRun, JobRunner, ReplayOutcome};
use billing_domain::{BillingEvent, Catalog};
use billing_ports::testing::{FaultyStore, StoreCall};
use billing_ports::{
    Backoff, BillingStore, Cause, Clock, EventStatus, FailureKind, LeaseStore, ManualClock,
    NewEvent, RetryStore, StoreError,
};
use billing_store_diesel::DieselStore;
use billing_stripe::StripeEventDecoder;
use chrono::TimeDelta;

use crate::replay::story;
use crate::support::{catalog, credits, t0};

on_both_backends!(
    a_failed_event_applies_once_when_replayed_and_again_is_a_duplicate,
    an_event_the_release_could_not_read_applies_after_the_fix,
    replay_failed_replays_each_failed_event_once,
    the_sweeper_retries_on_its_backoff_and_gives_up_after_max_attempts,
    the_sweeper_leaves_permanent_failures_alone,
    a_job_runs_on_one_holder_at_a_time,
    a_sweep_stops_when_its_lease_is_lost,
    a_paid_invoice_of_a_price_the_catalog_lacks_applies_once_the_catalog_knows_it,
);

const BACKOFF: Backoff = Backoff {
    base: TimeDelta::seconds(60),
    cap: TimeDelta::seconds(240),
};

/// An app over `store` reading stored bodies with the Stripe decoder, on `clock`.
fn app<S: BillingStore>(store: S, clock: &Arc<ManualClock>) -> BillingApp<S> {
    app_with(store, clock, catalog())
}

/// [`app`] with another plan catalog (a release deployed with other plans).
fn app_with<S: BillingStore>(
    store: S,
    clock: &Arc<ManualClock>,
    catalog: Arc<Catalog>,
) -> BillingApp<S> {
    BillingApp::new(
        Arc::new(store),
        catalog,
        Arc::clone(clock) as _,
        None,
        AppSettings {
            retry: BACKOFF,
            max_attempts: 4,
            ..AppSettings::default()
        },
    )
    .with_decoder(Arc::new(StripeEventDecoder))
}

/// The store with adding credits failing, as a broken release or database would.
fn crediting_fails(store: &DieselStore) -> FaultyStore<DieselStore> {
    let faulty = FaultyStore::new(store.clone());
    faulty.fail(
        StoreCall::AddCredit,
        StoreError::Query(Cause::msg("injected: credit ledger unavailable")),
    );
    faulty
}

/// Delivers the basil story through `app`; returns the ids of the deliveries that failed.
async fn deliver<S: BillingStore>(app: &BillingApp<S>) -> Vec<String> {
    let mut failed = Vec::new();
    for (event, body) in story("basil") {
        let id = event.id.clone();
        if app.ingest(event, body).await.is_err() {
            failed.push(id);
        }
    }
    failed
}

async fn status(store: &DieselStore, id: &str) -> (EventStatus, u32) {
    let stored = store.event(id).await.unwrap().unwrap();
    (stored.status, stored.attempts)
}

async fn a_failed_event_applies_once_when_replayed_and_again_is_a_duplicate(store: DieselStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let failed = deliver(&app(crediting_fails(&store), &clock)).await;
    assert!(!failed.is_empty(), "the paid invoices fail");
    assert_eq!(credits(&store, "user_123").await, 0);

    // The fix is deployed: the same store without the fault.
    let fixed = app(store.clone(), &clock);
    for id in &failed {
        let outcome = fixed.replay_event(id).await.unwrap();
        assert!(
            matches!(outcome, ReplayOutcome::Applied | ReplayOutcome::Stale),
            "{id}: {outcome:?}"
        );
        assert_eq!(status(&store, id).await.1, 1, "attempts kept");
    }
    assert_eq!(credits(&store, "user_123").await, 1000, "granted once");
    for id in &failed {
        assert!(matches!(
            fixed.replay_event(id).await.unwrap(),
            ReplayOutcome::Duplicate(EventStatus::Processed | EventStatus::Stale)
        ));
    }
    assert_eq!(credits(&store, "user_123").await, 1000, "nothing changed");
    assert_eq!(
        fixed
            .replay_event("evt_1QfZ9aNeverStored000000")
            .await
            .unwrap(),
        ReplayOutcome::NotFound
    );
}

/// A decoder of a release that cannot read invoices.
struct NoInvoices;

impl billing_ports::EventDecoder for NoInvoices {
    fn decode(&self, payload: &[u8]) -> Result<BillingEvent, billing_ports::DecodeError> {
        let event = billing_stripe::parse_event(payload)
            .map_err(|e| billing_ports::DecodeError(Cause::new(e)))?;
        match event.event_type.starts_with("invoice.") {
            true => Err(billing_ports::DecodeError(Cause::msg(
                "unknown invoice shape",
            ))),
            false => Ok(event),
        }
    }
}

async fn an_event_the_release_could_not_read_applies_after_the_fix(store: DieselStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let old = app(store.clone(), &clock).with_decoder(Arc::new(NoInvoices));
    // What the webhook does with a verified body it cannot read: stored as failed.
    let mut unread = Vec::new();
    for (event, body) in story("basil") {
        if event.event_type.starts_with("invoice.") {
            let new_event = NewEvent::received(&event, body, t0());
            old.record_unparsed(new_event, "unknown invoice shape")
                .await
                .unwrap();
            unread.push(event.id);
        } else {
            old.ingest(event, body).await.unwrap();
        }
    }
    // The old release's replay cannot read it either: a permanent failure, counted.
    let again = old.replay_event(&unread[0]).await.unwrap();
    assert!(
        matches!(&again, ReplayOutcome::Failed { kind: FailureKind::Permanent, error } if error.contains("unknown invoice shape")),
        "{again:?}"
    );
    assert_eq!(status(&store, &unread[0]).await, (EventStatus::Failed, 2));
    let stored = store.event(&unread[0]).await.unwrap().unwrap();
    assert_eq!(
        (stored.failure_kind, stored.next_attempt_at),
        (Some(FailureKind::Permanent), None)
    );

    let fixed = app(store.clone(), &clock);
    for id in &unread {
        let outcome = fixed.replay_event(id).await.unwrap();
        assert_ne!(outcome.label(), "failed", "{id}: {outcome:?}");
    }
    assert_eq!(credits(&store, "user_123").await, 1000);
    for id in &unread {
        assert_eq!(fixed.replay_event(id).await.unwrap().label(), "duplicate");
    }
    assert_eq!(credits(&store, "user_123").await, 1000);
}

async fn replay_failed_replays_each_failed_event_once(store: DieselStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let failing = app(crediting_fails(&store), &clock);
    let failed = deliver(&failing).await;

    // Still broken: each failed event is tried once and reported failing.
    let mut seen = Vec::new();
    let report = failing
        .replay_failed(None, |replay: &EventReplay| seen.push(replay.id.clone()))
        .await
        .unwrap();
    let mut expected = failed.clone();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);
    assert!(report.iter().all(|r| matches!(
        &r.outcome,
        ReplayOutcome::Failed { kind: FailureKind::Transient, error } if error.contains("credit ledger")
    )));

    // Only the events received since a time: none failed after the story.
    clock.advance(TimeDelta::hours(1));
    let later = failing
        .replay_failed(Some(clock.now()), |_| {})
        .await
        .unwrap();
    assert!(later.is_empty());

    let fixed = app(store.clone(), &clock);
    let report = fixed.replay_failed(None, |_| {}).await.unwrap();
    assert_eq!(report.len(), failed.len());
    assert!(report.iter().all(|r| r.outcome.label() != "failed"));
    assert_eq!(credits(&store, "user_123").await, 1000);
    assert!(fixed.replay_failed(None, |_| {}).await.unwrap().is_empty());
}

async fn the_sweeper_retries_on_its_backoff_and_gives_up_after_max_attempts(store: DieselStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let failing = app(crediting_fails(&store), &clock);
    let failed = deliver(&failing).await;
    let id = &failed[0];
    let next = |n: i64| t0() + TimeDelta::seconds(n);
    assert_eq!(
        store.event(id).await.unwrap().unwrap().next_attempt_at,
        Some(next(60))
    );

    // Attempt n + 1 is due base·2^(n−1) after attempt n: 60 s, 120 s, then 240 s (the cap).
    for (due, attempts_after) in [(60, 2), (180, 3), (420, 4)] {
        clock.set(next(due - 1));
        assert!(
            failing.sweep_failed(None).await.unwrap().is_empty(),
            "not due at {due}-1"
        );
        clock.set(next(due));
        let swept = failing.sweep_failed(None).await.unwrap();
        assert_eq!(swept.len(), failed.len());
        assert!(swept.iter().all(|s| s.outcome.label() == "failed"));
        assert_eq!(
            status(&store, id).await,
            (EventStatus::Failed, attempts_after)
        );
    }
    let stored = store.event(id).await.unwrap().unwrap();
    assert_eq!(stored.next_attempt_at, Some(next(420 + 240)));

    // Four attempts: given up, even long after; still failed, visible and replayable.
    clock.set(next(100_000));
    assert!(failing.sweep_failed(None).await.unwrap().is_empty());
    assert!(
        store
            .due_retries(clock.now(), 5, 10)
            .await
            .unwrap()
            .contains(id)
    );
    let fixed = app(store.clone(), &clock);
    assert!(fixed.sweep_failed(None).await.unwrap().is_empty());
    let outcome = fixed.replay_event(id).await.unwrap();
    assert!(matches!(
        outcome,
        ReplayOutcome::Applied | ReplayOutcome::Stale
    ));
}

async fn the_sweeper_leaves_permanent_failures_alone(store: DieselStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let mut failed = deliver(&app(crediting_fails(&store), &clock)).await;
    // Beside them, a verified body whose object could not be read: a permanent failure.
    let (event, body) = story("basil").swap_remove(0);
    let unreadable = NewEvent {
        id: "evt_1QfZ9aTruncatedBody0000".to_owned(),
        event_type: event.event_type,
        api_version: event.api_version,
        livemode: event.livemode,
        created: event.created,
        payload: body[..body.len() / 2].to_owned(),
        received_at: t0(),
    };
    let fixed = app(store.clone(), &clock);
    fixed
        .record_unparsed(unreadable.clone(), "EOF while parsing an object")
        .await
        .unwrap();

    clock.set(t0() + TimeDelta::days(30));
    let mut swept: Vec<String> = fixed
        .sweep_failed(None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    swept.sort();
    failed.sort();
    assert_eq!(swept, failed, "the transient failures only");
    assert_eq!(
        status(&store, &unreadable.id).await,
        (EventStatus::Failed, 1)
    );
    assert!(fixed.sweep_failed(None).await.unwrap().is_empty());
    // An operator's replay tries it (and it still cannot be read).
    assert!(matches!(
        fixed.replay_event(&unreadable.id).await.unwrap(),
        ReplayOutcome::Failed {
            kind: FailureKind::Permanent,
            ..
        }
    ));
}

async fn a_job_runs_on_one_holder_at_a_time(store: DieselStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let leases: Arc<dyn LeaseStore> = Arc::new(store.clone());
    let ttl = TimeDelta::seconds(30);
    let a = JobRunner::new(Arc::clone(&leases), clock.clone(), "replica-a-7f3e", ttl);
    let b = JobRunner::new(Arc::clone(&leases), clock.clone(), "replica-b-c24a", ttl);
    let hour = TimeDelta::hours(1);
    let work =
        |runner: &'static str| move |_lease: billing_app::JobLease| async move { Ok(runner) };

    let first = a.run_if_due("retention", hour, work("a")).await.unwrap();
    assert!(matches!(first, JobRun::Succeeded("a")));
    clock.advance(TimeDelta::minutes(59));
    assert!(matches!(
        b.run_if_due("retention", hour, work("b")).await.unwrap(),
        JobRun::NotDue
    ));
    assert!(matches!(
        a.run_if_due("retention", hour, work("a")).await.unwrap(),
        JobRun::NotDue
    ));
    clock.advance(TimeDelta::minutes(1));
    assert!(matches!(
        b.run_if_due("retention", hour, work("b")).await.unwrap(),
        JobRun::Succeeded("b")
    ));
    assert!(matches!(
        a.run_if_due("retention", hour, work("a")).await.unwrap(),
        JobRun::NotDue
    ));

    // A failed run is scheduled like a successful one: its retry is the next run.
    clock.advance(hour);
    let failed = a
        .run_if_due("retention", hour, |_lease: billing_app::JobLease| async {
            Err::<(), _>(billing_app::AppError::Store(StoreError::Query(Cause::msg(
                "boom",
            ))))
        })
        .await
        .unwrap();
    assert!(matches!(failed, JobRun::Failed(_)));
    assert!(matches!(
        b.run_if_due("retention", hour, work("b")).await.unwrap(),
        JobRun::NotDue
    ));
    assert_eq!(store.lease("retention").await.unwrap().unwrap().runs, 3);
}

async fn a_sweep_stops_when_its_lease_is_lost(store: DieselStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let failing = app(crediting_fails(&store), &clock);
    let failed = deliver(&failing).await;
    assert!(failed.len() >= 2);
    clock.set(t0() + TimeDelta::hours(1));

    let leases: Arc<dyn LeaseStore> = Arc::new(store.clone());
    let ttl = TimeDelta::seconds(30);
    let a = JobRunner::new(Arc::clone(&leases), clock.clone(), "replica-a-0b9d", ttl);
    let fixed = app(store.clone(), &clock);
    let run = a
        .run_if_due("sweeper", TimeDelta::seconds(10), |lease| {
            let (fixed, clock, leases) = (fixed.clone(), clock.clone(), leases.clone());
            async move {
                // The process stalls past its lease, and another replica takes the run.
                clock.advance(TimeDelta::seconds(31));
                let now = clock.now();
                assert!(
                    leases
                        .take_lease("sweeper", "replica-b-44e1", now, ttl)
                        .await
                        .unwrap()
                );
                fixed.sweep_failed(Some(&lease)).await
            }
        })
        .await
        .unwrap();
    let JobRun::LeaseLost(swept) = run else {
        panic!("{run:?}");
    };
    assert!(swept.is_empty(), "stopped before the first event");
    for id in &failed {
        assert_eq!(status(&store, id).await, (EventStatus::Failed, 1));
    }
    let lease = store.lease("sweeper").await.unwrap().unwrap();
    assert_eq!(
        lease.holder, "replica-b-44e1",
        "the new holder's lease stays"
    );
}

/// The example plans with `unknown_prices = "fail"`, the PRO tier selling `pro_price`.
fn strict_catalog(pro_price: &str) -> Arc<Catalog> {
    let plans = include_str!("../../../../plans.toml")
        .replacen("unknown_prices = \"free\"", "unknown_prices = \"fail\"", 1)
        .replacen("\"price_pro_monthly\"", &format!("{pro_price:?}"), 1);
    let catalog = Catalog::from_toml_str(&plans).unwrap();
    assert_eq!(
        catalog.unknown_prices(),
        billing_domain::UnknownPrices::Fail
    );
    Arc::new(catalog)
}

async fn a_paid_invoice_of_a_price_the_catalog_lacks_applies_once_the_catalog_knows_it(
    store: DieselStore,
) {
    let clock = Arc::new(ManualClock::new(t0()));
    // The release runs a catalog that does not know the story's price yet.
    let before = app_with(
        store.clone(),
        &clock,
        strict_catalog("price_pro_monthly_v2"),
    );
    let failed = deliver(&before).await;
    assert!(!failed.is_empty(), "the paid invoices fail");
    for id in &failed {
        let stored = store.event(id).await.unwrap().unwrap();
        assert_eq!(stored.status, EventStatus::Failed);
        assert_eq!(stored.failure_kind, Some(FailureKind::Transient), "{id}");
        let error = stored.last_error.unwrap_or_default();
        assert!(
            error.contains("names no price of the plan catalog")
                && error.contains("price_pro_monthly"),
            "{error}"
        );
    }
    assert_eq!(
        credits(&store, "user_123").await,
        0,
        "no credits of an unknown tier"
    );
    // Meanwhile the sweeper retries with the same catalog: still failing, nothing granted.
    clock.set(t0() + TimeDelta::seconds(60));
    let swept = before.sweep_failed(None).await.unwrap();
    assert!(
        swept.iter().all(|s| s.outcome.label() == "failed"),
        "{swept:?}"
    );
    assert_eq!(credits(&store, "user_123").await, 0);

    // The catalog now sells the price: the sweeper's next attempt applies each once.
    let after = app_with(store.clone(), &clock, strict_catalog("price_pro_monthly"));
    clock.set(t0() + TimeDelta::seconds(60 + 120));
    let swept = after.sweep_failed(None).await.unwrap();
    assert_eq!(swept.len(), failed.len());
    assert!(
        swept
            .iter()
            .all(|s| matches!(s.outcome, ReplayOutcome::Applied | ReplayOutcome::Stale)),
        "{swept:?}"
    );
    assert_eq!(credits(&store, "user_123").await, 1000, "granted once");
    for id in &failed {
        assert!(matches!(
            after.replay_event(id).await.unwrap(),
            ReplayOutcome::Duplicate(_)
        ));
    }
    assert_eq!(credits(&store, "user_123").await, 1000, "never twice");
}
