//! The stories `trigger` plays, told through `billing-streamgen`'s journey actor (the same
//! objects and renderer as the generated test streams), with times ending now so that periods,
//! trials and grace are current when the entitlements are read. The subscriptions are on the
//! configured catalog's cheapest paid price ([`Paid::of`]).

use billing_domain::{Catalog, SubscriptionStatus};
use billing_streamgen::journey::{Actor, DAY, HOUR, Planned, add_interval};
use billing_streamgen::model::{DisputeObj, Intent};
use billing_streamgen::prices::{PRICES, PRO_MONTHLY, PRO_YEARLY, Price};
use chrono::{DateTime, Months, Utc};

use super::Scenario;

/// One step of a story: its title and the events it sends.
pub(crate) struct Step {
    pub(crate) title: String,
    pub(crate) events: Vec<Planned>,
}

/// The price the stories subscribe to: the first price of the lowest purchasable paid tier of
/// the catalog, so that the server's entitlements show that tier.
pub(crate) struct Paid {
    /// The tier's id (`PRO` in the example catalog).
    pub(crate) tier: String,
    /// The price as Stripe renders it: one of `billing-streamgen`'s when the id is one of its
    /// (the example catalog's), else the id under that tier's name, billed monthly unless
    /// the id says `year`/`annual`, at the example's amounts (the server reads only the id).
    pub(crate) price: &'static Price,
}

impl Paid {
    /// The cheapest paid price of `catalog`, or `None` when no tier has a price.
    pub(crate) fn of(catalog: &Catalog) -> Option<Self> {
        let tier = catalog
            .tiers()
            .iter()
            .filter(|t| !t.is_free() && !t.price_ids.is_empty())
            .min_by_key(|t| t.rank)?;
        let id = tier.price_ids.first()?;
        let price = match PRICES.iter().find(|p| p.id == id.as_str()) {
            Some(known) => *known,
            None => leak_price(id, tier.name.as_str(), tier.id.as_str()),
        };
        Some(Self {
            tier: tier.id.as_str().to_owned(),
            price,
        })
    }

    /// `monthly` or `yearly`.
    fn billed(&self) -> &'static str {
        if self.price.monthly() {
            "monthly"
        } else {
            "yearly"
        }
    }
}

/// A price of a catalog `billing-streamgen` does not know, for one run of the command (the
/// renderer takes `'static` prices; the few strings are leaked once per run, on purpose).
fn leak_price(id: &str, tier_name: &str, tier_id: &str) -> &'static Price {
    let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
    let lower = id.to_ascii_lowercase();
    let like = if lower.contains("year") || lower.contains("annual") {
        &PRO_YEARLY
    } else {
        &PRO_MONTHLY
    };
    let billed = if like.monthly() { "monthly" } else { "yearly" };
    Box::leak(Box::new(Price {
        id: leak(id.to_owned()),
        lookup_key: leak(id.strip_prefix("price_").unwrap_or(id).to_owned()),
        nickname: leak(format!("{tier_name} ({billed})")),
        product_name: leak(tier_name.to_owned()),
        interval: like.interval,
        tier_tag: leak(tier_id.to_ascii_lowercase()),
        usd: like.usd,
        eur: like.eur,
    }))
}

/// Records which events each step emitted.
struct Steps {
    steps: Vec<(String, usize)>,
}

impl Steps {
    fn new() -> Self {
        Self { steps: Vec::new() }
    }

    /// Starts the step `title` at the actor's current event count.
    fn start(&mut self, title: impl Into<String>, actor: &Actor<'_>) {
        self.steps.push((title.into(), actor.events.len()));
    }

    /// Splits `events` (all emitted) by step.
    fn split(self, mut events: Vec<Planned>) -> Vec<Step> {
        let mut steps = Vec::new();
        for (title, start) in self.steps.into_iter().rev() {
            let tail = events.split_off(start.min(events.len()));
            steps.push(Step {
                title,
                events: tail,
            });
        }
        steps.reverse();
        steps
    }
}

/// `now` minus `months` calendar months.
fn months_before(now: i64, months: u32) -> i64 {
    DateTime::<Utc>::from_timestamp(now, 0)
        .and_then(|t| t.checked_sub_months(Months::new(months)))
        .map_or(now - i64::from(months) * 30 * DAY, |t| t.timestamp())
}

/// Plays `scenario` with `actor` (a new customer) ending at `now`, subscribing to `paid`; the
/// actor's events, by step.
pub(crate) fn play(
    scenario: Scenario,
    actor: &mut Actor<'_>,
    now: i64,
    paid: &Paid,
) -> Vec<(String, usize)> {
    let mut steps = Steps::new();
    match scenario {
        Scenario::SubscriptionLifecycle => lifecycle(actor, &mut steps, now, paid),
        Scenario::OneTimeRefundDispute => one_time(actor, &mut steps, now),
        Scenario::TrialConversion => trial(actor, &mut steps, now, paid),
    }
    steps.steps
}

/// Splits the journey's events into the steps `play` recorded.
pub(crate) fn split(steps: Vec<(String, usize)>, events: Vec<Planned>) -> Vec<Step> {
    Steps { steps }.split(events)
}

/// Bought (`paid`), renewed, the third payment failing (past due, in grace), the retry
/// succeeding, canceled at period end and then ended.
fn lifecycle(actor: &mut Actor<'_>, steps: &mut Steps, now: i64, paid: &Paid) {
    let price = paid.price;
    // The third period started yesterday, so its grace is running now.
    let p3 = now - DAY;
    let (p1, p2) = (months_before(p3, 2), months_before(p3, 1));
    actor.sim = p1;
    actor.wall = p1;
    steps.start(
        format!("subscription bought ({}, {})", paid.tier, paid.billed()),
        actor,
    );
    let customer = actor.customer.clone();
    actor.emit(p1, Intent::Customer(customer));
    let mut sub = actor.subscription(price, SubscriptionStatus::Active, None);
    let line = actor.period_line(price, sub.period);
    let mut invoice = actor.invoice(&sub, "subscription_create", vec![line], (p1, p1));
    sub.latest_invoice = Some(invoice.id.clone());
    actor.snapshot(p1 + 2, "customer.subscription.created", &sub, None);
    actor.attempt(&mut invoice, true, false, p1 + 3);

    steps.start("renewed for a second month", actor);
    actor.sim = p2;
    let before = sub.clone();
    sub.period = (p2, add_interval(p2, price));
    let line = actor.period_line(price, sub.period);
    let mut invoice = actor.invoice(&sub, "subscription_cycle", vec![line], (p1, p2));
    sub.latest_invoice = Some(invoice.id.clone());
    actor.snapshot(p2, "customer.subscription.updated", &sub, Some(&before));
    actor.attempt(&mut invoice, true, false, p2 + 60);

    steps.start("the third payment fails: past due, in grace", actor);
    actor.sim = p3;
    let before = sub.clone();
    sub.period = (p3, add_interval(p3, price));
    let line = actor.period_line(price, sub.period);
    let mut failing = actor.invoice(&sub, "subscription_cycle", vec![line], (p2, p3));
    sub.latest_invoice = Some(failing.id.clone());
    actor.snapshot(p3, "customer.subscription.updated", &sub, Some(&before));
    actor.attempt(&mut failing, false, false, p3 + 3_600);
    let before = sub.clone();
    sub.status = SubscriptionStatus::PastDue;
    actor.snapshot(
        p3 + 3_600,
        "customer.subscription.updated",
        &sub,
        Some(&before),
    );

    steps.start("the retry succeeds: recovered", actor);
    let at = now - HOUR;
    actor.sim = at;
    actor.attempt(&mut failing, true, false, at);
    let before = sub.clone();
    sub.status = SubscriptionStatus::Active;
    actor.snapshot(at, "customer.subscription.updated", &sub, Some(&before));

    steps.start("canceled at period end, then ended early by support", actor);
    let before = sub.clone();
    sub.cancel_at_period_end = true;
    sub.cancel_at = Some(sub.period.1);
    sub.cancellation_reason = Some("cancellation_requested");
    actor.snapshot(
        now - 1_800,
        "customer.subscription.updated",
        &sub,
        Some(&before),
    );
    let before = sub.clone();
    sub.status = SubscriptionStatus::Canceled;
    sub.canceled_at = Some(now - 60);
    sub.ended_at = Some(now - 60);
    actor.snapshot(
        now - 60,
        "customer.subscription.deleted",
        &sub,
        Some(&before),
    );
}

/// A one-time purchase (payment-mode Checkout), a partial refund, a dispute opened on the rest
/// and lost.
fn one_time(actor: &mut Actor<'_>, steps: &mut Steps, now: i64) {
    let start = now - 10 * DAY;
    actor.sim = start;
    actor.wall = start;
    steps.start(
        "one-time purchase (a credit pack, Checkout in payment mode)",
        actor,
    );
    let customer = actor.customer.clone();
    actor.emit(start, Intent::Customer(customer));
    actor.wall = start + 30;
    let mut charge = actor.purchase();

    steps.start("partial refund (a quarter)", actor);
    charge.previous_refunded = 0;
    charge.amount_refunded = charge.amount / 4;
    actor.emit(now - 5 * DAY, Intent::ChargeRefunded(charge.clone()));

    steps.start("the customer disputes the rest", actor);
    let mut dispute = DisputeObj {
        id: actor.account.ids.long(actor.rng, "du"),
        charge: charge.id.clone(),
        payment_intent: charge.payment_intent.clone(),
        amount: charge.amount - charge.amount_refunded,
        status: "needs_response",
        reason: "product_not_received",
        created: now - 3 * DAY,
    };
    actor.emit(
        now - 3 * DAY,
        Intent::Dispute {
            event_type: "charge.dispute.created",
            dispute: dispute.clone(),
        },
    );

    steps.start("the dispute is lost", actor);
    dispute.status = "lost";
    actor.emit(
        now - HOUR,
        Intent::Dispute {
            event_type: "charge.dispute.closed",
            dispute,
        },
    );
}

/// A 14-day trial of `paid` that converts to a paid period.
fn trial(actor: &mut Actor<'_>, steps: &mut Steps, now: i64, paid: &Paid) {
    let price = paid.price;
    let trial_end = now - HOUR;
    let start = trial_end - 14 * DAY;
    actor.sim = start;
    actor.wall = start;
    steps.start(format!("trial started ({}, 14 days)", paid.tier), actor);
    let customer = actor.customer.clone();
    actor.emit(start, Intent::Customer(customer));
    let mut sub = actor.subscription(price, SubscriptionStatus::Trialing, Some(14));
    let line = actor.line(
        price,
        0,
        sub.period,
        false,
        format!("Trial period for {}", price.product_name),
    );
    let mut invoice = actor.invoice(&sub, "subscription_create", vec![line], (start, start));
    sub.latest_invoice = Some(invoice.id.clone());
    actor.snapshot(start + 2, "customer.subscription.created", &sub, None);
    actor.attempt(&mut invoice, true, true, start + 3);

    steps.start("the trial ends in three days", actor);
    actor.snapshot(
        trial_end - 3 * DAY,
        "customer.subscription.trial_will_end",
        &sub,
        None,
    );

    steps.start("the trial converts: first paid month", actor);
    actor.sim = trial_end;
    let before = sub.clone();
    sub.status = SubscriptionStatus::Active;
    sub.period = (trial_end, add_interval(trial_end, price));
    let line = actor.period_line(price, sub.period);
    let mut invoice = actor.invoice(&sub, "subscription_cycle", vec![line], (start, trial_end));
    sub.latest_invoice = Some(invoice.id.clone());
    actor.snapshot(
        trial_end,
        "customer.subscription.updated",
        &sub,
        Some(&before),
    );
    actor.attempt(&mut invoice, true, false, trial_end + 1);
}
