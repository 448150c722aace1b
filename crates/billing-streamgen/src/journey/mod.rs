//! One customer's random journey through Stripe, as the events Stripe would send for it.
//!
//! customer.created → a subscription (trial, paid Checkout, or a first payment that fails) →
//! steps: trial_will_end, trial conversion / failure / pause, renewals (the period-advancing
//! update, then invoice.paid + invoice.payment_succeeded), failed renewals into past_due
//! (invoice.payment_failed + the past_due update in one second), dunning retries, recovery,
//! unpaid, cancelation, plan changes with their proration invoice in the update's second,
//! cancel_at_period_end toggles; one-time Checkout purchases and refunds on the side; sometimes
//! a new subscription after the last one ended.
//!
//! Stripe sends one `customer.subscription.*` for every status, price or period change, so the
//! newest snapshot is the truth. Two snapshots of one subscription never share a second (only a
//! status change and its invoice do), so "newest" is never ambiguous.

use std::collections::HashMap;

use billing_domain::SubscriptionStatus;
use chrono::{DateTime, Months};
use rand::Rng;
use rand::rngs::StdRng;

use crate::fixtures::Templates;
use crate::ids::{IdMaker, alphanumeric, upper};
use crate::model::{
    ChargeObj, CheckoutMode, CheckoutObj, CustomerObj, Intent, InvoiceObj, LineObj,
    PaymentIntentObj, Shape, SubscriptionObj,
};
use crate::prices::{ENTERPRISE_MONTHLY, PRICES, PRO_MONTHLY, PRO_YEARLY, Price};
use crate::render::CustomerRenames;

mod lifecycle;
mod one_time;

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Seconds in an hour.
pub const HOUR: i64 = 3_600;

/// One Stripe account: its API shape, currency, mode and id maker.
#[derive(Debug)]
pub struct Account {
    /// The API version shape of the account's events.
    pub shape: Shape,
    /// The account's currency (`eur` or `usd`).
    pub currency: String,
    /// Whether the account is in live mode.
    pub livemode: bool,
    /// Issues the account's ids, never one twice.
    pub ids: IdMaker,
}

impl Account {
    /// The account whose events have the fixtures' `shape`.
    pub fn new(rng: &mut StdRng, templates: &Templates) -> Self {
        Self {
            shape: templates.shape,
            currency: templates.currency.clone(),
            livemode: templates.livemode,
            ids: IdMaker::new(rng),
        }
    }
}

/// An event the journey emits: when Stripe created it and what it says.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Stripe's `created`, journey wall seconds.
    pub created: i64,
    /// What the event says.
    pub intent: Intent,
}

/// A customer's events.
#[derive(Debug)]
pub struct Journey {
    /// The API version shape of its events.
    pub shape: Shape,
    /// The customer.
    pub customer: CustomerObj,
    /// The fixture strings replaced in every body of this customer.
    pub renames: CustomerRenames,
    /// Its events, in the order emitted.
    pub events: Vec<Planned>,
}

/// Emits one customer's events, keeping its wall clock (`created` of events) and its test
/// clock (`sim`, the objects' times).
pub struct Actor<'a> {
    /// Where every random choice is drawn.
    pub rng: &'a mut StdRng,
    /// The Stripe account the customer belongs to.
    pub account: &'a mut Account,
    /// The customer.
    pub customer: CustomerObj,
    /// The fixture strings replaced in every body of this customer.
    pub renames: CustomerRenames,
    /// The wall clock: `created` of the next event.
    pub wall: i64,
    /// The customer's test clock: the objects' own times.
    pub sim: i64,
    /// What was emitted so far.
    pub events: Vec<Planned>,
    last_snapshot: HashMap<String, i64>,
    invoices: u32,
    /// Whether an invoice's payment intent events are sent (decided per invoice).
    intent_events: HashMap<String, bool>,
    refundable: Vec<ChargeObj>,
}

const FIRST_NAMES: [&str; 12] = [
    "Amara", "Bjorn", "Chen", "Dalia", "Emeka", "Farah", "Goran", "Hana", "Ines", "Jonas", "Keiko",
    "Luca",
];
const LAST_NAMES: [&str; 12] = [
    "Okafor",
    "Lindqvist",
    "Wei",
    "Haddad",
    "Nwosu",
    "Rahimi",
    "Petrovic",
    "Sato",
    "Moreau",
    "Becker",
    "Tanaka",
    "Rossi",
];

/// What a subscription's journey is in the middle of.
struct Live {
    sub: SubscriptionObj,
    /// The unpaid invoice of a failed payment (dunning) or of a failed first payment.
    open: Option<InvoiceObj>,
    trial_will_end_sent: bool,
}

impl<'a> Actor<'a> {
    /// A new customer of `account`; nothing is emitted yet.
    pub fn new(
        rng: &'a mut StdRng,
        account: &'a mut Account,
        templates: &Templates,
        wall: i64,
        sim: i64,
    ) -> Self {
        let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        let customer = CustomerObj {
            id: account.ids.short(rng, "cus"),
            user: format!("user_{}", alphanumeric(rng, 12)),
            email: format!(
                "{}.{}.{}@example.com",
                first.to_lowercase(),
                last.to_lowercase(),
                rng.random_range(10..1000)
            ),
            name: format!("{first} {last}"),
            invoice_prefix: upper(rng, 8),
            created: sim,
        };
        let renames = CustomerRenames::new(rng, &mut account.ids, templates, &customer);
        Self {
            rng,
            account,
            customer,
            renames,
            wall,
            sim,
            events: Vec::new(),
            last_snapshot: HashMap::new(),
            invoices: 0,
            intent_events: HashMap::new(),
            refundable: Vec::new(),
        }
    }

    /// Emits `intent` as created at `at`; a snapshot must be later than the subscription's
    /// previous one. The wall clock moves to `at` if it is behind, so that the next step
    /// happens after everything emitted so far.
    pub fn emit(&mut self, at: i64, intent: Intent) {
        self.wall = self.wall.max(at);
        if let Some(snapshot) = intent.snapshot() {
            if let Some(&last) = self.last_snapshot.get(&snapshot.id) {
                assert!(at > last, "two snapshots of {} in second {at}", snapshot.id);
            }
            self.last_snapshot.insert(snapshot.id.clone(), at);
        }
        self.events.push(Planned {
            created: at,
            intent,
        });
    }

    /// The journey so far.
    pub fn finish(self) -> Journey {
        Journey {
            shape: self.account.shape,
            customer: self.customer,
            renames: self.renames,
            events: self.events,
        }
    }

    /// Moves the wall clock 1–8 seconds on.
    fn tick(&mut self) {
        self.wall += self.rng.random_range(1..=8);
    }

    /// The first second, from the wall clock on, in which `sub` may carry a new snapshot; the
    /// wall clock moves there.
    fn snapshot_second(&mut self, sub: &str) -> i64 {
        if let Some(&last) = self.last_snapshot.get(sub) {
            self.wall = self.wall.max(last + 1);
        }
        self.wall
    }

    /// A new subscription of this customer starting now (simulated).
    pub fn subscription(
        &mut self,
        price: &'static Price,
        status: SubscriptionStatus,
        trial_days: Option<i64>,
    ) -> SubscriptionObj {
        let start = self.sim;
        let trial = trial_days.map(|days| (start, start + days * DAY));
        let period = trial.unwrap_or((start, add_interval(start, price)));
        SubscriptionObj {
            id: self.account.ids.long(self.rng, "sub"),
            customer: self.customer.id.clone(),
            user: self.customer.user.clone(),
            item: self.account.ids.short(self.rng, "si"),
            status,
            price,
            period,
            cancel_at_period_end: false,
            cancel_at: None,
            canceled_at: None,
            ended_at: None,
            trial,
            created: start,
            billing_cycle_anchor: trial.map_or(start, |t| t.1),
            latest_invoice: None,
            cancellation_reason: None,
        }
    }

    /// A line of `price` for `amount` over `period`.
    pub fn line(
        &mut self,
        price: &'static Price,
        amount: i64,
        period: (i64, i64),
        proration: bool,
        description: String,
    ) -> LineObj {
        LineObj {
            id: self.account.ids.long(self.rng, "il"),
            price,
            amount,
            period,
            proration,
            description,
            invoice_item: proration.then(|| self.account.ids.long(self.rng, "ii")),
        }
    }

    /// The usual line of a whole period of `price`.
    pub fn period_line(&mut self, price: &'static Price, period: (i64, i64)) -> LineObj {
        let amount = price.amount(&self.account.currency);
        let description = format!(
            "1 × {} (at {} / {})",
            price.product_name,
            money(&self.account.currency, amount),
            price.interval
        );
        self.line(price, amount, period, false, description)
    }

    /// A new open invoice of `sub` (not yet attempted), dated now (simulated).
    pub fn invoice(
        &mut self,
        sub: &SubscriptionObj,
        billing_reason: &'static str,
        lines: Vec<LineObj>,
        period: (i64, i64),
    ) -> InvoiceObj {
        let total: i64 = lines.iter().map(|l| l.amount).sum();
        let amount_due = total.max(0);
        self.invoices += 1;
        let payment_intent = (amount_due > 0).then(|| self.account.ids.payment(self.rng).0);
        let id = self.account.ids.long(self.rng, "in");
        let with_events = self.rng.random_bool(0.5);
        self.intent_events.insert(id.clone(), with_events);
        InvoiceObj {
            id,
            customer: sub.customer.clone(),
            subscription: sub.id.clone(),
            item: sub.item.clone(),
            user: sub.user.clone(),
            number: format!("{}-{:04}", self.customer.invoice_prefix, self.invoices),
            billing_reason,
            paid: false,
            amount_due,
            amount_paid: 0,
            attempt_count: 0,
            lines,
            created: self.sim,
            period,
            next_payment_attempt: None,
            paid_at: None,
            payment_intent,
            charge: None,
        }
    }

    /// One payment attempt of `invoice` at second `at`: the invoice events (and, for some
    /// invoices, the payment intent's) that Stripe sends for its outcome.
    pub fn attempt(&mut self, invoice: &mut InvoiceObj, succeed: bool, last_try: bool, at: i64) {
        let pi_events = self
            .intent_events
            .get(&invoice.id)
            .copied()
            .unwrap_or(false);
        if invoice.amount_due > 0 {
            invoice.attempt_count += 1;
            let pi = invoice.payment_intent.clone().unwrap_or_default();
            invoice.charge = Some(self.account.ids.charge_of(self.rng, &pi));
        }
        let intent = invoice
            .payment_intent
            .clone()
            .zip(invoice.charge.clone())
            .map(|(id, charge)| PaymentIntentObj {
                id,
                customer: invoice.customer.clone(),
                amount: invoice.amount_due,
                succeeded: succeed,
                latest_charge: charge,
                invoice: Some(invoice.id.clone()),
                metadata_user: None,
                description: "Subscription update",
                created: invoice.created + 1,
            });
        if succeed {
            invoice.paid = true;
            invoice.amount_paid = invoice.amount_due;
            invoice.paid_at = Some(self.sim);
            invoice.next_payment_attempt = None;
            if let Some(pi) = &intent {
                self.refundable.push(ChargeObj {
                    id: pi.latest_charge.clone(),
                    payment_intent: pi.id.clone(),
                    customer: invoice.customer.clone(),
                    amount: invoice.amount_paid,
                    amount_refunded: 0,
                    previous_refunded: 0,
                    invoice: Some(invoice.id.clone()),
                    description: "Subscription update",
                    created: self.sim,
                });
            }
        } else {
            invoice.next_payment_attempt = (!last_try).then_some(self.sim + 3 * DAY);
        }
        if let Some(pi) = intent.filter(|_| pi_events) {
            self.emit(at, Intent::Payment(pi));
        }
        let types: &[&'static str] = if succeed {
            &["invoice.payment_succeeded", "invoice.paid"]
        } else {
            &["invoice.payment_failed"]
        };
        for &event_type in types {
            self.emit(
                at,
                Intent::Invoice {
                    event_type,
                    invoice: Box::new(invoice.clone()),
                },
            );
        }
    }

    /// Emits `customer.subscription.<change>` with `now` (and `before` for the previous
    /// attributes) at `at`.
    pub fn snapshot(
        &mut self,
        at: i64,
        event_type: &'static str,
        now: &SubscriptionObj,
        before: Option<&SubscriptionObj>,
    ) {
        self.emit(
            at,
            Intent::Subscription {
                event_type,
                now: Box::new(now.clone()),
                before: before.cloned().map(Box::new),
            },
        );
    }

    /// The journey: customer.created, then subscriptions and their steps.
    fn live(&mut self) {
        let customer = self.customer.clone();
        self.emit(self.wall, Intent::Customer(customer));
        let mut budget: u32 = self.rng.random_range(3..=14);
        loop {
            self.tick();
            let mut live = self.subscribe();
            let mut stopped = false;
            while budget > 0 && !live.sub.status.is_terminal() && !stopped {
                self.tick();
                self.side_events();
                stopped = self.step(&mut live);
                budget -= 1;
            }
            if budget == 0 || stopped || !self.rng.random_bool(0.35) {
                break;
            }
            self.sim += self.rng.random_range(1..=60) * DAY;
        }
    }

    fn choose_price(&mut self) -> &'static Price {
        match self.rng.random_range(0..100) {
            0..45 => &PRO_MONTHLY,
            45..65 => &PRO_YEARLY,
            _ => &ENTERPRISE_MONTHLY,
        }
    }

    /// A new subscription: a trial, a paid Checkout, or a first payment that fails.
    fn subscribe(&mut self) -> Live {
        let price = self.choose_price();
        let kind = self.rng.random_range(0..100);
        if kind < 40 {
            let days = if self.rng.random_bool(0.5) { 7 } else { 14 };
            let mut sub = self.subscription(price, SubscriptionStatus::Trialing, Some(days));
            let description = format!("Trial period for {}", price.product_name);
            let line = self.line(price, 0, sub.period, false, description);
            let mut invoice = self.invoice(
                &sub,
                "subscription_create",
                vec![line],
                (sub.created, sub.created),
            );
            sub.latest_invoice = Some(invoice.id.clone());
            let at = self.snapshot_second(&sub.id);
            self.snapshot(at, "customer.subscription.created", &sub, None);
            self.attempt(&mut invoice, true, true, at);
            let at = at + self.rng.random_range(0..=2);
            self.checkout(&sub, &invoice, at);
            return Live {
                sub,
                open: None,
                trial_will_end_sent: false,
            };
        }
        let direct = kind < 55;
        let status = if direct {
            SubscriptionStatus::Active
        } else {
            SubscriptionStatus::Incomplete
        };
        let mut sub = self.subscription(price, status, None);
        let line = self.period_line(price, sub.period);
        let mut invoice = self.invoice(
            &sub,
            "subscription_create",
            vec![line],
            (sub.created, sub.created),
        );
        sub.latest_invoice = Some(invoice.id.clone());
        let at = self.snapshot_second(&sub.id);
        self.snapshot(at, "customer.subscription.created", &sub, None);
        if direct {
            self.attempt(&mut invoice, true, false, at);
            let at = at + self.rng.random_range(0..=1);
            self.checkout(&sub, &invoice, at);
            return Live {
                sub,
                open: None,
                trial_will_end_sent: false,
            };
        }
        if kind < 85 {
            // Checkout confirms the payment a moment later: paid, then active.
            self.wall += self.rng.random_range(1..=3);
            let at = self.snapshot_second(&sub.id);
            self.attempt(&mut invoice, true, false, at);
            let before = sub.clone();
            sub.status = SubscriptionStatus::Active;
            self.snapshot(at, "customer.subscription.updated", &sub, Some(&before));
            let at = at + self.rng.random_range(0..=1);
            self.checkout(&sub, &invoice, at);
            return Live {
                sub,
                open: None,
                trial_will_end_sent: false,
            };
        }
        // Created through the API with `default_incomplete`: the first payment fails.
        self.attempt(&mut invoice, false, false, at);
        Live {
            sub,
            open: Some(invoice),
            trial_will_end_sent: false,
        }
    }

    /// `checkout.session.completed` of a subscription-mode session.
    fn checkout(&mut self, sub: &SubscriptionObj, invoice: &InvoiceObj, at: i64) {
        let session = CheckoutObj {
            id: self
                .account
                .ids
                .checkout_session(self.rng, self.account.livemode),
            mode: CheckoutMode::Subscription,
            customer: self.customer.id.clone(),
            user: self.customer.user.clone(),
            subscription: Some(sub.id.clone()),
            invoice: Some(invoice.id.clone()),
            payment_intent: None,
            amount_total: invoice.amount_paid,
            payment_status: if invoice.amount_paid > 0 {
                "paid"
            } else {
                "no_payment_required"
            },
            created: sub.created - self.rng.random_range(60..600),
        };
        self.emit(at, Intent::Checkout(session));
    }
}

/// A random journey of a new customer of `account`, starting at wall second `wall` with its
/// test clock at `sim`.
pub fn random_journey(
    rng: &mut StdRng,
    account: &mut Account,
    templates: &Templates,
    wall: i64,
    sim: i64,
) -> Journey {
    let mut actor = Actor::new(rng, account, templates, wall, sim);
    actor.live();
    actor.finish()
}

/// `t` plus one interval of `price` (calendar months, as Stripe bills).
pub fn add_interval(t: i64, price: &Price) -> i64 {
    let months = if price.monthly() { 1 } else { 12 };
    DateTime::from_timestamp(t, 0)
        .and_then(|d| d.checked_add_months(Months::new(months)))
        .map_or_else(|| panic!("time {t} out of range"), |d| d.timestamp())
}

fn money(currency: &str, cents: i64) -> String {
    let symbol = if currency == "eur" { "€" } else { "$" };
    format!("{symbol}{}.{:02}", cents / 100, cents % 100)
}

fn day_text(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map_or_else(String::new, |d| d.format("%d %b %Y").to_string())
}
