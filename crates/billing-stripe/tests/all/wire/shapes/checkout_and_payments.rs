//! Checkout Sessions, payment intents and disputes: the fields each event carries.

use billing_domain::Fact;
use billing_domain::facts::{CheckoutMode, PaymentIntentChange};
use serde_json::{Value, json};

use super::{checkout, dispute, expanded, object, parse, payment_intent, remove};
use crate::wire::story::{BASIL, PRE_BASIL, STORIES, fixture_json};

// ---------------------------------------------------------------- checkout details

#[test]
fn checkout_email_falls_back_to_the_prefilled_one() {
    let mut event = fixture_json(BASIL.folder, "checkout.session.completed");
    object(&mut event)["customer_details"] = Value::Null;
    object(&mut event)["customer_email"] = json!("prefilled@example.com");
    assert_eq!(
        checkout(&event).customer_email.as_deref(),
        Some("prefilled@example.com")
    );
}

#[test]
fn checkout_payment_mode_with_amount_and_payment_intent() {
    let mut event = fixture_json(PRE_BASIL.folder, "checkout.session.completed");
    let session = object(&mut event);
    session["mode"] = json!("payment");
    session["subscription"] = Value::Null;
    session["payment_intent"] = json!("pi_3oneTimePayment");
    session["amount_total"] = json!(4900);
    session["payment_status"] = json!("paid");
    let facts = checkout(&event);
    assert_eq!(facts.mode, CheckoutMode::Payment);
    assert_eq!(
        facts.payment_intent_id.as_deref(),
        Some("pi_3oneTimePayment")
    );
    assert_eq!(facts.amount_total, Some(PRE_BASIL.money(4900)));
    assert_eq!(facts.payment_status.as_deref(), Some("paid"));
}

#[test]
fn checkout_without_amount_needs_no_currency_and_unknown_modes_are_kept() {
    let mut event = fixture_json(BASIL.folder, "checkout.session.completed");
    let session = object(&mut event);
    session["amount_total"] = Value::Null;
    session["currency"] = Value::Null;
    session["mode"] = json!("installments");
    let facts = checkout(&event);
    assert_eq!(facts.amount_total, None);
    assert_eq!(facts.mode, CheckoutMode::Unknown("installments".to_owned()));
    let mut event = fixture_json(BASIL.folder, "checkout.session.completed");
    object(&mut event)["mode"] = json!("setup");
    assert_eq!(checkout(&event).mode, CheckoutMode::Setup);
}

#[test]
fn checkout_client_reference_id_wins_for_the_user_id() {
    let mut event = fixture_json(BASIL.folder, "checkout.session.completed");
    object(&mut event)["client_reference_id"] = json!("user_from_reference");
    let session = checkout(&event);
    assert_eq!(session.user_id(), Some("user_from_reference"));
    assert_eq!(session.metadata_user_id.as_deref(), Some("user_123"));
}

// ---------------------------------------------------------------- payment intents

#[test]
fn payment_intent_metadata_user_id_is_read() {
    let mut event = fixture_json(BASIL.folder, "payment_intent.succeeded");
    object(&mut event)["metadata"] = json!({ "user_id": "user_123", "order": "42" });
    assert_eq!(
        payment_intent(&event).metadata_user_id.as_deref(),
        Some("user_123")
    );
}

#[test]
fn latest_charge_may_be_expanded_and_wins_over_the_old_charges_list() {
    let mut event = fixture_json(BASIL.folder, "payment_intent.succeeded");
    object(&mut event)["latest_charge"] = expanded(BASIL.ch_ok, "charge");
    assert_eq!(
        payment_intent(&event).latest_charge_id.as_deref(),
        Some(BASIL.ch_ok)
    );
    object(&mut event)["charges"] = json!({ "object": "list", "data": [{ "id": "ch_older" }] });
    assert_eq!(
        payment_intent(&event).latest_charge_id.as_deref(),
        Some(BASIL.ch_ok)
    );
    // Before 2022-11-15 only the list is sent: its first (newest) charge.
    object(&mut event)["latest_charge"] = Value::Null;
    object(&mut event)["charges"]["data"] = json!([{ "id": "ch_newest" }, { "id": "ch_older" }]);
    assert_eq!(
        payment_intent(&event).latest_charge_id.as_deref(),
        Some("ch_newest")
    );
    // A payment intent never confirmed has no charge at all.
    object(&mut event)["charges"]["data"] = json!([]);
    assert_eq!(payment_intent(&event).latest_charge_id, None);
    remove(object(&mut event), "charges");
    remove(object(&mut event), "latest_charge");
    assert_eq!(payment_intent(&event).latest_charge_id, None);
}

#[test]
fn payment_intent_change_is_taken_from_the_event_type() {
    let cases = [
        ("payment_intent.succeeded", PaymentIntentChange::Succeeded),
        (
            "payment_intent.payment_failed",
            PaymentIntentChange::PaymentFailed,
        ),
        ("payment_intent.processing", PaymentIntentChange::Processing),
        (
            "payment_intent.requires_action",
            PaymentIntentChange::RequiresAction,
        ),
        ("payment_intent.canceled", PaymentIntentChange::Canceled),
    ];
    for (event_type, expected) in cases {
        let mut event = fixture_json(PRE_BASIL.folder, "payment_intent.succeeded");
        event["type"] = json!(event_type);
        match parse(&event).fact {
            Fact::PaymentIntent { change, .. } => assert_eq!(change, expected, "{event_type}"),
            other => panic!("{event_type}: {other:?}"),
        }
    }
}

#[test]
fn every_dispute_event_is_a_dispute_and_only_closed_is_closed() {
    let cases = [
        ("charge.dispute.created", false),
        ("charge.dispute.updated", false),
        ("charge.dispute.funds_withdrawn", false),
        ("charge.dispute.funds_reinstated", false),
        ("charge.dispute.closed", true),
    ];
    for story in STORIES {
        for (event_type, expected) in cases {
            let mut event = fixture_json(story.folder, "charge.dispute.created");
            event["type"] = json!(event_type);
            match parse(&event).fact {
                Fact::Dispute { closed, dispute } => {
                    assert_eq!(closed, expected, "{event_type}");
                    assert_eq!(dispute.status, "needs_response");
                }
                other => panic!("{event_type}: {other:?}"),
            }
        }
    }
}

#[test]
fn dispute_statuses_are_kept_as_sent() {
    for status in [
        "warning_needs_response",
        "warning_under_review",
        "warning_closed",
        "needs_response",
        "under_review",
        "won",
        "lost",
        "prevented",
        "some_future_status",
    ] {
        let mut event = fixture_json(BASIL.folder, "charge.dispute.closed");
        object(&mut event)["status"] = json!(status);
        assert_eq!(dispute(&event).status, status);
    }
}

#[test]
fn payment_error_without_message_keeps_its_code() {
    let mut event = fixture_json(PRE_BASIL.folder, "payment_intent.payment_failed");
    object(&mut event)["last_payment_error"]["message"] = Value::Null;
    assert_eq!(
        payment_intent(&event).last_error.as_deref(),
        Some("card_declined")
    );
}
