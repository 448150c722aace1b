//! The two purchase stories the fixtures tell, and the facts each fixture must yield.

use std::path::PathBuf;

use billing_domain::facts::{
    ChargeFacts, CheckoutMode, CheckoutSession, CustomerFacts, DisputeFacts, InvoiceChange,
    InvoiceFacts, PaymentIntentChange, PaymentIntentFacts, RefundFacts, SubscriptionChange,
    SubscriptionSnapshot,
};
use billing_domain::{BillingEvent, Currency, Fact, Money, SubscriptionStatus};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// The ids, amounts and times of one fixture folder.
pub(crate) struct Story {
    pub(crate) folder: &'static str,
    pub(crate) livemode: bool,
    pub(crate) currency: &'static str,
    pub(crate) amount: i64,
    pub(crate) refund_amount: i64,
    pub(crate) dispute_amount: i64,
    pub(crate) email: &'static str,
    pub(crate) cus: &'static str,
    pub(crate) sub: &'static str,
    pub(crate) cs: &'static str,
    pub(crate) in_main: &'static str,
    pub(crate) pi: &'static str,
    pub(crate) ch_ok: &'static str,
    /// The charge of the first, failed, payment attempt.
    pub(crate) ch_failed: &'static str,
    pub(crate) re: &'static str,
    pub(crate) du: &'static str,
    pub(crate) trial_start: &'static str,
    pub(crate) trial_end: &'static str,
    pub(crate) paused_period_end: &'static str,
    pub(crate) resumed_at: &'static str,
    pub(crate) main_period_end: &'static str,
    pub(crate) next_payment_attempt: &'static str,
    pub(crate) canceled_at: &'static str,
    /// `(type, event id, created, api_version)` in story order.
    pub(crate) events: &'static [(&'static str, &'static str, &'static str, &'static str)],
}

pub(crate) const USER_ID: &str = "user_123";
pub(crate) const PRICE_ID: &str = "price_pro_monthly";

pub(crate) const PRE_BASIL: Story = Story {
    folder: "pre-basil",
    livemode: false,
    currency: "usd",
    amount: 2000,
    refund_amount: 500,
    dispute_amount: 1500,
    email: "jenny.rosen@example.com",
    cus: "cus_sMBBDUSit3J457",
    sub: "sub_1KaINlQbM4kL2xHt0Ozs5blY",
    cs: "cs_test_a1y0sb62utYXHLqe1JLPnGWdkwjLufnVIYUudDEvtlwedMtnDonxLIkLdY",
    in_main: "in_1nGHF4QbM4kL2xHtOpEzlMCe",
    pi: "pi_3t9cKoQbM4kL2xHtMZyrbacw",
    ch_ok: "ch_3t9cKoQbM4kL2xHtlzvlIjc8",
    ch_failed: "ch_3t9cKoQbM4kL2xHtMZyrbacw",
    re: "re_3t9cKoQbM4kL2xHtC0gb0WiO",
    du: "du_1R6kzeQbM4kL2xHtCgtm7jGX",
    trial_start: "2024-07-01T09:15:56Z",
    trial_end: "2024-07-15T09:15:56Z",
    paused_period_end: "2024-08-15T09:15:56Z",
    resumed_at: "2024-07-16T13:37:44Z",
    main_period_end: "2024-08-16T13:37:44Z",
    next_payment_attempt: "2024-07-19T14:39:36Z",
    canceled_at: "2024-07-26T23:13:09Z",
    events: &[
        (
            "customer.created",
            "evt_1UpVMnQbM4kL2xHtmg4K7bzD",
            "2024-07-01T09:14:22Z",
            "2023-10-16",
        ),
        (
            "customer.subscription.created",
            "evt_193tR5QbM4kL2xHtgTyq8ngu",
            "2024-07-01T09:15:57Z",
            "2023-10-16",
        ),
        (
            "checkout.session.completed",
            "evt_1qCprhQbM4kL2xHtfDFW2xNG",
            "2024-07-01T09:15:59Z",
            "2023-10-16",
        ),
        (
            "customer.subscription.trial_will_end",
            "evt_1xmSbMQbM4kL2xHtZcO8soj6",
            "2024-07-12T09:15:56Z",
            "2023-10-16",
        ),
        (
            "customer.subscription.paused",
            "evt_1NSV8BQbM4kL2xHtxsnh7O7h",
            "2024-07-15T09:16:34Z",
            "2024-06-20",
        ),
        (
            "customer.updated",
            "evt_178HhIQbM4kL2xHtxmshdYsn",
            "2024-07-16T13:36:09Z",
            "2024-06-20",
        ),
        (
            "customer.subscription.resumed",
            "evt_1sl1p4QbM4kL2xHt81AmTJvF",
            "2024-07-16T13:37:45Z",
            "2024-06-20",
        ),
        (
            "payment_intent.payment_failed",
            "evt_3t9cKoQbM4kL2xHtoRVzDqOz",
            "2024-07-16T13:37:47Z",
            "2024-06-20",
        ),
        (
            "invoice.payment_failed",
            "evt_1C3kzYQbM4kL2xHtCTRo8KnA",
            "2024-07-16T13:37:47Z",
            "2024-06-20",
        ),
        (
            "customer.subscription.updated",
            "evt_1NSMsFQbM4kL2xHtcgRLIoZg",
            "2024-07-16T13:37:48Z",
            "2024-06-20",
        ),
        (
            "payment_intent.succeeded",
            "evt_3t9cKoQbM4kL2xHtMoDXZBQo",
            "2024-07-19T14:39:51Z",
            "2024-06-20",
        ),
        (
            "invoice.payment_succeeded",
            "evt_1Js0nRQbM4kL2xHtifj6v57k",
            "2024-07-19T14:39:52Z",
            "2024-06-20",
        ),
        (
            "invoice.paid",
            "evt_1F32sjQbM4kL2xHtfjg0msHj",
            "2024-07-19T14:39:52Z",
            "2024-06-20",
        ),
        (
            "charge.refunded",
            "evt_3t9cKoQbM4kL2xHtzdELRtAM",
            "2024-07-22T16:47:02Z",
            "2024-06-20",
        ),
        (
            "charge.refund.updated",
            "evt_3t9cKoQbM4kL2xHtalJ4hgtw",
            "2024-07-24T22:47:01Z",
            "2024-06-20",
        ),
        (
            "charge.dispute.created",
            "evt_3t9cKoQbM4kL2xHtJFoKQL4h",
            "2024-07-26T20:11:08Z",
            "2024-06-20",
        ),
        (
            "customer.subscription.deleted",
            "evt_1BHAWEQbM4kL2xHtaHHMk0mz",
            "2024-07-26T23:13:10Z",
            "2024-06-20",
        ),
        (
            "charge.dispute.closed",
            "evt_3t9cKoQbM4kL2xHt4jIsDR0h",
            "2024-09-16T22:11:18Z",
            "2024-06-20",
        ),
        (
            "customer.deleted",
            "evt_1olGp5QbM4kL2xHteULkHSwx",
            "2024-09-19T23:11:18Z",
            "2024-06-20",
        ),
    ],
};

pub(crate) const BASIL: Story = Story {
    folder: "basil",
    livemode: true,
    currency: "eur",
    amount: 1900,
    refund_amount: 400,
    dispute_amount: 1500,
    email: "jonas.becker@example.com",
    cus: "cus_pT1rWkhYJIcKoB",
    sub: "sub_1C6diUHm7Rq2Zp4V0mj4ZzRu",
    cs: "cs_live_a1M5EEj9DyZuQDOezRJeJrcoKx2S51eNwvUmLdhqJFyYbiB25Hus44uXZL",
    in_main: "in_1DI7IyHm7Rq2Zp4Vsv86PToy",
    pi: "pi_3uTIIiHm7Rq2Zp4VLSwGud5C",
    ch_ok: "ch_3uTIIiHm7Rq2Zp4VJOGqBevU",
    ch_failed: "ch_3uTIIiHm7Rq2Zp4VLSwGud5C",
    re: "re_3uTIIiHm7Rq2Zp4VrOZtF3Eb",
    du: "du_16Xo6UHm7Rq2Zp4VbSOhHOvF",
    trial_start: "2026-09-01T08:42:41Z",
    trial_end: "2026-09-15T08:42:41Z",
    paused_period_end: "2026-10-15T08:42:41Z",
    resumed_at: "2026-09-16T13:04:29Z",
    main_period_end: "2026-10-16T13:04:29Z",
    next_payment_attempt: "2026-09-19T14:06:21Z",
    canceled_at: "2026-10-02T10:15:44Z",
    events: &[
        (
            "customer.created",
            "evt_10WCoEHm7Rq2Zp4VGzmam8mx",
            "2026-09-01T08:41:07Z",
            "2025-03-31.basil",
        ),
        (
            "customer.subscription.created",
            "evt_1OzH5vHm7Rq2Zp4VjlVMZ5Yj",
            "2026-09-01T08:42:42Z",
            "2025-03-31.basil",
        ),
        (
            "checkout.session.completed",
            "evt_1irXnjHm7Rq2Zp4VeAwBFR57",
            "2026-09-01T08:42:44Z",
            "2025-03-31.basil",
        ),
        (
            "customer.subscription.trial_will_end",
            "evt_1oVpudHm7Rq2Zp4VTMjGjKQQ",
            "2026-09-12T08:42:41Z",
            "2025-03-31.basil",
        ),
        (
            "customer.subscription.paused",
            "evt_1ME4xAHm7Rq2Zp4Va0PCdqk4",
            "2026-09-15T08:43:19Z",
            "2025-03-31.basil",
        ),
        (
            "customer.updated",
            "evt_1jGJF6Hm7Rq2Zp4VBk6V7M0w",
            "2026-09-16T13:02:54Z",
            "2025-03-31.basil",
        ),
        (
            "customer.subscription.resumed",
            "evt_1jyqS4Hm7Rq2Zp4VDaoxlPc2",
            "2026-09-16T13:04:30Z",
            "2025-03-31.basil",
        ),
        (
            "payment_intent.payment_failed",
            "evt_3uTIIiHm7Rq2Zp4V4UR7ygmy",
            "2026-09-16T13:04:32Z",
            "2025-03-31.basil",
        ),
        (
            "invoice.payment_failed",
            "evt_1804yjHm7Rq2Zp4VFEf7eyK6",
            "2026-09-16T13:04:32Z",
            "2025-03-31.basil",
        ),
        (
            "customer.subscription.updated",
            "evt_10C2vHHm7Rq2Zp4Vp0MtQ4ir",
            "2026-09-16T13:04:33Z",
            "2025-03-31.basil",
        ),
        (
            "payment_intent.succeeded",
            "evt_3uTIIiHm7Rq2Zp4V5XYoFBPv",
            "2026-09-19T14:06:36Z",
            "2025-03-31.basil",
        ),
        (
            "invoice.payment_succeeded",
            "evt_1jIPr9Hm7Rq2Zp4VE9qjdtLA",
            "2026-09-19T14:06:37Z",
            "2025-03-31.basil",
        ),
        (
            "invoice.paid",
            "evt_1BARpPHm7Rq2Zp4VZP83oEtP",
            "2026-09-19T14:06:37Z",
            "2025-03-31.basil",
        ),
        (
            "charge.refunded",
            "evt_3uTIIiHm7Rq2Zp4VZVTSbX7H",
            "2026-09-22T16:13:47Z",
            "2025-03-31.basil",
        ),
        (
            "charge.refund.updated",
            "evt_3uTIIiHm7Rq2Zp4VKEUCKye5",
            "2026-09-24T22:13:46Z",
            "2025-03-31.basil",
        ),
        (
            "charge.dispute.created",
            "evt_3uTIIiHm7Rq2Zp4VLzPKGXjT",
            "2026-09-26T19:37:53Z",
            "2025-03-31.basil",
        ),
        (
            "customer.subscription.deleted",
            "evt_1RlzWcHm7Rq2Zp4VKOhLVGUM",
            "2026-10-02T10:15:45Z",
            "2026-09-30.endive",
        ),
        (
            "charge.dispute.closed",
            "evt_3uTIIiHm7Rq2Zp4V3F2TmdaH",
            "2026-11-17T21:38:03Z",
            "2026-09-30.endive",
        ),
        (
            "customer.deleted",
            "evt_17nm9dHm7Rq2Zp4V9eVIpvt6",
            "2026-11-20T22:38:03Z",
            "2026-09-30.endive",
        ),
    ],
};

/// Both stories.
pub(crate) const STORIES: [&Story; 2] = [&PRE_BASIL, &BASIL];

/// The folder of single real-world bodies (several API versions, no story), named
/// `<scenario>.<event type>.json`; their facts are spelled out in `tests/wire/real_world.rs`.
pub(crate) const REAL_WORLD: &str = "real-world";

/// Every fixture folder.
pub(crate) const FOLDERS: [&str; 3] = [PRE_BASIL.folder, BASIL.folder, REAL_WORLD];

/// The names (without `.json`) of every fixture in `folder`, sorted.
pub(crate) fn fixture_names(folder: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// A UTC time from RFC 3339.
pub(crate) fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

/// The path of one fixture.
pub(crate) fn fixture_path(folder: &str, event_type: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder)
        .join(format!("{event_type}.json"))
}

/// The bytes of one fixture.
pub(crate) fn fixture(folder: &str, event_type: &str) -> Vec<u8> {
    let path = fixture_path(folder, event_type);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// One fixture as a JSON value, to mutate.
pub(crate) fn fixture_json(folder: &str, event_type: &str) -> Value {
    serde_json::from_slice(&fixture(folder, event_type)).unwrap()
}

/// Serializes a (mutated) fixture back to bytes.
pub(crate) fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

impl Story {
    pub(crate) fn money(&self, amount: i64) -> Money {
        Money::new(amount, Currency::parse(self.currency).unwrap())
    }

    /// The event id of a fixture.
    pub(crate) fn event_id(&self, event_type: &str) -> &'static str {
        self.event(event_type).1
    }

    fn event(
        &self,
        event_type: &str,
    ) -> &'static (&'static str, &'static str, &'static str, &'static str) {
        self.events
            .iter()
            .find(|(t, ..)| *t == event_type)
            .unwrap_or_else(|| panic!("no {event_type} in the {} story", self.folder))
    }

    /// The event each fixture must parse to.
    pub(crate) fn expected(&self, event_type: &str) -> BillingEvent {
        let &(event_type, id, created, api_version) = self.event(event_type);
        BillingEvent {
            id: id.to_owned(),
            event_type: event_type.to_owned(),
            api_version: Some(api_version.to_owned()),
            livemode: self.livemode,
            created: at(created),
            fact: self.expected_fact(event_type),
        }
    }

    fn expected_fact(&self, event_type: &str) -> Fact {
        match event_type {
            "checkout.session.completed" => Fact::CheckoutCompleted(self.checkout()),
            "customer.created" | "customer.updated" => Fact::Customer {
                customer: self.customer(),
                deleted: false,
            },
            "customer.deleted" => Fact::Customer {
                customer: self.customer(),
                deleted: true,
            },
            "customer.subscription.created" => self.subscription(SubscriptionChange::Created),
            "customer.subscription.trial_will_end" => {
                self.subscription(SubscriptionChange::TrialWillEnd)
            }
            "customer.subscription.paused" => self.subscription(SubscriptionChange::Paused),
            "customer.subscription.resumed" => self.subscription(SubscriptionChange::Resumed),
            "customer.subscription.updated" => self.subscription(SubscriptionChange::Updated),
            "customer.subscription.deleted" => self.subscription(SubscriptionChange::Deleted),
            "invoice.payment_failed" => self.invoice(InvoiceChange::PaymentFailed),
            "invoice.payment_succeeded" => self.invoice(InvoiceChange::PaymentSucceeded),
            "invoice.paid" => self.invoice(InvoiceChange::Paid),
            "payment_intent.payment_failed" => {
                self.payment_intent(PaymentIntentChange::PaymentFailed)
            }
            "payment_intent.succeeded" => self.payment_intent(PaymentIntentChange::Succeeded),
            "charge.refunded" => Fact::ChargeRefunded(ChargeFacts {
                id: self.ch_ok.to_owned(),
                payment_intent_id: Some(self.pi.to_owned()),
                customer_id: Some(self.cus.to_owned()),
                amount: self.money(self.amount),
                amount_refunded: self.refund_amount,
            }),
            "charge.refund.updated" => Fact::RefundUpdated(RefundFacts {
                id: self.re.to_owned(),
                charge_id: Some(self.ch_ok.to_owned()),
                payment_intent_id: Some(self.pi.to_owned()),
                amount: self.money(self.refund_amount),
                status: "succeeded".to_owned(),
            }),
            "charge.dispute.created" => self.dispute(false),
            "charge.dispute.closed" => self.dispute(true),
            other => panic!("no expectation for {other}"),
        }
    }

    pub(crate) fn checkout(&self) -> CheckoutSession {
        CheckoutSession {
            id: self.cs.to_owned(),
            mode: CheckoutMode::Subscription,
            customer_id: Some(self.cus.to_owned()),
            customer_email: Some(self.email.to_owned()),
            client_reference_id: Some(USER_ID.to_owned()),
            metadata_user_id: Some(USER_ID.to_owned()),
            subscription_id: Some(self.sub.to_owned()),
            payment_intent_id: None,
            amount_total: Some(self.money(0)),
            payment_status: Some("no_payment_required".to_owned()),
        }
    }

    pub(crate) fn customer(&self) -> CustomerFacts {
        CustomerFacts {
            id: self.cus.to_owned(),
            email: Some(self.email.to_owned()),
            metadata_user_id: Some(USER_ID.to_owned()),
        }
    }

    /// The subscription as the event of `change` renders it.
    pub(crate) fn snapshot(&self, change: SubscriptionChange) -> SubscriptionSnapshot {
        let (status, start, end) = match change {
            SubscriptionChange::Created | SubscriptionChange::TrialWillEnd => (
                SubscriptionStatus::Trialing,
                self.trial_start,
                self.trial_end,
            ),
            SubscriptionChange::Paused => (
                SubscriptionStatus::Paused,
                self.trial_end,
                self.paused_period_end,
            ),
            SubscriptionChange::Resumed => (
                SubscriptionStatus::Active,
                self.resumed_at,
                self.main_period_end,
            ),
            SubscriptionChange::Updated => (
                SubscriptionStatus::PastDue,
                self.resumed_at,
                self.main_period_end,
            ),
            SubscriptionChange::Deleted => (
                SubscriptionStatus::Canceled,
                self.resumed_at,
                self.main_period_end,
            ),
        };
        let canceled = (change == SubscriptionChange::Deleted).then(|| at(self.canceled_at));
        SubscriptionSnapshot {
            id: self.sub.to_owned(),
            customer_id: self.cus.to_owned(),
            status,
            price_ids: vec![PRICE_ID.to_owned()],
            current_period_start: Some(at(start)),
            current_period_end: Some(at(end)),
            cancel_at_period_end: false,
            cancel_at: None,
            canceled_at: canceled,
            ended_at: canceled,
            trial_end: Some(at(self.trial_end)),
            metadata_user_id: Some(USER_ID.to_owned()),
        }
    }

    fn subscription(&self, change: SubscriptionChange) -> Fact {
        Fact::Subscription {
            change,
            subscription: self.snapshot(change),
        }
    }

    /// The story's invoice, failed on its first attempt or paid on its second.
    pub(crate) fn invoice_facts(&self, paid: bool) -> InvoiceFacts {
        InvoiceFacts {
            id: self.in_main.to_owned(),
            customer_id: Some(self.cus.to_owned()),
            subscription_id: Some(self.sub.to_owned()),
            status: Some(if paid { "paid" } else { "open" }.to_owned()),
            billing_reason: Some("subscription_update".to_owned()),
            amount_paid: self.money(if paid { self.amount } else { 0 }),
            amount_due: self.money(self.amount),
            attempt_count: if paid { 2 } else { 1 },
            // From the subscription line, not the invoice's own (instantaneous) period.
            period_start: Some(at(self.resumed_at)),
            period_end: Some(at(self.main_period_end)),
            next_payment_attempt: (!paid).then(|| at(self.next_payment_attempt)),
            price_ids: vec![PRICE_ID.to_owned()],
        }
    }

    fn invoice(&self, change: InvoiceChange) -> Fact {
        Fact::Invoice {
            change,
            invoice: self.invoice_facts(change != InvoiceChange::PaymentFailed),
        }
    }

    fn payment_intent(&self, change: PaymentIntentChange) -> Fact {
        let succeeded = change == PaymentIntentChange::Succeeded;
        Fact::PaymentIntent {
            change,
            payment_intent: PaymentIntentFacts {
                id: self.pi.to_owned(),
                customer_id: Some(self.cus.to_owned()),
                amount: self.money(self.amount),
                status: if succeeded {
                    "succeeded"
                } else {
                    "requires_payment_method"
                }
                .to_owned(),
                last_error: (!succeeded).then(|| "Your card has insufficient funds.".to_owned()),
                latest_charge_id: Some(
                    if succeeded {
                        self.ch_ok
                    } else {
                        self.ch_failed
                    }
                    .to_owned(),
                ),
                metadata_user_id: None,
            },
        }
    }

    fn dispute(&self, closed: bool) -> Fact {
        Fact::Dispute {
            closed,
            dispute: DisputeFacts {
                id: self.du.to_owned(),
                charge_id: Some(self.ch_ok.to_owned()),
                payment_intent_id: Some(self.pi.to_owned()),
                amount: self.money(self.dispute_amount),
                status: if closed { "lost" } else { "needs_response" }.to_owned(),
            },
        }
    }
}
