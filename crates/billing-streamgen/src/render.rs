//! Intents → webhook bodies. Each body is the fixture of its event type and shape with the
//! fixture's ids renamed everywhere (to this event's objects, or to the customer's own ids for
//! incidental objects such as payment methods), then every field the parser reads, and the
//! fields that must agree with them, set from the intent.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use crate::fixtures::{FixtureIds, Templates};
use crate::ids::{IdMaker, alphanumeric};
use crate::model::{
    ChargeObj, CheckoutMode, CheckoutObj, CustomerObj, DisputeObj, Intent, InvoiceObj, LineObj,
    PaymentIntentObj, Shape, SubscriptionObj,
};
use crate::prices::Price;

/// Renders bodies of both shapes.
#[derive(Debug)]
pub struct Renderer {
    basil: Templates,
    pre_basil: Templates,
    /// Product ids per shape and product name (the account's products).
    products: BTreeMap<(&'static str, &'static str), String>,
}

/// Replacements of fixture strings that hold for all of one customer's events (its email and
/// name, its payment method, incidental ids).
#[derive(Debug, Clone)]
pub struct CustomerRenames(Vec<(String, String)>);

impl CustomerRenames {
    /// Fresh ids for every incidental fixture id, and the customer's email and name.
    pub fn new(
        rng: &mut StdRng,
        ids: &mut IdMaker,
        templates: &Templates,
        customer: &CustomerObj,
    ) -> Self {
        let fixture = &templates.ids;
        let mut pairs = vec![
            (fixture.email.clone(), customer.email.clone()),
            (fixture.name.clone(), customer.name.clone()),
        ];
        for other in &fixture.others {
            let prefix = other.split('_').next().unwrap_or("obj");
            let fresh = match prefix {
                "req" => ids.short(rng, prefix),
                _ => ids.long(rng, prefix),
            };
            pairs.push((other.clone(), fresh));
        }
        Self(pairs)
    }
}

impl Renderer {
    /// Loads both shapes' fixtures; product ids are drawn from `rng`.
    pub fn new(rng: &mut StdRng) -> Self {
        let mut products = BTreeMap::new();
        for shape in [Shape::Basil, Shape::PreBasil] {
            for name in ["Pro", "Enterprise"] {
                products.insert(
                    (shape.folder(), name),
                    format!("prod_{}", alphanumeric(rng, 14)),
                );
            }
        }
        Self {
            basil: Templates::load(Shape::Basil),
            pre_basil: Templates::load(Shape::PreBasil),
            products,
        }
    }

    /// Adds the account's product named `name` (a [`Price::product_name`] other than `Pro`
    /// and `Enterprise`, e.g. a catalog's own tier), with fresh ids; a known name is kept.
    pub fn add_product(&mut self, rng: &mut StdRng, name: &'static str) {
        for shape in [Shape::Basil, Shape::PreBasil] {
            self.products
                .entry((shape.folder(), name))
                .or_insert_with(|| format!("prod_{}", alphanumeric(rng, 14)));
        }
    }

    /// The templates of `shape`.
    pub fn templates(&self, shape: Shape) -> &Templates {
        match shape {
            Shape::Basil => &self.basil,
            Shape::PreBasil => &self.pre_basil,
        }
    }

    fn product(&self, shape: Shape, price: &Price) -> &str {
        &self.products[&(shape.folder(), price.product_name)]
    }

    /// The body of event `id`, created at `created`, saying `intent`.
    pub fn render(
        &self,
        rng: &mut StdRng,
        shape: Shape,
        renames: &CustomerRenames,
        id: &str,
        created: i64,
        intent: &Intent,
    ) -> String {
        let t = self.templates(shape);
        let mut body = t.body(intent.event_type());
        let roles = role_renames(&t.ids, intent);
        rename(&mut body, &roles, &renames.0);
        set(&mut body, "/id", id);
        set(&mut body, "/created", created);
        let object = body
            .pointer_mut("/data/object")
            .unwrap_or_else(|| panic!("fixture has no data.object"));
        match intent {
            Intent::Customer(c) => {
                fill_customer(object, c);
                if body["request"]["id"].is_string() {
                    set(
                        &mut body,
                        "/request/id",
                        format!("req_{}", alphanumeric(rng, 14)),
                    );
                    set(&mut body, "/request/idempotency_key", idempotency_key(rng));
                }
            }
            Intent::Subscription { now, before, .. } => {
                self.fill_subscription(object, shape, now);
                if let Some(before) = before
                    && body["data"].get("previous_attributes").is_some()
                {
                    let mut old = t.body(intent.event_type())["data"]["object"].clone();
                    rename(&mut old, &roles, &renames.0);
                    self.fill_subscription(&mut old, shape, before);
                    let previous = previous_attributes(&old, &body["data"]["object"]);
                    set(&mut body, "/data/previous_attributes", previous);
                }
            }
            Intent::Invoice { invoice, .. } => self.fill_invoice(object, shape, t, invoice),
            Intent::Checkout(c) => fill_checkout(object, c),
            Intent::Payment(pi) => fill_payment_intent(rng, object, shape, pi),
            Intent::ChargeRefunded(ch) => {
                fill_charge(object, shape, ch);
                set(
                    &mut body,
                    "/data/previous_attributes/amount_refunded",
                    ch.previous_refunded,
                );
            }
            Intent::Dispute { dispute, .. } => fill_dispute(object, dispute),
        }
        serde_json::to_string_pretty(&body).unwrap_or_else(|e| panic!("render: {e}"))
    }

    fn fill_subscription(&self, o: &mut Value, shape: Shape, s: &SubscriptionObj) {
        let product = self.product(shape, s.price).to_owned();
        set(o, "/id", s.id.as_str());
        set(o, "/customer", s.customer.as_str());
        set(o, "/status", s.status.as_str());
        set(o, "/created", s.created);
        set(o, "/start_date", s.created);
        set(o, "/billing_cycle_anchor", s.billing_cycle_anchor);
        set(o, "/cancel_at_period_end", s.cancel_at_period_end);
        set(o, "/cancel_at", opt(s.cancel_at));
        set(o, "/canceled_at", opt(s.canceled_at));
        set(o, "/ended_at", opt(s.ended_at));
        set(o, "/trial_start", opt(s.trial.map(|t| t.0)));
        set(o, "/trial_end", opt(s.trial.map(|t| t.1)));
        set(
            o,
            "/latest_invoice",
            s.latest_invoice.as_deref().map_or(Value::Null, Value::from),
        );
        set(o, "/metadata", json!({ "user_id": s.user }));
        set(
            o,
            "/cancellation_details/reason",
            s.cancellation_reason.map_or(Value::Null, Value::from),
        );
        set(o, "/cancellation_details/comment", Value::Null);
        set(o, "/items/data/0/id", s.item.as_str());
        set(o, "/items/data/0/subscription", s.id.as_str());
        set(o, "/items/data/0/created", s.created);
        set(
            o,
            "/items/url",
            format!("/v1/subscription_items?subscription={}", s.id),
        );
        let currency = o["currency"].as_str().unwrap_or("usd").to_owned();
        fill_price(
            &mut o["items"]["data"][0]["price"],
            s.price,
            &currency,
            &product,
        );
        fill_plan(
            &mut o["items"]["data"][0]["plan"],
            s.price,
            &currency,
            &product,
        );
        fill_plan(&mut o["plan"], s.price, &currency, &product);
        match shape {
            Shape::Basil => {
                set(o, "/items/data/0/current_period_start", s.period.0);
                set(o, "/items/data/0/current_period_end", s.period.1);
            }
            Shape::PreBasil => {
                set(o, "/current_period_start", s.period.0);
                set(o, "/current_period_end", s.period.1);
            }
        }
    }

    fn fill_invoice(&self, o: &mut Value, shape: Shape, t: &Templates, inv: &InvoiceObj) {
        let total: i64 = inv.lines.iter().map(|l| l.amount).sum();
        set(o, "/id", inv.id.as_str());
        set(o, "/customer", inv.customer.as_str());
        set(o, "/status", if inv.paid { "paid" } else { "open" });
        set(o, "/billing_reason", inv.billing_reason);
        set(o, "/amount_due", inv.amount_due);
        set(o, "/amount_paid", inv.amount_paid);
        set(o, "/amount_remaining", inv.amount_due - inv.amount_paid);
        set(o, "/attempt_count", inv.attempt_count);
        set(o, "/attempted", inv.attempt_count > 0);
        set(o, "/auto_advance", !inv.paid);
        set(o, "/created", inv.created);
        set(o, "/effective_at", inv.created + 1);
        set(o, "/webhooks_delivered_at", inv.created + 1);
        set(o, "/period_start", inv.period.0);
        set(o, "/period_end", inv.period.1);
        set(o, "/next_payment_attempt", opt(inv.next_payment_attempt));
        set(o, "/number", inv.number.as_str());
        set(o, "/subtotal", total);
        set(o, "/subtotal_excluding_tax", total);
        set(o, "/total", total);
        set(o, "/total_excluding_tax", total);
        set(o, "/starting_balance", 0);
        set(o, "/ending_balance", total.min(0));
        set(o, "/status_transitions/finalized_at", inv.created + 1);
        set(o, "/status_transitions/paid_at", opt(inv.paid_at));
        let currency = t.currency.clone();
        let template_line = o["lines"]["data"][0].clone();
        let lines: Vec<Value> = inv
            .lines
            .iter()
            .map(|line| self.line(template_line.clone(), shape, &currency, inv, line))
            .collect();
        set(o, "/lines/total_count", lines.len());
        set(o, "/lines/data", Value::Array(lines));
        set(o, "/lines/url", format!("/v1/invoices/{}/lines", inv.id));
        match shape {
            Shape::Basil => {
                set(
                    o,
                    "/parent/subscription_details/subscription",
                    inv.subscription.as_str(),
                );
                set(
                    o,
                    "/parent/subscription_details/metadata",
                    json!({ "user_id": inv.user }),
                );
            }
            Shape::PreBasil => {
                set(o, "/subscription", inv.subscription.as_str());
                set(
                    o,
                    "/subscription_details/metadata",
                    json!({ "user_id": inv.user }),
                );
                set(o, "/paid", inv.paid);
                set(
                    o,
                    "/charge",
                    inv.charge.as_deref().map_or(Value::Null, Value::from),
                );
                set(
                    o,
                    "/payment_intent",
                    inv.payment_intent
                        .as_deref()
                        .map_or(Value::Null, Value::from),
                );
            }
        }
    }

    fn line(
        &self,
        mut l: Value,
        shape: Shape,
        currency: &str,
        inv: &InvoiceObj,
        line: &LineObj,
    ) -> Value {
        let product = self.product(shape, line.price).to_owned();
        set(&mut l, "/id", line.id.as_str());
        set(&mut l, "/amount", line.amount);
        set(&mut l, "/description", line.description.as_str());
        set(&mut l, "/invoice", inv.id.as_str());
        set(&mut l, "/period/start", line.period.0);
        set(&mut l, "/period/end", line.period.1);
        match shape {
            Shape::Basil => {
                let details = "/parent/subscription_item_details";
                set(&mut l, &format!("{details}/proration"), line.proration);
                set(
                    &mut l,
                    &format!("{details}/subscription"),
                    inv.subscription.as_str(),
                );
                set(
                    &mut l,
                    &format!("{details}/subscription_item"),
                    inv.item.as_str(),
                );
                set(
                    &mut l,
                    &format!("{details}/invoice_item"),
                    line.invoice_item
                        .as_deref()
                        .map_or(Value::Null, Value::from),
                );
                set(&mut l, "/pricing/price_details/price", line.price.id);
                set(&mut l, "/pricing/price_details/product", product.as_str());
                set(
                    &mut l,
                    "/pricing/unit_amount_decimal",
                    line.price.amount(currency).to_string(),
                );
            }
            Shape::PreBasil => {
                set(&mut l, "/amount_excluding_tax", line.amount);
                set(
                    &mut l,
                    "/unit_amount_excluding_tax",
                    line.amount.to_string(),
                );
                set(&mut l, "/proration", line.proration);
                set(&mut l, "/subscription", inv.subscription.as_str());
                set(&mut l, "/subscription_item", inv.item.as_str());
                set(
                    &mut l,
                    "/type",
                    if line.invoice_item.is_some() {
                        "invoiceitem"
                    } else {
                        "subscription"
                    },
                );
                if let (Some(item), Some(map)) = (&line.invoice_item, l.as_object_mut()) {
                    map.insert("invoice_item".to_owned(), Value::from(item.as_str()));
                }
                fill_price(&mut l["price"], line.price, currency, &product);
                fill_plan(&mut l["plan"], line.price, currency, &product);
            }
        }
        l
    }
}

fn fill_customer(o: &mut Value, c: &CustomerObj) {
    set(o, "/id", c.id.as_str());
    set(o, "/email", c.email.as_str());
    set(o, "/name", c.name.as_str());
    set(o, "/created", c.created);
    set(o, "/invoice_prefix", c.invoice_prefix.as_str());
    set(o, "/metadata", json!({ "user_id": c.user }));
}

fn fill_checkout(o: &mut Value, c: &CheckoutObj) {
    set(o, "/id", c.id.as_str());
    set(
        o,
        "/mode",
        match c.mode {
            CheckoutMode::Subscription => "subscription",
            CheckoutMode::Payment => "payment",
        },
    );
    set(o, "/customer", c.customer.as_str());
    set(o, "/client_reference_id", c.user.as_str());
    set(o, "/metadata", json!({ "user_id": c.user }));
    set(
        o,
        "/subscription",
        c.subscription.as_deref().map_or(Value::Null, Value::from),
    );
    set(
        o,
        "/invoice",
        c.invoice.as_deref().map_or(Value::Null, Value::from),
    );
    set(
        o,
        "/payment_intent",
        c.payment_intent.as_deref().map_or(Value::Null, Value::from),
    );
    set(o, "/amount_subtotal", c.amount_total);
    set(o, "/amount_total", c.amount_total);
    set(o, "/payment_status", c.payment_status);
    set(o, "/created", c.created);
    set(o, "/expires_at", c.created + 86_400);
}

fn fill_payment_intent(rng: &mut StdRng, o: &mut Value, shape: Shape, pi: &PaymentIntentObj) {
    set(o, "/id", pi.id.as_str());
    set(o, "/amount", pi.amount);
    set(
        o,
        "/amount_received",
        if pi.succeeded { pi.amount } else { 0 },
    );
    set(o, "/customer", pi.customer.as_str());
    set(o, "/description", pi.description);
    set(o, "/latest_charge", pi.latest_charge.as_str());
    set(o, "/created", pi.created);
    set(
        o,
        "/client_secret",
        format!("{}_secret_{}", pi.id, alphanumeric(rng, 25)),
    );
    set(
        o,
        "/metadata",
        match &pi.metadata_user {
            Some(user) => json!({ "user_id": user }),
            None => json!({}),
        },
    );
    if !pi.succeeded {
        set(o, "/last_payment_error/charge", pi.latest_charge.as_str());
    }
    if shape == Shape::PreBasil {
        set(
            o,
            "/invoice",
            pi.invoice.as_deref().map_or(Value::Null, Value::from),
        );
    }
}

fn fill_charge(o: &mut Value, shape: Shape, ch: &ChargeObj) {
    set(o, "/id", ch.id.as_str());
    set(o, "/amount", ch.amount);
    set(o, "/amount_captured", ch.amount);
    set(o, "/amount_refunded", ch.amount_refunded);
    set(o, "/refunded", ch.amount_refunded >= ch.amount);
    set(o, "/payment_intent", ch.payment_intent.as_str());
    set(o, "/customer", ch.customer.as_str());
    set(o, "/description", ch.description);
    set(o, "/created", ch.created);
    set(
        o,
        "/payment_method_details/card/amount_authorized",
        ch.amount,
    );
    if shape == Shape::PreBasil {
        set(
            o,
            "/invoice",
            ch.invoice.as_deref().map_or(Value::Null, Value::from),
        );
    }
}

fn fill_dispute(o: &mut Value, d: &DisputeObj) {
    set(o, "/id", d.id.as_str());
    set(o, "/amount", d.amount);
    set(o, "/charge", d.charge.as_str());
    set(o, "/payment_intent", d.payment_intent.as_str());
    set(o, "/status", d.status);
    set(o, "/reason", d.reason);
    set(o, "/created", d.created);
    // The withdrawal of the disputed amount (and its fee), as Stripe books it when opened.
    if let Some(Value::Object(txn)) = o.pointer_mut("/balance_transactions/0") {
        let fee = txn.get("fee").and_then(Value::as_i64).unwrap_or(0);
        txn.insert("amount".to_owned(), Value::from(-d.amount));
        txn.insert("net".to_owned(), Value::from(-d.amount - fee));
        txn.insert("created".to_owned(), Value::from(d.created));
    }
}

fn fill_price(p: &mut Value, price: &Price, currency: &str, product: &str) {
    let amount = price.amount(currency);
    set(p, "/id", price.id);
    set(p, "/lookup_key", price.lookup_key);
    set(p, "/nickname", price.nickname);
    set(p, "/product", product);
    set(p, "/metadata", json!({ "tier": price.tier_tag }));
    set(p, "/recurring/interval", price.interval);
    set(p, "/unit_amount", amount);
    set(p, "/unit_amount_decimal", amount.to_string());
}

fn fill_plan(p: &mut Value, price: &Price, currency: &str, product: &str) {
    let amount = price.amount(currency);
    set(p, "/id", price.id);
    set(p, "/amount", amount);
    set(p, "/amount_decimal", amount.to_string());
    set(p, "/interval", price.interval);
    set(p, "/nickname", price.nickname);
    set(p, "/product", product);
    set(p, "/metadata", json!({ "tier": price.tier_tag }));
}

/// Stripe's `previous_attributes`: every top-level attribute that changed, with its old value.
fn previous_attributes(before: &Value, after: &Value) -> Value {
    let mut previous = Map::new();
    if let (Some(before), Some(after)) = (before.as_object(), after.as_object()) {
        for (key, new) in after {
            if let Some(old) = before.get(key)
                && old != new
            {
                previous.insert(key.clone(), old.clone());
            }
        }
    }
    assert!(!previous.is_empty(), "an update that changes nothing");
    Value::Object(previous)
}

/// The fixture's ids of the objects this event is about → this event's objects.
fn role_renames(f: &FixtureIds, intent: &Intent) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut add = |from: &str, to: Option<&str>| {
        if let Some(to) = to {
            pairs.push((from.to_owned(), to.to_owned()));
        }
    };
    match intent {
        Intent::Customer(c) => add(&f.customer, Some(&c.id)),
        Intent::Subscription { now, .. } => {
            add(&f.customer, Some(&now.customer));
            add(&f.subscription, Some(&now.id));
            add(&f.item, Some(&now.item));
            add(&f.first_invoice, now.latest_invoice.as_deref());
            add(&f.invoice, now.latest_invoice.as_deref());
        }
        Intent::Invoice { invoice, .. } => {
            add(&f.customer, Some(&invoice.customer));
            add(&f.subscription, Some(&invoice.subscription));
            add(&f.item, Some(&invoice.item));
            add(&f.first_invoice, Some(&invoice.id));
            add(&f.invoice, Some(&invoice.id));
            add(&f.line, Some(&invoice.lines[0].id));
            add(&f.payment_intent, invoice.payment_intent.as_deref());
            add(&f.charge, invoice.charge.as_deref());
            add(&f.failed_charge, invoice.charge.as_deref());
        }
        Intent::Checkout(c) => {
            add(&f.customer, Some(&c.customer));
            add(&f.checkout_session, Some(&c.id));
            add(&f.subscription, c.subscription.as_deref());
            add(&f.first_invoice, c.invoice.as_deref());
            add(&f.payment_intent, c.payment_intent.as_deref());
        }
        Intent::Payment(pi) => {
            add(&f.customer, Some(&pi.customer));
            add(&f.payment_intent, Some(&pi.id));
            add(&f.charge, Some(&pi.latest_charge));
            add(&f.failed_charge, Some(&pi.latest_charge));
            add(&f.invoice, pi.invoice.as_deref());
        }
        Intent::Dispute { dispute: d, .. } => {
            add(&f.dispute, Some(&d.id));
            add(&f.dispute_charge, Some(&d.charge));
            add(&f.dispute_payment_intent, Some(&d.payment_intent));
        }
        Intent::ChargeRefunded(ch) => {
            add(&f.customer, Some(&ch.customer));
            add(&f.charge, Some(&ch.id));
            add(&f.payment_intent, Some(&ch.payment_intent));
            add(&f.invoice, ch.invoice.as_deref());
        }
    }
    pairs
}

/// Replaces, in every string of `value`, each `from` by its `to` (roles first).
fn rename(value: &mut Value, roles: &[(String, String)], customer: &[(String, String)]) {
    match value {
        Value::String(s) => {
            for (from, to) in roles.iter().chain(customer) {
                if s.contains(from.as_str()) {
                    *s = s.replace(from.as_str(), to);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename(v, roles, customer)),
        Value::Object(map) => map.values_mut().for_each(|v| rename(v, roles, customer)),
        _ => {}
    }
}

/// Sets the field at `pointer`, which the fixture must have.
fn set(value: &mut Value, pointer: &str, new: impl Into<Value>) {
    let slot = value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("the fixture has no field {pointer}"));
    *slot = new.into();
}

fn opt(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::from)
}

fn idempotency_key(rng: &mut StdRng) -> String {
    let s = alphanumeric(rng, 32).to_lowercase();
    format!(
        "{}-{}-{}-{}-{}",
        &s[..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..]
    )
}
