//! The change feed's outbox: one record per change of a user's access, in the event's
//! transaction; none for a duplicate or a stale delivery; `before` and `after` chain per user
//! and the last `after` is the user's entitlements; `grace_ended` once per grace period. On
//! Postgres and on SQLite. [`check_replay`] is the reorder property's check of the feed.

use std::sync::Arc;

use billing_app::{AppSettings, BillingApp, IngestOutcome};
use billing_domain::facts::{InvoiceChange, SubscriptionChange};
use billing_domain::{BillingEvent, SubscriptionStatus};
use billing_ports::testing::{FakeGateway, FaultyStore, StoreCall};
use billing_ports::{
    AccessSnapshot, BillingStore, Cause, ChangeKind, ChangeRecord, FeedStore, ManualClock,
    StoreError,
};
use billing_store_diesel::DieselStore;
use chrono::TimeDelta;

use crate::support::{self, Story, usd};

on_both_backends!(
    a_lifecycle_writes_one_record_per_change_and_none_for_duplicates_or_stale_events,
    a_grace_period_that_ends_is_recorded_once,
    a_customer_linked_at_checkout_records_the_access_it_brings,
);

/// Every record of the feed, a page at a time.
pub async fn all_changes<S: BillingStore + FeedStore>(app: &BillingApp<S>) -> Vec<ChangeRecord> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = app.changes(after, 1_000).await.unwrap().unwrap();
        if page.changes.is_empty() {
            return all;
        }
        after = Some(page.next);
        all.extend(page.changes);
    }
}

/// What the feed says of the user's access, as the entitlements state it.
fn snapshot_of(e: &billing_app::UserEntitlements) -> AccessSnapshot {
    AccessSnapshot {
        tier: e.tier.clone(),
        status: e.status.clone(),
        reason: e.reason.code().to_owned(),
        grace_period_end: e.grace_period_end,
        credits: e.credits,
    }
}

/// The problems of the feed against the entitlements of `users`: a record whose `before` is
/// not its user's previous `after`, a user whose last `after` is not their entitlements now, a
/// user without records who is not on the free tier with nothing.
pub async fn check_replay<S: BillingStore + FeedStore>(
    app: &BillingApp<S>,
    users: impl IntoIterator<Item = String>,
) -> Vec<String> {
    let records = all_changes(app).await;
    let mut problems = Vec::new();
    // Each user's last record: its `before` and `after`.
    let mut last: std::collections::HashMap<&str, (&AccessSnapshot, &AccessSnapshot)> =
        std::collections::HashMap::new();
    for (i, record) in records.iter().enumerate() {
        if i > 0 && record.seq <= records[i - 1].seq {
            problems.push(format!("cursor {} does not increase", record.seq));
        }
        let change = &record.change;
        if let Some((before, after)) = last.get(change.user_id.as_str()) {
            // The next transaction starts where the last one ended; the records of one
            // transaction share their before and after.
            let chained = **after == change.before;
            let same_transaction = **before == change.before && **after == change.after;
            if !chained && !same_transaction {
                problems.push(format!(
                    "{} {} of {}: before {:?} is not the previous after {:?}",
                    change.change_id,
                    change.kind.as_str(),
                    change.user_id,
                    change.before,
                    after
                ));
            }
        }
        last.insert(&change.user_id, (&change.before, &change.after));
    }
    for user in users {
        let now = snapshot_of(&app.entitlements(&user).await.unwrap());
        match last.get(user.as_str()).map(|(_, after)| *after) {
            Some(after) if *after == now => {}
            Some(after) => problems.push(format!(
                "{user}: the last record's after {after:?} is not the entitlements {now:?}"
            )),
            None if now.tier.as_str() == "FREE" && now.credits == 0 && now.status.is_none() => {}
            None => problems.push(format!(
                "{user}: no record, but the entitlements are {now:?}"
            )),
        }
    }
    problems
}

fn kinds(records: &[ChangeRecord]) -> Vec<ChangeKind> {
    records.iter().map(|r| r.change.kind).collect()
}

async fn deliver<S: BillingStore>(app: &BillingApp<S>, event: BillingEvent) -> IngestOutcome {
    app.ingest(event, "{}".to_owned()).await.unwrap()
}

async fn a_lifecycle_writes_one_record_per_change_and_none_for_duplicates_or_stale_events(
    store: DieselStore,
) {
    let app = support::app(store);
    let story = Story::new("feed1");
    let created = story.subscription(
        "created",
        SubscriptionChange::Created,
        0,
        story.snapshot(SubscriptionStatus::Active, 0),
    );
    assert_eq!(
        deliver(&app, created.clone()).await,
        IngestOutcome::Processed
    );
    let records = all_changes(&app).await;
    assert_eq!(
        kinds(&records),
        [ChangeKind::TierChanged, ChangeKind::StatusChanged]
    );
    let first = &records[0].change;
    assert_eq!(first.user_id, story.user);
    assert_eq!(first.customer_id.as_deref(), Some(story.customer.as_str()));
    assert_eq!(first.stripe_event_id.as_deref(), Some(created.id.as_str()));
    assert_eq!(
        (first.before.tier.as_str(), first.before.reason.as_str()),
        ("FREE", "no_subscription")
    );
    assert_eq!(
        (
            first.after.tier.as_str(),
            first.after.status.clone(),
            first.after.reason.as_str()
        ),
        ("PRO", Some(SubscriptionStatus::Active), "active")
    );
    assert_ne!(records[0].change.change_id, records[1].change.change_id);

    // A duplicate, a stale snapshot: nothing.
    assert!(matches!(
        deliver(&app, created).await,
        IngestOutcome::Duplicate(_)
    ));
    let stale = story.subscription(
        "stale",
        SubscriptionChange::Updated,
        -60,
        story.snapshot(SubscriptionStatus::Incomplete, 0),
    );
    assert_eq!(deliver(&app, stale).await, IngestOutcome::Stale);
    assert_eq!(all_changes(&app).await.len(), 2);

    // The period's invoice: credits and the payment; the same invoice's second event: nothing.
    let paid = story.invoice("paid0", InvoiceChange::Paid, 10, "0", 0, 2000);
    deliver(&app, paid).await;
    let records = all_changes(&app).await;
    assert_eq!(
        kinds(&records[2..]),
        [ChangeKind::CreditsGranted, ChangeKind::PaymentSucceeded]
    );
    assert_eq!(records[3].change.amount, Some(usd(2000)));
    assert_eq!(records[2].change.after.credits, 1000);
    let succeeded = story.invoice(
        "succeeded0",
        InvoiceChange::PaymentSucceeded,
        10,
        "0",
        0,
        2000,
    );
    assert_eq!(deliver(&app, succeeded).await, IngestOutcome::Processed);
    assert_eq!(all_changes(&app).await.len(), 4);

    // The renewal fails: the payment, the status, the grace period.
    let failed = story.invoice(
        "failed1",
        InvoiceChange::PaymentFailed,
        30 * 86_400,
        "1",
        1,
        0,
    );
    deliver(&app, failed).await;
    let records = all_changes(&app).await;
    assert_eq!(
        kinds(&records[4..]),
        [
            ChangeKind::StatusChanged,
            ChangeKind::GraceStarted,
            ChangeKind::PaymentFailed
        ]
    );
    let grace = &records[4].change.after;
    assert_eq!(grace.reason, "in_grace_period");
    assert_eq!(grace.tier.as_str(), "PRO");
    assert!(grace.grace_period_end.is_some());
    assert_eq!(records[6].change.amount, Some(usd(2000)));

    // The same state again from the subscription's own event: no record.
    let past_due = story.subscription(
        "past_due1",
        SubscriptionChange::Updated,
        30 * 86_400,
        story.snapshot(SubscriptionStatus::PastDue, 1),
    );
    deliver(&app, past_due).await;
    let problems = check_replay(&app, [story.user.clone()]).await;
    assert!(problems.is_empty(), "{problems:#?}");
}

async fn a_grace_period_that_ends_is_recorded_once(store: DieselStore) {
    let clock = Arc::new(ManualClock::new(support::t0()));
    let app = BillingApp::new(
        Arc::new(store),
        support::catalog(),
        clock.clone(),
        None,
        AppSettings::default(),
    );
    let story = Story::new("feed2");
    for event in [
        story.subscription(
            "created",
            SubscriptionChange::Created,
            0,
            story.snapshot(SubscriptionStatus::Active, 0),
        ),
        story.invoice(
            "failed1",
            InvoiceChange::PaymentFailed,
            30 * 86_400,
            "1",
            1,
            0,
        ),
    ] {
        clock.set(event.created);
        deliver(&app, event).await;
    }
    let grace_end = all_changes(&app)
        .await
        .last()
        .unwrap()
        .change
        .after
        .grace_period_end;
    let grace_end = grace_end.unwrap();
    assert_eq!(app.record_grace_ended().await.unwrap(), 0, "not ended yet");

    clock.set(grace_end + TimeDelta::seconds(5));
    assert_eq!(app.record_grace_ended().await.unwrap(), 1);
    assert_eq!(
        app.record_grace_ended().await.unwrap(),
        0,
        "once per grace period"
    );
    let records = all_changes(&app).await;
    let ended = &records.last().unwrap().change;
    assert_eq!(ended.kind, ChangeKind::GraceEnded);
    assert_eq!(ended.stripe_event_id, None);
    assert_eq!(
        (ended.before.tier.as_str(), ended.before.reason.as_str()),
        ("PRO", "in_grace_period")
    );
    assert_eq!(
        (ended.after.tier.as_str(), ended.after.reason.as_str()),
        ("FREE", "grace_period_over")
    );
    let problems = check_replay(&app, [story.user.clone()]).await;
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A user linked to their Stripe customer at checkout after webhooks stored a subscription
/// for that customer (the subscription event arrived before the link committed): the link
/// brings the user the subscription's access, and the feed records it.
async fn a_customer_linked_at_checkout_records_the_access_it_brings(store: DieselStore) {
    let stripe = FakeGateway::new();
    let faulty = FaultyStore::new(store);
    let app = BillingApp::new(
        Arc::new(faulty.clone()),
        support::catalog(),
        Arc::new(ManualClock::new(support::t0())),
        Some(Arc::new(stripe.clone())),
        AppSettings::default(),
    );
    let user = "user_Lk4v8QzT";
    // The customer is created at Stripe, but its link fails to commit.
    faulty.fail_times(
        StoreCall::SaveCustomer,
        StoreError::Unavailable(Cause::msg("injected: connection lost")),
        1,
    );
    assert!(app.customer_for(user, None).await.is_err());
    let customer = stripe.customers()[0].id.clone();
    // Its subscription's webhook (no user in its metadata) arrives before the link does.
    let mut story = Story::new("link1");
    story.customer = customer.clone();
    let mut snapshot = story.snapshot(SubscriptionStatus::Active, 0);
    snapshot.metadata_user_id = None;
    let created = story.subscription("created", SubscriptionChange::Created, 0, snapshot);
    assert_eq!(deliver(&app, created).await, IngestOutcome::Processed);
    assert!(all_changes(&app).await.is_empty(), "no user yet, no record");

    // The retried link: the user is PRO now, and the feed says so.
    assert_eq!(app.customer_for(user, None).await.unwrap(), customer);
    let records = all_changes(&app).await;
    assert_eq!(
        kinds(&records),
        [ChangeKind::TierChanged, ChangeKind::StatusChanged]
    );
    assert_eq!(
        records[0].change.customer_id.as_deref(),
        Some(customer.as_str())
    );
    assert_eq!(records[0].change.after.tier.as_str(), "PRO");
    let problems = check_replay(&app, [user.to_owned()]).await;
    assert!(problems.is_empty(), "{problems:#?}");
}
