//! Reconciliation with Stripe: catch up from Stripe's Events API, then sweep the
//! subscriptions and repair what differs.
//!
//! # Catch-up
//! Events are listed oldest first from a stored cursor (`reconcile_cursors`: the newest event
//! such that it and every event listed before it is applied or stored as failed), within
//! Stripe's 30-day window ([`EVENTS_WINDOW_DAYS`]), and each goes through
//! [`BillingApp::ingest`], the webhook's exactly-once path: an event already processed is a
//! duplicate and changes nothing; one whose object cannot be read is stored as failed, as the
//! webhook stores it. The cursor moves after each page, only past events that committed or
//! were stored as failed; an event that could not even be recorded stops the run there.
//!
//! # Sweep
//! Subscriptions are listed with `status=all` (the scope's customers, or the whole account)
//! and compared with the stored ones. One that differs (or is missing) is re-fetched under
//! its customer's lock and applied as a trusted snapshot, the path `sync_user` and the
//! re-fetch mode use, with the same ordering rules; each difference is reported with its
//! field, before and after.
//!
//! # Dry run
//! Lists and compares the same way and reports what would change; ingests nothing, repairs
//! nothing, moves no cursor and counts no metric.

use std::collections::BTreeSet;

use billing_domain::Position;
use billing_ports::{
    BillingStore, ErrorChain, EventQuery, EventStatus, GatewayError, ListedEvent, NewEvent,
    ReadAhead, ReconcileCursor, ScopedFutureExt, StripeGateway, SubscriptionRecord,
    UnreadableObject,
};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use crate::BillingApp;
use crate::effects::{Context, customer, subscription};
use crate::error::AppError;
use crate::feed;
use crate::ingest::IngestOutcome;

/// How far back Stripe's Events API lists events: reconciliation never looks further.
pub const EVENTS_WINDOW_DAYS: i64 = 30;

/// The gauge: Unix time of the last successful reconciliation (a catch-up of every scope
/// that leaves the cursor complete, and its sweep); 0 before any.
pub const LAST_SUCCESS_METRIC: &str = "billing_reconcile_last_success_timestamp_seconds";

/// The counter: differences found (and repaired) by reconciliations, by [`DifferenceKind`]
/// (`kind` label). Dry runs do not count.
pub const DIFFERENCES_METRIC: &str = "billing_reconcile_differences_total";

/// What a reconciliation covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconcileScope {
    /// The events created in the last `TimeDelta` (at most 30 days), and the subscriptions of
    /// the customers they name. The cursor moves only when the stored one lies within the
    /// window (no event is skipped between them).
    Since(TimeDelta),
    /// One customer (`cus_…`): the window's events naming it, and its subscriptions. The
    /// cursor does not move.
    Customer(String),
    /// Everything: the events after the stored cursor (the whole window without one), and
    /// every subscription of the account.
    All,
    /// The catch-up of [`ReconcileScope::All`] alone (no subscription sweep): the events after
    /// the stored cursor. What the server's scheduled reconciliation runs, every few minutes,
    /// at the cost of one listing call per 100 new events.
    Events,
}

/// Which field of a subscription differed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DifferenceKind {
    /// Stripe has the subscription; we have no row.
    Missing,
    /// The customer it belongs to.
    Customer,
    /// Its status.
    Status,
    /// The tier its prices buy.
    Tier,
    /// The price deciding the tier.
    Price,
    /// Its items' prices.
    Items,
    /// The end of its current period.
    PeriodEnd,
    /// Whether it ends at the period's end.
    CancelAtPeriodEnd,
    /// When it was canceled.
    CanceledAt,
    /// The end of its trial.
    TrialEnd,
}

impl DifferenceKind {
    /// Every kind, in report order.
    pub const ALL: [DifferenceKind; 10] = [
        Self::Missing,
        Self::Customer,
        Self::Status,
        Self::Tier,
        Self::Price,
        Self::Items,
        Self::PeriodEnd,
        Self::CancelAtPeriodEnd,
        Self::CanceledAt,
        Self::TrialEnd,
    ];

    /// The field's name, as reported and as the metric's `kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Customer => "customer",
            Self::Status => "status",
            Self::Tier => "tier",
            Self::Price => "price",
            Self::Items => "items",
            Self::PeriodEnd => "period_end",
            Self::CancelAtPeriodEnd => "cancel_at_period_end",
            Self::CanceledAt => "canceled_at",
            Self::TrialEnd => "trial_end",
        }
    }
}

/// One field of one subscription that differed from Stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// `sub_…`.
    pub subscription_id: String,
    /// `cus_…` (Stripe's).
    pub customer_id: String,
    /// What differed.
    pub kind: DifferenceKind,
    /// Our value before (`None`: absent, or no row for [`DifferenceKind::Missing`]).
    pub before: Option<String>,
    /// Stripe's value, written by the repair (or that a dry run would write).
    pub after: Option<String>,
    /// True when the repair was committed; false in a dry run.
    pub repaired: bool,
}

/// An event the catch-up stored as failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEvent {
    /// `evt_…`.
    pub id: String,
    /// Why it failed (stored as its `last_error`).
    pub error: String,
}

/// What the catch-up from the Events API did (or, in a dry run, found).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventCatchUp {
    /// The oldest `created` listed.
    pub since: Option<DateTime<Utc>>,
    /// The scope asked for more than the 30 days Stripe keeps.
    pub capped: bool,
    /// The stored cursor's event was older than the window (or gone at Stripe): events
    /// created between this time and `since` could not be checked.
    pub gap_from: Option<DateTime<Utc>>,
    /// Events listed.
    pub listed: usize,
    /// Events of other customers (scope [`ReconcileScope::Customer`]), left alone.
    pub skipped: usize,
    /// Events applied now (missed until now).
    pub applied: usize,
    /// Events stored as ignored now (types we do not act on).
    pub ignored: usize,
    /// Events stored as stale now (older than what was applied).
    pub stale: usize,
    /// Events already done: they changed nothing.
    pub duplicates: usize,
    /// Events stored as failed now (the failed-event sweeper or a replay retries them).
    pub failed: Vec<FailedEvent>,
    /// Dry run: events not done here that a run would ingest.
    pub would_ingest: usize,
    /// The cursor before the run.
    pub cursor_before: Option<ReconcileCursor>,
    /// The cursor after the run (the same as before when it did not move).
    pub cursor_after: Option<ReconcileCursor>,
}

/// What a reconciliation did, or (dry run) would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// The scope it covered.
    pub scope: ReconcileScope,
    /// True when nothing was changed.
    pub dry_run: bool,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// The catch-up from the Events API.
    pub events: EventCatchUp,
    /// Subscriptions listed by Stripe and compared.
    pub subscriptions_checked: usize,
    /// Every field that differed, subscription by subscription.
    pub differences: Vec<Difference>,
    /// Subscriptions Stripe listed that could not be read (not compared).
    pub unreadable: Vec<UnreadableObject>,
}

/// The event cursor a run starts from, and whether moving it is allowed.
struct Start {
    query: EventQuery,
    /// The run covers everything after the stored cursor: it may move it.
    moves_cursor: bool,
}

impl<S: BillingStore> BillingApp<S> {
    /// Reconciles local state with Stripe.
    ///
    /// 1. Catch-up: lists Stripe's events oldest first, from the stored cursor (scope
    ///    [`ReconcileScope::All`]) or from the scope's start, never more than
    ///    [`EVENTS_WINDOW_DAYS`] back, and passes each through [`BillingApp::ingest`] (already
    ///    processed: a duplicate that changes nothing; unreadable: stored as failed, as the
    ///    webhook stores it). The cursor moves after each page, only past events that committed
    ///    or were stored as failed.
    /// 2. Sweep: lists the scope's subscriptions (`status=all`) and compares each with ours; one
    ///    that differs is re-fetched under its customer's lock and applied as a trusted
    ///    snapshot (the path of [`BillingApp::sync_user`]), each differing field reported.
    ///
    /// With `dry_run` nothing is ingested, repaired or moved, and no metric counted; the
    /// report says what would change.
    ///
    /// # Errors
    /// [`AppError::NoGateway`] without a Stripe gateway; a Stripe failure (after the client's
    /// retries, 429s included) or a store failure stops the run: what was done until then
    /// stays done, and the cursor says how far the catch-up got.
    #[tracing::instrument(name = "reconcile", skip(self))]
    pub async fn reconcile(
        &self,
        scope: ReconcileScope,
        dry_run: bool,
    ) -> Result<ReconcileReport, AppError> {
        let gateway = self.gateway().cloned().ok_or(AppError::NoGateway)?;
        let started_at = self.clock().now();
        let mut report = ReconcileReport {
            scope: scope.clone(),
            dry_run,
            started_at,
            finished_at: started_at,
            events: EventCatchUp::default(),
            subscriptions_checked: 0,
            differences: Vec::new(),
            unreadable: Vec::new(),
        };
        let (customers, completes) = self
            .catch_up(gateway.as_ref(), &scope, dry_run, &mut report.events)
            .await?;
        let swept: Vec<Option<String>> = match &scope {
            ReconcileScope::All => vec![None],
            ReconcileScope::Events => Vec::new(),
            ReconcileScope::Customer(customer) => vec![Some(customer.clone())],
            ReconcileScope::Since(_) => customers.into_iter().map(Some).collect(),
        };
        for customer in &swept {
            self.sweep(gateway.as_ref(), customer.as_deref(), dry_run, &mut report)
                .await?;
        }
        report.finished_at = self.clock().now();
        if !dry_run {
            for difference in &report.differences {
                metrics::counter!(DIFFERENCES_METRIC, "kind" => difference.kind.as_str())
                    .increment(1);
            }
            if completes {
                report.events.cursor_after = Some(self.stamp_success(report.finished_at).await?);
            }
        }
        tracing::info!(
            dry_run,
            listed = report.events.listed,
            applied = report.events.applied,
            failed = report.events.failed.len(),
            subscriptions = report.subscriptions_checked,
            differences = report.differences.len(),
            "reconciliation finished"
        );
        Ok(report)
    }

    /// The stored reconciliation cursor; sets [`LAST_SUCCESS_METRIC`] from it (a process
    /// calls this at start, so the gauge tells the truth before its first run).
    pub async fn reconcile_cursor(&self) -> Result<Option<ReconcileCursor>, AppError> {
        let cursor = self
            .store()
            .transaction(|tx| {
                async move { Ok::<_, AppError>(tx.reconcile_cursor().await?) }.scope_boxed()
            })
            .await?;
        if let Some(at) = cursor.as_ref().and_then(|c| c.last_success_at) {
            set_last_success(at);
        }
        Ok(cursor)
    }

    /// Where the catch-up starts for `scope`, given the stored cursor.
    fn start(
        &self,
        scope: &ReconcileScope,
        stored: Option<&ReconcileCursor>,
        now: DateTime<Utc>,
        catch_up: &mut EventCatchUp,
    ) -> Start {
        let window_start = now - TimeDelta::days(EVENTS_WINDOW_DAYS);
        let stored_event = stored.and_then(|c| Some((c.event_id.clone()?, c.event_created?)));
        let (query, moves_cursor) = match scope {
            ReconcileScope::All | ReconcileScope::Events => match stored_event {
                Some((id, created)) if created >= window_start => (
                    EventQuery {
                        since: created,
                        after: Some(id),
                    },
                    true,
                ),
                Some((_, created)) => {
                    catch_up.gap_from = Some(created);
                    (since(window_start), true)
                }
                None => (since(window_start), true),
            },
            ReconcileScope::Since(span) => {
                let asked = now - *span;
                catch_up.capped = asked < window_start;
                let start = asked.max(window_start);
                let contiguous = stored_event.is_none_or(|(_, created)| created >= start);
                (since(start), contiguous)
            }
            ReconcileScope::Customer(_) => (since(window_start), false),
        };
        catch_up.since = Some(query.since);
        Start {
            query,
            moves_cursor,
        }
    }

    /// Lists the events and ingests them oldest first; returns the customers they name, and
    /// whether the run moves the cursor (it covers everything after the stored one).
    async fn catch_up(
        &self,
        gateway: &dyn StripeGateway,
        scope: &ReconcileScope,
        dry_run: bool,
        report: &mut EventCatchUp,
    ) -> Result<(BTreeSet<String>, bool), AppError> {
        let stored = self.reconcile_cursor().await?;
        let now = self.clock().now();
        let Start {
            mut query,
            moves_cursor,
        } = self.start(scope, stored.as_ref(), now, report);
        report.cursor_before = stored.clone();
        report.cursor_after = stored.clone();
        let moves_cursor = moves_cursor && !dry_run;
        let only = match scope {
            ReconcileScope::Customer(customer) => Some(customer.as_str()),
            _ => None,
        };
        let mut customers = BTreeSet::new();
        let mut first_page = true;
        loop {
            let page = match gateway.list_events(&query).await {
                Ok(page) => page,
                Err(GatewayError::NotFound(cause)) if first_page && query.after.is_some() => {
                    // The stored cursor's event is gone at Stripe (past its retention).
                    tracing::warn!(error = %ErrorChain(&cause), "the cursor's event is gone at Stripe; listing the whole window");
                    report.gap_from = Some(query.since);
                    query = since(now - TimeDelta::days(EVENTS_WINDOW_DAYS));
                    report.since = Some(query.since);
                    first_page = false;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            first_page = false;
            let mut done: Option<(String, DateTime<Utc>)> = None;
            for listed in page.events {
                report.listed += 1;
                let position = (listed.id().to_owned(), listed.created());
                let named = match &listed.parsed {
                    Ok(event) => event.fact.customer_id().map(str::to_owned),
                    Err(_) => None,
                };
                if only.is_some_and(|c| named.as_deref() != Some(c)) {
                    report.skipped += 1;
                    done = Some(position);
                    continue;
                }
                customers.extend(named);
                let outcome = if dry_run {
                    self.preview_event(&listed, report).await
                } else {
                    self.ingest_listed(listed, report).await
                };
                if let Err(error) = outcome {
                    // Nothing of this event was stored: the cursor stays before it.
                    self.advance_cursor(moves_cursor, done.as_ref(), report)
                        .await?;
                    return Err(error);
                }
                done = Some(position);
            }
            self.advance_cursor(moves_cursor, done.as_ref(), report)
                .await?;
            match done {
                Some((id, _)) if page.has_more => query.after = Some(id),
                _ => return Ok((customers, moves_cursor)),
            }
        }
    }

    /// Dry run: counts what ingesting `listed` would do, from its stored row.
    async fn preview_event(
        &self,
        listed: &ListedEvent,
        report: &mut EventCatchUp,
    ) -> Result<(), AppError> {
        match self.store().event(listed.id()).await? {
            Some(stored) if stored.status != EventStatus::Failed => report.duplicates += 1,
            _ => report.would_ingest += 1,
        }
        Ok(())
    }

    /// Ingests one listed event through the webhook's path; `Err` only when it could not even
    /// be stored as failed.
    async fn ingest_listed(
        &self,
        listed: ListedEvent,
        report: &mut EventCatchUp,
    ) -> Result<(), AppError> {
        let ListedEvent { payload, parsed } = listed;
        let event = match parsed {
            Ok(event) => event,
            Err(unreadable) => {
                let id = unreadable.id.clone();
                let error = unreadable.error.clone();
                let new_event = NewEvent {
                    id: unreadable.id,
                    event_type: unreadable.event_type,
                    api_version: unreadable.api_version,
                    livemode: unreadable.livemode,
                    created: unreadable.created,
                    payload,
                    received_at: self.clock().now(),
                };
                self.record_unparsed(new_event, &error).await?;
                report.failed.push(FailedEvent { id, error });
                return Ok(());
            }
        };
        let id = event.id.clone();
        match self.ingest(event, payload).await {
            Ok(IngestOutcome::Processed) => report.applied += 1,
            Ok(IngestOutcome::Ignored) => report.ignored += 1,
            Ok(IngestOutcome::Stale) => report.stale += 1,
            Ok(IngestOutcome::Duplicate(_)) => report.duplicates += 1,
            Err(error) if error.recorded => report.failed.push(FailedEvent {
                id,
                error: ErrorChain(&error.cause).to_string(),
            }),
            Err(error) => return Err(error.cause),
        }
        Ok(())
    }

    /// Moves the stored cursor to `done` (the newest event of a page that is applied or
    /// stored as failed, with all before it), never backwards.
    async fn advance_cursor(
        &self,
        moves_cursor: bool,
        done: Option<&(String, DateTime<Utc>)>,
        report: &mut EventCatchUp,
    ) -> Result<(), AppError> {
        let (true, Some((id, created))) = (moves_cursor, done) else {
            return Ok(());
        };
        let now = self.clock().now();
        let saved = self
            .store()
            .transaction(move |tx| {
                async move {
                    let stored = tx.reconcile_cursor().await?;
                    if stored
                        .as_ref()
                        .and_then(|c| c.event_created)
                        .is_some_and(|at| at > *created)
                    {
                        // A concurrent run got further: keep its cursor.
                        return Ok::<_, AppError>(stored);
                    }
                    let cursor = ReconcileCursor {
                        event_id: Some(id.clone()),
                        event_created: Some(*created),
                        last_success_at: stored.and_then(|c| c.last_success_at),
                    };
                    tx.save_reconcile_cursor(&cursor, now).await?;
                    Ok(Some(cursor))
                }
                .scope_boxed()
            })
            .await?;
        report.cursor_after = saved;
        Ok(())
    }

    /// After a run that completed everything after the stored cursor: stamps the cursor's
    /// last success and sets the gauge. Returns the stored cursor.
    async fn stamp_success(&self, at: DateTime<Utc>) -> Result<ReconcileCursor, AppError> {
        let cursor = self
            .store()
            .transaction(move |tx| {
                async move {
                    let mut cursor = tx.reconcile_cursor().await?.unwrap_or(ReconcileCursor {
                        event_id: None,
                        event_created: None,
                        last_success_at: None,
                    });
                    cursor.last_success_at = Some(at);
                    tx.save_reconcile_cursor(&cursor, at).await?;
                    Ok::<_, AppError>(cursor)
                }
                .scope_boxed()
            })
            .await?;
        set_last_success(at);
        Ok(cursor)
    }

    /// Lists the subscriptions (of `customer`, or all), compares each with ours, and repairs
    /// (unless `dry_run`) those that differ.
    async fn sweep(
        &self,
        gateway: &dyn StripeGateway,
        customer: Option<&str>,
        dry_run: bool,
        report: &mut ReconcileReport,
    ) -> Result<(), AppError> {
        let mut starting_after: Option<String> = None;
        loop {
            let page = gateway
                .list_subscriptions(customer, starting_after.as_deref())
                .await?;
            report.unreadable.extend(page.unreadable);
            for listed in &page.subscriptions {
                report.subscriptions_checked += 1;
                let found = self.compare(listed).await?;
                if found.is_empty() {
                    continue;
                }
                let differences = if dry_run {
                    found
                } else {
                    self.repair(gateway, listed).await?
                };
                report
                    .differences
                    .extend(
                        differences
                            .into_iter()
                            .map(|(kind, before, after)| Difference {
                                subscription_id: listed.id.clone(),
                                customer_id: listed.customer_id.clone(),
                                kind,
                                before,
                                after,
                                repaired: !dry_run,
                            }),
                    );
            }
            match page.next {
                Some(next) => starting_after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// What applying the listed snapshot would change in our subscription (read only).
    async fn compare(
        &self,
        listed: &billing_domain::facts::SubscriptionSnapshot,
    ) -> Result<Vec<Change>, AppError> {
        let ctx = self.reconcile_context();
        let stored = self
            .store()
            .read(|tx| {
                async move {
                    Ok::<_, AppError>(
                        tx.customer_subscriptions(&listed.customer_id)
                            .await?
                            .into_iter()
                            .find(|s| s.stripe_subscription_id == listed.id),
                    )
                }
                .scope_boxed()
            })
            .await?;
        let position = repair_position(&ctx, listed);
        Ok(
            match subscription::decide_snapshot(&ctx, stored.as_ref(), &position, listed, true) {
                Ok(decided) => changes(stored.as_ref(), &decided),
                Err(_) => Vec::new(),
            },
        )
    }

    /// Re-fetches the subscription under its customer's lock and applies it as a trusted
    /// snapshot when it still differs; returns what changed.
    async fn repair(
        &self,
        gateway: &dyn StripeGateway,
        listed: &billing_domain::facts::SubscriptionSnapshot,
    ) -> Result<Vec<Change>, AppError> {
        let ctx = self.reconcile_context();
        let ctx = &ctx;
        let (changed, user) = self
            .store()
            .transaction(move |tx| {
                async move {
                    tx.lock_key(&listed.customer_id).await?;
                    let mut users = BTreeSet::new();
                    users.extend(listed.metadata_user_id.clone());
                    users.extend(
                        tx.customer(&listed.customer_id)
                            .await?
                            .and_then(|c| c.user_id),
                    );
                    let before =
                        feed::Before::take(tx, ctx, users.clone(), ReadAhead::default()).await?;
                    // Fetched under the lock, so it is at least as new as anything a webhook
                    // wrote before (the listing may be older).
                    let fresh = gateway.fetch_subscription(&listed.id).await?;
                    if fresh.customer_id != listed.customer_id {
                        // Only the listed customer is locked; writing another one's row
                        // without its lock would break what every writer promises (and
                        // locking it now, second, could deadlock). Stripe does not move a
                        // subscription between customers, so this is reported, not repaired.
                        tracing::warn!(
                            subscription_id = listed.id.as_str(),
                            listed_customer_id = listed.customer_id.as_str(),
                            fetched_customer_id = fresh.customer_id.as_str(),
                            "reconciliation skipped a subscription whose customer changed \
                             between the listing and the fetch"
                        );
                        return Ok::<_, AppError>((Vec::new(), None));
                    }
                    // Linked only to a user whose feed lock is held (and whose feed records
                    // the link): one named only since the listing waits for the next run.
                    let hint = fresh
                        .metadata_user_id
                        .as_deref()
                        .filter(|user| users.contains(*user));
                    let owner = customer::ensure(tx, ctx, &fresh.customer_id, hint, None).await?;
                    let stored = tx.subscription(&fresh.id).await?;
                    let position = repair_position(ctx, &fresh);
                    let Ok(decided) = subscription::decide_snapshot(
                        ctx,
                        stored.as_ref(),
                        &position,
                        &fresh,
                        true,
                    ) else {
                        return Ok::<_, AppError>((Vec::new(), owner.user_id));
                    };
                    let changed = changes(stored.as_ref(), &decided);
                    if !changed.is_empty() {
                        subscription::warn_unknown_prices(ctx, &fresh, stored.as_ref());
                        tx.save_subscription(&decided, ctx.now).await?;
                        let cause = feed::Cause {
                            key: &format!("reconcile:{}:{}", fresh.id, ctx.now.timestamp_micros()),
                            stripe_event_id: None,
                        };
                        users.extend(owner.user_id.clone());
                        before.record(tx, ctx, &cause, users).await?;
                    }
                    Ok((changed, owner.user_id))
                }
                .scope_boxed()
            })
            .await?;
        if !changed.is_empty() {
            tracing::warn!(
                subscription_id = listed.id.as_str(),
                customer_id = listed.customer_id.as_str(),
                fields = ?changed.iter().map(|(kind, _, _)| kind.as_str()).collect::<Vec<_>>(),
                "reconciliation repaired a subscription that differed from Stripe"
            );
            self.gate()
                .invalidate_customer(&listed.customer_id, user.as_deref());
            self.changes_committed();
        }
        Ok(changed)
    }

    fn reconcile_context(&self) -> Context {
        Context::new(self.catalog().clone(), self.clock().now())
    }
}

/// One field that differs: kind, before, after.
type Change = (DifferenceKind, Option<String>, Option<String>);

/// `created[gte]` alone.
fn since(at: DateTime<Utc>) -> EventQuery {
    EventQuery {
        since: at,
        after: None,
    }
}

/// The position a repair writes: now, as a re-fetched snapshot (like `sync_user`'s).
fn repair_position(
    ctx: &Context,
    snapshot: &billing_domain::facts::SubscriptionSnapshot,
) -> Position {
    Position {
        created: ctx.now,
        rank: snapshot.status.progression_rank(),
        event_id: format!("reconcile:{}", ctx.now.timestamp_micros()),
    }
}

fn set_last_success(at: DateTime<Utc>) {
    // Seconds with their fraction; a gauge is a float.
    #[allow(clippy::cast_precision_loss)]
    let seconds = at.timestamp_millis() as f64 / 1000.0;
    metrics::gauge!(LAST_SUCCESS_METRIC).set(seconds);
}

fn time(at: Option<DateTime<Utc>>) -> Option<String> {
    at.map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The fields a reconciliation compares, ours (`stored`) against what applying Stripe's
/// snapshot writes (`decided`).
fn changes(stored: Option<&SubscriptionRecord>, decided: &SubscriptionRecord) -> Vec<Change> {
    let Some(stored) = stored else {
        return vec![(
            DifferenceKind::Missing,
            None,
            Some(format!("{} {}", decided.status.as_str(), decided.tier)),
        )];
    };
    let fields: [(DifferenceKind, Option<String>, Option<String>); 9] = [
        (
            DifferenceKind::Customer,
            Some(stored.stripe_customer_id.clone()),
            Some(decided.stripe_customer_id.clone()),
        ),
        (
            DifferenceKind::Status,
            Some(stored.status.as_str().to_owned()),
            Some(decided.status.as_str().to_owned()),
        ),
        (
            DifferenceKind::Tier,
            Some(stored.tier.clone()),
            Some(decided.tier.clone()),
        ),
        (
            DifferenceKind::Price,
            stored.price_id.clone(),
            decided.price_id.clone(),
        ),
        (
            DifferenceKind::Items,
            Some(stored.item_price_ids.join(",")),
            Some(decided.item_price_ids.join(",")),
        ),
        (
            DifferenceKind::PeriodEnd,
            time(stored.current_period_end),
            time(decided.current_period_end),
        ),
        (
            DifferenceKind::CancelAtPeriodEnd,
            Some(stored.cancel_at_period_end.to_string()),
            Some(decided.cancel_at_period_end.to_string()),
        ),
        (
            DifferenceKind::CanceledAt,
            time(stored.canceled_at),
            time(decided.canceled_at),
        ),
        (
            DifferenceKind::TrialEnd,
            time(stored.trial_end),
            time(decided.trial_end),
        ),
    ];
    fields
        .into_iter()
        .filter(|(_, before, after)| before != after)
        .collect()
}
