//! What the one-pass decoding must keep: misfits stay local to their field with serde's
//! messages, structs are never read from arrays, fields that are not read are not looked at,
//! and no input nests deep enough to exhaust the stack.

use billing_stripe::{WireError, parse_event, peek_envelope};
use serde_json::{Value, json};

use crate::wire::story::{BASIL, PRE_BASIL, STORIES, bytes, fixture_json};

fn object(event: &mut Value) -> &mut Value {
    &mut event["data"]["object"]
}

/// The field and message of an `InvalidField`, or a panic naming what came instead.
fn invalid(body: &[u8]) -> (String, String) {
    match parse_event(body) {
        Err(WireError::InvalidField { field, message, .. }) => (field, message),
        other => panic!("expected InvalidField, got {other:?}"),
    }
}

/// `event` serialized, with the string `"@@"` replaced by `raw` (JSON text `serde_json` could
/// not build or serialize, such as very deep nesting or duplicate members).
fn splice(event: &Value, raw: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes(event)).unwrap();
    assert_eq!(text.matches("\"@@\"").count(), 1, "one placeholder");
    text.replace("\"@@\"", raw).into_bytes()
}

fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn nested_objects(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

#[test]
fn a_struct_sent_as_an_array_or_a_number_is_refused_with_serdes_message() {
    let cases: Vec<(&str, &str, Value, &str, &str)> = vec![
        (
            "customer.updated",
            "metadata",
            json!(["user_999"]),
            "data.object.metadata",
            "invalid type: sequence, expected struct Metadata",
        ),
        (
            "customer.updated",
            "metadata",
            json!(7),
            "data.object.metadata",
            "invalid type: number, expected struct Metadata",
        ),
        (
            "customer.updated",
            "metadata",
            json!("user_999"),
            "data.object.metadata",
            "invalid type: string \"user_999\", expected struct Metadata",
        ),
        (
            "customer.subscription.updated",
            "items",
            json!(["si_1"]),
            "data.object.items",
            "invalid type: sequence, expected struct List",
        ),
        (
            "payment_intent.payment_failed",
            "last_payment_error",
            json!(["card_declined", "Your card was declined."]),
            "data.object.last_payment_error",
            "invalid type: sequence, expected struct RawPaymentError",
        ),
    ];
    for story in STORIES {
        for (event_type, key, value, field, message) in &cases {
            let mut event = fixture_json(story.folder, event_type);
            object(&mut event)[*key] = value.clone();
            assert_eq!(
                invalid(&bytes(&event)),
                ((*field).to_owned(), (*message).to_owned()),
                "{}/{event_type}",
                story.folder
            );
        }
    }

    // Nested structs and list entries, at their full path.
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    object(&mut event)["items"]["data"][0] = json!(["si_1", "price_pro_monthly", 1]);
    assert_eq!(
        invalid(&bytes(&event)),
        (
            "data.object.items.data[0]".to_owned(),
            "invalid type: sequence, expected struct RawSubscriptionItem".to_owned()
        )
    );
    let mut event = fixture_json(BASIL.folder, "invoice.paid");
    object(&mut event)["lines"]["data"][0]["period"] = json!([1_789_563_869, 1_792_242_269]);
    assert_eq!(
        invalid(&bytes(&event)),
        (
            "data.object.lines.data[0].period".to_owned(),
            "invalid type: sequence, expected struct RawPeriod".to_owned()
        )
    );
}

#[test]
fn misfits_keep_serdes_messages_without_positions() {
    let story = &BASIL;
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "invoice.paid",
            "amount_paid",
            json!("2000"),
            "invalid type: string \"2000\", expected i64",
        ),
        (
            "invoice.paid",
            "amount_paid",
            json!(2000.5),
            "invalid type: floating point `2000.5`, expected i64",
        ),
        (
            "invoice.paid",
            "amount_paid",
            json!(u64::MAX),
            "invalid value: integer `18446744073709551615`, expected i64",
        ),
        (
            "invoice.paid",
            "attempt_count",
            json!(-1),
            "invalid value: integer `-1`, expected u32",
        ),
        (
            "invoice.paid",
            "status",
            json!({ "paid": true }),
            "invalid type: map, expected a string",
        ),
        (
            "customer.subscription.updated",
            "cancel_at_period_end",
            json!("no"),
            "invalid type: string \"no\", expected a boolean",
        ),
        (
            "customer.subscription.updated",
            "customer",
            json!(42),
            "expected an id string or an expanded object, found a number",
        ),
        (
            "customer.subscription.updated",
            "customer",
            json!([{ "id": "cus_1" }]),
            "expected an id string or an expanded object, found an array",
        ),
        (
            "customer.subscription.updated",
            "customer",
            json!({ "object": "customer", "id": 42 }),
            "expanded object has no string `id` field",
        ),
    ];
    for (event_type, key, value, message) in cases {
        let mut event = fixture_json(story.folder, event_type);
        object(&mut event)[key] = value;
        assert_eq!(
            invalid(&bytes(&event)),
            (format!("data.object.{key}"), message.to_owned()),
            "{event_type}"
        );
    }
}

#[test]
fn malformed_fields_that_are_never_read_do_not_fail_the_event() {
    // `paid` and `total` are read only without `amount_paid`; the subscription-level period
    // wins over the items' before basil; undeclared members are never looked at.
    let mut event = fixture_json(PRE_BASIL.folder, "invoice.paid");
    object(&mut event)["paid"] = json!("yes");
    object(&mut event)["total"] = json!({ "amount": [1, 2] });
    object(&mut event)["discounts"] = json!([[{ "coupon": [1e300, null, "x"] }]]);
    assert_eq!(
        parse_event(&bytes(&event)).unwrap(),
        PRE_BASIL.expected("invoice.paid")
    );

    let mut event = fixture_json(PRE_BASIL.folder, "customer.subscription.updated");
    object(&mut event)["items"]["data"][0]["current_period_end"] = json!("soon");
    object(&mut event)["items"]["data"][0]["current_period_start"] = json!([]);
    assert_eq!(
        parse_event(&bytes(&event)).unwrap(),
        PRE_BASIL.expected("customer.subscription.updated")
    );

    // A payment failure never reads `paid` or `total`, whatever they hold.
    for story in STORIES {
        let mut event = fixture_json(story.folder, "invoice.payment_failed");
        object(&mut event)["paid"] = json!([true]);
        object(&mut event)["total"] = json!("1900");
        assert_eq!(
            parse_event(&bytes(&event)).unwrap(),
            story.expected("invoice.payment_failed"),
            "{}",
            story.folder
        );
    }
}

#[test]
fn a_member_sent_twice_inside_the_object_keeps_its_last_value() {
    // As when the object was read into a map; at the top level a repeated member is refused
    // (see `bodies_that_are_not_json_objects_are_not_json`).
    let mut event = fixture_json(BASIL.folder, "customer.subscription.updated");
    let status = object(&mut event)["status"].to_string();
    assert_ne!(status, "\"canceled\"");
    object(&mut event)["status"] = json!("@@");
    let body = splice(&event, &format!("\"canceled\", \"status\": {status}"));
    assert_eq!(
        parse_event(&body).unwrap(),
        BASIL.expected("customer.subscription.updated")
    );
}

#[test]
fn deep_nesting_never_exhausts_the_stack() {
    // Far deeper than any recursion could go; run on a small stack to make sure.
    let depth = 100_000;
    let deep_arrays = nested_arrays(depth);
    let deep_objects = nested_objects(depth);
    let run = move || {
        let event_type = "customer.subscription.updated";
        let expected = BASIL.expected(event_type);

        // Where nothing is decoded (undeclared members, in the object or at the top level,
        // inside a declared struct), nesting is skipped and the event parses.
        let mut event = fixture_json(BASIL.folder, event_type);
        object(&mut event)["undeclared"] = json!("@@");
        assert_eq!(
            parse_event(&splice(&event, &deep_arrays)).unwrap(),
            expected
        );
        let mut event = fixture_json(BASIL.folder, event_type);
        event["request"] = json!("@@");
        assert_eq!(
            parse_event(&splice(&event, &deep_objects)).unwrap(),
            expected
        );
        let mut event = fixture_json(BASIL.folder, event_type);
        object(&mut event)["metadata"]["extra"] = json!("@@");
        assert_eq!(
            parse_event(&splice(&event, &deep_objects)).unwrap(),
            expected
        );
        let mut event = fixture_json(BASIL.folder, event_type);
        object(&mut event)["items"]["data"][0]["price"]["product"] = json!("@@");
        assert_eq!(
            parse_event(&splice(&event, &deep_arrays)).unwrap(),
            expected
        );

        // Where a field is decoded, the misfit is that field's, at its path.
        let cases: [(&[&str], &String, &str); 9] = [
            (&["metadata"], &deep_arrays, "data.object.metadata"),
            (&["status"], &deep_arrays, "data.object.status"),
            (&["customer"], &deep_arrays, "data.object.customer"),
            (&["items"], &deep_arrays, "data.object.items"),
            // The list's entries are the nested arrays.
            (
                &["items", "data"],
                &deep_arrays,
                "data.object.items.data[0]",
            ),
            (&["status"], &deep_objects, "data.object.status"),
            (&["customer"], &deep_objects, "data.object.customer"),
            (
                &["metadata", "user_id"],
                &deep_objects,
                "data.object.metadata.user_id",
            ),
            (&["items", "data"], &deep_objects, "data.object.items.data"),
        ];
        for (path, deep, field) in cases {
            let mut event = fixture_json(BASIL.folder, event_type);
            let mut target = object(&mut event);
            for key in path {
                target = &mut target[*key];
            }
            *target = json!("@@");
            let body = splice(&event, deep);
            assert_eq!(invalid(&body).0, field);
            assert_eq!(peek_envelope(&body).unwrap().id, expected.id);
        }

        // A body nested that deep is not an event: not an object, or an object whose one
        // (skipped) member holds the nesting and which has no envelope.
        assert!(matches!(
            parse_event(deep_arrays.as_bytes()),
            Err(WireError::NotJson { .. })
        ));
        assert!(matches!(
            peek_envelope(deep_arrays.as_bytes()),
            Err(WireError::NotJson { .. })
        ));
        for result in [
            parse_event(deep_objects.as_bytes()).map(|_| ()),
            peek_envelope(deep_objects.as_bytes()).map(|_| ()),
        ] {
            assert!(
                matches!(&result, Err(WireError::MissingField { field, .. }) if field == "id"),
                "{result:?}"
            );
        }
    };
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_decoded_value_json_allows_but_rust_cannot_hold_fails_the_object_not_the_body() {
    // A number beyond f64 or a lone surrogate is JSON syntax but no value: where it is
    // decoded the object is refused, and the envelope can still be read to store the event.
    let event_type = "invoice.paid";
    for raw in ["1e400", "\"\\ud800\""] {
        let mut event = fixture_json(BASIL.folder, event_type);
        object(&mut event)["amount_paid"] = json!("@@");
        let body = splice(&event, raw);
        assert_eq!(invalid(&body).0, "data.object", "{raw}");
        assert_eq!(
            peek_envelope(&body).unwrap().id,
            BASIL.event_id(event_type),
            "{raw}"
        );
        // Where it is not decoded, it is skipped like any other value.
        let mut event = fixture_json(BASIL.folder, event_type);
        object(&mut event)["undeclared"] = json!("@@");
        assert_eq!(
            parse_event(&splice(&event, raw)).unwrap(),
            BASIL.expected(event_type),
            "{raw}"
        );
    }
}
