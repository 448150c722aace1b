//! Unhandled types, missing and invalid fields, and bodies that are not JSON objects.

use billing_domain::Fact;
use billing_stripe::{WireError, parse_event, peek_envelope};
use serde_json::{Value, json};

use crate::wire::story::{BASIL, PRE_BASIL, STORIES, Story, at, bytes, fixture_json};

fn object(event: &mut Value) -> &mut Value {
    &mut event["data"]["object"]
}

fn remove(value: &mut Value, key: &str) {
    value.as_object_mut().unwrap().remove(key);
}

fn parse_err(value: &Value) -> WireError {
    match parse_event(&bytes(value)) {
        Ok(event) => panic!("expected an error, parsed {event:?}"),
        Err(error) => error,
    }
}

fn missing(story: &Story, event_type: &str, field: &str) -> WireError {
    WireError::MissingField {
        event_id: Some(story.event_id(event_type).to_owned()),
        event_type: Some(event_type.to_owned()),
        field: field.to_owned(),
    }
}

/// Asserts an `InvalidField` on `field` of the fixture's event, whatever the message.
fn assert_invalid(error: &WireError, story: &Story, event_type: &str, field: &str) {
    match error {
        WireError::InvalidField {
            event_id,
            event_type: found_type,
            field: found_field,
            message,
        } => {
            assert_eq!(event_id.as_deref(), Some(story.event_id(event_type)));
            assert_eq!(found_type.as_deref(), Some(event_type));
            assert_eq!(found_field, field, "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected InvalidField on {field}, got {other:?}"),
    }
}

// ---------------------------------------------------------------- unhandled types

#[test]
fn unknown_event_types_are_unhandled_with_their_envelope() {
    for story in STORIES {
        let mut event = fixture_json(story.folder, "invoice.paid");
        event["type"] = json!("invoice.finalized");
        let parsed = parse_event(&bytes(&event)).unwrap();
        assert_eq!(parsed.fact, Fact::Unhandled);
        assert_eq!(parsed.event_type, "invoice.finalized");
        assert_eq!(parsed.id, story.event_id("invoice.paid"));
        assert_eq!(parsed.livemode, story.livemode);
    }
}

#[test]
fn unhandled_events_need_no_readable_data() {
    let body = br#"{"id":"evt_1Future","object":"event","api_version":"2027-01-01.fig",
        "created":1800000000,"livemode":true,"type":"billing.credit_grant.created",
        "data":{"object":["anything", {"at": "all"}]}}"#;
    let parsed = parse_event(body).unwrap();
    assert_eq!(parsed.fact, Fact::Unhandled);
    assert_eq!(parsed.api_version.as_deref(), Some("2027-01-01.fig"));
    assert_eq!(parsed.created, at("2027-01-15T08:00:00Z"));
    assert!(parsed.livemode);

    let bare = br#"{"id":"evt_1","type":"v2.core.event_destination.ping","created":0}"#;
    let parsed = parse_event(bare).unwrap();
    assert_eq!(parsed.fact, Fact::Unhandled);
    assert_eq!(parsed.api_version, None);
}

// ---------------------------------------------------------------- missing fields

#[test]
fn missing_required_object_fields_name_the_path_and_event() {
    let cases: &[(&str, &str)] = &[
        ("customer.subscription.updated", "customer"),
        ("customer.subscription.updated", "status"),
        ("customer.subscription.created", "id"),
        ("invoice.paid", "amount_due"),
        ("invoice.paid", "currency"),
        ("invoice.payment_failed", "id"),
        ("checkout.session.completed", "mode"),
        ("checkout.session.completed", "id"),
        ("customer.created", "id"),
        ("payment_intent.succeeded", "amount"),
        ("payment_intent.succeeded", "status"),
        ("payment_intent.payment_failed", "currency"),
        ("charge.refunded", "amount_refunded"),
        ("charge.refunded", "amount"),
        ("charge.refund.updated", "status"),
        ("charge.refund.updated", "amount"),
        ("charge.dispute.created", "currency"),
        ("charge.dispute.closed", "status"),
    ];
    for story in STORIES {
        for &(event_type, key) in cases {
            let mut absent = fixture_json(story.folder, event_type);
            remove(object(&mut absent), key);
            let mut nulled = fixture_json(story.folder, event_type);
            object(&mut nulled)[key] = Value::Null;
            let expected = missing(story, event_type, &format!("data.object.{key}"));
            assert_eq!(
                parse_err(&absent),
                expected,
                "{}/{event_type} absent",
                story.folder
            );
            assert_eq!(
                parse_err(&nulled),
                expected,
                "{}/{event_type} null",
                story.folder
            );
        }
    }
}

#[test]
fn an_invoice_with_neither_amount_paid_nor_paid_is_missing_amount_paid() {
    // Basil removed `paid` and always sends `amount_paid`; before 2018 only `paid` and `total`
    // existed. A paid invoice with neither fits no version. (Renderings with `paid` but no
    // `amount_paid` are read in `shapes.rs`.)
    for event_type in ["invoice.paid", "invoice.payment_succeeded"] {
        let expected = missing(&BASIL, event_type, "data.object.amount_paid");
        let mut absent = fixture_json(BASIL.folder, event_type);
        remove(object(&mut absent), "amount_paid");
        assert_eq!(parse_err(&absent), expected, "basil {event_type} absent");
        let mut nulled = fixture_json(BASIL.folder, event_type);
        object(&mut nulled)["amount_paid"] = Value::Null;
        assert_eq!(parse_err(&nulled), expected, "basil {event_type} null");

        let mut neither = fixture_json(PRE_BASIL.folder, event_type);
        remove(object(&mut neither), "amount_paid");
        object(&mut neither)["paid"] = Value::Null;
        assert_eq!(
            parse_err(&neither),
            missing(&PRE_BASIL, event_type, "data.object.amount_paid")
        );
    }
}

#[test]
fn a_paid_invoice_without_amount_paid_needs_its_total() {
    let mut event = fixture_json(PRE_BASIL.folder, "invoice.paid");
    remove(object(&mut event), "amount_paid");
    remove(object(&mut event), "total");
    assert_eq!(
        parse_err(&event),
        missing(&PRE_BASIL, "invoice.paid", "data.object.total")
    );
    object(&mut event)["total"] = json!("2000");
    assert_invalid(
        &parse_err(&event),
        &PRE_BASIL,
        "invoice.paid",
        "data.object.total",
    );
    object(&mut event)["total"] = json!(2000);
    object(&mut event)["paid"] = json!("true");
    assert_invalid(
        &parse_err(&event),
        &PRE_BASIL,
        "invoice.paid",
        "data.object.paid",
    );
}

#[test]
fn checkout_amount_without_currency_is_missing_the_currency() {
    let mut event = fixture_json(BASIL.folder, "checkout.session.completed");
    object(&mut event)["currency"] = Value::Null;
    assert_eq!(
        parse_err(&event),
        missing(&BASIL, "checkout.session.completed", "data.object.currency")
    );
}

#[test]
fn missing_data_or_object_is_reported() {
    let event_type = "customer.subscription.deleted";
    let mut no_data = fixture_json(PRE_BASIL.folder, event_type);
    remove(&mut no_data, "data");
    assert_eq!(parse_err(&no_data), missing(&PRE_BASIL, event_type, "data"));

    let mut no_object = fixture_json(PRE_BASIL.folder, event_type);
    no_object["data"] = json!({ "previous_attributes": {} });
    assert_eq!(
        parse_err(&no_object),
        missing(&PRE_BASIL, event_type, "data.object")
    );

    let mut null_object = fixture_json(PRE_BASIL.folder, event_type);
    *object(&mut null_object) = Value::Null;
    assert_eq!(
        parse_err(&null_object),
        missing(&PRE_BASIL, event_type, "data.object")
    );
}

#[test]
fn missing_envelope_fields_are_reported_with_what_is_known() {
    let event_type = "invoice.paid";
    let id = BASIL.event_id(event_type);

    let mut no_id = fixture_json(BASIL.folder, event_type);
    remove(&mut no_id, "id");
    let expected = WireError::MissingField {
        event_id: None,
        event_type: Some(event_type.to_owned()),
        field: "id".to_owned(),
    };
    assert_eq!(parse_err(&no_id), expected);
    assert_eq!(peek_envelope(&bytes(&no_id)), Err(expected));

    let mut no_type = fixture_json(BASIL.folder, event_type);
    no_type["type"] = Value::Null;
    let expected = WireError::MissingField {
        event_id: Some(id.to_owned()),
        event_type: None,
        field: "type".to_owned(),
    };
    assert_eq!(parse_err(&no_type), expected);
    assert_eq!(peek_envelope(&bytes(&no_type)), Err(expected));

    let mut no_created = fixture_json(BASIL.folder, event_type);
    remove(&mut no_created, "created");
    let expected = missing(&BASIL, event_type, "created");
    assert_eq!(parse_err(&no_created), expected);
    assert_eq!(peek_envelope(&bytes(&no_created)), Err(expected));
}

// ---------------------------------------------------------------- invalid fields

#[test]
fn non_integer_amounts_are_invalid() {
    for story in STORIES {
        for amount in [
            json!(2000.5),
            json!(2000.0),
            json!("2000"),
            json!(true),
            json!([2000]),
        ] {
            let mut event = fixture_json(story.folder, "invoice.paid");
            object(&mut event)["amount_paid"] = amount.clone();
            let error = parse_err(&event);
            assert_invalid(&error, story, "invoice.paid", "data.object.amount_paid");
        }
        let mut event = fixture_json(story.folder, "charge.refunded");
        object(&mut event)["amount_refunded"] = json!(1e3);
        let error = parse_err(&event);
        assert_invalid(
            &error,
            story,
            "charge.refunded",
            "data.object.amount_refunded",
        );
    }
}

#[test]
fn invalid_fields_name_their_path() {
    let story = &BASIL;
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "invoice.paid",
            "currency",
            json!("euro"),
            "data.object.currency",
        ),
        (
            "invoice.paid",
            "currency",
            json!(978),
            "data.object.currency",
        ),
        (
            "invoice.paid",
            "attempt_count",
            json!(-1),
            "data.object.attempt_count",
        ),
        (
            "invoice.paid",
            "status",
            json!({ "paid": true }),
            "data.object.status",
        ),
        (
            "invoice.payment_failed",
            "next_payment_attempt",
            json!(1.5e9),
            "data.object.next_payment_attempt",
        ),
        (
            "customer.subscription.updated",
            "customer",
            json!(42),
            "data.object.customer",
        ),
        (
            "customer.subscription.updated",
            "customer",
            json!({ "object": "customer" }),
            "data.object.customer",
        ),
        (
            "customer.subscription.updated",
            "status",
            json!(["active"]),
            "data.object.status",
        ),
        (
            "customer.subscription.updated",
            "cancel_at_period_end",
            json!("no"),
            "data.object.cancel_at_period_end",
        ),
        (
            "customer.subscription.updated",
            "trial_end",
            json!(i64::MAX),
            "data.object.trial_end",
        ),
        (
            "customer.subscription.updated",
            "items",
            json!("si_1"),
            "data.object.items",
        ),
        // A struct written as an array of its fields is refused, not read positionally.
        (
            "customer.updated",
            "metadata",
            json!(["user_999"]),
            "data.object.metadata",
        ),
        (
            "checkout.session.completed",
            "client_reference_id",
            json!(123),
            "data.object.client_reference_id",
        ),
        (
            "payment_intent.succeeded",
            "customer",
            json!(false),
            "data.object.customer",
        ),
    ];
    for (event_type, key, value, field) in cases {
        let mut event = fixture_json(story.folder, event_type);
        object(&mut event)[key] = value;
        assert_invalid(&parse_err(&event), story, event_type, field);
    }
}

#[test]
fn invalid_nested_fields_name_their_full_path() {
    let story = &BASIL;
    let event_type = "customer.subscription.updated";

    let mut event = fixture_json(story.folder, event_type);
    object(&mut event)["items"]["data"][0]["current_period_end"] = json!("soon");
    assert_invalid(
        &parse_err(&event),
        story,
        event_type,
        "data.object.items.data[0].current_period_end",
    );

    let mut event = fixture_json(story.folder, event_type);
    object(&mut event)["items"]["data"][0] = json!("si_only_an_id");
    assert_invalid(
        &parse_err(&event),
        story,
        event_type,
        "data.object.items.data[0]",
    );

    let mut event = fixture_json(story.folder, event_type);
    object(&mut event)["metadata"]["user_id"] = json!(123);
    assert_invalid(
        &parse_err(&event),
        story,
        event_type,
        "data.object.metadata.user_id",
    );

    let mut event = fixture_json(story.folder, "invoice.paid");
    object(&mut event)["lines"]["data"][0]["period"]["end"] = json!(null);
    object(&mut event)["lines"]["data"][0]["period"]["start"] = json!("x");
    assert_invalid(
        &parse_err(&event),
        story,
        "invoice.paid",
        "data.object.lines.data[0].period.start",
    );

    let mut event = fixture_json(story.folder, "invoice.paid");
    object(&mut event)["parent"]["subscription_details"]["subscription"] = json!(7);
    assert_invalid(
        &parse_err(&event),
        story,
        "invoice.paid",
        "data.object.parent.subscription_details.subscription",
    );
}

#[test]
fn invalid_envelope_fields_are_reported() {
    let event_type = "customer.created";
    let cases = [
        ("created", json!("2026-09-01T08:41:07Z")),
        ("created", json!(1.7e9)),
        ("livemode", json!("yes")),
        ("api_version", json!(20250331)),
    ];
    for (key, value) in cases {
        let mut event = fixture_json(PRE_BASIL.folder, event_type);
        event[key] = value;
        assert_invalid(&parse_err(&event), &PRE_BASIL, event_type, key);
        assert!(peek_envelope(&bytes(&event)).is_err());
    }
    let mut event = fixture_json(PRE_BASIL.folder, event_type);
    event["id"] = json!(12);
    match parse_err(&event) {
        WireError::InvalidField {
            event_id, field, ..
        } => {
            assert_eq!((event_id, field.as_str()), (None, "id"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_object_of_the_wrong_kind_is_refused() {
    // `charge.refund.updated` carries a refund; a charge in its place must not be misread.
    let mut event = fixture_json(PRE_BASIL.folder, "charge.refund.updated");
    *object(&mut event) =
        fixture_json(PRE_BASIL.folder, "charge.refunded")["data"]["object"].clone();
    let error = parse_err(&event);
    assert_invalid(
        &error,
        &PRE_BASIL,
        "charge.refund.updated",
        "data.object.object",
    );
    assert!(
        error
            .to_string()
            .contains("expected a `refund` object, found `charge`")
    );

    let mut event = fixture_json(BASIL.folder, "invoice.paid");
    *object(&mut event) = json!(["in_1", 2000]);
    assert_invalid(&parse_err(&event), &BASIL, "invoice.paid", "data.object");
}

#[test]
fn peek_envelope_reads_events_whose_object_is_broken() {
    let mut event = fixture_json(BASIL.folder, "invoice.paid");
    object(&mut event)["amount_paid"] = json!(19.99);
    remove(object(&mut event), "currency");
    assert!(parse_event(&bytes(&event)).is_err());
    let envelope = peek_envelope(&bytes(&event)).unwrap();
    let expected = BASIL.expected("invoice.paid");
    assert_eq!(envelope.id, expected.id);
    assert_eq!(envelope.event_type, "invoice.paid");
    assert_eq!(envelope.created, expected.created);
    assert_eq!(envelope.api_version, expected.api_version);
    assert!(envelope.livemode);

    let mut event = fixture_json(BASIL.folder, "invoice.paid");
    event["data"] = json!("not even an object");
    assert!(parse_event(&bytes(&event)).is_err());
    assert_eq!(peek_envelope(&bytes(&event)).unwrap().id, expected.id);
}

// ---------------------------------------------------------------- not JSON

#[test]
fn bodies_that_are_not_json_objects_are_not_json() {
    let bodies: &[&[u8]] = &[
        b"",
        b"   \n\t",
        b"not json",
        b"[]",
        br#"["evt_1", "invoice.paid"]"#,
        b"\"evt_1\"",
        b"null",
        b"42",
        b"{",
        br#"{"id": "evt_1", "type": "invoice.paid""#,
        br#"{"id": "evt_1"} trailing"#,
        b"{\"id\": \"evt_\xff\"}",
        b"\xef\xbb\xbf{}",
        br#"{"id": "evt_1", "id": "evt_2", "type": "x", "created": 1}"#,
    ];
    for body in bodies {
        match parse_event(body) {
            Err(WireError::NotJson { message }) => assert!(!message.is_empty()),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
        }
        assert!(
            matches!(peek_envelope(body), Err(WireError::NotJson { .. })),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

// ---------------------------------------------------------------- error values

#[test]
fn errors_display_the_field_and_event_and_expose_them() {
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    remove(object(&mut event), "customer");
    let error = parse_err(&event);
    let id = BASIL.event_id("customer.subscription.updated");
    assert_eq!(error.event_id(), Some(id));
    assert_eq!(error.field(), Some("data.object.customer"));
    let text = error.to_string();
    assert!(text.contains(id), "{text}");
    assert!(text.contains("data.object.customer"), "{text}");
    assert!(text.contains("customer.subscription.updated"), "{text}");

    let error = parse_event(b"nope").unwrap_err();
    assert_eq!((error.event_id(), error.field()), (None, None));
    assert!(
        error
            .to_string()
            .starts_with("webhook body is not a JSON object")
    );
}
