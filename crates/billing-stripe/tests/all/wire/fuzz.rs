//! `parse_event` and `peek_envelope` never panic: not on arbitrary bytes, not on byte-level
//! corruptions of the fixtures, not on structural mutations of them.

use billing_stripe::{EventEnvelope, parse_event, peek_envelope};
use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::wire::story::{FOLDERS, bytes, fixture, fixture_names};

/// Every `(folder, fixture name)`, in the story folders and `real-world/`.
fn all_fixtures() -> Vec<(&'static str, String)> {
    FOLDERS
        .iter()
        .flat_map(|&folder| {
            fixture_names(folder)
                .into_iter()
                .map(move |name| (folder, name))
        })
        .collect()
}

fn any_fixture() -> impl Strategy<Value = Value> {
    proptest::sample::select(all_fixtures())
        .prop_map(|(folder, name)| serde_json::from_slice(&fixture(folder, &name)).unwrap())
}

/// Arbitrary JSON values, biased towards the kinds Stripe fields have.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z_]{0,12}".prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One edit somewhere in a JSON tree.
#[derive(Debug, Clone)]
enum Edit {
    Replace(Value),
    Remove,
    Null,
}

fn any_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any_json().prop_map(Edit::Replace),
        Just(Edit::Remove),
        Just(Edit::Null),
    ]
}

/// Applies `edit` to the `target`-th node (pre-order, modulo the node count) of `value`.
fn apply(value: &mut Value, target: usize, edit: &Edit) {
    let count = count_nodes(value);
    let mut index = target % count;
    visit(value, &mut index, edit);
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Returns true once the edit is applied.
fn visit(value: &mut Value, index: &mut usize, edit: &Edit) -> bool {
    if *index == 0 {
        match edit {
            Edit::Replace(new) => *value = new.clone(),
            Edit::Null | Edit::Remove => *value = Value::Null,
        }
        return true;
    }
    *index -= 1;
    match value {
        Value::Array(items) => {
            for position in 0..items.len() {
                if *index == 0 && matches!(edit, Edit::Remove) {
                    items.remove(position);
                    return true;
                }
                if visit(&mut items[position], index, edit) {
                    return true;
                }
            }
        }
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if *index == 0 && matches!(edit, Edit::Remove) {
                    map.remove(&key);
                    return true;
                }
                if let Some(child) = map.get_mut(&key)
                    && visit(child, index, edit)
                {
                    return true;
                }
            }
        }
        _ => {}
    }
    false
}

/// Whatever the outcome, parsing and peeking agree on the envelope.
fn check(body: &[u8]) {
    let parsed = parse_event(body);
    let peeked = peek_envelope(body);
    if let Ok(event) = parsed {
        assert_eq!(
            peeked,
            Ok(EventEnvelope {
                id: event.id,
                event_type: event.event_type,
                api_version: event.api_version,
                livemode: event.livemode,
                created: event.created,
            })
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&body);
    }

    #[test]
    fn arbitrary_json_never_panics(value in any_json()) {
        check(&bytes(&value));
    }

    #[test]
    fn corrupted_fixture_bytes_never_panic(
        fixture in any_fixture(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut body = bytes(&fixture);
        for (position, byte) in flips {
            let at = position.index(body.len());
            body[at] = byte;
        }
        check(&body);
    }

    #[test]
    fn truncated_fixtures_never_panic(fixture in any_fixture(), cut in any::<prop::sample::Index>()) {
        let body = bytes(&fixture);
        check(&body[..cut.index(body.len())]);
    }

    #[test]
    fn structurally_mutated_fixtures_never_panic(
        fixture in any_fixture(),
        edits in prop::collection::vec((any::<usize>(), any_edit()), 1..4),
    ) {
        let mut value = fixture;
        for (target, edit) in &edits {
            apply(&mut value, *target, edit);
        }
        check(&bytes(&value));
    }
}
