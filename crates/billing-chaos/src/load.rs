//! Realistic event loads built from the Stripe fixtures of `billing-stripe`: every customer
//! replays one purchase story (basil or pre-basil payloads) under fresh random Stripe-shaped
//! ids and shifted times, some cut short, some with a one-off payment-mode purchase refunded
//! afterwards, some with an event type we do not handle. Customers interleave at random,
//! neighbours swap (out-of-order delivery) and some events are delivered twice, byte for byte.

use std::collections::HashMap;
use std::path::PathBuf;

use bytes::Bytes;
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

use crate::error::{ChaosError, Result, io};
use crate::paths::workspace_root;

/// The fixture folders (API-version shapes).
pub const FOLDERS: &[&str] = &["basil", "pre-basil"];

/// Id prefixes renamed per customer (longest first); prices and products are the catalog's.
const RENAMED_PREFIXES: &[&str] = &[
    "cs_live_", "cs_test_", "evt_", "cus_", "sub_", "si_", "in_", "il_", "ii_", "pi_", "ch_",
    "re_", "du_", "dp_", "txn_", "pm_", "pmc_", "req_", "py_", "seti_", "src_", "card_",
];

/// The user id the fixtures are written for.
const FIXTURE_USER: &str = "user_123";

/// The fixture bodies, per folder, in `created` order.
#[derive(Debug, Clone)]
pub struct Fixtures {
    stories: Vec<(String, Vec<Value>)>,
}

fn fixtures_dir() -> PathBuf {
    workspace_root().join("crates/billing-stripe/tests/fixtures")
}

impl Fixtures {
    /// Reads `crates/billing-stripe/tests/fixtures/{basil,pre-basil}/*.json`.
    pub fn load() -> Result<Self> {
        let mut stories = Vec::new();
        for folder in FOLDERS {
            let dir = fixtures_dir().join(folder);
            let mut events = Vec::new();
            let entries = std::fs::read_dir(&dir).map_err(io(format!("read {}", dir.display())))?;
            for entry in entries {
                let path = entry.map_err(io(format!("list {}", dir.display())))?.path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let text = std::fs::read_to_string(&path)
                    .map_err(io(format!("read {}", path.display())))?;
                let value: Value =
                    serde_json::from_str(&text).map_err(|source| ChaosError::Json {
                        what: path.display().to_string(),
                        source,
                    })?;
                events.push(value);
            }
            events.sort_by_key(|e| (e["created"].as_i64().unwrap_or(0), e["type"].to_string()));
            if events.is_empty() {
                return Err(ChaosError::Setup(format!(
                    "no fixtures in {}",
                    dir.display()
                )));
            }
            stories.push(((*folder).to_owned(), events));
        }
        Ok(Self { stories })
    }

    /// Every fixture body.
    pub fn all(&self) -> impl Iterator<Item = &Value> {
        self.stories.iter().flat_map(|(_, events)| events.iter())
    }

    /// One folder's story in `created` order.
    pub fn story(&self, folder: &str) -> Option<&[Value]> {
        self.stories
            .iter()
            .find(|(f, _)| f == folder)
            .map(|(_, e)| e.as_slice())
    }

    /// The fixture of `event_type` in `folder`.
    pub fn get(&self, folder: &str, event_type: &str) -> Option<&Value> {
        self.story(folder)?
            .iter()
            .find(|e| e["type"].as_str() == Some(event_type))
    }
}

/// A random Stripe-shaped id: `prefix` followed by `len` alphanumerics.
pub fn stripe_id(rng: &mut impl Rng, prefix: &str, len: usize) -> String {
    let suffix: String = (0..len)
        .map(|_| char::from(rng.sample(rand::distr::Alphanumeric)))
        .collect();
    format!("{prefix}{suffix}")
}

/// Splits `value` into `(prefix, suffix)` when it is a renamed Stripe id.
fn as_renamed_id(value: &str) -> Option<(&'static str, &str)> {
    RENAMED_PREFIXES.iter().find_map(|prefix| {
        let suffix = value.strip_prefix(prefix)?;
        let shaped = suffix.len() >= 8
            && suffix.chars().all(|c| c.is_ascii_alphanumeric())
            && suffix
                .chars()
                .any(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
        shaped.then_some((*prefix, suffix))
    })
}

/// Renames ids consistently within one namespace (one customer, one purchase).
#[derive(Debug, Default)]
struct Renamer {
    map: HashMap<String, String>,
    user: String,
    shift: i64,
}

impl Renamer {
    fn apply(&mut self, rng: &mut impl Rng, value: &mut Value) {
        match value {
            Value::String(s) => {
                if s == FIXTURE_USER {
                    *s = self.user.clone();
                } else if s.ends_with("@example.com") {
                    *s = format!("{}@example.com", self.user.replace('_', "."));
                } else if let Some((prefix, suffix)) = as_renamed_id(s) {
                    let len = suffix.len();
                    let renamed = self
                        .map
                        .entry(s.clone())
                        .or_insert_with(|| stripe_id(rng, prefix, len))
                        .clone();
                    *s = renamed;
                }
            }
            Value::Number(n) => {
                if let Some(t) = n.as_i64()
                    && (1_500_000_000..2_100_000_000).contains(&t)
                {
                    *value = Value::from(t + self.shift);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.apply(rng, v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.apply(rng, v)),
            _ => {}
        }
    }
}

/// One distinct event of a load.
#[derive(Debug, Clone)]
pub struct Event {
    /// `evt_…`.
    pub id: String,
    /// Its `type`.
    pub event_type: String,
    /// The user the event belongs to.
    pub user: String,
    /// The exact body sent (pretty-printed, like Stripe's).
    pub body: Bytes,
}

/// A load: distinct events and the delivery sequence (indices into `events`, duplicates
/// included).
#[derive(Debug, Clone)]
pub struct Load {
    /// The distinct events.
    pub events: Vec<Event>,
    /// The delivery order; an index appearing twice is an exact duplicate delivery.
    pub deliveries: Vec<usize>,
    /// Every user of the load.
    pub users: Vec<String>,
}

fn to_event(value: &Value, user: &str) -> Event {
    Event {
        id: value["id"].as_str().unwrap_or_default().to_owned(),
        event_type: value["type"].as_str().unwrap_or_default().to_owned(),
        user: user.to_owned(),
        body: Bytes::from(serde_json::to_vec_pretty(value).unwrap_or_default()),
    }
}

/// A payment-mode purchase of the customer `base` names: Checkout, the payment, a refund.
fn one_off_purchase(
    rng: &mut impl Rng,
    fixtures: &Fixtures,
    folder: &str,
    base: &Renamer,
) -> Vec<Value> {
    let (Some(checkout), Some(paid), Some(refund)) = (
        fixtures.get(folder, "checkout.session.completed"),
        fixtures.get(folder, "payment_intent.succeeded"),
        fixtures.get(folder, "charge.refunded"),
    ) else {
        return Vec::new();
    };
    // Same customer and user, new ids for everything else, a few hours after sign-up.
    let customer: Vec<(String, String)> = base
        .map
        .iter()
        .filter(|(k, _)| k.starts_with("cus_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut renamer = Renamer {
        map: customer.into_iter().collect(),
        user: base.user.clone(),
        shift: base.shift + rng.random_range(3_600..20 * 3_600),
    };
    let amount = paid["data"]["object"]["amount"].as_i64().unwrap_or(1_900);
    let mut checkout = checkout.clone();
    {
        let session = &mut checkout["data"]["object"];
        session["mode"] = json!("payment");
        session["subscription"] = Value::Null;
        session["invoice"] = Value::Null;
        session["payment_intent"] = paid["data"]["object"]["id"].clone();
        session["amount_subtotal"] = json!(amount);
        session["amount_total"] = json!(amount);
        session["payment_status"] = json!("paid");
    }
    let mut paid = paid.clone();
    paid["data"]["object"]["invoice"] = Value::Null;
    paid["data"]["object"]["description"] = json!("One-off purchase");
    let mut refund = refund.clone();
    {
        let charge = &mut refund["data"]["object"];
        charge["payment_intent"] = paid["data"]["object"]["id"].clone();
        charge["id"] = paid["data"]["object"]["latest_charge"].clone();
        charge["invoice"] = Value::Null;
        charge["amount"] = json!(amount);
        charge["amount_captured"] = json!(amount);
        let full = rng.random_bool(0.5);
        let refunded = if full {
            amount
        } else {
            rng.random_range(1..amount)
        };
        charge["amount_refunded"] = json!(refunded);
        charge["refunded"] = json!(full);
    }
    // The payment lands a minute after Checkout, the refund days later.
    let mut story = vec![checkout, paid, refund];
    let checkout_created = story[0]["created"].as_i64().unwrap_or(0);
    story[1]["created"] = json!(checkout_created + 90);
    story[2]["created"] = json!(checkout_created + 3 * 86_400);
    for event in &mut story {
        renamer.apply(rng, event);
    }
    story
}

impl Load {
    /// A load of `customers` customers (about 16 events each) plus duplicates.
    pub fn generate(rng: &mut impl Rng, fixtures: &Fixtures, customers: usize) -> Self {
        let mut per_customer: Vec<Vec<Event>> = Vec::new();
        let mut users = Vec::new();
        for n in 0..customers {
            let folder = *FOLDERS.choose(rng).unwrap_or(&"basil");
            let Some(story) = fixtures.story(folder) else {
                continue;
            };
            let user = format!("user_{n:03}{}", stripe_id(rng, "", 9).to_lowercase());
            let mut renamer = Renamer {
                map: HashMap::new(),
                user: user.clone(),
                shift: -rng.random_range(10..200) * 86_400 + rng.random_range(0..86_400),
            };
            let length = if rng.random_bool(0.5) {
                story.len()
            } else {
                rng.random_range(3..story.len())
            };
            let mut values: Vec<Value> = story[..length].to_vec();
            for value in &mut values {
                renamer.apply(rng, value);
            }
            if rng.random_bool(0.3) {
                values.extend(one_off_purchase(rng, fixtures, folder, &renamer));
            }
            if rng.random_bool(0.2)
                && let Some(invoice) = fixtures.get(folder, "invoice.paid")
            {
                let mut other = invoice.clone();
                other["type"] = json!("invoice.finalized");
                other["data"]["object"]["status"] = json!("open");
                renamer.apply(rng, &mut other);
                other["id"] = json!(stripe_id(rng, "evt_1", 23));
                values.push(other);
            }
            values.sort_by_key(|v| v["created"].as_i64().unwrap_or(0));
            let mut events: Vec<Event> = values.iter().map(|v| to_event(v, &user)).collect();
            // Out-of-order delivery: some neighbours swap.
            for i in 1..events.len() {
                if rng.random_bool(0.15) {
                    events.swap(i - 1, i);
                }
            }
            per_customer.push(events);
            users.push(user);
        }
        // Interleave customers at random, keeping each customer's (shuffled) sequence.
        let mut cursors: Vec<usize> = vec![0; per_customer.len()];
        let mut events = Vec::new();
        loop {
            let open: Vec<usize> = (0..per_customer.len())
                .filter(|&c| cursors[c] < per_customer[c].len())
                .collect();
            let Some(&c) = open.choose(rng) else { break };
            events.push(per_customer[c][cursors[c]].clone());
            cursors[c] += 1;
        }
        let mut deliveries: Vec<usize> = (0..events.len()).collect();
        for index in 0..events.len() {
            if rng.random_bool(0.15) {
                let at = deliveries.iter().position(|&d| d == index).unwrap_or(0);
                let position = if rng.random_bool(0.5) {
                    at + 1
                } else {
                    rng.random_range(at + 1..=deliveries.len())
                };
                deliveries.insert(position.min(deliveries.len()), index);
            }
        }
        Self {
            events,
            deliveries,
            users,
        }
    }

    /// Index of each event by id.
    pub fn index(&self) -> HashMap<&str, usize> {
        self.events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.as_str(), i))
            .collect()
    }

    /// How many deliveries are exact duplicates.
    pub fn duplicates(&self) -> usize {
        self.deliveries.len() - self.events.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_load_renames_every_id_per_customer_and_keeps_each_story_whole() {
        let fixtures = Fixtures::load().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let load = Load::generate(&mut rng, &fixtures, 6);
        let ids: HashSet<&str> = load.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), load.events.len(), "event ids are unique");
        assert!(load.deliveries.len() > load.events.len(), "some duplicates");
        let fixture_text: String = fixtures.all().map(|v| v.to_string()).collect();
        let mut customer_of_user: HashMap<String, HashSet<String>> = HashMap::new();
        for event in &load.events {
            let value: Value = serde_json::from_slice(&event.body).unwrap();
            assert!(
                !fixture_text.contains(event.id.as_str()),
                "fixture id kept: {}",
                event.id
            );
            assert!(!value.to_string().contains(FIXTURE_USER));
            if let Some(customer) = value["data"]["object"]["customer"].as_str() {
                customer_of_user
                    .entry(event.user.clone())
                    .or_default()
                    .insert(customer.to_owned());
            }
        }
        // One customer per user: the one-off purchase reuses the story's customer.
        assert!(
            customer_of_user.values().all(|c| c.len() == 1),
            "{customer_of_user:?}"
        );
        assert_eq!(customer_of_user.len(), 6);
    }

    #[test]
    fn only_stripe_shaped_ids_are_renamed() {
        assert_eq!(
            as_renamed_id("cus_pT1rWkhYJIcKoB"),
            Some(("cus_", "pT1rWkhYJIcKoB"))
        );
        assert!(as_renamed_id("cs_live_a1M5EEj9DyZuQDOez").is_some_and(|(p, _)| p == "cs_live_"));
        assert_eq!(as_renamed_id("price_pro_monthly"), None);
        assert_eq!(as_renamed_id("in_progress"), None);
        assert_eq!(as_renamed_id("sub_"), None);
    }
}
