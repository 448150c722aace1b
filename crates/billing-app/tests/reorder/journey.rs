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

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Seconds in an hour.
pub const HOUR: i64 = 3_600;

/// One Stripe account: its API shape, currency, mode and id maker.
#[derive(Debug)]
pub struct Account {
    pub shape: Shape,
    pub currency: String,
    pub livemode: bool,
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
    pub created: i64,
    pub intent: Intent,
}

/// A customer's events.
#[derive(Debug)]
pub struct Journey {
    pub shape: Shape,
    pub customer: CustomerObj,
    pub renames: CustomerRenames,
    pub events: Vec<Planned>,
}

/// Emits one customer's events, keeping its wall clock (`created` of events) and its test
/// clock (`sim`, the objects' times).
pub struct Actor<'a> {
    pub rng: &'a mut StdRng,
    pub account: &'a mut Account,
    pub customer: CustomerObj,
    pub renames: CustomerRenames,
    pub wall: i64,
    pub sim: i64,
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

    /// A one-time purchase or a refund, now and then.
    fn side_events(&mut self) {
        if self.rng.random_bool(0.07) {
            self.purchase();
        }
        if !self.refundable.is_empty() && self.rng.random_bool(0.08) {
            self.refund();
        }
    }

    /// A payment-mode Checkout: `payment_intent.succeeded` and `checkout.session.completed`.
    fn purchase(&mut self) {
        let (pi, charge) = self.account.ids.payment(self.rng);
        let amount = [900, 2500, 4900, 12000][self.rng.random_range(0..4)];
        let intent = PaymentIntentObj {
            id: pi.clone(),
            customer: self.customer.id.clone(),
            amount,
            succeeded: true,
            latest_charge: charge.clone(),
            invoice: None,
            metadata_user: Some(self.customer.user.clone()),
            description: "Credit pack",
            created: self.sim,
        };
        let session = CheckoutObj {
            id: self
                .account
                .ids
                .checkout_session(self.rng, self.account.livemode),
            mode: CheckoutMode::Payment,
            customer: self.customer.id.clone(),
            user: self.customer.user.clone(),
            subscription: None,
            invoice: None,
            payment_intent: Some(pi.clone()),
            amount_total: amount,
            payment_status: "paid",
            created: self.sim - self.rng.random_range(60..600),
        };
        let at = self.wall;
        self.emit(at, Intent::Payment(intent));
        let at = at + self.rng.random_range(0..=1);
        self.emit(at, Intent::Checkout(session));
        self.refundable.push(ChargeObj {
            id: charge,
            payment_intent: pi,
            customer: self.customer.id.clone(),
            amount,
            amount_refunded: 0,
            previous_refunded: 0,
            invoice: None,
            description: "Credit pack",
            created: self.sim,
        });
    }

    /// `charge.refunded` of a paid charge, carrying its cumulative refunded amount.
    fn refund(&mut self) {
        let index = self.rng.random_range(0..self.refundable.len());
        let charge = &self.refundable[index];
        let remaining = charge.amount - charge.amount_refunded;
        if remaining <= 0 {
            return;
        }
        let refund = if self.rng.random_bool(0.4) {
            remaining
        } else {
            self.rng.random_range(1..=remaining)
        };
        let mut charge = charge.clone();
        charge.previous_refunded = charge.amount_refunded;
        charge.amount_refunded += refund;
        self.refundable[index] = charge.clone();
        self.emit(self.wall, Intent::ChargeRefunded(charge));
    }

    /// Moves the test clock to a random point in the first half of what is left of the
    /// period, if at least two days are left.
    fn advance_within(&mut self, period_end: i64) -> bool {
        let left = period_end - self.sim;
        if left < 2 * DAY {
            return false;
        }
        self.sim += self.rng.random_range(HOUR..left / 2);
        true
    }

    /// One step of the subscription's life; true when the journey stops here.
    fn step(&mut self, live: &mut Live) -> bool {
        match live.sub.status {
            SubscriptionStatus::Incomplete => self.incomplete_step(live),
            SubscriptionStatus::Trialing => self.trial_step(live),
            SubscriptionStatus::Active => self.active_step(live),
            SubscriptionStatus::PastDue => self.past_due_step(live),
            SubscriptionStatus::Unpaid => return self.unpaid_step(live),
            SubscriptionStatus::Paused => self.paused_step(live),
            _ => return true,
        }
        false
    }

    fn incomplete_step(&mut self, live: &mut Live) {
        let sub = &mut live.sub;
        let before = sub.clone();
        let at = self.snapshot_second(&sub.id);
        if self.rng.random_bool(0.7) {
            self.sim += self.rng.random_range(HOUR..20 * HOUR);
            let mut invoice = live
                .open
                .take()
                .unwrap_or_else(|| panic!("no open invoice"));
            self.attempt(&mut invoice, true, false, at);
            sub.status = SubscriptionStatus::Active;
            self.snapshot(at, "customer.subscription.updated", sub, Some(&before));
        } else {
            self.sim = sub.created + 23 * HOUR;
            sub.status = SubscriptionStatus::IncompleteExpired;
            sub.ended_at = Some(self.sim);
            self.snapshot(at, "customer.subscription.updated", sub, Some(&before));
        }
    }

    fn trial_step(&mut self, live: &mut Live) {
        let (_, trial_end) = live.sub.trial.unwrap_or((self.sim, self.sim));
        let sub_id = live.sub.id.clone();
        if !live.trial_will_end_sent && trial_end - 3 * DAY > self.sim && self.rng.random_bool(0.85)
        {
            self.sim = trial_end - 3 * DAY;
            live.trial_will_end_sent = true;
            let at = self.snapshot_second(&sub_id);
            self.snapshot(at, "customer.subscription.trial_will_end", &live.sub, None);
            return;
        }
        if self.rng.random_bool(0.15) && self.advance_within(trial_end) {
            self.toggle_cancel(live);
            return;
        }
        self.sim = trial_end;
        let before = live.sub.clone();
        let sub = &mut live.sub;
        if sub.cancel_at_period_end {
            self.delete(live, trial_end, "cancellation_requested");
            return;
        }
        let at = self.snapshot_second(&sub_id);
        match self.rng.random_range(0..100) {
            0..65 => {
                let mut invoice = self.renew(sub, SubscriptionStatus::Active);
                self.snapshot(at, "customer.subscription.updated", sub, Some(&before));
                let paid_at = at + self.rng.random_range(0..=3);
                self.attempt(&mut invoice, true, false, paid_at);
            }
            65..85 => {
                let mut invoice = self.renew(sub, SubscriptionStatus::PastDue);
                self.attempt(&mut invoice, false, false, at);
                self.snapshot(at, "customer.subscription.updated", sub, Some(&before));
                live.open = Some(invoice);
            }
            85..95 => {
                // No payment method at the trial's end: paused (the fixtures' story).
                sub.status = SubscriptionStatus::Paused;
                sub.period = (trial_end, add_interval(trial_end, sub.price));
                self.snapshot(at, "customer.subscription.paused", sub, Some(&before));
            }
            _ => self.delete(live, trial_end, "cancellation_requested"),
        }
    }

    /// Moves `sub` into its next period with `status` and returns that period's invoice.
    fn renew(&mut self, sub: &mut SubscriptionObj, status: SubscriptionStatus) -> InvoiceObj {
        let previous = sub.period;
        let start = previous.1;
        sub.period = (start, add_interval(start, sub.price));
        sub.status = status;
        let line = self.period_line(sub.price, sub.period);
        let invoice = self.invoice(sub, "subscription_cycle", vec![line], previous);
        sub.latest_invoice = Some(invoice.id.clone());
        invoice
    }

    fn active_step(&mut self, live: &mut Live) {
        let roll = self.rng.random_range(0..100);
        let period_end = live.sub.period.1;
        if (45..80).contains(&roll) && self.advance_within(period_end) {
            match roll {
                45..60 => self.change_plan(live),
                60..75 => self.toggle_cancel(live),
                _ => {
                    let now = self.sim;
                    self.delete(live, now, "cancellation_requested");
                }
            }
            return;
        }
        if roll >= 80 && period_end - self.sim > 2 * DAY {
            // A quiet step: only side events, if any.
            return;
        }
        // The period ends.
        self.sim = period_end;
        if live.sub.cancel_at_period_end {
            self.delete(live, period_end, "cancellation_requested");
            return;
        }
        let before = live.sub.clone();
        let at = self.snapshot_second(&live.sub.id);
        let mut invoice = self.renew(&mut live.sub, SubscriptionStatus::Active);
        self.snapshot(
            at,
            "customer.subscription.updated",
            &live.sub,
            Some(&before),
        );
        if self.rng.random_bool(0.75) {
            let paid_at = at + self.rng.random_range(0..=4);
            self.attempt(&mut invoice, true, false, paid_at);
        } else {
            self.wall += self.rng.random_range(1..=4);
            let before = live.sub.clone();
            let at = self.snapshot_second(&live.sub.id);
            self.sim += HOUR;
            self.attempt(&mut invoice, false, false, at);
            live.sub.status = SubscriptionStatus::PastDue;
            self.snapshot(
                at,
                "customer.subscription.updated",
                &live.sub,
                Some(&before),
            );
            live.open = Some(invoice);
        }
    }

    /// A plan change with `proration_behavior=always_invoice`: the update and its paid
    /// proration invoice in one second. A change of interval (or, sometimes, a reset billing
    /// cycle anchor) starts a new period.
    fn change_plan(&mut self, live: &mut Live) {
        let old = live.sub.price;
        let others: Vec<&'static Price> = PRICES.iter().copied().filter(|p| *p != old).collect();
        let new = others[self.rng.random_range(0..others.len())];
        let reset = old.interval != new.interval || self.rng.random_bool(0.3);
        let now = self.sim;
        let (start, end) = live.sub.period;
        let left = (end - now) as f64 / (end - start) as f64;
        let currency = self.account.currency.clone();
        let on = day_text(now);
        let credit = -((old.amount(&currency) as f64 * left).round() as i64);
        let mut lines = vec![self.line(
            old,
            credit,
            (now, end),
            true,
            format!("Unused time on {} after {on}", old.product_name),
        )];
        let before = live.sub.clone();
        let sub = &mut live.sub;
        sub.price = new;
        if reset {
            sub.period = (now, add_interval(now, new));
            sub.billing_cycle_anchor = now;
            lines.push(self.period_line(new, sub.period));
        } else {
            let charge = (new.amount(&currency) as f64 * left).round() as i64;
            lines.push(self.line(
                new,
                charge,
                (now, end),
                true,
                format!("Remaining time on {} after {on}", new.product_name),
            ));
        }
        let mut invoice = self.invoice(sub, "subscription_update", lines, (now, now));
        sub.latest_invoice = Some(invoice.id.clone());
        let at = self.snapshot_second(&sub.id);
        self.snapshot(at, "customer.subscription.updated", sub, Some(&before));
        self.attempt(&mut invoice, true, false, at);
    }

    fn toggle_cancel(&mut self, live: &mut Live) {
        let before = live.sub.clone();
        let sub = &mut live.sub;
        sub.cancel_at_period_end = !sub.cancel_at_period_end;
        if sub.cancel_at_period_end {
            sub.cancel_at = Some(sub.period.1);
            sub.canceled_at = Some(self.sim);
        } else {
            sub.cancel_at = None;
            sub.canceled_at = None;
        }
        let at = self.snapshot_second(&sub.id);
        self.snapshot(at, "customer.subscription.updated", sub, Some(&before));
    }

    /// `customer.subscription.deleted`, ended at `ended` (simulated).
    fn delete(&mut self, live: &mut Live, ended: i64, reason: &'static str) {
        let sub = &mut live.sub;
        sub.status = SubscriptionStatus::Canceled;
        sub.canceled_at = Some(sub.canceled_at.unwrap_or(ended));
        sub.ended_at = Some(ended);
        sub.cancellation_reason = Some(reason);
        let at = self.snapshot_second(&sub.id);
        self.snapshot(at, "customer.subscription.deleted", sub, None);
    }

    fn past_due_step(&mut self, live: &mut Live) {
        let mut invoice = live
            .open
            .take()
            .unwrap_or_else(|| panic!("past_due without an open invoice"));
        self.sim += 3 * DAY;
        let retries_left = invoice.attempt_count < 4;
        let roll = self.rng.random_range(0..100);
        let before = live.sub.clone();
        match roll {
            0..40 if retries_left => {
                // Smart Retries: another failed attempt, the subscription stays past_due.
                let at = self.wall;
                self.attempt(&mut invoice, false, false, at);
                live.open = Some(invoice);
            }
            0..55 => {
                let at = self.snapshot_second(&live.sub.id);
                self.attempt(&mut invoice, true, false, at);
                live.sub.status = SubscriptionStatus::Active;
                self.snapshot(
                    at,
                    "customer.subscription.updated",
                    &live.sub,
                    Some(&before),
                );
            }
            55..80 => {
                let at = self.snapshot_second(&live.sub.id);
                self.attempt(&mut invoice, false, true, at);
                live.sub.status = SubscriptionStatus::Unpaid;
                self.snapshot(
                    at,
                    "customer.subscription.updated",
                    &live.sub,
                    Some(&before),
                );
                live.open = Some(invoice);
            }
            _ => {
                let at = self.snapshot_second(&live.sub.id);
                self.attempt(&mut invoice, false, true, at);
                let now = self.sim;
                self.delete(live, now, "payment_failed");
            }
        }
    }

    fn unpaid_step(&mut self, live: &mut Live) -> bool {
        self.sim += self.rng.random_range(1..=10) * DAY;
        match self.rng.random_range(0..100) {
            0..35 => {
                let mut invoice = live
                    .open
                    .take()
                    .unwrap_or_else(|| panic!("unpaid without an open invoice"));
                let before = live.sub.clone();
                let at = self.snapshot_second(&live.sub.id);
                self.attempt(&mut invoice, true, false, at);
                live.sub.status = SubscriptionStatus::Active;
                self.snapshot(
                    at,
                    "customer.subscription.updated",
                    &live.sub,
                    Some(&before),
                );
                false
            }
            35..70 => {
                let now = self.sim;
                self.delete(live, now, "payment_failed");
                false
            }
            _ => true,
        }
    }

    fn paused_step(&mut self, live: &mut Live) {
        self.sim += self.rng.random_range(1..=20) * DAY;
        if self.rng.random_bool(0.4) {
            let now = self.sim;
            self.delete(live, now, "cancellation_requested");
            return;
        }
        let before = live.sub.clone();
        let now = self.sim;
        let sub = &mut live.sub;
        sub.status = SubscriptionStatus::Active;
        sub.period = (now, add_interval(now, sub.price));
        sub.billing_cycle_anchor = now;
        let line = self.period_line(sub.price, sub.period);
        let mut invoice = self.invoice(sub, "subscription_update", vec![line], (now, now));
        sub.latest_invoice = Some(invoice.id.clone());
        let at = self.snapshot_second(&sub.id);
        self.snapshot(at, "customer.subscription.resumed", sub, Some(&before));
        self.wall += self.rng.random_range(1..=3);
        if self.rng.random_bool(0.8) {
            let at = self.wall;
            self.attempt(&mut invoice, true, false, at);
        } else {
            let before = live.sub.clone();
            let at = self.snapshot_second(&live.sub.id);
            self.attempt(&mut invoice, false, false, at);
            live.sub.status = SubscriptionStatus::PastDue;
            self.snapshot(
                at,
                "customer.subscription.updated",
                &live.sub,
                Some(&before),
            );
            live.open = Some(invoice);
        }
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
