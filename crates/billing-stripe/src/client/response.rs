//! Reading Stripe's answers: the few fields of created objects, and subscriptions through the
//! crate's own lenient [`wire`](crate::wire) parser.
//!
//! async-stripe's typed objects parse only its own API version, and a fake (or an account
//! pinned to an older version) may answer in another shape; the lenient reads here accept any
//! shape that has the fields we need.

use billing_domain::Fact;
use billing_domain::facts::SubscriptionSnapshot;
use billing_ports::{Cause, GatewayError, ListedEvent, UnreadableEvent};
use serde_json::{Map, Value, json};

use crate::error::WireError;
use crate::wire::{parse_event, peek_envelope};

/// A JSON object answered by Stripe.
pub(super) type Object = Map<String, Value>;

/// Converts async-stripe's untyped answer into a `serde_json` object.
///
/// Goes through the JSON text rather than walking the value, so a hostile, deeply nested
/// answer meets `serde_json`'s recursion limit instead of overflowing the stack.
pub(super) fn object(call: &str, value: &miniserde::json::Value) -> Result<Object, GatewayError> {
    let text = miniserde::json::to_string(value);
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(unexpected(call, "the answer is not a JSON object")),
        Err(error) => Err(GatewayError::Unexpected(Cause::context(
            format!("{call}: the answer cannot be read as JSON"),
            error,
        ))),
    }
}

/// A required, non-empty string field of an answer.
pub(super) fn string(call: &str, object: &Object, field: &str) -> Result<String, GatewayError> {
    match object.get(field) {
        Some(Value::String(value)) if !value.is_empty() => Ok(value.clone()),
        Some(Value::Null) | None => Err(unexpected(call, &format!("`{field}` is missing"))),
        Some(other) => Err(unexpected(
            call,
            &format!("`{field}` is not a non-empty string: {other}"),
        )),
    }
}

/// One page of a list (`{"object": "list", "data": [...], "has_more": bool}`).
pub(super) struct Page {
    /// The page's objects, in Stripe's order (newest first).
    pub(super) data: Vec<Value>,
    /// More objects follow the last one of this page.
    pub(super) has_more: bool,
}

/// Reads a list page.
pub(super) fn page(call: &str, mut object: Object) -> Result<Page, GatewayError> {
    let data = match object.remove("data") {
        Some(Value::Array(data)) => data,
        _ => return Err(unexpected(call, "the list has no `data` array")),
    };
    let has_more = match object.get("has_more") {
        Some(Value::Bool(has_more)) => *has_more,
        None | Some(Value::Null) => false,
        Some(other) => {
            return Err(unexpected(
                call,
                &format!("`has_more` is not a boolean: {other}"),
            ));
        }
    };
    Ok(Page { data, has_more })
}

/// The `id` of a listed object, or `<no id>`.
pub(super) fn id_of(object: &Value) -> String {
    object
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("<no id>")
        .to_owned()
}

/// The id of a page's last object (the `starting_after` of the next page, or the
/// `ending_before` of the page before).
pub(super) fn last_id(data: &[Value]) -> Option<String> {
    data.last()
        .and_then(|object| object.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Reads a page of listed events (newest first, as Stripe lists) oldest first, each with the
/// webhook's parser; an event whose object cannot be read keeps its identity and the error.
///
/// An event whose envelope (id, type, created) cannot be read cannot be stored or passed:
/// the whole page is [`GatewayError::Unexpected`].
pub(super) fn events(call: &str, data: Vec<Value>) -> Result<Vec<ListedEvent>, GatewayError> {
    data.into_iter()
        .rev()
        .map(|object| {
            let id = id_of(&object);
            let payload = serde_json::to_string(&object).map_err(|error| {
                GatewayError::Unexpected(Cause::context(format!("{call}: event {id}"), error))
            })?;
            let parsed = match parse_event(payload.as_bytes()) {
                Ok(event) => Ok(event),
                Err(error) => {
                    let envelope = peek_envelope(payload.as_bytes())
                        .map_err(|envelope| unexpected(call, &format!("event {id}: {envelope}")))?;
                    Err(UnreadableEvent {
                        id: envelope.id,
                        event_type: envelope.event_type,
                        api_version: envelope.api_version,
                        livemode: envelope.livemode,
                        created: envelope.created,
                        error: error.to_string(),
                    })
                }
            };
            Ok(ListedEvent { payload, parsed })
        })
        .collect()
}

/// Reads a subscription object with the same parser as `customer.subscription.*` webhooks,
/// so a fetched subscription of any API version gives the snapshot its event would.
///
/// The parser reads events, so the object is wrapped in a synthetic event envelope; errors
/// name the field relative to the subscription.
pub(super) fn subscription(
    call: &str,
    object: Value,
) -> Result<SubscriptionSnapshot, GatewayError> {
    let id = id_of(&object);
    let event = json!({
        "id": "evt_fetched_subscription",
        "object": "event",
        "type": "customer.subscription.updated",
        "created": 0,
        "livemode": false,
        "data": { "object": object },
    });
    let bytes = serde_json::to_vec(&event).map_err(|error| {
        GatewayError::Unexpected(Cause::context(format!("{call}: subscription {id}"), error))
    })?;
    let subject = format!("subscription {id}");
    match parse_event(&bytes) {
        Ok(event) => match event.fact {
            Fact::Subscription { subscription, .. } => Ok(subscription),
            _ => Err(unexpected(
                call,
                &format!("{subject}: not read as a subscription"),
            )),
        },
        Err(error) => Err(unexpected(
            call,
            &format!("{subject}: {}", wire_problem(&error)),
        )),
    }
}

/// A wire error, with paths relative to the object rather than the synthetic event.
fn wire_problem(error: &WireError) -> String {
    let relative = |field: &str| {
        field
            .strip_prefix("data.object.")
            .or_else(|| field.strip_prefix("data."))
            .unwrap_or(field)
            .to_owned()
    };
    match error {
        WireError::NotJson { message } => message.clone(),
        WireError::MissingField { field, .. } => {
            format!("required field `{}` is missing or null", relative(field))
        }
        WireError::InvalidField { field, message, .. } => {
            format!("field `{}` is invalid: {message}", relative(field))
        }
    }
}

/// `GatewayError::Unexpected` for the call `call`, caused by `problem` (found by our own
/// reading of the answer, so there is no underlying error).
pub(super) fn unexpected(call: &str, problem: &str) -> GatewayError {
    GatewayError::Unexpected(Cause::msg(format!("{call}: {problem}")))
}
