//! Reconciliation with Stripe against `FakeGateway`: catch-up from the Events API through the
//! ingest path (realistic bodies from `billing-streamgen`, read by the webhook's parser), the
//! cursor, the 30-day window, the sweep that repairs subscriptions, and dry runs.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use billing_app::{
    AppSettings, BillingApp, DifferenceKind, EVENTS_WINDOW_DAYS, ReconcileReport, ReconcileScope,
};
use billing_domain::facts::{SubscriptionChange, SubscriptionSnapshot};
use billing_domain::{Fact, SubscriptionStatus};
use billing_ports::testing::{FakeGateway, GatewayCall};
use billing_ports::{
    BillingStore, Clock, EventStatus, GatewayError, ListedEvent, ManualClock, SubscriptionRecord,
};
use billing_store_diesel::DieselStore;
use billing_streamgen::{Options, Scenario, Stream};
use chrono::{DateTime, TimeDelta, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use crate::support::{self, Story, credits, subscription};

on_both_backends!(
    catch_up_applies_missed_events_once_and_a_second_run_changes_nothing,
    a_subscription_that_differs_is_repaired_and_reported_with_before_and_after,
    a_subscription_fetched_under_another_customer_is_not_repaired,
    a_dry_run_changes_nothing_and_says_what_would,
    a_cursor_past_the_window_or_gone_at_stripe_falls_back_to_the_whole_window,
    a_failed_listing_stops_the_run_and_the_next_run_does_the_work,
);

/// `prefix_` and 24 random characters of Stripe's id alphabet, never repeated.
fn stripe_id(prefix: &str) -> String {
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let seed = RandomState::new().hash_one(DRAWS.fetch_add(1, Ordering::Relaxed));
    let mut rng = StdRng::seed_from_u64(seed);
    format!(
        "{prefix}_{}",
        billing_streamgen::ids::alphanumeric(&mut rng, 24)
    )
}

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

/// An app with `stripe` as its gateway and a clock stopped at `now`.
fn app_at(
    store: &DieselStore,
    stripe: &FakeGateway,
    now: DateTime<Utc>,
) -> (BillingApp<DieselStore>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now));
    let app = BillingApp::new(
        Arc::new(store.clone()),
        support::catalog(),
        clock.clone(),
        Some(Arc::new(stripe.clone())),
        AppSettings::default(),
    );
    (app, clock)
}

/// A seeded stream of realistic journeys (both API shapes) long enough to pass the window.
fn stream(seed: u64) -> Stream {
    Scenario::generate(
        seed,
        &Options {
            events: 90,
            window: Some(1),
            duplicates_percent: 0,
            active_customers: Some(1),
        },
    )
    .unwrap()
    .stream
}

/// `stream` with its first third moved 40 days back (the order kept), so it passes the
/// 30-day window.
fn stretched(mut stream: Stream) -> Stream {
    let cut = stream.events.len() / 3;
    for event in &mut stream.events[..cut] {
        event.created -= TimeDelta::days(40).num_seconds();
        let mut body: Value = serde_json::from_str(&event.body).unwrap();
        body["created"] = json!(event.created);
        event.body = body.to_string();
    }
    stream
}

/// The events of `stream` created at or after `since`.
fn created_since(stream: &Stream, since: DateTime<Utc>) -> Vec<&billing_streamgen::Event> {
    stream
        .events
        .iter()
        .filter(|e| time(e.created) >= since)
        .collect()
}

/// A body as Stripe's Events API lists it, read by the webhook's parser.
fn listed(body: &str) -> ListedEvent {
    ListedEvent {
        payload: body.to_owned(),
        parsed: Ok(billing_stripe::parse_event(body.as_bytes()).unwrap()),
    }
}

/// A copy of `body` as a new event (fresh id) created at `created`.
fn copy_of(body: &str, created: DateTime<Utc>) -> String {
    let mut event: Value = serde_json::from_str(body).unwrap();
    event["id"] = json!(stripe_id("evt"));
    event["created"] = json!(created.timestamp());
    event.to_string()
}

/// Each subscription's newest snapshot in `events` (what Stripe answers for it now).
fn newest_snapshots<'e>(
    events: impl IntoIterator<Item = &'e billing_streamgen::Event>,
) -> BTreeMap<String, SubscriptionSnapshot> {
    let mut newest = BTreeMap::new();
    for event in events {
        let parsed = billing_stripe::parse_event(event.body.as_bytes()).unwrap();
        if let Fact::Subscription {
            change,
            mut subscription,
        } = parsed.fact
        {
            if change == SubscriptionChange::Deleted {
                subscription.status = SubscriptionStatus::Canceled;
            }
            newest.insert(subscription.id.clone(), subscription);
        }
    }
    newest
}

/// Every stored subscription of `ids`, and every user's credits: what a run may change.
async fn state(
    store: &DieselStore,
    ids: &[String],
    users: &[String],
) -> (Vec<Option<SubscriptionRecord>>, Vec<i64>) {
    let mut subscriptions = Vec::new();
    for id in ids {
        subscriptions.push(subscription(store, id).await);
    }
    let mut balances = Vec::new();
    for user in users {
        balances.push(credits(store, user).await);
    }
    (subscriptions, balances)
}

fn users(stream: &Stream) -> Vec<String> {
    let mut users: Vec<String> = stream
        .events
        .iter()
        .filter_map(|e| {
            let parsed = billing_stripe::parse_event(e.body.as_bytes()).unwrap();
            parsed.fact.user_id().map(str::to_owned)
        })
        .collect();
    users.sort();
    users.dedup();
    users
}

fn applied_now(report: &ReconcileReport) -> usize {
    report.events.applied + report.events.ignored + report.events.stale
}

async fn catch_up_applies_missed_events_once_and_a_second_run_changes_nothing(store: DieselStore) {
    let stream = stretched(stream(0x5eed_0011));
    let now = time(stream.end + 3600);
    let window_start = now - TimeDelta::days(EVENTS_WINDOW_DAYS);
    let stripe = FakeGateway::new();
    stripe.set_page_size(7);
    let (app, clock) = app_at(&store, &stripe, now);
    for event in &stream.events {
        stripe.put_event(listed(&event.body));
    }
    for snapshot in newest_snapshots(&stream.events).into_values() {
        stripe.put_subscription(snapshot);
    }
    // The webhook delivered everything before the window and every third event within it;
    // the rest was missed.
    let in_window = created_since(&stream, window_start);
    assert!(
        in_window.len() < stream.events.len() && in_window.len() > 20,
        "the stream should pass the window: {} of {}",
        in_window.len(),
        stream.events.len()
    );
    let mut webhooked = HashSet::new();
    for (i, event) in stream.events.iter().enumerate() {
        if time(event.created) < window_start || i % 3 == 0 {
            let parsed = billing_stripe::parse_event(event.body.as_bytes()).unwrap();
            app.ingest(parsed, event.body.clone()).await.unwrap();
            webhooked.insert(event.id.clone());
        }
    }
    let missed = in_window
        .iter()
        .filter(|e| !webhooked.contains(&e.id))
        .count();

    let report = app.reconcile(ReconcileScope::All, false).await.unwrap();
    assert_eq!(report.events.since, Some(window_start));
    assert_eq!(report.events.listed, in_window.len());
    assert_eq!(report.events.duplicates, in_window.len() - missed);
    assert_eq!(applied_now(&report), missed, "{report:#?}");
    assert!(report.events.failed.is_empty(), "{report:#?}");
    for event in &stream.events {
        let stored = store.event(&event.id).await.unwrap().unwrap();
        assert_ne!(stored.status, EventStatus::Failed, "{}", event.id);
        assert_eq!(stored.attempts, 0);
    }
    // Everything applied: each subscription is what Stripe says, the sweep finds nothing.
    assert!(report.subscriptions_checked > 0);
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    let newest = stream.events.last().unwrap();
    let cursor = report.events.cursor_after.clone().unwrap();
    assert_eq!(cursor.event_id.as_deref(), Some(newest.id.as_str()));
    assert_eq!(cursor.event_created, Some(time(newest.created)));
    assert_eq!(cursor.last_success_at, Some(now));
    assert_eq!(app.reconcile_cursor().await.unwrap(), Some(cursor.clone()));

    // A second run lists nothing after the cursor and changes nothing.
    let ids: Vec<String> = newest_snapshots(&stream.events).into_keys().collect();
    let users = users(&stream);
    let before = state(&store, &ids, &users).await;
    clock.advance(TimeDelta::minutes(10));
    let again = app.reconcile(ReconcileScope::All, false).await.unwrap();
    assert_eq!(again.events.listed, 0);
    assert!(again.differences.is_empty());
    assert_eq!(state(&store, &ids, &users).await, before);

    // Asking for more than Stripe keeps is capped to the window: every event listed again is
    // a duplicate; an event older than the window is not listed at all.
    let old = copy_of(&in_window[0].body, clock.now() - TimeDelta::days(31));
    let old = listed(&old);
    stripe.put_event(old.clone());
    let capped = app
        .reconcile(ReconcileScope::Since(TimeDelta::days(45)), false)
        .await
        .unwrap();
    assert!(capped.events.capped);
    // The sweep of a time scope covers the customers its events name.
    assert!(capped.subscriptions_checked > 0);
    assert_eq!(
        capped.events.since,
        Some(clock.now() - TimeDelta::days(EVENTS_WINDOW_DAYS))
    );
    assert_eq!(applied_now(&capped), 0);
    assert_eq!(capped.events.duplicates, capped.events.listed);
    assert!(store.event(old.id()).await.unwrap().is_none());
    assert!(capped.differences.is_empty());
    assert_eq!(state(&store, &ids, &users).await, before);

    // New events: the next run resumes after the cursor and lists only them.
    let later: Vec<ListedEvent> = in_window[in_window.len() - 2..]
        .iter()
        .map(|e| listed(&copy_of(&e.body, clock.now() - TimeDelta::seconds(5))))
        .collect();
    for event in &later {
        stripe.put_event(event.clone());
    }
    let resumed = app.reconcile(ReconcileScope::All, false).await.unwrap();
    assert_eq!(resumed.events.listed, 2);
    assert_eq!(applied_now(&resumed), 2);
    assert_eq!(
        resumed.events.cursor_after.unwrap().event_id.as_deref(),
        Some(later[1].id())
    );
    for event in &later {
        assert!(store.event(event.id()).await.unwrap().is_some());
    }
}

/// A PRO subscription of a fresh customer, stored through its `created` event.
async fn stored_subscription(app: &BillingApp<DieselStore>) -> (Story, SubscriptionSnapshot) {
    let story = Story {
        tag: stripe_id("t"),
        user: stripe_id("user"),
        customer: stripe_id("cus"),
        subscription: stripe_id("sub"),
    };
    let ours = story.snapshot(SubscriptionStatus::Active, 0);
    let mut created = story.customer_created(1);
    created.id = stripe_id("evt");
    app.ingest(created, "{}".into()).await.unwrap();
    let mut event = story.subscription("created", SubscriptionChange::Created, 2, ours.clone());
    event.id = stripe_id("evt");
    app.ingest(event, "{}".into()).await.unwrap();
    (story, ours)
}

/// Stripe's side of [`stored_subscription`]'s customer now: the subscription moved on (past
/// due, ENTERPRISE, next period, canceling) and a second one we never heard of.
fn stripe_moved_on(
    stripe: &FakeGateway,
    story: &Story,
) -> (SubscriptionSnapshot, SubscriptionSnapshot) {
    let mut moved = story.snapshot(SubscriptionStatus::PastDue, 1);
    moved.price_ids = vec!["price_enterprise_monthly".to_owned()];
    moved.cancel_at_period_end = true;
    stripe.put_subscription(moved.clone());
    let mut unknown = story.snapshot(SubscriptionStatus::Active, 0);
    unknown.id = stripe_id("sub");
    stripe.put_subscription(unknown.clone());
    (moved, unknown)
}

fn kinds(report: &ReconcileReport, subscription: &str) -> Vec<DifferenceKind> {
    let mut kinds: Vec<DifferenceKind> = report
        .differences
        .iter()
        .filter(|d| d.subscription_id == subscription)
        .map(|d| d.kind)
        .collect();
    kinds.sort();
    kinds
}

async fn a_subscription_that_differs_is_repaired_and_reported_with_before_and_after(
    store: DieselStore,
) {
    let stripe = FakeGateway::new();
    let (app, _) = app_at(&store, &stripe, support::t0() + TimeDelta::days(40));
    let (story, ours) = stored_subscription(&app).await;
    // Another customer's subscription, equal at Stripe and here: not reported.
    let (_, same) = stored_subscription(&app).await;
    stripe.put_subscription(same.clone());
    let (moved, unknown) = stripe_moved_on(&stripe, &story);

    let report = app
        .reconcile(ReconcileScope::Customer(story.customer.clone()), false)
        .await
        .unwrap();
    assert_eq!(report.subscriptions_checked, 2);
    use DifferenceKind as K;
    assert_eq!(
        kinds(&report, &story.subscription),
        [
            K::Status,
            K::Tier,
            K::Price,
            K::Items,
            K::PeriodEnd,
            K::CancelAtPeriodEnd
        ]
    );
    let field = |kind| {
        report
            .differences
            .iter()
            .find(|d| d.subscription_id == story.subscription && d.kind == kind)
            .map(|d| {
                (
                    d.before.clone(),
                    d.after.clone(),
                    d.repaired,
                    d.customer_id.clone(),
                )
            })
            .unwrap()
    };
    let period_end = |s: &SubscriptionSnapshot| {
        s.current_period_end
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    assert_eq!(
        field(K::Status),
        (
            Some("active".to_owned()),
            Some("past_due".to_owned()),
            true,
            story.customer.clone()
        )
    );
    assert_eq!(field(K::Tier).0.as_deref(), Some("PRO"));
    assert_eq!(field(K::Tier).1.as_deref(), Some("ENTERPRISE"));
    assert_eq!(
        field(K::Price).1.as_deref(),
        Some("price_enterprise_monthly")
    );
    assert_eq!(field(K::PeriodEnd).0, period_end(&ours));
    assert_eq!(field(K::PeriodEnd).1, period_end(&moved));
    assert_eq!(field(K::CancelAtPeriodEnd).1.as_deref(), Some("true"));
    assert_eq!(kinds(&report, &unknown.id), [K::Missing]);
    assert!(report.differences.iter().all(|d| d.repaired));

    // Repaired through a re-fetch, with what Stripe says now.
    assert_eq!(stripe.calls(GatewayCall::FetchSubscription), 2);
    let stored = subscription(&store, &story.subscription).await.unwrap();
    assert_eq!(stored.status, SubscriptionStatus::PastDue);
    assert_eq!(stored.tier, "ENTERPRISE");
    assert!(stored.cancel_at_period_end);
    assert_eq!(stored.current_period_end, moved.current_period_end);
    let added = subscription(&store, &unknown.id).await.unwrap();
    assert_eq!(added.status, SubscriptionStatus::Active);
    assert_eq!(added.stripe_customer_id, story.customer);
    // A customer's run moves no cursor.
    assert_eq!(app.reconcile_cursor().await.unwrap(), None);

    // Nothing differs any more; the other customer's equal subscription never did.
    let again = app.reconcile(ReconcileScope::All, false).await.unwrap();
    assert_eq!(again.subscriptions_checked, 3);
    assert!(again.differences.is_empty(), "{:#?}", again.differences);
}

/// The repair locks the listed subscription's customer. If the re-fetch names another one,
/// writing that customer's row would happen without its lock, so nothing is written.
async fn a_subscription_fetched_under_another_customer_is_not_repaired(store: DieselStore) {
    let stripe = FakeGateway::new();
    let (app, _) = app_at(&store, &stripe, support::t0() + TimeDelta::days(40));
    let (story, ours) = stored_subscription(&app).await;
    let (moved, _) = stripe_moved_on(&stripe, &story);
    // The fetch answers late; between the listing and it, Stripe's copy changes customer.
    stripe.delay(GatewayCall::FetchSubscription, Duration::from_millis(300));
    let elsewhere = SubscriptionSnapshot {
        customer_id: stripe_id("cus"),
        ..moved.clone()
    };
    let move_it = async {
        while stripe.calls(GatewayCall::ListSubscriptions) == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        stripe.put_subscription(elsewhere.clone());
    };
    let (report, ()) = tokio::join!(
        app.reconcile(ReconcileScope::Customer(story.customer.clone()), false),
        move_it
    );
    let report = report.unwrap();

    assert_eq!(stripe.calls(GatewayCall::FetchSubscription), 2);
    assert!(kinds(&report, &story.subscription).is_empty());
    let stored = subscription(&store, &story.subscription).await.unwrap();
    assert_eq!(stored.stripe_customer_id, story.customer);
    assert_eq!(stored.status, SubscriptionStatus::Active);
    assert_eq!(stored.current_period_end, ours.current_period_end);
    let other = elsewhere.customer_id.clone();
    let written = store
        .transaction(
            move |tx| -> billing_ports::TxFuture<'_, '_, _, billing_ports::StoreError> {
                Box::pin(async move { Ok(tx.customer(&other).await?.is_some()) })
            },
        )
        .await
        .unwrap();
    assert!(
        !written,
        "the fetched customer's row was written without its lock"
    );
}

async fn a_dry_run_changes_nothing_and_says_what_would(store: DieselStore) {
    let stripe = FakeGateway::new();
    let stream = stream(0x5eed_0022);
    let now = time(stream.end + 60);
    let (app, _) = app_at(&store, &stripe, now);
    let window_start = now - TimeDelta::days(EVENTS_WINDOW_DAYS);
    let in_window = created_since(&stream, window_start);
    for event in &in_window {
        stripe.put_event(listed(&event.body));
    }
    // One of them was delivered.
    let delivered = in_window[0];
    let parsed = billing_stripe::parse_event(delivered.body.as_bytes()).unwrap();
    app.ingest(parsed, delivered.body.clone()).await.unwrap();
    let (story, ours) = stored_subscription(&app).await;
    let (_, unknown) = stripe_moved_on(&stripe, &story);

    let dry = app.reconcile(ReconcileScope::All, true).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.events.listed, in_window.len());
    assert_eq!(dry.events.duplicates, 1);
    assert_eq!(dry.events.would_ingest, in_window.len() - 1);
    assert_eq!(applied_now(&dry), 0);
    assert_eq!(kinds(&dry, &unknown.id), [DifferenceKind::Missing]);
    assert_eq!(kinds(&dry, &story.subscription).len(), 6);
    assert!(dry.differences.iter().all(|d| !d.repaired));
    // Nothing was written, fetched or moved.
    for event in &in_window[1..] {
        assert!(store.event(&event.id).await.unwrap().is_none());
    }
    let stored = subscription(&store, &story.subscription).await.unwrap();
    assert_eq!(stored.status, SubscriptionStatus::Active);
    assert_eq!(stored.current_period_end, ours.current_period_end);
    assert!(subscription(&store, &unknown.id).await.is_none());
    assert_eq!(stripe.calls(GatewayCall::FetchSubscription), 0);
    assert_eq!(dry.events.cursor_after, None);
    assert_eq!(app.reconcile_cursor().await.unwrap(), None);

    // The real run does what the dry run said.
    let real = app.reconcile(ReconcileScope::All, false).await.unwrap();
    assert_eq!(
        applied_now(&real) + real.events.failed.len(),
        dry.events.would_ingest
    );
    assert!(
        kinds(&real, &story.subscription)
            .iter()
            .eq(kinds(&dry, &story.subscription).iter())
    );
    assert!(subscription(&store, &unknown.id).await.is_some());
}

async fn a_cursor_past_the_window_or_gone_at_stripe_falls_back_to_the_whole_window(
    store: DieselStore,
) {
    let stripe = FakeGateway::new();
    let stream = stream(0x5eed_0033);
    let now = time(stream.end + 60);
    let (app, clock) = app_at(&store, &stripe, now);
    let recent = created_since(&stream, now - TimeDelta::days(10));
    for event in &recent {
        stripe.put_event(listed(&event.body));
    }
    let first = app.reconcile(ReconcileScope::All, false).await.unwrap();
    let cursor = first.events.cursor_after.unwrap();
    let cursor_created = cursor.event_created.unwrap();
    assert_eq!(first.events.gap_from, None);

    // Stripe no longer has the cursor's event (nor any other): the whole window is listed
    // and the gap reported.
    stripe.expire_events(now + TimeDelta::seconds(1));
    let gone = app.reconcile(ReconcileScope::All, false).await.unwrap();
    assert_eq!(gone.events.gap_from, Some(cursor_created));
    assert_eq!(
        gone.events.since,
        Some(now - TimeDelta::days(EVENTS_WINDOW_DAYS))
    );
    assert_eq!(gone.events.listed, 0);
    assert_eq!(gone.events.cursor_after.unwrap().event_id, cursor.event_id);

    // Forty days later the cursor is past the window: the same, with the new events listed.
    clock.advance(TimeDelta::days(40));
    let fresh = listed(&copy_of(&recent[0].body, clock.now() - TimeDelta::days(2)));
    stripe.put_event(fresh.clone());
    let late = app.reconcile(ReconcileScope::All, false).await.unwrap();
    assert_eq!(late.events.gap_from, Some(cursor_created));
    assert_eq!(late.events.listed, 1);
    assert_eq!(
        late.events.cursor_after.unwrap().event_id.as_deref(),
        Some(fresh.id())
    );
}

async fn a_failed_listing_stops_the_run_and_the_next_run_does_the_work(store: DieselStore) {
    let stripe = FakeGateway::new();
    let stream = stream(0x5eed_0044);
    let now = time(stream.end + 60);
    let (app, _) = app_at(&store, &stripe, now);
    let recent = created_since(&stream, now - TimeDelta::days(5));
    for event in &recent {
        stripe.put_event(listed(&event.body));
    }
    // Stripe still throttles after the client's own retries.
    stripe.fail_times(
        GatewayCall::ListEvents,
        GatewayError::Unavailable("list events: HTTP 429 rate_limit".into()),
        1,
    );
    let error = app.reconcile(ReconcileScope::All, false).await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert_eq!(app.reconcile_cursor().await.unwrap(), None);
    for event in &recent {
        assert!(store.event(&event.id).await.unwrap().is_none());
    }

    let report = app.reconcile(ReconcileScope::All, false).await.unwrap();
    assert_eq!(report.events.listed, recent.len());
    assert_eq!(applied_now(&report), recent.len());
    // An unreadable event is stored failed, as the webhook stores it, and passed.
    let mut broken: Value = serde_json::from_str(&recent[0].body).unwrap();
    broken["id"] = json!(stripe_id("evt"));
    broken["created"] = json!(now.timestamp());
    broken["type"] = json!("customer.subscription.updated");
    broken["data"]["object"] =
        json!({ "id": stripe_id("sub"), "object": "subscription", "status": "" });
    let body = broken.to_string();
    let envelope = billing_stripe::peek_envelope(body.as_bytes()).unwrap();
    let error = billing_stripe::parse_event(body.as_bytes()).unwrap_err();
    stripe.put_event(ListedEvent {
        payload: body,
        parsed: Err(billing_ports::UnreadableEvent {
            id: envelope.id.clone(),
            event_type: envelope.event_type,
            api_version: envelope.api_version,
            livemode: envelope.livemode,
            created: envelope.created,
            error: error.to_string(),
        }),
    });
    let next = app.reconcile(ReconcileScope::All, false).await.unwrap();
    assert_eq!(next.events.failed.len(), 1);
    assert_eq!(next.events.failed[0].id, envelope.id);
    let stored = store.event(&envelope.id).await.unwrap().unwrap();
    assert_eq!(stored.status, EventStatus::Failed);
    assert_eq!(
        stored.last_error.as_deref(),
        Some(error.to_string().as_str())
    );
    assert_eq!(
        next.events.cursor_after.unwrap().event_id.as_deref(),
        Some(envelope.id.as_str())
    );
}
