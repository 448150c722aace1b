//! The transactional store port.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::records::{
    Claim, CreditEntry, CustomerRecord, EventRecord, EventStatus, NewEvent, OrderRecord,
    PaymentRecord, StripeRequest, SubscriptionRecord, UsageRecord,
};

/// The future a unit of work returns.
pub type TxFuture<'a, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'a>>;

/// The store: runs units of work in transactions and answers queries outside them.
#[async_trait]
pub trait BillingStore: Send + Sync + 'static {
    /// Runs `work` in one database transaction: commits when it returns `Ok`, rolls back
    /// everything it wrote when it returns `Err` (or panics, or the process dies).
    async fn transaction<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'a> FnOnce(&'a mut dyn BillingTx) -> TxFuture<'a, T, E> + Send + 'static;

    /// In its own short transaction, records that applying `event` failed: status `failed`,
    /// attempts + 1, `error` kept. Never downgrades an event that is already done.
    async fn record_failure(
        &self,
        event: &NewEvent,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// One stored event.
    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError>;

    /// Deletes up to `batch` done events (processed, ignored, stale) received before `before`;
    /// returns how many were deleted. Failed events are never purged.
    async fn purge_events(&self, before: DateTime<Utc>, batch: u32) -> Result<u64, StoreError>;
}

/// What a unit of work may do inside its transaction.
#[async_trait]
pub trait BillingTx: Send {
    /// Claims an event for this transaction: inserts it as `received`, or takes over a
    /// `failed` one; concurrent claimers of one id wait for the holder and then see it done.
    async fn claim_event(&mut self, event: &NewEvent) -> Result<Claim, StoreError>;

    /// Marks a claimed event done with `status` (processed, ignored or stale).
    async fn finish_event(
        &mut self,
        id: &str,
        status: EventStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The customer with this Stripe id.
    async fn customer(
        &mut self,
        stripe_customer_id: &str,
    ) -> Result<Option<CustomerRecord>, StoreError>;

    /// The customer linked to this user.
    async fn customer_of_user(
        &mut self,
        user_id: &str,
    ) -> Result<Option<CustomerRecord>, StoreError>;

    /// Inserts or updates the customer row (keyed by Stripe id).
    async fn save_customer(
        &mut self,
        customer: &CustomerRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Gives rows written before the customer's user was known (payments, orders, credits)
    /// to `user_id`.
    async fn attribute_customer_rows(
        &mut self,
        stripe_customer_id: &str,
        user_id: &str,
    ) -> Result<(), StoreError>;

    /// Serialises work on one key (a customer, a payment intent, a user's metric) until this
    /// transaction ends.
    async fn lock_key(&mut self, key: &str) -> Result<(), StoreError>;

    /// The subscription with this id, locked against concurrent writers until commit.
    async fn subscription(
        &mut self,
        stripe_subscription_id: &str,
    ) -> Result<Option<SubscriptionRecord>, StoreError>;

    /// Every subscription of a customer.
    async fn customer_subscriptions(
        &mut self,
        stripe_customer_id: &str,
    ) -> Result<Vec<SubscriptionRecord>, StoreError>;

    /// Inserts or updates a subscription (keyed by Stripe id).
    async fn save_subscription(
        &mut self,
        subscription: &SubscriptionRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The payments known by this payment intent id or by this charge id: none, one, or two
    /// (a row first known by its charge alone and one of its payment intent, to be merged).
    async fn payments_matching(
        &mut self,
        payment_intent_id: Option<&str>,
        charge_id: Option<&str>,
    ) -> Result<Vec<PaymentRecord>, StoreError>;

    /// Deletes the payment with this key (after merging it into another).
    async fn delete_payment(&mut self, key: &str) -> Result<(), StoreError>;

    /// Inserts or updates a payment (keyed by [`PaymentRecord::key`]).
    async fn save_payment(
        &mut self,
        payment: &PaymentRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Inserts an order unless one exists for its checkout session; true when inserted.
    async fn insert_order(
        &mut self,
        order: &OrderRecord,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The order paid by this payment intent.
    async fn order_by_payment_intent(
        &mut self,
        payment_intent_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError>;

    /// Updates an order's refund and dispute state.
    async fn update_order(
        &mut self,
        order: &OrderRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Adds a ledger entry unless one with its source key exists; true when added.
    async fn add_credit(&mut self, entry: &CreditEntry) -> Result<bool, StoreError>;

    /// The credit balance of a user (sum of their ledger entries).
    async fn credit_balance(&mut self, user_id: &str) -> Result<i64, StoreError>;

    /// The recorded usage request of this user with this idempotency key.
    async fn usage_by_key(
        &mut self,
        user_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<UsageRecord>, StoreError>;

    /// How much of `metric` the user used in the period starting at `period_start`.
    async fn usage_used(
        &mut self,
        user_id: &str,
        metric: &str,
        period_start: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Records a usage request; when allowed, adds its quantity to the period's counter.
    async fn record_usage(&mut self, usage: &UsageRecord) -> Result<(), StoreError>;

    /// Records an outgoing Stripe request unless one exists for its operation and stable id;
    /// returns the stored row either way (the caller compares fingerprints).
    async fn begin_stripe_request(
        &mut self,
        request: &StripeRequest,
        at: DateTime<Utc>,
    ) -> Result<StripeRequest, StoreError>;

    /// Stores the outcome of an outgoing request (status, Stripe id, response, error).
    async fn finish_stripe_request(
        &mut self,
        request: &StripeRequest,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}
