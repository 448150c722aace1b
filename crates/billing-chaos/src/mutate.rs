//! Structured mutations for fuzzing: edits of real event bodies (a field removed, nulled,
//! retyped, or given an extreme value; the type swapped), byte-level corruption, and edits of
//! `Stripe-Signature` headers. Seeded, so a failing case can be replayed.

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value, json};

/// Keys whose values the parser and the effects look at; edits favour them.
const INTERESTING_KEYS: &[&str] = &[
    "id",
    "type",
    "object",
    "created",
    "api_version",
    "livemode",
    "data",
    "customer",
    "subscription",
    "status",
    "items",
    "price",
    "current_period_start",
    "current_period_end",
    "amount",
    "amount_paid",
    "amount_due",
    "amount_total",
    "amount_refunded",
    "currency",
    "metadata",
    "user_id",
    "client_reference_id",
    "mode",
    "payment_intent",
    "payment_status",
    "trial_end",
    "cancel_at_period_end",
    "canceled_at",
    "lines",
    "period",
    "parent",
    "subscription_details",
    "billing_reason",
    "charge",
    "refunds",
    "email",
    "deleted",
    "latest_charge",
    "last_payment_error",
];

/// Values that break naive code.
fn extreme_value(rng: &mut impl Rng) -> Value {
    let long = "x".repeat(rng.random_range(300..5_000));
    let choices = [
        Value::Null,
        json!(""),
        json!(" "),
        json!("null"),
        json!(0),
        json!(-1),
        json!(1),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1e308),
        json!(-0.5),
        json!(253_402_300_800_i64),
        json!(-62_135_596_801_i64),
        json!("1788252067"),
        json!(true),
        json!([]),
        json!({}),
        json!(long),
        json!("💳 carte bleue"),
        json!("\u{0}"),
        json!("a\u{0}b"),
        json!("\u{202e}reversed"),
        json!("EURO"),
        json!("usd "),
        json!("Active"),
        json!("unknown_future_status"),
        json!("cus_"),
        json!("sub_ "),
        json!("customer.subscription.updated"),
        json!("invoice.paid"),
        json!("charge.refunded"),
        json!("checkout.session.completed"),
        json!({"id": "cus_NotAString", "object": "customer", "deleted": true}),
        json!([{"id": "si_x"}]),
    ];
    choices.choose(rng).cloned().unwrap_or(Value::Null)
}

/// A random JSON value of bounded size.
pub fn random_json(rng: &mut impl Rng, depth: u32) -> Value {
    match rng.random_range(0..if depth == 0 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => Value::from(rng.random::<i64>()),
        3 => Value::from(rng.random::<f64>() * 1e12),
        4 => Value::from(
            (0..rng.random_range(0..12))
                .map(|_| rng.random_range(' '..='~'))
                .collect::<String>(),
        ),
        5 => extreme_value(rng),
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.random_range(0..4))
                .map(|_| {
                    let key = (*INTERESTING_KEYS.choose(rng).unwrap_or(&"id")).to_owned();
                    (key, random_json(rng, depth - 1))
                })
                .collect::<Map<_, _>>(),
        ),
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every node's path, with the key it sits under.
fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, Option<String>)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(Step::Key(key.clone()));
                out.push((prefix.clone(), Some(key.clone())));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                out.push((prefix.clone(), None));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |node, step| match step {
        Step::Key(k) => node.get_mut(k.as_str()),
        Step::Index(i) => node.get_mut(*i),
    })
}

/// Applies one to four structural edits to `value` (an event body).
pub fn mutate_json(rng: &mut impl Rng, value: &mut Value) {
    for _ in 0..rng.random_range(1..=4) {
        let mut all = Vec::new();
        paths(value, &mut Vec::new(), &mut all);
        if all.is_empty() {
            *value = random_json(rng, 3);
            return;
        }
        let interesting: Vec<&(Vec<Step>, Option<String>)> = all
            .iter()
            .filter(|(_, key)| {
                key.as_deref()
                    .is_some_and(|k| INTERESTING_KEYS.contains(&k))
            })
            .collect();
        let (path, _) = if !interesting.is_empty() && rng.random_bool(0.7) {
            (*interesting.choose(rng).unwrap_or(&&all[0])).clone()
        } else {
            all.choose(rng).cloned().unwrap_or_else(|| all[0].clone())
        };
        let Some((last, parent_path)) = path.split_last() else {
            continue;
        };
        match rng.random_range(0..7) {
            // Remove the field / element.
            0 => {
                if let Some(parent) = node_mut(value, parent_path) {
                    match (parent, last) {
                        (Value::Object(map), Step::Key(k)) => {
                            map.remove(k);
                        }
                        (Value::Array(items), Step::Index(i)) if *i < items.len() => {
                            items.remove(*i);
                        }
                        _ => {}
                    }
                }
            }
            // An extreme value.
            1 | 2 => {
                let new = extreme_value(rng);
                if let Some(node) = node_mut(value, &path) {
                    *node = new;
                }
            }
            // A random value.
            3 => {
                let new = random_json(rng, 2);
                if let Some(node) = node_mut(value, &path) {
                    *node = new;
                }
            }
            // The same value with another JSON type.
            4 => {
                if let Some(node) = node_mut(value, &path) {
                    *node = match node.take() {
                        Value::String(s) => s.parse::<i64>().map_or(json!([s]), Value::from),
                        Value::Number(n) => Value::String(n.to_string()),
                        Value::Bool(b) => Value::String(b.to_string()),
                        Value::Null => json!({}),
                        Value::Array(items) => items.into_iter().next().unwrap_or(Value::Null),
                        Value::Object(map) => {
                            Value::Array(map.into_iter().map(|(_, v)| v).collect())
                        }
                    };
                }
            }
            // A number nudged across a boundary.
            5 => {
                if let Some(node) = node_mut(value, &path)
                    && let Some(n) = node.as_i64()
                {
                    let delta = *[
                        -1_i64,
                        1,
                        n.saturating_neg(),
                        n,
                        -86_400,
                        86_400 * 365 * 100,
                    ]
                    .choose(rng)
                    .unwrap_or(&1);
                    *node = Value::from(n.saturating_add(delta));
                }
            }
            // Wrapped in a deep nest.
            _ => {
                if let Some(node) = node_mut(value, &path) {
                    let mut nested = node.take();
                    for _ in 0..rng.random_range(1..200) {
                        nested = json!([nested]);
                    }
                    *node = nested;
                }
            }
        }
    }
}

/// Corrupts a body's bytes: flips, truncation, invalid UTF-8, a byte order mark.
pub fn corrupt_bytes(rng: &mut impl Rng, body: &mut Vec<u8>) {
    match rng.random_range(0..5) {
        0 => {
            for _ in 0..rng.random_range(1..8) {
                if !body.is_empty() {
                    let at = rng.random_range(0..body.len());
                    body[at] = rng.random();
                }
            }
        }
        1 => {
            let keep = rng.random_range(0..=body.len());
            body.truncate(keep);
        }
        2 => {
            let at = rng.random_range(0..=body.len());
            let bad: &[u8] = [
                &[0xff_u8, 0xfe][..],
                &[0xc3, 0x28],
                &[0xed, 0xa0, 0x80],
                &[0x80],
            ]
            .choose(rng)
            .copied()
            .unwrap_or(&[0xff]);
            body.splice(at..at, bad.iter().copied());
        }
        3 => {
            body.splice(0..0, [0xef, 0xbb, 0xbf]);
        }
        _ => {
            let at = rng.random_range(0..=body.len());
            let junk: &[u8] = [&b"}"[..], b"{", b",", b"\"", b"\\", b"\0", b"]]]]"]
                .choose(rng)
                .copied()
                .unwrap_or(b"}");
            body.splice(at..at, junk.iter().copied());
        }
    }
}

/// Tokens that matter to the header parser.
const HEADER_TOKENS: &[&str] = &[
    ",",
    "=",
    "t=",
    "v1=",
    ",v1=",
    ",t=",
    "v0=",
    "==",
    ",,",
    " ",
    "\t",
    "00",
    "NaN",
    "1e9",
    "-1",
    "+1",
    "_",
    "T=",
    "V1=",
    "é",
    "\u{a0}",
    "99999999999999999999",
];

/// One to four edits of a valid `Stripe-Signature` header; the result is always a value
/// HTTP can carry (visible ASCII, space, tab, or bytes ≥ 0x80).
pub fn mutate_header(rng: &mut impl Rng, valid: &str) -> Vec<u8> {
    let mut header: Vec<u8> = valid.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = header.len();
        match rng.random_range(0..7) {
            0 => {
                let at = rng.random_range(0..=len);
                let token = HEADER_TOKENS.choose(rng).unwrap_or(&",");
                header.splice(at..at, token.bytes());
            }
            1 if len > 0 => {
                let at = rng.random_range(0..len);
                let end = (at + rng.random_range(1..8)).min(len);
                header.drain(at..end);
            }
            2 if len > 0 => {
                let at = rng.random_range(0..len);
                header[at] = match rng.random_range(0..3) {
                    0 => rng.random_range(b' '..=b'~'),
                    1 => rng.random_range(0x80..=0xff),
                    _ => b'\t',
                };
            }
            3 => {
                let text = String::from_utf8_lossy(&header).into_owned();
                let items: Vec<&str> = text.split(',').collect();
                let item = items.choose(rng).copied().unwrap_or("");
                header = format!("{text},{item}").into_bytes();
            }
            4 => {
                let t = [
                    "0",
                    "-1",
                    "9223372036854775807",
                    "-9223372036854775808",
                    "1",
                    "",
                    "17e8",
                ]
                .choose(rng)
                .copied()
                .unwrap_or("0");
                let text = String::from_utf8_lossy(&header).into_owned();
                header = match text.split_once(',') {
                    Some((_, rest)) => format!("t={t},{rest}").into_bytes(),
                    None => format!("t={t}").into_bytes(),
                };
            }
            5 => header.truncate(rng.random_range(0..=len)),
            _ => header.extend(std::iter::repeat_n(b'a', rng.random_range(1..9_000))),
        }
    }
    header
}
