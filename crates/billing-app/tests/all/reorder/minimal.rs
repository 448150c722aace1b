//! The minimal sequences of the ordering bug report, each delivered one at a time in the
//! order given, in both payload shapes, on Postgres and on SQLite. Each proves that an invoice
//! event which changes nothing of the subscription does not make an older, still newest,
//! snapshot look stale. Times are seconds after the story starts, in delivery order.

use billing_domain::SubscriptionStatus;
use billing_ports::BillingStore;
use billing_store_diesel::DieselStore;
use billing_streamgen::WALL_START;
use billing_streamgen::journey::{Account, Actor, DAY, add_interval};
use billing_streamgen::model::{Intent, Shape};
use billing_streamgen::prices::{ENTERPRISE_MONTHLY, PRO_MONTHLY, credits_of};
use billing_streamgen::render::Renderer;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::delivery::{Outcome, describe};
use super::oracle;
use crate::support;

on_both_backends!(
    a_past_due_update_delivered_after_a_later_failed_retry_is_applied,
    an_upgrade_delivered_after_its_later_paid_invoice_is_applied,
    a_plan_change_delivered_after_its_same_second_invoice_with_a_later_id_is_applied,
);

/// One delivery of a story.
struct Delivery {
    id: String,
    created: i64,
    body: String,
    intent: Intent,
}

/// Runs `script` for a new customer of `shape`, then renders the events named in `wanted`
/// (type, seconds after the start), in that order. `invoice_id_after_update` makes the
/// invoice's event id sort after the update's, as in sequence (c).
fn story(
    seed: u64,
    shape: Shape,
    script: impl FnOnce(&mut Actor<'_>, i64),
    wanted: &[(&str, i64)],
    invoice_id_after_update: bool,
) -> Vec<Delivery> {
    let mut rng = StdRng::seed_from_u64(seed);
    let renderer = Renderer::new(&mut rng);
    let templates = renderer.templates(shape);
    let mut account = Account::new(&mut rng, templates);
    let sim = WALL_START - 40 * DAY;
    let journey = {
        let mut actor = Actor::new(&mut rng, &mut account, templates, WALL_START, sim);
        script(&mut actor, WALL_START);
        actor.finish()
    };
    let mut deliveries: Vec<Delivery> = wanted
        .iter()
        .map(|&(event_type, at)| {
            let created = WALL_START + at;
            let matching: Vec<_> = journey
                .events
                .iter()
                .filter(|e| e.intent.event_type() == event_type && e.created == created)
                .collect();
            assert_eq!(matching.len(), 1, "one {event_type} at +{at}s");
            Delivery {
                id: account.ids.long(&mut rng, "evt"),
                created,
                body: String::new(),
                intent: matching[0].intent.clone(),
            }
        })
        .collect();
    if invoice_id_after_update {
        let invoice = deliveries
            .iter()
            .position(|d| matches!(d.intent, Intent::Invoice { .. }))
            .unwrap();
        let update = deliveries
            .iter()
            .position(|d| d.intent.event_type() == "customer.subscription.updated")
            .unwrap();
        if deliveries[invoice].id < deliveries[update].id {
            let (low, high) = (
                deliveries[invoice].id.clone(),
                deliveries[update].id.clone(),
            );
            deliveries[invoice].id = high;
            deliveries[update].id = low;
        }
        assert!(deliveries[invoice].id > deliveries[update].id);
    }
    for d in &mut deliveries {
        d.body = renderer.render(
            &mut rng,
            shape,
            &journey.renames,
            &d.id,
            d.created,
            &d.intent,
        );
    }
    deliveries
}

/// Delivers the story one event at a time; checks that every event is stored and done and that
/// the credits are right, then returns how the subscription differs from its newest snapshot.
async fn deliver_and_check(
    store: &DieselStore,
    deliveries: &[Delivery],
    credits: i64,
) -> Option<String> {
    let app = support::app(store.clone());
    let mut outcomes: Vec<Outcome> = Vec::new();
    for d in deliveries {
        let event = billing_stripe::parse_event(d.body.as_bytes()).unwrap();
        outcomes.push(
            app.ingest(event, d.body.clone())
                .await
                .map_err(|e| e.to_string()),
        );
    }
    let sequence: String = deliveries
        .iter()
        .zip(&outcomes)
        .map(|(d, outcome)| {
            format!(
                "  t+{:<4} {:<32} {} {:<10} {}\n",
                d.created - WALL_START,
                d.intent.event_type(),
                d.id,
                describe(outcome),
                d.intent.summary()
            )
        })
        .collect();
    for d in deliveries {
        let record = store.event(&d.id).await.unwrap().unwrap();
        assert!(
            record.status.is_final() && record.attempts == 0,
            "{} left {} after {} failures\n{sequence}",
            d.id,
            record.status,
            record.attempts
        );
    }
    let newest = deliveries
        .iter()
        .filter_map(|d| d.intent.snapshot().map(|s| (d.created, s)))
        .max_by_key(|(created, _)| *created)
        .map(|(_, s)| s)
        .unwrap();
    assert_eq!(
        support::credits(store, &newest.user).await,
        credits,
        "credits\n{sequence}"
    );
    let stored = support::subscription(store, &newest.id).await.unwrap();
    let diffs = oracle::subscription_diff(newest, &stored);
    (!diffs.is_empty()).then(|| {
        format!(
            "{}: {} (stored snapshot position t+{}s rank {} {})\n{sequence}",
            newest.id,
            diffs.join("; "),
            stored.snapshot_position.created.timestamp() - WALL_START,
            stored.snapshot_position.rank,
            stored.snapshot_position.event_id
        )
    })
}

/// (a) created t=90 trialing → invoice.payment_failed t=173 (a retry of the trial's first
/// invoice) → updated t=157 past_due: the subscription is past_due.
async fn a_past_due_update_delivered_after_a_later_failed_retry_is_applied(store: DieselStore) {
    let mut wrong = Vec::new();
    for (seed, shape) in [(11, Shape::Basil), (12, Shape::PreBasil)] {
        let deliveries = story(
            seed,
            shape,
            |a, t0| {
                let trial = a.subscription(&PRO_MONTHLY, SubscriptionStatus::Trialing, Some(14));
                a.snapshot(t0 + 90, "customer.subscription.created", &trial, None);
                a.sim = trial.period.1;
                let mut past_due = trial.clone();
                past_due.status = SubscriptionStatus::PastDue;
                past_due.period = (a.sim, add_interval(a.sim, &PRO_MONTHLY));
                let line = a.period_line(&PRO_MONTHLY, past_due.period);
                let mut invoice =
                    a.invoice(&past_due, "subscription_cycle", vec![line], trial.period);
                past_due.latest_invoice = Some(invoice.id.clone());
                a.attempt(&mut invoice, false, false, t0 + 157);
                a.snapshot(
                    t0 + 157,
                    "customer.subscription.updated",
                    &past_due,
                    Some(&trial),
                );
                a.sim += 3 * DAY;
                a.attempt(&mut invoice, false, false, t0 + 173);
            },
            &[
                ("customer.subscription.created", 90),
                ("invoice.payment_failed", 173),
                ("customer.subscription.updated", 157),
            ],
            false,
        );
        wrong.extend(deliver_and_check(&store, &deliveries, 0).await);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// (b) created t=0 trialing PRO → invoice.payment_succeeded t=20 ENTERPRISE → updated t=10
/// active ENTERPRISE with a new period (the trial ended early with an upgrade): the
/// subscription is active on ENTERPRISE in the new period.
async fn an_upgrade_delivered_after_its_later_paid_invoice_is_applied(store: DieselStore) {
    let credits = credits_of(&support::catalog(), &ENTERPRISE_MONTHLY).unwrap();
    let mut wrong = Vec::new();
    for (seed, shape) in [(21, Shape::Basil), (22, Shape::PreBasil)] {
        let deliveries = story(
            seed,
            shape,
            |a, t0| {
                let trial = a.subscription(&PRO_MONTHLY, SubscriptionStatus::Trialing, Some(14));
                a.snapshot(t0, "customer.subscription.created", &trial, None);
                a.sim += 2 * DAY;
                let mut upgraded = trial.clone();
                upgraded.status = SubscriptionStatus::Active;
                upgraded.price = &ENTERPRISE_MONTHLY;
                upgraded.trial = Some((trial.period.0, a.sim));
                upgraded.period = (a.sim, add_interval(a.sim, &ENTERPRISE_MONTHLY));
                upgraded.billing_cycle_anchor = a.sim;
                let line = a.period_line(&ENTERPRISE_MONTHLY, upgraded.period);
                let now = a.sim;
                let mut invoice =
                    a.invoice(&upgraded, "subscription_update", vec![line], (now, now));
                upgraded.latest_invoice = Some(invoice.id.clone());
                a.snapshot(
                    t0 + 10,
                    "customer.subscription.updated",
                    &upgraded,
                    Some(&trial),
                );
                a.attempt(&mut invoice, true, false, t0 + 20);
            },
            &[
                ("customer.subscription.created", 0),
                ("invoice.payment_succeeded", 20),
                ("customer.subscription.updated", 10),
            ],
            false,
        );
        wrong.extend(deliver_and_check(&store, &deliveries, credits).await);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// (c) created t=0 active PRO → invoice.paid t=30 (the proration invoice of an upgrade, its
/// event id sorting after the update's) → updated t=30 ENTERPRISE with a new period: the
/// subscription is on ENTERPRISE in the new period.
async fn a_plan_change_delivered_after_its_same_second_invoice_with_a_later_id_is_applied(
    store: DieselStore,
) {
    let credits = credits_of(&support::catalog(), &ENTERPRISE_MONTHLY).unwrap();
    let mut wrong = Vec::new();
    for (seed, shape) in [(31, Shape::Basil), (32, Shape::PreBasil)] {
        let deliveries = story(
            seed,
            shape,
            |a, t0| {
                let sub = a.subscription(&PRO_MONTHLY, SubscriptionStatus::Active, None);
                a.snapshot(t0, "customer.subscription.created", &sub, None);
                a.sim += 5 * DAY;
                let now = a.sim;
                let (start, end) = sub.period;
                let left = (end - now) as f64 / (end - start) as f64;
                let unused = (PRO_MONTHLY.amount(&a.account.currency) as f64 * left).round();
                let credit = a.line(
                    &PRO_MONTHLY,
                    -(unused as i64),
                    (now, end),
                    true,
                    "Unused time on Pro".to_owned(),
                );
                let mut changed = sub.clone();
                changed.price = &ENTERPRISE_MONTHLY;
                changed.period = (now, add_interval(now, &ENTERPRISE_MONTHLY));
                changed.billing_cycle_anchor = now;
                let full = a.period_line(&ENTERPRISE_MONTHLY, changed.period);
                let mut invoice = a.invoice(
                    &changed,
                    "subscription_update",
                    vec![credit, full],
                    (now, now),
                );
                changed.latest_invoice = Some(invoice.id.clone());
                a.snapshot(
                    t0 + 30,
                    "customer.subscription.updated",
                    &changed,
                    Some(&sub),
                );
                a.attempt(&mut invoice, true, false, t0 + 30);
            },
            &[
                ("customer.subscription.created", 0),
                ("invoice.paid", 30),
                ("customer.subscription.updated", 30),
            ],
            true,
        );
        wrong.extend(deliver_and_check(&store, &deliveries, credits).await);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
