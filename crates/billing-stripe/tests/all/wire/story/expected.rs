//! The facts each fixture of a story must yield.

use billing_domain::facts::{
    ChargeFacts, CheckoutMode, CheckoutSession, CustomerFacts, DisputeFacts, InvoiceChange,
    InvoiceFacts, PaymentIntentChange, PaymentIntentFacts, RefundFacts, SubscriptionChange,
    SubscriptionSnapshot,
};
use billing_domain::{BillingEvent, Currency, Fact, Money, SubscriptionStatus};

use super::{PRICE_ID, Story, USER_ID, at};

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
