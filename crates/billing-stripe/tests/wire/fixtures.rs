//! Every fixture parses to exactly the facts its story says.

use std::collections::BTreeSet;

use billing_domain::Fact;
use billing_stripe::{EventEnvelope, HANDLED_EVENT_TYPES, parse_event, peek_envelope};

use crate::story::{BASIL, PRE_BASIL, STORIES, Story, fixture};

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
fn each_folder_holds_exactly_one_fixture_per_handled_event_type() {
    let handled: BTreeSet<String> = HANDLED_EVENT_TYPES.iter().map(|t| t.to_string()).collect();
    for story in STORIES {
        let dir = crate::story::fixture_path(story.folder, "x");
        let dir = dir.parent().unwrap();
        let files: BTreeSet<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
            .collect();
        assert_eq!(files, handled, "{}", story.folder);
        let told: BTreeSet<String> = story.events.iter().map(|e| e.0.to_string()).collect();
        assert_eq!(told, handled, "{} story", story.folder);
    }
}

#[test]
fn every_handled_event_type_yields_a_fact() {
    for story in STORIES {
        for event_type in HANDLED_EVENT_TYPES {
            let event = parse_event(&fixture(story.folder, event_type)).unwrap();
            assert_ne!(event.fact, Fact::Unhandled, "{}/{event_type}", story.folder);
            assert_eq!(event.event_type, event_type);
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
