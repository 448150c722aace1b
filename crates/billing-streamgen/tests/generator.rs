//! The generator: bodies are fixture-shaped with fresh ids and parse to what was meant, a seed
//! fixes everything, delivery orders keep their bounds, and the oracle's expectations agree
//! with the stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashSet};

use billing_streamgen::model::{Intent, Shape};
use billing_streamgen::oracle::{
    StoredEvent, StoredPayment, StoredSubscription, event_problem, payment_problems,
    subscription_diff,
};
use billing_streamgen::render::Renderer;
use billing_streamgen::{Options, Scenario, delivery_order, example_catalog, expected, stream};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn options(events: usize, window: Option<usize>, duplicates_percent: u32) -> Options {
    Options {
        events,
        window,
        duplicates_percent,
        active_customers: None,
    }
}

/// Bodies carry none of the fixtures' ids and parse to what was meant (checked while
/// generating, and again here), ids are Stripe-shaped and never repeated, and 600 events hold
/// every event type the journeys emit in both API shapes.
#[test]
fn generated_bodies_are_fixture_shaped_with_fresh_ids() {
    let mut rng = StdRng::seed_from_u64(7);
    let renderer = Renderer::new(&mut rng);
    let stream = stream::generate(&mut rng, &renderer, 600, 8).unwrap();
    let fixture_ids: Vec<String> = [Shape::Basil, Shape::PreBasil]
        .into_iter()
        .flat_map(|shape| renderer.templates(shape).all_ids())
        .collect();
    let mut seen = HashSet::new();
    let mut types = BTreeSet::new();
    for event in &stream.events {
        stream::check_parsed(event).unwrap();
        assert!(seen.insert(event.id.clone()), "event id {} twice", event.id);
        assert!(
            event.id.starts_with("evt_1") && event.id.len() == 28,
            "{}",
            event.id
        );
        for id in &fixture_ids {
            assert!(
                !event.body.contains(id.as_str()),
                "{} {} still carries the fixture's {id}",
                event.event_type,
                event.id
            );
        }
        types.insert((stream.customers[event.customer].shape, event.event_type));
    }
    for shape in [Shape::Basil, Shape::PreBasil] {
        for event_type in [
            "customer.created",
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "checkout.session.completed",
        ] {
            assert!(
                types.contains(&(shape, event_type)),
                "no {event_type} of the {shape:?} shape in 600 events"
            );
        }
    }
    let mut sorted = stream.events.clone();
    sorted.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    assert!(
        sorted
            .iter()
            .map(|e| &e.id)
            .eq(stream.events.iter().map(|e| &e.id)),
        "the stream is not in time order"
    );
    assert_eq!(stream.end, stream.events.last().unwrap().created);
}

/// One seed gives the same scenario byte for byte; another seed gives other ids.
#[test]
fn a_seed_fixes_the_scenario() {
    let opts = options(300, None, 10);
    let a = Scenario::generate(42, &opts).unwrap();
    let b = Scenario::generate(42, &opts).unwrap();
    assert_eq!(a.window, b.window);
    assert_eq!(a.active_customers, b.active_customers);
    assert_eq!(a.order, b.order);
    assert_eq!(a.stream.events.len(), b.stream.events.len());
    for (x, y) in a.stream.events.iter().zip(&b.stream.events) {
        assert_eq!((&x.id, x.created, &x.body), (&y.id, y.created, &y.body));
    }
    assert!((1..=64).contains(&a.window), "window {}", a.window);
    assert!((4..=16).contains(&a.active_customers));

    let c = Scenario::generate(43, &opts).unwrap();
    let ids: HashSet<&str> = a.stream.events.iter().map(|e| e.id.as_str()).collect();
    assert!(
        c.stream.events.iter().all(|e| !ids.contains(e.id.as_str())),
        "two seeds share event ids"
    );
    let users: HashSet<&str> = a
        .stream
        .customers
        .iter()
        .map(|c| c.object.user.as_str())
        .collect();
    assert!(
        c.stream
            .customers
            .iter()
            .all(|c| !users.contains(c.object.user.as_str()))
    );
}

/// Without duplicates the order is a permutation in which no event moves by more than the
/// window; with them, every event is delivered once or twice and about the asked share twice.
#[test]
fn delivery_orders_keep_their_bounds() {
    let mut rng = StdRng::seed_from_u64(1);
    for window in [0, 1, 5, 64] {
        let order = delivery_order(&mut rng, 5_000, window, 0);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().copied().eq(0..5_000), "not a permutation");
        for (place, &event) in order.iter().enumerate() {
            assert!(
                place.abs_diff(event) <= window,
                "event {event} delivered at {place} with window {window}"
            );
        }
        if window == 0 {
            assert!(order.iter().copied().eq(0..5_000));
        }
    }
    for (percent, low, high) in [(10, 400, 600), (50, 2_300, 2_700), (100, 5_000, 5_000)] {
        let order = delivery_order(&mut rng, 5_000, 16, percent);
        let mut count = vec![0usize; 5_000];
        for &event in &order {
            count[event] += 1;
        }
        assert!(count.iter().all(|&n| n == 1 || n == 2));
        let twice = count.iter().filter(|&&n| n == 2).count();
        assert!(
            (low..=high).contains(&twice),
            "{twice} of 5000 delivered twice at {percent}%"
        );
        assert_eq!(order.len(), 5_000 + twice);
    }
}

/// The scenario's window bounds how far the originals move, duplicates included.
#[test]
fn a_scenario_delivers_every_event_with_its_window() {
    let scenario = Scenario::generate(9, &options(400, Some(8), 25)).unwrap();
    let n = scenario.stream.events.len();
    let mut first = vec![None; n];
    for (place, &event) in scenario.order.iter().enumerate() {
        first[event].get_or_insert(place);
    }
    assert!(
        first.iter().all(Option::is_some),
        "an event is never delivered"
    );
    let twice = scenario.order.len() - n;
    assert!(
        twice > n / 8 && twice < n * 3 / 8,
        "{twice} duplicates of {n}"
    );
}

/// The expectations agree with the stream: each subscription's truth is its newest snapshot,
/// a grant exists for exactly the paid invoices, balances are the grants' sums.
#[test]
fn the_oracle_reads_the_stream() {
    let scenario = Scenario::generate(5, &options(800, None, 0)).unwrap();
    let stream = &scenario.stream;
    let expected = expected(stream, &example_catalog()).unwrap();

    let mut newest: BTreeMap<&str, (i64, usize)> = BTreeMap::new();
    let mut paid = BTreeSet::new();
    for (i, event) in stream.events.iter().enumerate() {
        match &event.intent {
            Intent::Subscription { now, .. } => {
                let slot = newest.entry(&now.id).or_insert((event.created, i));
                if event.created >= slot.0 {
                    *slot = (event.created, i);
                }
            }
            Intent::Invoice {
                event_type,
                invoice,
            } if *event_type != "invoice.payment_failed" && invoice.amount_paid > 0 => {
                paid.insert(invoice.id.as_str());
            }
            _ => {}
        }
    }
    assert_eq!(expected.subscriptions.len(), newest.len());
    for (id, truth) in &expected.subscriptions {
        assert_eq!(truth.event, newest[id.as_str()].1, "{id}");
        assert_eq!(&truth.snapshot.id, id);
    }
    assert!(!paid.is_empty());
    assert!(
        expected
            .grants
            .keys()
            .map(String::as_str)
            .eq(paid.iter().copied())
    );
    let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
    for grant in expected.grants.values() {
        assert!(grant.credits > 0);
        *sums.entry(&grant.user).or_default() += grant.credits;
    }
    for (user, credits) in &expected.credits {
        assert_eq!(
            *credits,
            sums.get(user.as_str()).copied().unwrap_or(0),
            "{user}"
        );
    }
    assert_eq!(expected.credits.len(), stream.customers.len());
}

/// The comparisons find each kind of difference and nothing on an exact copy.
#[test]
fn the_comparisons_name_what_differs() {
    let scenario = Scenario::generate(3, &options(200, None, 0)).unwrap();
    let expected = expected(&scenario.stream, &example_catalog()).unwrap();
    let truth = expected.subscriptions.values().next().unwrap();
    let s = &truth.snapshot;
    let exact = StoredSubscription {
        status: s.status.as_str().to_owned(),
        price_id: Some(s.price.id.to_owned()),
        current_period_start: Some(s.period.0),
        current_period_end: Some(s.period.1),
        cancel_at_period_end: s.cancel_at_period_end,
    };
    assert!(subscription_diff(s, &exact).is_empty());
    let wrong = StoredSubscription {
        status: "unknown".to_owned(),
        price_id: None,
        current_period_start: Some(s.period.0 - 1),
        current_period_end: Some(s.period.1),
        cancel_at_period_end: !s.cancel_at_period_end,
    };
    let diffs = subscription_diff(s, &wrong);
    for (diff, field) in diffs
        .iter()
        .zip(["status", "price", "period", "cancel_at_period_end"])
    {
        assert!(diff.starts_with(field), "{diffs:?}");
    }
    assert_eq!(diffs.len(), 4);

    let done = |status: &str, attempts, payload_matches| StoredEvent {
        status: status.to_owned(),
        attempts,
        payload_matches,
    };
    for status in ["processed", "ignored", "stale"] {
        assert_eq!(event_problem(Some(&done(status, 0, true))), None);
    }
    assert_eq!(event_problem(None).unwrap(), "not stored");
    assert_eq!(
        event_problem(Some(&done("failed", 1, true))).unwrap(),
        "left failed"
    );
    assert_eq!(
        event_problem(Some(&done("received", 0, true))).unwrap(),
        "left received"
    );
    assert_eq!(
        event_problem(Some(&done("processed", 2, true))).unwrap(),
        "failed 2 times first"
    );
    assert_eq!(
        event_problem(Some(&done("processed", 0, false))).unwrap(),
        "stored with another body"
    );

    let truth = billing_streamgen::oracle::PaymentTruth {
        succeeded: true,
        refunded: 500,
        order_amount: Some(900),
    };
    let payment = |status: &str, refunded| StoredPayment {
        status: status.to_owned(),
        amount_refunded: refunded,
    };
    assert!(
        payment_problems("pi_1", &truth, Some(&payment("succeeded", 500)), Some(500)).is_empty()
    );
    assert_eq!(payment_problems("pi_1", &truth, None, None).len(), 2);
    assert_eq!(
        payment_problems("pi_1", &truth, Some(&payment("failed", 500)), Some(500)),
        ["pi_1: failed refunded 500 (expected succeeded refunded 500)"]
    );
    assert_eq!(
        payment_problems("pi_1", &truth, Some(&payment("succeeded", 500)), Some(0)),
        ["pi_1: order refunded 0 (expected 500)"]
    );
}
