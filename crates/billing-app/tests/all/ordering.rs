//! The ordering rule's finer points: snapshots are ordered among themselves, invoice events
//! only infer a status and only when newer, and the tier comes from every item.

use crate::support::{Story, app, credits, subscription};
use billing_domain::facts::{InvoiceChange, SubscriptionChange};
use billing_domain::{BillingEvent, Fact, SubscriptionStatus};
use billing_store_diesel::DieselStore;

on_both_backends!(
    a_late_failure_of_an_earlier_attempt_does_not_reopen_dunning,
    an_older_snapshot_applies_its_fields_but_not_an_older_status,
    a_terminal_snapshot_always_applies,
    a_failed_proration_invoice_infers_nothing,
    the_highest_item_decides_the_tier_whatever_the_item_order,
    credits_come_from_the_highest_invoice_line,
);

fn invoice_with(
    mut event: BillingEvent,
    f: impl FnOnce(&mut billing_domain::facts::InvoiceFacts),
) -> BillingEvent {
    if let Fact::Invoice { invoice, .. } = &mut event.fact {
        f(invoice);
    }
    event
}

fn snapshot_with(
    mut event: BillingEvent,
    f: impl FnOnce(&mut billing_domain::facts::SubscriptionSnapshot),
) -> BillingEvent {
    if let Fact::Subscription { subscription, .. } = &mut event.fact {
        f(subscription);
    }
    event
}

async fn a_late_failure_of_an_earlier_attempt_does_not_reopen_dunning(store: DieselStore) {
    let app = app(store.clone());
    let s = Story::new("late_fail");
    let created = s.subscription(
        "created",
        SubscriptionChange::Created,
        0,
        s.snapshot(SubscriptionStatus::Active, 0),
    );
    let recovered = s.subscription(
        "recovered",
        SubscriptionChange::Updated,
        150,
        s.snapshot(SubscriptionStatus::Active, 1),
    );
    let failed = s.invoice("failed", InvoiceChange::PaymentFailed, 100, "2", 1, 0);
    app.ingest(created, "{}".into()).await.unwrap();
    app.ingest(recovered, "{}".into()).await.unwrap();
    assert_eq!(
        app.ingest(failed, "{}".into()).await.unwrap(),
        billing_app::IngestOutcome::Stale
    );
    let sub = subscription(&store, &s.subscription).await.unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(sub.grace_period_end, None);
}

async fn an_older_snapshot_applies_its_fields_but_not_an_older_status(store: DieselStore) {
    let app = app(store.clone());
    let s = Story::new("older_status");
    // Past due at 100; paid at 200 (inferred active); the update of 150 arrives last. Its
    // fields are newer than the last snapshot, but its status is older than the inference.
    let past_due = s.subscription(
        "past_due",
        SubscriptionChange::Updated,
        100,
        s.snapshot(SubscriptionStatus::PastDue, 1),
    );
    let paid = s.invoice("paid", InvoiceChange::Paid, 200, "2", 1, 2000);
    let update = snapshot_with(
        s.subscription(
            "cancel_flag",
            SubscriptionChange::Updated,
            150,
            s.snapshot(SubscriptionStatus::PastDue, 1),
        ),
        |snap| snap.cancel_at_period_end = true,
    );
    app.ingest(past_due, "{}".into()).await.unwrap();
    app.ingest(paid, "{}".into()).await.unwrap();
    let sub = subscription(&store, &s.subscription).await.unwrap();
    assert_eq!(
        (sub.status.clone(), sub.grace_period_end),
        (SubscriptionStatus::Active, None)
    );
    assert_eq!(
        app.ingest(update.clone(), "{}".into()).await.unwrap(),
        billing_app::IngestOutcome::Processed
    );
    let sub = subscription(&store, &s.subscription).await.unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(sub.grace_period_end, None);
    assert!(sub.cancel_at_period_end);
    assert_eq!(sub.snapshot_position.event_id, update.id);
}

async fn a_terminal_snapshot_always_applies(store: DieselStore) {
    let app = app(store.clone());
    let s = Story::new("terminal");
    let past_due = s.subscription(
        "past_due",
        SubscriptionChange::Updated,
        100,
        s.snapshot(SubscriptionStatus::PastDue, 1),
    );
    let paid = s.invoice("paid", InvoiceChange::Paid, 200, "2", 1, 2000);
    let deleted = s.subscription(
        "deleted",
        SubscriptionChange::Deleted,
        150,
        s.snapshot(SubscriptionStatus::Canceled, 1),
    );
    let reopened = s.subscription(
        "late_active",
        SubscriptionChange::Updated,
        300,
        s.snapshot(SubscriptionStatus::Active, 2),
    );
    for e in [past_due, paid, deleted] {
        app.ingest(e, "{}".into()).await.unwrap();
    }
    assert_eq!(
        subscription(&store, &s.subscription).await.unwrap().status,
        SubscriptionStatus::Canceled
    );
    assert_eq!(
        app.ingest(reopened, "{}".into()).await.unwrap(),
        billing_app::IngestOutcome::Stale
    );
    assert_eq!(
        subscription(&store, &s.subscription).await.unwrap().status,
        SubscriptionStatus::Canceled
    );
}

async fn a_failed_proration_invoice_infers_nothing(store: DieselStore) {
    let app = app(store.clone());
    let s = Story::new("proration");
    let active = s.subscription(
        "created",
        SubscriptionChange::Created,
        0,
        s.snapshot(SubscriptionStatus::Active, 0),
    );
    let failed = invoice_with(
        s.invoice(
            "upgrade_failed",
            InvoiceChange::PaymentFailed,
            50,
            "up",
            0,
            0,
        ),
        |i| {
            i.billing_reason = Some("subscription_update".to_owned());
        },
    );
    app.ingest(active, "{}".into()).await.unwrap();
    app.ingest(failed, "{}".into()).await.unwrap();
    let sub = subscription(&store, &s.subscription).await.unwrap();
    assert_eq!(
        (sub.status, sub.grace_period_end),
        (SubscriptionStatus::Active, None)
    );
    // A failed renewal does.
    let renewal = s.invoice(
        "renewal_failed",
        InvoiceChange::PaymentFailed,
        60,
        "2",
        1,
        0,
    );
    app.ingest(renewal, "{}".into()).await.unwrap();
    let sub = subscription(&store, &s.subscription).await.unwrap();
    assert_eq!(sub.status, SubscriptionStatus::PastDue);
    assert!(sub.grace_period_end.is_some());
    assert_eq!(sub.dunning_invoice_id.as_deref(), Some("in_proration_2"));
}

async fn the_highest_item_decides_the_tier_whatever_the_item_order(store: DieselStore) {
    let app = app(store.clone());
    let s = Story::new("items");
    let items = |at, prices: &[&str]| {
        snapshot_with(
            s.subscription(
                &format!("items_{at}"),
                SubscriptionChange::Updated,
                at,
                s.snapshot(SubscriptionStatus::Active, 0),
            ),
            |snap| snap.price_ids = prices.iter().map(|p| (*p).to_owned()).collect(),
        )
    };
    app.ingest(
        items(
            0,
            &[
                "price_addon_seats_7Hq2",
                "price_enterprise_monthly",
                "price_pro_monthly",
            ],
        ),
        "{}".into(),
    )
    .await
    .unwrap();
    let sub = subscription(&store, &s.subscription).await.unwrap();
    assert_eq!(
        (sub.tier.as_str(), sub.price_id.as_deref()),
        ("ENTERPRISE", Some("price_enterprise_monthly"))
    );
    assert_eq!(sub.item_price_ids.len(), 3);
    let ent = app.entitlements(&s.user).await.unwrap();
    assert_eq!(ent.tier.as_str(), "ENTERPRISE");
    // Only unknown prices: the free tier, the first price kept for the record.
    app.ingest(items(10, &["price_addon_seats_7Hq2"]), "{}".into())
        .await
        .unwrap();
    let sub = subscription(&store, &s.subscription).await.unwrap();
    assert_eq!(
        (sub.tier.as_str(), sub.price_id.as_deref()),
        ("FREE", Some("price_addon_seats_7Hq2"))
    );
    assert_eq!(
        app.ingest(items(5, &["price_pro_monthly"]), "{}".into())
            .await
            .unwrap(),
        billing_app::IngestOutcome::Stale
    );
}

async fn credits_come_from_the_highest_invoice_line(store: DieselStore) {
    let app = app(store.clone());
    let s = Story::new("lines");
    app.ingest(s.customer_created(0), "{}".into())
        .await
        .unwrap();
    // The invoice comes before its subscription: its lines alone decide the credits.
    let paid = invoice_with(
        s.invoice("paid", InvoiceChange::Paid, 5, "1", 0, 9900),
        |i| {
            i.price_ids = vec![
                "price_addon_seats_7Hq2".to_owned(),
                "price_pro_monthly".to_owned(),
                "price_enterprise_monthly".to_owned(),
            ];
        },
    );
    app.ingest(paid, "{}".into()).await.unwrap();
    assert_eq!(credits(&store, &s.user).await, 10_000);
}
