//! What must hold after a stream was delivered, whatever the order, computed from what the
//! generator meant (not from the app): every subscription as its newest snapshot says; one
//! credit grant per paid invoice; every event stored once and done; refunds as the charges'
//! cumulative totals; and entitlements as after an in-order delivery.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use billing_app::{BillingApp, IngestOutcome};
use billing_domain::Catalog;
use billing_ports::{
    BillingStore, EventStatus, OrderRecord, PaymentRecord, PaymentStatus, StoreError,
    SubscriptionRecord, TxFuture,
};
use billing_store_diesel::DieselStore;
use chrono::{DateTime, Utc};

use super::delivery::{Outcome, describe};
use super::model::{CheckoutMode, Intent, SubscriptionObj, day};
use super::prices::credits_of;
use super::stream::{Stream, WALL_START};

/// A subscription's newest snapshot: the truth.
#[derive(Debug, Clone)]
pub struct Truth {
    /// Index of its event in the stream.
    pub event: usize,
    pub snapshot: SubscriptionObj,
}

/// What a payment intent must end as.
#[derive(Debug, Clone, Default)]
pub struct PaymentTruth {
    pub succeeded: bool,
    pub refunded: i64,
    /// A payment-mode Checkout's amount: an order must exist.
    pub order_amount: Option<i64>,
}

/// Everything the oracle expects of one stream.
#[derive(Debug, Default)]
pub struct Expected {
    pub subscriptions: BTreeMap<String, Truth>,
    /// Every user's credits.
    pub credits: BTreeMap<String, i64>,
    pub payments: BTreeMap<String, PaymentTruth>,
}

/// The expectations of `stream`.
pub fn expected(stream: &Stream, catalog: &Catalog) -> Expected {
    let mut expected = Expected::default();
    let mut paid_invoices: BTreeMap<&str, (&str, i64)> = BTreeMap::new();
    for customer in &stream.customers {
        expected.credits.insert(customer.object.user.clone(), 0);
    }
    for (index, event) in stream.events.iter().enumerate() {
        match &event.intent {
            Intent::Subscription { now, .. } => {
                let newer = match expected.subscriptions.get(&now.id) {
                    None => true,
                    Some(truth) => {
                        let current = stream.events[truth.event].created;
                        assert_ne!(
                            current, event.created,
                            "the generator emitted two snapshots of {} in one second",
                            now.id
                        );
                        event.created > current
                    }
                };
                if newer {
                    expected.subscriptions.insert(
                        now.id.clone(),
                        Truth {
                            event: index,
                            snapshot: now.as_ref().clone(),
                        },
                    );
                }
            }
            Intent::Invoice {
                event_type,
                invoice,
            } => {
                if *event_type != "invoice.payment_failed" && invoice.amount_paid > 0 {
                    let credits = credits_of(catalog, invoice.priced_line().price);
                    paid_invoices.insert(&invoice.id, (&invoice.user, credits));
                }
            }
            Intent::Payment(pi) => {
                let truth = expected.payments.entry(pi.id.clone()).or_default();
                truth.succeeded |= pi.succeeded;
            }
            Intent::ChargeRefunded(charge) => {
                let truth = expected
                    .payments
                    .entry(charge.payment_intent.clone())
                    .or_default();
                truth.succeeded = true;
                truth.refunded = truth.refunded.max(charge.amount_refunded);
            }
            Intent::Checkout(session) if session.mode == CheckoutMode::Payment => {
                if let Some(pi) = &session.payment_intent {
                    let truth = expected.payments.entry(pi.clone()).or_default();
                    truth.succeeded = true;
                    truth.order_amount = Some(session.amount_total);
                }
            }
            Intent::Customer(_) | Intent::Checkout(_) => {}
        }
    }
    for (user, credits) in paid_invoices.into_values() {
        *expected.credits.entry(user.to_owned()).or_default() += credits;
    }
    expected
}

/// The differences between a stored subscription and the snapshot it must equal.
pub fn subscription_diff(expected: &SubscriptionObj, stored: &SubscriptionRecord) -> Vec<String> {
    let time = |t: i64| DateTime::<Utc>::from_timestamp(t, 0);
    let show =
        |t: Option<DateTime<Utc>>| t.map_or_else(|| "none".to_owned(), |t| day(t.timestamp()));
    let mut diffs = Vec::new();
    if stored.status != expected.status {
        diffs.push(format!(
            "status {} (expected {})",
            stored.status.as_str(),
            expected.status.as_str()
        ));
    }
    if stored.price_id.as_deref() != Some(expected.price.id) {
        diffs.push(format!(
            "price {} (expected {})",
            stored.price_id.as_deref().unwrap_or("none"),
            expected.price.id
        ));
    }
    if stored.current_period_start != time(expected.period.0)
        || stored.current_period_end != time(expected.period.1)
    {
        diffs.push(format!(
            "period {}..{} (expected {}..{})",
            show(stored.current_period_start),
            show(stored.current_period_end),
            day(expected.period.0),
            day(expected.period.1)
        ));
    }
    if stored.cancel_at_period_end != expected.cancel_at_period_end {
        diffs.push(format!(
            "cancel_at_period_end {} (expected {})",
            stored.cancel_at_period_end, expected.cancel_at_period_end
        ));
    }
    diffs
}

/// One delivered run to check.
pub struct Run<'a> {
    pub stream: &'a Stream,
    pub expected: &'a Expected,
    pub order: &'a [usize],
    pub outcomes: &'a [Outcome],
    /// The app that got the reordered deliveries.
    pub app: &'a BillingApp<DieselStore>,
    /// The app (own database, same clock) that got the stream in order, one at a time.
    pub reference: &'a BillingApp<DieselStore>,
}

/// The findings of one check, by kind.
#[derive(Debug, Default)]
pub struct Findings {
    pub failed_deliveries: Vec<String>,
    pub not_exactly_once: Vec<String>,
    pub storage: Vec<String>,
    /// Subscription id → what differs (and the report of it).
    pub subscriptions: BTreeMap<String, (Vec<String>, String)>,
    pub credits: Vec<String>,
    pub payments: Vec<String>,
    pub entitlements: Vec<String>,
}

impl Findings {
    /// True when nothing was found.
    pub fn clean(&self) -> bool {
        self.failed_deliveries.is_empty()
            && self.not_exactly_once.is_empty()
            && self.storage.is_empty()
            && self.subscriptions.is_empty()
            && self.credits.is_empty()
            && self.payments.is_empty()
            && self.entitlements.is_empty()
    }

    /// How many subscriptions are wrong in each field.
    pub fn subscription_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for (diffs, _) in self.subscriptions.values() {
            for field in ["status", "price", "period", "cancel_at_period_end"] {
                if diffs.iter().any(|d| d.starts_with(field)) {
                    *counts.entry(field).or_default() += 1;
                }
            }
        }
        counts
    }

    /// The readable report; detailed for the first `detail` subscriptions.
    pub fn report(&self, detail: usize) -> String {
        let mut out = String::new();
        let mut section = |title: &str, lines: &[String]| {
            if !lines.is_empty() {
                let _ = writeln!(out, "  {title}: {}", lines.len());
                for line in lines.iter().take(20) {
                    let _ = writeln!(out, "    {line}");
                }
                if lines.len() > 20 {
                    let _ = writeln!(out, "    … and {} more", lines.len() - 20);
                }
            }
        };
        section("failed deliveries", &self.failed_deliveries);
        section("events not applied exactly once", &self.not_exactly_once);
        section("events not stored once and done", &self.storage);
        section("users with wrong credits", &self.credits);
        section("payments with a wrong state", &self.payments);
        section(
            "users whose entitlements differ from the in-order run",
            &self.entitlements,
        );
        if !self.subscriptions.is_empty() {
            let _ = writeln!(
                out,
                "  subscriptions not equal to their newest snapshot: {} ({:?})",
                self.subscriptions.len(),
                self.subscription_counts()
            );
            for (_, text) in self.subscriptions.values().take(detail) {
                out.push_str(text);
            }
            if self.subscriptions.len() > detail {
                let _ = writeln!(
                    out,
                    "    … and {} more: {}",
                    self.subscriptions.len() - detail,
                    self.subscriptions
                        .keys()
                        .skip(detail)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        out
    }
}

/// Checks everything; returns what does not hold.
pub async fn check(run: &Run<'_>) -> Findings {
    let mut findings = Findings::default();
    let store = run.app.store().as_ref();
    check_deliveries(run, &mut findings);
    check_storage(run, store, &mut findings).await;
    check_subscriptions(run, store, &mut findings).await;
    for (user, &want) in &run.expected.credits {
        let got = crate::support::credits(store, user).await;
        if got != want {
            findings
                .credits
                .push(format!("{user}: {got} credits (expected {want})"));
        }
    }
    check_payments(run, store, &mut findings).await;
    check_entitlements(run, &mut findings).await;
    findings
}

fn check_deliveries(run: &Run<'_>, findings: &mut Findings) {
    let mut applied: BTreeMap<usize, usize> = BTreeMap::new();
    for (slot, (&i, outcome)) in run.order.iter().zip(run.outcomes).enumerate() {
        let event = &run.stream.events[i];
        match outcome {
            Err(error) => findings.failed_deliveries.push(format!(
                "#{slot} {} {}: {error}",
                event.event_type, event.id
            )),
            Ok(IngestOutcome::Duplicate(_)) => {}
            Ok(_) => *applied.entry(i).or_default() += 1,
        }
    }
    for (i, event) in run.stream.events.iter().enumerate() {
        let n = applied.get(&i).copied().unwrap_or(0);
        if n != 1 {
            findings.not_exactly_once.push(format!(
                "{} {} applied {n} times",
                event.event_type, event.id
            ));
        }
    }
}

async fn check_storage(run: &Run<'_>, store: &DieselStore, findings: &mut Findings) {
    for event in &run.stream.events {
        let problem = match store.event(&event.id).await {
            Err(error) => Some(format!("cannot be read: {error}")),
            Ok(None) => Some("not stored".to_owned()),
            Ok(Some(record)) => {
                if !record.status.is_final()
                    || matches!(record.status, EventStatus::Failed | EventStatus::Received)
                {
                    Some(format!("left {}", record.status))
                } else if record.attempts != 0 {
                    Some(format!("failed {} times first", record.attempts))
                } else if record.payload != event.body {
                    Some("stored with another body".to_owned())
                } else {
                    None
                }
            }
        };
        if let Some(problem) = problem {
            findings
                .storage
                .push(format!("{} {}: {problem}", event.event_type, event.id));
        }
    }
}

async fn check_subscriptions(run: &Run<'_>, store: &DieselStore, findings: &mut Findings) {
    for (id, truth) in &run.expected.subscriptions {
        let stored = crate::support::subscription(store, id).await;
        let diffs = match &stored {
            None => vec!["not stored".to_owned()],
            Some(record) => subscription_diff(&truth.snapshot, record),
        };
        if diffs.is_empty() {
            continue;
        }
        let text = describe_subscription(run, id, truth, stored.as_ref(), &diffs);
        findings.subscriptions.insert(id.clone(), (diffs, text));
    }
}

/// Expected vs stored, and the subscription's events in delivery order.
fn describe_subscription(
    run: &Run<'_>,
    id: &str,
    truth: &Truth,
    stored: Option<&SubscriptionRecord>,
    diffs: &[String],
) -> String {
    let newest = &run.stream.events[truth.event];
    let customer = &run.stream.customers[newest.customer];
    let mut text = String::new();
    let _ = writeln!(
        text,
        "    {id} of {} ({}, {:?} shape): {}",
        customer.object.id,
        customer.object.user,
        customer.shape,
        diffs.join("; ")
    );
    let _ = writeln!(
        text,
        "      expected (newest snapshot {} {} at t+{}s): {}",
        newest.event_type,
        newest.id,
        newest.created - WALL_START,
        newest.intent.summary()
    );
    if let Some(record) = stored {
        let _ = writeln!(
            text,
            "      stored: {} price {} period {}..{}{}, grace until {}, snapshot position t+{}s rank {} {}",
            record.status.as_str(),
            record.price_id.as_deref().unwrap_or("none"),
            record
                .current_period_start
                .map_or_else(|| "none".to_owned(), |t| day(t.timestamp())),
            record
                .current_period_end
                .map_or_else(|| "none".to_owned(), |t| day(t.timestamp())),
            if record.cancel_at_period_end {
                " cancel_at_period_end"
            } else {
                ""
            },
            record
                .grace_period_end
                .map_or_else(|| "none".to_owned(), |t| day(t.timestamp())),
            record.snapshot_position.created.timestamp() - WALL_START,
            record.snapshot_position.rank,
            record.snapshot_position.event_id
        );
    }
    text.push_str(&events_of(run, id));
    text
}

/// The events of subscription `id`, in delivery order, with their outcomes.
fn events_of(run: &Run<'_>, id: &str) -> String {
    let mut text = String::from("      its events in delivery order:\n");
    for (slot, (&i, outcome)) in run.order.iter().zip(run.outcomes).enumerate() {
        let event = &run.stream.events[i];
        if event.intent.subscription_id() == Some(id) {
            let _ = writeln!(
                text,
                "        #{slot:<6} t+{:<6} {:<38} {} {:<16} {}",
                event.created - WALL_START,
                event.event_type,
                event.id,
                describe(outcome),
                event.intent.summary()
            );
        }
    }
    text
}

async fn check_payments(run: &Run<'_>, store: &DieselStore, findings: &mut Findings) {
    for (pi, truth) in &run.expected.payments {
        let (payment, order) = payment_and_order(store, pi).await;
        // Only a success is checked: a payment intent whose only events are failures is
        // stored as succeeded whatever the order (`payment_or_new` defaults to succeeded), a
        // defect of its own that no delivery order changes.
        match payment {
            None => findings.payments.push(format!("{pi}: no payment row")),
            Some(p)
                if (truth.succeeded && p.status != PaymentStatus::Succeeded)
                    || p.amount_refunded != truth.refunded =>
            {
                findings.payments.push(format!(
                    "{pi}: {} refunded {} (expected{} refunded {})",
                    p.status,
                    p.amount_refunded,
                    if truth.succeeded { " succeeded" } else { "" },
                    truth.refunded
                ));
            }
            Some(_) => {}
        }
        if let Some(amount) = truth.order_amount {
            let want = truth.refunded.min(amount);
            match order {
                None => findings.payments.push(format!("{pi}: no order")),
                Some(o) if o.amount_refunded != want => findings.payments.push(format!(
                    "{pi}: order refunded {} (expected {want})",
                    o.amount_refunded
                )),
                Some(_) => {}
            }
        }
    }
}

async fn payment_and_order(
    store: &DieselStore,
    pi: &str,
) -> (Option<PaymentRecord>, Option<OrderRecord>) {
    let pi = pi.to_owned();
    store
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move {
                Ok((
                    tx.payments_matching(Some(&pi), None).await?.pop(),
                    tx.order_by_payment_intent(&pi).await?,
                ))
            })
        })
        .await
        .unwrap_or_else(|e| panic!("read payment: {e}"))
}

async fn check_entitlements(run: &Run<'_>, findings: &mut Findings) {
    for customer in &run.stream.customers {
        let user = &customer.object.user;
        let got = run.app.entitlements(user).await;
        let want = run.reference.entitlements(user).await;
        let (got, want) = match (got, want) {
            (Ok(got), Ok(want)) => (got, want),
            (got, want) => {
                findings.entitlements.push(format!(
                    "{user}: {:?} vs in order {:?}",
                    got.err(),
                    want.err()
                ));
                continue;
            }
        };
        if got == want {
            continue;
        }
        let mut diffs = Vec::new();
        macro_rules! field {
            ($($name:ident),+) => {$(
                if got.$name != want.$name {
                    diffs.push(format!(
                        "{} {:?} (in order {:?})",
                        stringify!($name), got.$name, want.$name
                    ));
                }
            )+};
        }
        field!(
            tier,
            reason,
            status,
            subscription_id,
            credits,
            period_end,
            grace_period_end,
            trial_end,
            cancel_at_period_end,
            period,
            usage,
            features,
            limits
        );
        let wrong_subscription = got
            .subscription_id
            .iter()
            .chain(want.subscription_id.iter())
            .any(|s| {
                run.expected.subscriptions.contains_key(s) && findings.subscriptions.contains_key(s)
            });
        let mut line = format!("{user}: {}", diffs.join("; "));
        match want.subscription_id.as_deref() {
            _ if wrong_subscription => line.push_str(" [its subscription is wrong above]"),
            Some(id) => {
                line.push_str(&format!("\n      deciding subscription {id} (in order)\n"));
                line.push_str(events_of(run, id).trim_end());
            }
            None => {}
        }
        findings.entitlements.push(line);
    }
}
