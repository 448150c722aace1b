//! Every fixture parses to exactly the facts its story says.

use std::collections::BTreeSet;

use billing_domain::Fact;
use billing_stripe::{EventEnvelope, HANDLED_EVENT_TYPES, parse_event, peek_envelope};

use crate::wire::story::{BASIL, FOLDERS, PRE_BASIL, STORIES, Story, fixture, fixture_names};

fn check(story: &Story, event_type: &str) {
    let body = fixture(story.folder, event_type);
    let parsed =
        parse_event(&body).unwrap_or_else(|error| panic!("{}/{event_type}: {error}", story.folder));
    assert_eq!(
        parsed,
        story.expected(event_type),
        "{}/{event_type}",
        story.folder
    );

    let envelope = peek_envelope(&body).unwrap();
    assert_eq!(
        envelope,
        EventEnvelope {
            id: parsed.id,
            event_type: parsed.event_type,
            api_version: parsed.api_version,
            livemode: parsed.livemode,
            created: parsed.created,
        }
    );
}

macro_rules! fixture_tests {
    ($($name:ident => $event_type:literal,)*) => {
        mod pre_basil {
            $(#[test] fn $name() { super::check(&super::PRE_BASIL, $event_type); })*
        }
        mod basil {
            $(#[test] fn $name() { super::check(&super::BASIL, $event_type); })*
        }
    };
}

fixture_tests! {
    checkout_session_completed => "checkout.session.completed",
    customer_created => "customer.created",
    customer_updated => "customer.updated",
    customer_deleted => "customer.deleted",
    subscription_created => "customer.subscription.created",
    subscription_updated => "customer.subscription.updated",
    subscription_deleted => "customer.subscription.deleted",
    subscription_paused => "customer.subscription.paused",
    subscription_resumed => "customer.subscription.resumed",
    subscription_trial_will_end => "customer.subscription.trial_will_end",
    invoice_paid => "invoice.paid",
    invoice_payment_succeeded => "invoice.payment_succeeded",
    invoice_payment_failed => "invoice.payment_failed",
    payment_intent_succeeded => "payment_intent.succeeded",
    payment_intent_payment_failed => "payment_intent.payment_failed",
    charge_refunded => "charge.refunded",
    charge_refund_updated => "charge.refund.updated",
    charge_dispute_created => "charge.dispute.created",
    charge_dispute_closed => "charge.dispute.closed",
}

#[test]
fn each_story_folder_holds_exactly_one_fixture_per_event_of_its_story() {
    let handled: BTreeSet<String> = HANDLED_EVENT_TYPES.iter().map(|t| t.to_string()).collect();
    for story in STORIES {
        let files: BTreeSet<String> = fixture_names(story.folder).into_iter().collect();
        let told: BTreeSet<String> = story.events.iter().map(|e| e.0.to_string()).collect();
        assert_eq!(told.len(), story.events.len(), "{} story", story.folder);
        assert_eq!(files, told, "{}", story.folder);
        assert!(told.is_subset(&handled), "{} story", story.folder);
    }
}

/// The story folders hold the 19 event types of the purchase story; the event types the
/// stories do not tell (payment intents processing, needing action or canceled, disputes
/// updated or with funds moved) have their fixtures in `real-world/`.
#[test]
fn every_handled_event_type_has_a_fixture() {
    let handled: BTreeSet<String> = HANDLED_EVENT_TYPES.iter().map(|t| t.to_string()).collect();
    let mut covered = BTreeSet::new();
    for folder in FOLDERS {
        for name in fixture_names(folder) {
            covered.insert(parse_event(&fixture(folder, &name)).unwrap().event_type);
        }
    }
    assert_eq!(covered, handled);
}

#[test]
fn every_fixture_yields_a_fact_of_the_event_type_its_name_ends_with() {
    for folder in FOLDERS {
        for name in fixture_names(folder) {
            let event = parse_event(&fixture(folder, &name))
                .unwrap_or_else(|error| panic!("{folder}/{name}: {error}"));
            assert_ne!(event.fact, Fact::Unhandled, "{folder}/{name}");
            assert!(
                HANDLED_EVENT_TYPES.contains(&event.event_type.as_str()),
                "{folder}/{name}"
            );
            assert!(
                name == event.event_type || name.ends_with(&format!(".{}", event.event_type)),
                "{folder}/{name} holds a {} event",
                event.event_type
            );
        }
    }
}

#[test]
fn each_story_is_in_created_order_and_tells_of_one_customer() {
    for story in STORIES {
        let mut last = None;
        for &(event_type, ..) in story.events {
            let event = parse_event(&fixture(story.folder, event_type)).unwrap();
            if let Some(previous) = last {
                assert!(event.created >= previous, "{}/{event_type}", story.folder);
            }
            last = Some(event.created);
            if let Some(customer) = event.fact.customer_id() {
                assert_eq!(customer, story.cus, "{}/{event_type}", story.folder);
            }
        }
    }
}

#[test]
fn stories_span_the_api_versions_they_claim() {
    let versions = |story: &Story| -> BTreeSet<&str> { story.events.iter().map(|e| e.3).collect() };
    assert_eq!(
        versions(&PRE_BASIL),
        BTreeSet::from(["2023-10-16", "2024-06-20"])
    );
    assert_eq!(
        versions(&BASIL),
        BTreeSet::from(["2025-03-31.basil", "2026-09-30.endive"])
    );
}
