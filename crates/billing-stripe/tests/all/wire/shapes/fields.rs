//! How fields are written: expanded references, `null` versus absent, and unknown fields.

use serde_json::{Value, json};

use super::{
    charge, checkout, customer, dispute, expanded, invoice, object, parse, payment_intent, refund,
    remove, subscription,
};
use crate::wire::story::{BASIL, STORIES, Story, fixture_json};

// ---------------------------------------------------------------- expanded references

#[test]
fn expanded_customer_subscription_and_payment_intent_read_as_ids() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "customer.subscription.updated");
        object(&mut event)["customer"] = expanded(story.cus, "customer");
        assert_eq!(subscription(&event).customer_id, story.cus);

        let mut event = fixture_json(story.folder, "invoice.paid");
        object(&mut event)["customer"] = expanded(story.cus, "customer");
        assert_eq!(invoice(&event).customer_id.as_deref(), Some(story.cus));

        let mut event = fixture_json(story.folder, "checkout.session.completed");
        object(&mut event)["customer"] = expanded(story.cus, "customer");
        object(&mut event)["subscription"] = expanded(story.sub, "subscription");
        assert_eq!(checkout(&event), story.checkout());

        let mut event = fixture_json(story.folder, "payment_intent.succeeded");
        object(&mut event)["customer"] = expanded(story.cus, "customer");
        assert_eq!(
            payment_intent(&event).customer_id.as_deref(),
            Some(story.cus)
        );

        let mut event = fixture_json(story.folder, "charge.refunded");
        object(&mut event)["payment_intent"] = expanded(story.pi, "payment_intent");
        object(&mut event)["customer"] = expanded(story.cus, "customer");
        let facts = charge(&event);
        assert_eq!(facts.payment_intent_id.as_deref(), Some(story.pi));
        assert_eq!(facts.customer_id.as_deref(), Some(story.cus));
    }
}

#[test]
fn expanded_charge_and_payment_intent_on_refunds_and_disputes_read_as_ids() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "charge.refund.updated");
        object(&mut event)["charge"] = expanded(story.ch_ok, "charge");
        object(&mut event)["payment_intent"] = expanded(story.pi, "payment_intent");
        let facts = refund(&event);
        assert_eq!(facts.charge_id.as_deref(), Some(story.ch_ok));
        assert_eq!(facts.payment_intent_id.as_deref(), Some(story.pi));

        let mut event = fixture_json(story.folder, "charge.dispute.created");
        object(&mut event)["charge"] = expanded(story.ch_ok, "charge");
        object(&mut event)["payment_intent"] = expanded(story.pi, "payment_intent");
        let facts = dispute(&event);
        assert_eq!(facts.charge_id.as_deref(), Some(story.ch_ok));
        assert_eq!(facts.payment_intent_id.as_deref(), Some(story.pi));
    }
}

#[test]
fn a_deleted_customer_expanded_still_has_its_id() {
    let mut event = fixture_json(BASIL.folder, "customer.subscription.deleted");
    object(&mut event)["customer"] =
        json!({ "id": BASIL.cus, "object": "customer", "deleted": true });
    assert_eq!(subscription(&event).customer_id, BASIL.cus);
}

// ---------------------------------------------------------------- null versus absent

/// Sets `key` of the event's object to `null` in one copy and removes it in another.
fn null_and_absent(story: &Story, event_type: &str, key: &str) -> [Value; 2] {
    let mut nulled = fixture_json(story.folder, event_type);
    object(&mut nulled)[key] = Value::Null;
    let mut absent = fixture_json(story.folder, event_type);
    remove(object(&mut absent), key);
    [nulled, absent]
}

#[test]
fn null_and_absent_optional_fields_both_read_as_none() {
    for story in STORIES {
        for event in null_and_absent(story, "checkout.session.completed", "customer") {
            assert_eq!(checkout(&event).customer_id, None);
        }
        for event in null_and_absent(story, "checkout.session.completed", "client_reference_id") {
            let session = checkout(&event);
            assert_eq!(session.client_reference_id, None);
            assert_eq!(session.user_id(), Some("user_123"));
        }
        for event in null_and_absent(story, "checkout.session.completed", "subscription") {
            assert_eq!(checkout(&event).subscription_id, None);
        }
        for event in null_and_absent(story, "customer.updated", "email") {
            assert_eq!(customer(&event).email, None);
        }
        for event in null_and_absent(story, "customer.updated", "metadata") {
            assert_eq!(customer(&event).metadata_user_id, None);
        }
        for event in null_and_absent(story, "customer.subscription.created", "trial_end") {
            assert_eq!(subscription(&event).trial_end, None);
        }
        for event in null_and_absent(
            story,
            "customer.subscription.created",
            "cancel_at_period_end",
        ) {
            assert!(!subscription(&event).cancel_at_period_end);
        }
        for event in null_and_absent(story, "customer.subscription.deleted", "ended_at") {
            assert_eq!(subscription(&event).ended_at, None);
        }
        for event in null_and_absent(story, "invoice.payment_failed", "next_payment_attempt") {
            assert_eq!(invoice(&event).next_payment_attempt, None);
        }
        for event in null_and_absent(story, "invoice.payment_failed", "customer") {
            assert_eq!(invoice(&event).customer_id, None);
        }
        for event in null_and_absent(story, "invoice.payment_failed", "billing_reason") {
            assert_eq!(invoice(&event).billing_reason, None);
        }
        for event in null_and_absent(story, "invoice.payment_failed", "attempt_count") {
            assert_eq!(invoice(&event).attempt_count, 0);
        }
        for event in null_and_absent(story, "payment_intent.payment_failed", "last_payment_error") {
            assert_eq!(payment_intent(&event).last_error, None);
        }
        for event in null_and_absent(story, "charge.refunded", "payment_intent") {
            assert_eq!(charge(&event).payment_intent_id, None);
        }
        for event in null_and_absent(story, "charge.refunded", "customer") {
            assert_eq!(charge(&event).customer_id, None);
        }
        for event in null_and_absent(story, "payment_intent.succeeded", "latest_charge") {
            assert_eq!(payment_intent(&event).latest_charge_id, None);
        }
        for event in null_and_absent(story, "charge.refund.updated", "charge") {
            assert_eq!(refund(&event).charge_id, None);
        }
        // Old renderings of disputes have no `payment_intent` at all.
        for event in null_and_absent(story, "charge.dispute.closed", "payment_intent") {
            assert_eq!(dispute(&event).payment_intent_id, None);
        }
    }
}

#[test]
fn null_and_absent_envelope_fields() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "invoice.paid");
        event["api_version"] = Value::Null;
        remove(&mut event, "livemode");
        let parsed = parse(&event);
        assert_eq!(parsed.api_version, None);
        assert!(!parsed.livemode);
    }
}

// ---------------------------------------------------------------- unknown and extra fields

#[test]
fn unknown_fields_anywhere_are_ignored() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "customer.subscription.updated");
        event["context"] = json!("acct_1Future");
        event["data"]["future_data"] = json!([1, 2, 3]);
        object(&mut event)["billing_mode"] = json!({ "type": "flexible", "updated_at": 1 });
        object(&mut event)["items"]["data"][0]["something_new"] = json!({ "deep": [null] });
        assert_eq!(
            parse(&event),
            story.expected("customer.subscription.updated")
        );
    }
}
