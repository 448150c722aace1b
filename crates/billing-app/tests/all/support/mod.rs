//! Shared set-up of the app's integration tests: the example catalog, a fresh database per
//! test, and builders of realistic events of one purchase story.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use billing_app::{AppSettings, BillingApp};
use billing_domain::facts::{
    CheckoutMode, CheckoutSession, CustomerFacts, InvoiceChange, InvoiceFacts, SubscriptionChange,
    SubscriptionSnapshot,
};
use billing_domain::{BillingEvent, Catalog, Currency, Fact, Money, SubscriptionStatus};
use billing_ports::{BillingStore, ManualClock, StoreError, SubscriptionRecord, TxFuture};
use billing_store_diesel::DieselStore;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

/// The catalog shipped with the repository.
pub fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::from_toml_str(include_str!("../../../../../plans.toml")).unwrap())
}

/// The moment the story starts.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap()
}

/// An app over `store` with the example catalog and a clock stopped at `t0`.
pub fn app<S: BillingStore>(store: S) -> BillingApp<S> {
    BillingApp::new(
        Arc::new(store),
        catalog(),
        Arc::new(ManualClock::new(t0())),
        None,
        AppSettings::default(),
    )
}

/// Ids of one customer's purchase, unique per `tag` so several stories share a database.
#[derive(Clone, Debug)]
pub struct Story {
    pub tag: String,
    pub user: String,
    pub customer: String,
    pub subscription: String,
}

impl Story {
    pub fn new(tag: &str) -> Self {
        Self {
            tag: tag.to_owned(),
            user: format!("user_{tag}"),
            customer: format!("cus_{tag}"),
            subscription: format!("sub_{tag}"),
        }
    }

    fn event(&self, name: &str, event_type: &str, at: i64, fact: Fact) -> BillingEvent {
        BillingEvent {
            id: format!("evt_{}_{name}", self.tag),
            event_type: event_type.to_owned(),
            api_version: Some("2025-03-31.basil".to_owned()),
            livemode: false,
            created: t0() + TimeDelta::seconds(at),
            fact,
        }
    }

    pub fn snapshot(&self, status: SubscriptionStatus, period: i64) -> SubscriptionSnapshot {
        let start = t0() + TimeDelta::days(30 * period);
        SubscriptionSnapshot {
            id: self.subscription.clone(),
            customer_id: self.customer.clone(),
            status,
            price_ids: vec!["price_pro_monthly".to_owned()],
            current_period_start: Some(start),
            current_period_end: Some(start + TimeDelta::days(30)),
            cancel_at_period_end: false,
            cancel_at: None,
            canceled_at: None,
            ended_at: None,
            trial_end: None,
            metadata_user_id: Some(self.user.clone()),
        }
    }

    pub fn checkout(&self, at: i64) -> BillingEvent {
        self.event(
            "checkout",
            "checkout.session.completed",
            at,
            Fact::CheckoutCompleted(CheckoutSession {
                id: format!("cs_{}", self.tag),
                mode: CheckoutMode::Subscription,
                customer_id: Some(self.customer.clone()),
                customer_email: Some(format!("{}@example.com", self.user)),
                client_reference_id: Some(self.user.clone()),
                metadata_user_id: None,
                subscription_id: Some(self.subscription.clone()),
                payment_intent_id: None,
                amount_total: Some(usd(2000)),
                payment_status: Some("paid".to_owned()),
            }),
        )
    }

    pub fn customer_created(&self, at: i64) -> BillingEvent {
        self.event(
            "customer_created",
            "customer.created",
            at,
            Fact::Customer {
                customer: CustomerFacts {
                    id: self.customer.clone(),
                    email: Some(format!("{}@example.com", self.user)),
                    metadata_user_id: Some(self.user.clone()),
                },
                deleted: false,
            },
        )
    }

    pub fn subscription(
        &self,
        name: &str,
        change: SubscriptionChange,
        at: i64,
        snapshot: SubscriptionSnapshot,
    ) -> BillingEvent {
        let event_type = match change {
            SubscriptionChange::Created => "customer.subscription.created",
            SubscriptionChange::Updated => "customer.subscription.updated",
            SubscriptionChange::Deleted => "customer.subscription.deleted",
            SubscriptionChange::Paused => "customer.subscription.paused",
            SubscriptionChange::Resumed => "customer.subscription.resumed",
            SubscriptionChange::TrialWillEnd => "customer.subscription.trial_will_end",
        };
        self.event(
            name,
            event_type,
            at,
            Fact::Subscription {
                change,
                subscription: snapshot,
            },
        )
    }

    pub fn invoice(
        &self,
        name: &str,
        change: InvoiceChange,
        at: i64,
        invoice: &str,
        period: i64,
        paid: i64,
    ) -> BillingEvent {
        let event_type = match change {
            InvoiceChange::Paid => "invoice.paid",
            InvoiceChange::PaymentSucceeded => "invoice.payment_succeeded",
            InvoiceChange::PaymentFailed => "invoice.payment_failed",
        };
        let start = t0() + TimeDelta::days(30 * period);
        self.event(
            name,
            event_type,
            at,
            Fact::Invoice {
                change,
                invoice: InvoiceFacts {
                    id: format!("in_{}_{invoice}", self.tag),
                    customer_id: Some(self.customer.clone()),
                    subscription_id: Some(self.subscription.clone()),
                    status: Some(if paid > 0 { "paid" } else { "open" }.to_owned()),
                    billing_reason: Some("subscription_cycle".to_owned()),
                    amount_paid: usd(paid),
                    amount_due: usd(2000),
                    attempt_count: 1,
                    period_start: Some(start),
                    period_end: Some(start + TimeDelta::days(30)),
                    next_payment_attempt: None,
                    price_ids: vec!["price_pro_monthly".to_owned()],
                },
            },
        )
    }
}

pub fn usd(amount: i64) -> Money {
    Money::new(amount, Currency::parse("usd").unwrap())
}

/// Reads a subscription row.
pub async fn subscription<S: BillingStore>(store: &S, id: &str) -> Option<SubscriptionRecord> {
    let id = id.to_owned();
    store
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { tx.subscription(&id).await })
        })
        .await
        .unwrap()
}

/// Reads a user's credit balance.
pub async fn credits<S: BillingStore>(store: &S, user: &str) -> i64 {
    let user = user.to_owned();
    store
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { tx.credit_balance(&user).await })
        })
        .await
        .unwrap()
}

/// Reads the user linked to a customer.
pub async fn customer_user<S: BillingStore>(store: &S, customer: &str) -> Option<String> {
    let customer = customer.to_owned();
    store
        .transaction(move |tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { Ok(tx.customer(&customer).await?.and_then(|c| c.user_id)) })
        })
        .await
        .unwrap()
}

/// Keeps a store type in scope for callers that name it.
pub type Store = DieselStore;
