//! The `real-world/` fixtures: single webhook bodies written from Stripe's API reference for
//! the shapes the purchase stories do not show, each parsed to exactly the facts below.
//!
//! Three fictional accounts send them: Northwind Analytics (US, live, endpoint on
//! `2024-06-20`, one subscription also rendered for a `2025-03-31.basil` endpoint), Lumen
//! Studio (Germany, live, basil) and Fieldnote Labs (US, live, an old integration whose bodies
//! were rendered with `2017-08-15`, `2018-02-28`, `2019-12-03` and `2020-08-27`).

use billing_domain::{BillingEvent, Currency, Fact, Money};
use billing_stripe::{EventEnvelope, HANDLED_EVENT_TYPES, parse_event, peek_envelope};
use serde_json::Value;

mod charges_and_disputes;
mod payment_intents;
mod subscriptions_and_invoices;

use crate::wire::story::{REAL_WORLD, at, fixture, fixture_json, fixture_names};

fn usd(amount: i64) -> Money {
    Money::new(amount, Currency::parse("usd").unwrap())
}

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::parse("eur").unwrap())
}

/// Parses `real-world/<name>.json`, checks its envelope against `peek_envelope`, and returns
/// the event.
fn parsed(name: &str) -> BillingEvent {
    let body = fixture(REAL_WORLD, name);
    let event = parse_event(&body).unwrap_or_else(|error| panic!("{name}: {error}"));
    assert_eq!(
        peek_envelope(&body).unwrap(),
        EventEnvelope {
            id: event.id.clone(),
            event_type: event.event_type.clone(),
            api_version: event.api_version.clone(),
            livemode: event.livemode,
            created: event.created,
        },
        "{name}"
    );
    event
}

/// Asserts the whole event parsed from `real-world/<name>.json`.
fn check(name: &str, id: &str, api_version: &str, created: &str, fact: Fact) {
    // Names are `<scenario>.<event type>`; the longest handled type the name ends with.
    let event_type = HANDLED_EVENT_TYPES
        .iter()
        .filter(|t| name.ends_with(&format!(".{t}")))
        .max_by_key(|t| t.len())
        .unwrap_or_else(|| panic!("{name} names no handled event type"));
    assert_eq!(
        parsed(name),
        BillingEvent {
            id: id.to_owned(),
            event_type: (*event_type).to_owned(),
            api_version: Some(api_version.to_owned()),
            livemode: true,
            created: at(created),
            fact,
        },
        "{name}"
    );
}
/// Northwind Analytics' customer.
const NW_CUS: &str = "cus_dA7d4e269xAdoT";
/// Fieldnote Labs' customer.
const FN_CUS: &str = "cus_Ak2I8OzOlxTylL";

// ---------------------------------------------------------------- the folder

#[test]
fn every_real_world_fixture_is_checked_here() {
    let checked = [
        "abandoned-2020.payment_intent.canceled",
        "card-declined-2020.payment_intent.payment_failed",
        "card-declined.payment_intent.payment_failed",
        "charges-api.charge.dispute.closed",
        "charges-api.charge.dispute.created",
        "charges-api.charge.refund.updated",
        "charges-api.charge.refunded",
        "inquiry.charge.dispute.closed",
        "inquiry.charge.dispute.created",
        "legacy-2017.invoice.payment_succeeded",
        "legacy-2018.invoice.payment_failed",
        "prevented.charge.dispute.created",
        "sepa-debit.payment_intent.processing",
        "three-d-secure.payment_intent.requires_action",
        "two-items.basil.customer.subscription.created",
        "two-items.basil.invoice.paid",
        "two-items.pre-basil.customer.subscription.created",
        "two-items.pre-basil.invoice.paid",
        "won.charge.dispute.closed",
        "won.charge.dispute.funds_reinstated",
        "won.charge.dispute.funds_withdrawn",
        "won.charge.dispute.updated",
    ];
    assert_eq!(fixture_names(REAL_WORLD), checked);
}

#[test]
fn real_world_bodies_use_stripe_shaped_ids() {
    fn walk(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(id)) = object.get("id") {
                    found.push(id.clone());
                }
                object.values().for_each(|v| walk(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    for name in fixture_names(REAL_WORLD) {
        let mut ids = Vec::new();
        walk(&fixture_json(REAL_WORLD, &name), &mut ids);
        for id in ids {
            // Custom price and plan ids are chosen by the merchant; Stripe's own have a prefix.
            if id.starts_with("price_") || id == "pro-monthly" {
                continue;
            }
            let (prefix, rest) = id
                .split_once('_')
                .unwrap_or_else(|| panic!("{name}: id {id} has no prefix"));
            assert!(
                prefix.chars().all(|c| c.is_ascii_lowercase()),
                "{name}: {id}"
            );
            assert!(rest.len() >= 14, "{name}: {id}");
            assert!(
                rest.chars().all(|c| c.is_ascii_alphanumeric()),
                "{name}: {id}"
            );
        }
    }
}
