//! The whole stream of a run: hundreds of journeys placed on one wall clock so that a handful
//! of customers are active at any moment (their events interleave closely enough for local
//! reordering to mix them), rendered to bodies, checked against the parser, in time order.
//! And the delivery orders: bounded local reordering plus exact re-deliveries.

use billing_domain::{BillingEvent, Fact};
use chrono::DateTime;
use rand::Rng;
use rand::rngs::StdRng;

use crate::Error;
use crate::journey::{Account, DAY, Journey, random_journey};
use crate::model::{CheckoutMode, CustomerObj, Intent, Shape};
use crate::render::Renderer;

/// 2026-03-02T09:00:00Z, the wall time the stream starts at.
pub const WALL_START: i64 = 1_772_442_000;

/// One event of the stream.
#[derive(Debug, Clone)]
pub struct Event {
    /// Stripe's event id (`evt_1…`), unique in the stream.
    pub id: String,
    /// Stripe's `created`, unix seconds of wall time.
    pub created: i64,
    /// Stripe's event type (`invoice.paid`, …).
    pub event_type: &'static str,
    /// The webhook body, pretty-printed JSON as Stripe sends it.
    pub body: String,
    /// What the body says, independent of its JSON shape.
    pub intent: Intent,
    /// Index into [`Stream::customers`].
    pub customer: usize,
}

/// A customer of the stream.
#[derive(Debug, Clone)]
pub struct Customer {
    /// The API version shape of all its events.
    pub shape: Shape,
    /// The Stripe customer and its user.
    pub object: CustomerObj,
}

/// Every event of a run, in time order (`created`, then event id).
#[derive(Debug)]
pub struct Stream {
    /// The events, each once.
    pub events: Vec<Event>,
    /// The customers whose journeys the events tell.
    pub customers: Vec<Customer>,
    /// The last event's `created`.
    pub end: i64,
}

/// Journeys until at least `target` events, about `concurrency` customers active at once,
/// rendered by `renderer` and each parsed back to check it says what was meant.
///
/// # Errors
///
/// [`Error::Unparsable`] or [`Error::Misparsed`] for the first body that is not read back as
/// meant.
pub fn generate(
    rng: &mut StdRng,
    renderer: &Renderer,
    target: usize,
    concurrency: u32,
) -> Result<Stream, Error> {
    let mut basil = Account::new(rng, renderer.templates(Shape::Basil));
    let mut pre_basil = Account::new(rng, renderer.templates(Shape::PreBasil));
    let mut journeys: Vec<Journey> = Vec::new();
    let mut total = 0;
    while total < target {
        let shape = if rng.random_bool(0.5) {
            Shape::Basil
        } else {
            Shape::PreBasil
        };
        let account = match shape {
            Shape::Basil => &mut basil,
            Shape::PreBasil => &mut pre_basil,
        };
        // The test clock starts up to ~10 months before the wall clock, so that at the end
        // some periods, trials and grace periods are over and some are not.
        let sim = WALL_START - rng.random_range(0..=300) * DAY - rng.random_range(0..DAY);
        let journey = random_journey(rng, account, renderer.templates(shape), 0, sim);
        total += journey.events.len();
        journeys.push(journey);
    }
    let span = |j: &Journey| {
        j.events.iter().map(|e| e.created).max().unwrap_or(0)
            - j.events.iter().map(|e| e.created).min().unwrap_or(0)
            + 1
    };
    let timeline: i64 = journeys.iter().map(span).sum::<i64>() / i64::from(concurrency.max(1));
    let mut events = Vec::with_capacity(total);
    let mut customers = Vec::with_capacity(journeys.len());
    for journey in journeys {
        let start = WALL_START + rng.random_range(0..=timeline.max(1));
        let index = customers.len();
        let account = match journey.shape {
            Shape::Basil => &mut basil,
            Shape::PreBasil => &mut pre_basil,
        };
        for planned in journey.events {
            let created = start + planned.created;
            let id = account.ids.long(rng, "evt");
            let body = renderer.render(
                rng,
                journey.shape,
                &journey.renames,
                &id,
                created,
                &planned.intent,
            );
            let event = Event {
                id,
                created,
                event_type: planned.intent.event_type(),
                body,
                intent: planned.intent,
                customer: index,
            };
            check_parsed(&event)?;
            events.push(event);
        }
        customers.push(Customer {
            shape: journey.shape,
            object: journey.customer,
        });
    }
    events.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    let end = events.last().map_or(WALL_START, |e| e.created);
    Ok(Stream {
        events,
        customers,
        end,
    })
}

/// The delivery order: each of `n` events moved by at most `window` places (sorted by its
/// index plus a uniform draw in `[0, window]`), plus `duplicates_percent`% of them delivered
/// a second time, the copy anywhere from `window` places before to `2 * window + 16` after the
/// original's place, so some copies race their original in flight.
pub fn delivery_order(
    rng: &mut StdRng,
    n: usize,
    window: usize,
    duplicates_percent: u32,
) -> Vec<usize> {
    let w = window as f64;
    let mut keyed: Vec<(f64, usize)> = (0..n)
        .map(|i| (i as f64 + rng.random_range(0.0..=w), i))
        .collect();
    for i in 0..n {
        if rng.random_range(0..100) < duplicates_percent {
            keyed.push((i as f64 + rng.random_range(-w..=2.0 * w + 16.0), i));
        }
    }
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// Parses the event's body with the Stripe adapter's parser and compares the facts with what
/// the generator meant.
///
/// # Errors
///
/// [`Error::Unparsable`] when the parser refuses the body, [`Error::Misparsed`] when it reads
/// something else (the first field that differs).
pub fn check_parsed(event: &Event) -> Result<(), Error> {
    let parsed =
        billing_stripe::parse_event(event.body.as_bytes()).map_err(|e| Error::Unparsable {
            id: event.id.clone(),
            event_type: event.event_type,
            reason: e.to_string(),
            body: event.body.clone(),
        })?;
    compare(&parsed, event).map_err(|problem| Error::Misparsed {
        id: event.id.clone(),
        event_type: event.event_type,
        problem,
        body: event.body.clone(),
    })
}

fn time(t: i64) -> Option<DateTime<chrono::Utc>> {
    DateTime::from_timestamp(t, 0)
}

fn compare(parsed: &BillingEvent, event: &Event) -> Result<(), String> {
    let same = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!("{what} differs"))
        }
    };
    same("id", parsed.id == event.id)?;
    same("type", parsed.event_type == event.event_type)?;
    same("created", Some(parsed.created) == time(event.created))?;
    match (&parsed.fact, &event.intent) {
        (Fact::Customer { customer, .. }, Intent::Customer(c)) => {
            same("customer", customer.id == c.id)?;
            same(
                "user",
                customer.metadata_user_id.as_deref() == Some(&c.user),
            )
        }
        (
            Fact::Subscription {
                subscription: s, ..
            },
            Intent::Subscription { now, .. },
        ) => {
            same("subscription", s.id == now.id)?;
            same("customer", s.customer_id == now.customer)?;
            same("status", s.status == now.status)?;
            same("price", s.price_ids == [now.price.id])?;
            same("period start", s.current_period_start == time(now.period.0))?;
            same("period end", s.current_period_end == time(now.period.1))?;
            same(
                "cancel_at_period_end",
                s.cancel_at_period_end == now.cancel_at_period_end,
            )?;
            same(
                "trial end",
                s.trial_end == now.trial.and_then(|t| time(t.1)),
            )?;
            same("user", s.metadata_user_id.as_deref() == Some(&now.user))
        }
        (Fact::Invoice { invoice: i, .. }, Intent::Invoice { invoice, .. }) => {
            let line = invoice.priced_line();
            same("invoice", i.id == invoice.id)?;
            same(
                "subscription",
                i.subscription_id.as_deref() == Some(&invoice.subscription),
            )?;
            same(
                "customer",
                i.customer_id.as_deref() == Some(&invoice.customer),
            )?;
            same(
                "amount paid",
                i.amount_paid.amount_minor == invoice.amount_paid,
            )?;
            same("price", i.price_ids == [line.price.id])?;
            same("period start", i.period_start == time(line.period.0))?;
            same("period end", i.period_end == time(line.period.1))?;
            same(
                "billing reason",
                i.billing_reason.as_deref() == Some(invoice.billing_reason),
            )
        }
        (Fact::CheckoutCompleted(s), Intent::Checkout(c)) => {
            same("session", s.id == c.id)?;
            same(
                "mode",
                matches!(
                    (&s.mode, c.mode),
                    (
                        billing_domain::facts::CheckoutMode::Subscription,
                        CheckoutMode::Subscription
                    ) | (
                        billing_domain::facts::CheckoutMode::Payment,
                        CheckoutMode::Payment
                    )
                ),
            )?;
            same("customer", s.customer_id.as_deref() == Some(&c.customer))?;
            same("user", s.user_id() == Some(c.user.as_str()))?;
            same("subscription", s.subscription_id == c.subscription)?;
            same("payment intent", s.payment_intent_id == c.payment_intent)?;
            same(
                "amount",
                s.amount_total.as_ref().map(|m| m.amount_minor) == Some(c.amount_total),
            )
        }
        (
            Fact::PaymentIntent {
                payment_intent: p,
                change,
            },
            Intent::Payment(pi),
        ) => {
            same("payment intent", p.id == pi.id)?;
            same(
                "outcome",
                (*change == billing_domain::facts::PaymentIntentChange::Succeeded) == pi.succeeded,
            )?;
            same("amount", p.amount.amount_minor == pi.amount)?;
            same("user", p.metadata_user_id == pi.metadata_user)
        }
        (Fact::ChargeRefunded(c), Intent::ChargeRefunded(ch)) => {
            same("charge", c.id == ch.id)?;
            same(
                "payment intent",
                c.payment_intent_id.as_deref() == Some(&ch.payment_intent),
            )?;
            same("refunded", c.amount_refunded == ch.amount_refunded)
        }
        (Fact::Dispute { dispute: d, .. }, Intent::Dispute { dispute, .. }) => {
            same("dispute", d.id == dispute.id)?;
            same("charge", d.charge_id.as_deref() == Some(&dispute.charge))?;
            same(
                "payment intent",
                d.payment_intent_id.as_deref() == Some(&dispute.payment_intent),
            )?;
            same("amount", d.amount.amount_minor == dispute.amount)?;
            same("status", d.status == dispute.status)
        }
        (fact, _) => Err(format!("unexpected fact {fact:?}")),
    }
}
