//! Checks a delivered run against what must hold whatever the order: the generator's oracle
//! (`billing_streamgen::oracle`, computed from what the generator meant, not from the app:
//! every subscription as its newest snapshot says, one credit grant per paid invoice, every
//! event stored once and done, refunds as the charges' cumulative totals), read here through
//! the app's store; plus every event applied exactly once by the deliveries' outcomes, and
//! entitlements as after an in-order delivery.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use billing_app::{BillingApp, IngestOutcome};
use billing_ports::{
    BillingStore, OrderRecord, PaymentRecord, StoreError, SubscriptionRecord, TxFuture,
};
use billing_store_diesel::DieselStore;
use billing_streamgen::model::{SubscriptionObj, day};
use billing_streamgen::oracle::{
    Expected, StoredEvent, StoredPayment, StoredSubscription, Truth, event_problem,
    payment_problems,
};
use billing_streamgen::{Stream, WALL_START};

use super::delivery::{Outcome, describe};

/// The differences between a stored subscription and the snapshot it must equal (the
/// generator's oracle, on the store's record).
pub fn subscription_diff(expected: &SubscriptionObj, stored: &SubscriptionRecord) -> Vec<String> {
    billing_streamgen::oracle::subscription_diff(
        expected,
        &StoredSubscription {
            status: stored.status.as_str().to_owned(),
            price_id: stored.price_id.clone(),
            current_period_start: stored.current_period_start.map(|t| t.timestamp()),
            current_period_end: stored.current_period_end.map(|t| t.timestamp()),
            cancel_at_period_end: stored.cancel_at_period_end,
        },
    )
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
            Ok(record) => event_problem(
                record
                    .map(|record| StoredEvent {
                        status: record.status.as_str().to_owned(),
                        attempts: i64::from(record.attempts),
                        payload_matches: record.payload == event.body,
                    })
                    .as_ref(),
            ),
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
        let payment = payment.map(|p| StoredPayment {
            status: p.status.to_string(),
            amount_refunded: p.amount_refunded,
        });
        findings.payments.extend(payment_problems(
            pi,
            truth,
            payment.as_ref(),
            order.map(|o| o.amount_refunded),
        ));
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
