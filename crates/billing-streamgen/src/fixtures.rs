//! The adapter's fixture bodies (`billing-stripe/tests/fixtures/{basil,pre-basil}`, linked into
//! this crate as `fixtures` so they are packaged with it), used as
//! templates: every generated body is a fixture with its ids, amounts, times and states
//! replaced, so it has exactly the fixtures' shape.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::Shape;

macro_rules! fixtures_of {
    ($folder:literal: $($name:literal),+ $(,)?) => {
        [$(($name, include_str!(concat!(
            "../fixtures/", $folder, "/", $name, ".json"
        )))),+]
    };
}

macro_rules! every_type {
    ($folder:literal) => {
        fixtures_of!($folder:
            "customer.created",
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.paused",
            "customer.subscription.resumed",
            "customer.subscription.trial_will_end",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "checkout.session.completed",
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "charge.refunded",
            "charge.dispute.created",
            "charge.dispute.closed",
        )
    };
}

/// The fixture's ids by the role they play in its story.
#[derive(Debug, Clone)]
pub struct FixtureIds {
    /// The customer every fixture is about.
    pub customer: String,
    /// The subscription of the subscription and invoice fixtures.
    pub subscription: String,
    /// That subscription's item.
    pub item: String,
    /// The subscription's first invoice (its `latest_invoice` when created).
    pub first_invoice: String,
    /// The invoice of the invoice fixtures.
    pub invoice: String,
    /// That invoice's first line.
    pub line: String,
    /// The payment intent of the payment fixtures.
    pub payment_intent: String,
    /// That payment intent's successful charge.
    pub charge: String,
    /// The charge of the failed payment fixture.
    pub failed_charge: String,
    /// The Checkout Session of the checkout fixture.
    pub checkout_session: String,
    /// The dispute of the dispute fixtures.
    pub dispute: String,
    /// The charge it disputes.
    pub dispute_charge: String,
    /// That charge's payment intent.
    pub dispute_payment_intent: String,
    /// The customer's email address.
    pub email: String,
    /// The customer's name.
    pub name: String,
    /// Every other object id in the fixtures (payment methods, balance transactions,
    /// requests, refunds…): replaced by fresh ids of the same prefix, per customer.
    pub others: Vec<String>,
}

/// The templates of one shape.
#[derive(Debug)]
pub struct Templates {
    /// The API version shape of these fixtures.
    pub shape: Shape,
    by_type: BTreeMap<&'static str, Value>,
    /// The fixtures' ids, replaced in every rendered body.
    pub ids: FixtureIds,
    /// `eur` (basil, live mode) or `usd` (pre-basil, test mode).
    pub currency: String,
    /// Whether the fixtures' account is in live mode.
    pub livemode: bool,
}

/// Prefixes of the object ids that are renamed per customer. Products, prices and the
/// payment-method configuration are the account's own and stay.
const RENAMED_PREFIXES: [&str; 14] = [
    "evt_", "cus_", "sub_", "si_", "in_", "il_", "pi_", "ch_", "pm_", "cs_", "txn_", "req_", "re_",
    "du_",
];

impl Templates {
    /// Loads the fixtures of `shape`.
    pub fn load(shape: Shape) -> Self {
        let sources: Vec<(&'static str, &'static str)> = match shape {
            Shape::Basil => every_type!("basil").to_vec(),
            Shape::PreBasil => every_type!("pre-basil").to_vec(),
        };
        let by_type: BTreeMap<_, _> = sources
            .into_iter()
            .map(|(name, text)| {
                let value: Value = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("fixture {name} is not JSON: {e}"));
                assert_eq!(value["type"], name, "fixture {name} has another type");
                (name, value)
            })
            .collect();
        let object = |name: &str| &by_type[name]["data"]["object"];
        let text = |v: &Value| {
            v.as_str()
                .unwrap_or_else(|| panic!("fixture field {v} is not a string"))
                .to_owned()
        };
        let mut ids = FixtureIds {
            customer: text(&object("customer.created")["id"]),
            subscription: text(&object("customer.subscription.created")["id"]),
            item: text(&object("customer.subscription.created")["items"]["data"][0]["id"]),
            first_invoice: text(&object("customer.subscription.created")["latest_invoice"]),
            invoice: text(&object("invoice.paid")["id"]),
            line: text(&object("invoice.paid")["lines"]["data"][0]["id"]),
            payment_intent: text(&object("payment_intent.succeeded")["id"]),
            charge: text(&object("payment_intent.succeeded")["latest_charge"]),
            failed_charge: text(
                &object("payment_intent.payment_failed")["last_payment_error"]["charge"],
            ),
            checkout_session: text(&object("checkout.session.completed")["id"]),
            dispute: text(&object("charge.dispute.created")["id"]),
            dispute_charge: text(&object("charge.dispute.created")["charge"]),
            dispute_payment_intent: text(&object("charge.dispute.created")["payment_intent"]),
            email: text(&object("customer.created")["email"]),
            name: text(&object("customer.created")["name"]),
            others: Vec::new(),
        };
        let known = [
            &ids.customer,
            &ids.subscription,
            &ids.item,
            &ids.first_invoice,
            &ids.invoice,
            &ids.line,
            &ids.payment_intent,
            &ids.charge,
            &ids.failed_charge,
            &ids.checkout_session,
            &ids.dispute,
            &ids.dispute_charge,
            &ids.dispute_payment_intent,
        ]
        .map(String::clone);
        let mut others = std::collections::BTreeSet::new();
        for value in by_type.values() {
            collect_ids(value, &mut others);
        }
        ids.others = others
            .into_iter()
            .filter(|id| !known.contains(id))
            .collect();
        let currency = text(&object("invoice.paid")["currency"]);
        let livemode = by_type["customer.created"]["livemode"] == Value::Bool(true);
        Self {
            shape,
            by_type,
            ids,
            currency,
            livemode,
        }
    }

    /// A fresh copy of the fixture of `event_type`.
    pub fn body(&self, event_type: &str) -> Value {
        self.by_type
            .get(event_type)
            .unwrap_or_else(|| panic!("no {} fixture for {event_type}", self.shape.folder()))
            .clone()
    }

    /// Every id the fixtures carry that a generated body must not (they are replaced).
    pub fn all_ids(&self) -> Vec<String> {
        let ids = &self.ids;
        let mut all = vec![
            ids.customer.clone(),
            ids.subscription.clone(),
            ids.item.clone(),
            ids.first_invoice.clone(),
            ids.invoice.clone(),
            ids.line.clone(),
            ids.payment_intent.clone(),
            ids.charge.clone(),
            ids.failed_charge.clone(),
            ids.checkout_session.clone(),
            ids.dispute.clone(),
            ids.dispute_charge.clone(),
            ids.dispute_payment_intent.clone(),
            ids.email.clone(),
        ];
        all.extend(ids.others.iter().cloned());
        all
    }
}

/// The object ids (values of `id` and of reference fields) of a fixture.
fn collect_ids(value: &Value, into: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                // Object ids: a renamed prefix, no spaces, no URL; client secrets are built
                // from their payment intent's id and set by the renderer.
                if let Value::String(s) = v
                    && !key.ends_with("url")
                    && RENAMED_PREFIXES.iter().any(|p| s.starts_with(p))
                    && s.len() > 12
                    && !s.contains(' ')
                    && !s.contains("_secret_")
                {
                    into.insert(s.clone());
                }
                collect_ids(v, into);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_ids(v, into)),
        _ => {}
    }
}
