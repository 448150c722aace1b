//! Subscriptions: where each version puts the period and the prices, statuses, scheduled
//! cancellation, and the change named by the event type.

use billing_domain::facts::SubscriptionChange;
use billing_domain::{Fact, SubscriptionStatus};
use serde_json::{Value, json};

use super::{object, parse, remove, subscription};
use crate::wire::story::{BASIL, PRE_BASIL, PRICE_ID, STORIES, at, fixture_json};

// ---------------------------------------------------------------- subscription periods

#[test]
fn pre_basil_fixtures_carry_the_period_on_the_subscription_only() {
    let event = fixture_json(PRE_BASIL.folder, "customer.subscription.updated");
    let sub = &event["data"]["object"];
    assert!(sub["current_period_start"].is_i64());
    assert!(
        sub["items"]["data"][0]
            .get("current_period_start")
            .is_none()
    );
}

#[test]
fn basil_fixtures_carry_the_period_on_items_only() {
    let event = fixture_json(BASIL.folder, "customer.subscription.updated");
    let sub = &event["data"]["object"];
    assert!(sub.get("current_period_start").is_none());
    assert!(sub["items"]["data"][0]["current_period_start"].is_i64());
}

#[test]
fn subscription_level_period_wins_over_item_periods() {
    // Pre-basil versions rendered today also carry item periods; the subscription's pair wins.
    let mut event = fixture_json(PRE_BASIL.folder, "customer.subscription.updated");
    let item = &mut object(&mut event)["items"]["data"][0];
    item["current_period_start"] = json!(1_000_000_000);
    item["current_period_end"] = json!(1_100_000_000);
    let sub = subscription(&event);
    assert_eq!(sub.current_period_start, Some(at(PRE_BASIL.resumed_at)));
    assert_eq!(sub.current_period_end, Some(at(PRE_BASIL.main_period_end)));
}

#[test]
fn basil_period_is_the_first_items_even_when_other_items_differ() {
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    let items = object(&mut event)["items"]["data"].as_array_mut().unwrap();
    let mut annual = items[0].clone();
    annual["id"] = json!("si_annualAddon01");
    annual["price"]["id"] = json!("price_storage_yearly");
    annual["current_period_start"] = json!(1_780_000_000);
    annual["current_period_end"] = json!(1_820_000_000);
    items.push(annual);
    let sub = subscription(&event);
    assert_eq!(sub.price_ids, [PRICE_ID, "price_storage_yearly"]);
    assert_eq!(sub.current_period_start, Some(at(BASIL.resumed_at)));
    assert_eq!(sub.current_period_end, Some(at(BASIL.main_period_end)));
}

#[test]
fn a_subscription_without_periods_or_items_has_no_period_or_price() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "customer.subscription.updated");
        let sub = object(&mut event);
        remove(sub, "current_period_start");
        remove(sub, "current_period_end");
        remove(sub, "items");
        remove(sub, "plan");
        let sub = subscription(&event);
        assert_eq!(sub.current_period_start, None);
        assert_eq!(sub.current_period_end, None);
        assert!(sub.price_ids.is_empty());
        // The rest still reads.
        assert_eq!(sub.status, SubscriptionStatus::PastDue);
    }
}

#[test]
fn empty_items_list_reads_as_no_item() {
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    object(&mut event)["items"]["data"] = json!([]);
    remove(object(&mut event), "plan");
    let sub = subscription(&event);
    assert!(sub.price_ids.is_empty());
    assert_eq!(sub.current_period_end, None);
}

// ---------------------------------------------------------------- subscription price

#[test]
fn price_may_be_an_id_string() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "customer.subscription.created");
        object(&mut event)["items"]["data"][0]["price"] = json!("price_as_string");
        assert_eq!(subscription(&event).price_ids, ["price_as_string"]);
    }
}

#[test]
fn price_falls_back_to_the_items_plan_then_the_subscriptions_plan() {
    let mut event = fixture_json(PRE_BASIL.folder, "customer.subscription.created");
    let item = &mut object(&mut event)["items"]["data"][0];
    item["price"] = Value::Null;
    item["plan"]["id"] = json!("plan_legacy_item");
    assert_eq!(subscription(&event).price_ids, ["plan_legacy_item"]);

    remove(&mut object(&mut event)["items"]["data"][0], "plan");
    object(&mut event)["plan"] = json!("plan_legacy_top");
    assert_eq!(subscription(&event).price_ids, ["plan_legacy_top"]);
}

// ---------------------------------------------------------------- subscription statuses

#[test]
fn every_known_status_and_an_unknown_one_parse() {
    for status in SubscriptionStatus::KNOWN {
        let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
        object(&mut event)["status"] = json!(status.as_str());
        assert_eq!(subscription(&event).status, status);
    }
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    object(&mut event)["status"] = json!("hibernating");
    assert_eq!(
        subscription(&event).status,
        SubscriptionStatus::Unknown("hibernating".to_owned())
    );
}

#[test]
fn scheduled_cancellation_reads() {
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    object(&mut event)["cancel_at_period_end"] = json!(true);
    object(&mut event)["cancel_at"] = json!(1_792_155_869);
    let sub = subscription(&event);
    assert!(sub.cancel_at_period_end);
    assert_eq!(sub.cancel_at, Some(at("2026-10-16T13:04:29Z")));
}

#[test]
fn subscription_change_is_taken_from_the_event_type() {
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    event["type"] = json!("customer.subscription.resumed");
    match parse(&event).fact {
        Fact::Subscription { change, .. } => assert_eq!(change, SubscriptionChange::Resumed),
        other => panic!("{other:?}"),
    }
}
