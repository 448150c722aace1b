//! Test doubles of the ports (feature `testing`), shared by the crates that test against them.
//!
//! - [`FaultyStore`] wraps any [`BillingStore`] and makes chosen calls fail, inside units of
//!   work and outside them, so a test can inject a failure midway through a transaction (after
//!   some rows were written) and check that nothing of it stays.
//! - [`FakeGateway`] stands in for Stripe's API behind the [`StripeGateway`] port. It keeps
//!   Stripe's idempotency-key semantics (a repeated key answers the object created first, a key
//!   re-used with other parameters is rejected), makes Stripe-shaped random ids and URLs
//!   (`cus_…`, `cs_test_…`, `https://checkout.stripe.com/…`), answers subscription fetches
//!   from the snapshots a test stored, records what it created, counts calls, and can be told
//!   to fail a call with a chosen [`GatewayError`] or to answer it late.
//!
//! Both are planned the same way: `fail(call, error)` fails every later `call`,
//! `fail_times(call, error, n)` the next `n` ones, `heal()` removes the plan, and
//! `calls(call)` counts the calls made (failed or not). Clones share the plan and the state,
//! so a test keeps one clone while the application uses another.
//!
//! [`StripeGateway`]: crate::StripeGateway
//! [`GatewayError`]: crate::GatewayError

mod gateway;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::error::StoreError;
use crate::feed::{ChangePurge, ChangeRecord, ChangeTx, FeedStore, GraceEnded, NewChange};
use crate::jobs::{LeaseStore, RetryStore};
use crate::records::{
    ApiKeyRecord, Claim, CreditEntry, CustomerRecord, EventFilter, EventRecord, EventStats,
    EventStatus, EventSummary, Failure, LeaseRecord, NewEvent, OrderRecord, PaymentRecord,
    ReconcileCursor, StripeRequest, SubscriptionRecord, UsageConsumed, UsageRequest,
};
use crate::store::{
    AccessRead, AccessRows, AccessTx, BillingRead, BillingStore, BillingTx, CreditRead, CreditTx,
    CustomerRead, CustomerTx, EventTx, LockTx, PaymentTx, ReconcileTx, StripeRequestTx,
    SubscriptionRead, SubscriptionTx, TxFuture, UsageRead,
};

pub use gateway::{FakeCheckoutSession, FakeCustomer, FakeGateway, FakePortalSession, GatewayCall};

/// One method of the store ports, as a [`FaultyStore`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // Each variant is the port method of the same name.
pub enum StoreCall {
    Transaction,
    Read,
    RecordFailure,
    Event,
    PurgeEvents,
    EventStats,
    ListEvents,
    InsertApiKey,
    ApiKeys,
    RevokeApiKey,
    LiveApiKeyHashes,
    ConsumeUsage,
    ClaimEvent,
    FinishEvent,
    LockKey,
    TryLockKey,
    WaitForLocks,
    Customer,
    CustomerOfUser,
    SaveCustomer,
    AttributeCustomerRows,
    CustomerSubscriptions,
    Subscription,
    SaveSubscription,
    PaymentsMatching,
    DeletePayment,
    SavePayment,
    InsertOrder,
    OrderByPaymentIntent,
    UpdateOrder,
    CreditBalance,
    AccessRows,
    AddCredit,
    UsageUsed,
    BeginStripeRequest,
    FinishStripeRequest,
    DueRetries,
    FailedEvents,
    TakeLease,
    RenewLease,
    ReleaseLease,
    Lease,
    ReconcileCursor,
    SaveReconcileCursor,
    InsertChange,
    ChangesAfter,
    ChangeHead,
    ChangeExists,
    ChangeHorizon,
    PurgeChanges,
    GracePeriodsEnded,
}

/// A planned failure: the error to return, and how many more times (`None`: every time).
#[derive(Debug)]
struct Fault<E> {
    error: E,
    remaining: Option<usize>,
}

/// The planned failures and the call counts of one test double and its clones, by call.
#[derive(Debug)]
struct Plan<C, E> {
    faults: HashMap<C, Fault<E>>,
    calls: HashMap<C, usize>,
}

impl<C, E> Default for Plan<C, E> {
    fn default() -> Self {
        Self {
            faults: HashMap::new(),
            calls: HashMap::new(),
        }
    }
}

impl<C: Copy + Eq + Hash, E: Clone> Plan<C, E> {
    /// Plans `call` to fail with `error`, `times` more times (`None`: every time).
    fn fail(&mut self, call: C, error: E, times: Option<usize>) {
        self.faults.insert(
            call,
            Fault {
                error,
                remaining: times,
            },
        );
    }

    /// How many times `call` was made.
    fn calls(&self, call: C) -> usize {
        self.calls.get(&call).copied().unwrap_or(0)
    }

    /// Counts `call` and returns its planned failure, if any.
    fn check(&mut self, call: C) -> Result<(), E> {
        *self.calls.entry(call).or_default() += 1;
        let Some(fault) = self.faults.get_mut(&call) else {
            return Ok(());
        };
        let error = fault.error.clone();
        match &mut fault.remaining {
            None => {}
            Some(0) => {
                self.faults.remove(&call);
                return Ok(());
            }
            Some(1) => {
                self.faults.remove(&call);
            }
            Some(n) => *n -= 1,
        }
        Err(error)
    }
}

/// The store's plan.
type StorePlan = Plan<StoreCall, StoreError>;

/// A [`BillingStore`] that forwards to `inner` except for the calls told to fail.
///
/// Clones share one plan: a test keeps a clone to change the plan while the application uses
/// another.
#[derive(Debug, Clone)]
pub struct FaultyStore<S> {
    inner: S,
    plan: Arc<Mutex<StorePlan>>,
}

impl<S> FaultyStore<S> {
    /// Wraps `inner`; nothing fails until [`FaultyStore::fail`] says so.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            plan: Arc::default(),
        }
    }

    /// Makes every later `call` return `error` (before reaching the inner store).
    pub fn fail(&self, call: StoreCall, error: StoreError) {
        self.lock().fail(call, error, None);
    }

    /// Makes the next `times` calls of `call` return `error`, then lets it through again.
    pub fn fail_times(&self, call: StoreCall, error: StoreError, times: usize) {
        self.lock().fail(call, error, Some(times));
    }

    /// Removes every planned failure.
    pub fn heal(&self) {
        self.lock().faults.clear();
    }

    /// How many times `call` was made (failed or not).
    pub fn calls(&self, call: StoreCall) -> usize {
        self.lock().calls(call)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, StorePlan> {
        lock(&self.plan)
    }
}

/// The value behind `mutex`, even when a test panicked while holding it (it stays usable).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counts `call` and returns its planned failure, if any.
fn check(plan: &Mutex<StorePlan>, call: StoreCall) -> Result<(), StoreError> {
    lock(plan).check(call)
}

#[async_trait]
impl<S: RetryStore> RetryStore for FaultyStore<S> {
    async fn due_retries(
        &self,
        now: DateTime<Utc>,
        max_attempts: u32,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        check(&self.plan, StoreCall::DueRetries)?;
        self.inner.due_retries(now, max_attempts, limit).await
    }

    async fn failed_events(
        &self,
        since: Option<DateTime<Utc>>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        check(&self.plan, StoreCall::FailedEvents)?;
        self.inner.failed_events(since, after, limit).await
    }
}

#[async_trait]
impl<S: FeedStore> FeedStore for FaultyStore<S> {
    async fn changes_after(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        check(&self.plan, StoreCall::ChangesAfter)?;
        self.inner.changes_after(after, limit).await
    }

    async fn change_head(&self) -> Result<i64, StoreError> {
        check(&self.plan, StoreCall::ChangeHead)?;
        self.inner.change_head().await
    }

    async fn change_exists(&self, seq: i64) -> Result<bool, StoreError> {
        check(&self.plan, StoreCall::ChangeExists)?;
        self.inner.change_exists(seq).await
    }

    async fn change_horizon(&self) -> Result<i64, StoreError> {
        check(&self.plan, StoreCall::ChangeHorizon)?;
        self.inner.change_horizon().await
    }

    async fn purge_changes(
        &self,
        before: DateTime<Utc>,
        batch: u32,
    ) -> Result<ChangePurge, StoreError> {
        check(&self.plan, StoreCall::PurgeChanges)?;
        self.inner.purge_changes(before, batch).await
    }

    async fn grace_periods_ended(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<GraceEnded>, StoreError> {
        check(&self.plan, StoreCall::GracePeriodsEnded)?;
        self.inner.grace_periods_ended(now, limit).await
    }
}

#[async_trait]
impl<S: LeaseStore> LeaseStore for FaultyStore<S> {
    async fn take_lease(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool, StoreError> {
        check(&self.plan, StoreCall::TakeLease)?;
        self.inner.take_lease(job, holder, now, ttl).await
    }

    async fn renew_lease(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool, StoreError> {
        check(&self.plan, StoreCall::RenewLease)?;
        self.inner.renew_lease(job, holder, now, ttl).await
    }

    async fn release_lease(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        next_run_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        check(&self.plan, StoreCall::ReleaseLease)?;
        self.inner
            .release_lease(job, holder, now, next_run_at)
            .await
    }

    async fn lease(&self, job: &str) -> Result<Option<LeaseRecord>, StoreError> {
        check(&self.plan, StoreCall::Lease)?;
        self.inner.lease(job).await
    }
}

#[async_trait]
impl<S: BillingStore> BillingStore for FaultyStore<S> {
    fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.inner.runtime()
    }

    async fn transaction<'b, T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'b,
        E: From<StoreError> + Send + 'b,
        F: for<'r> FnOnce(&'r mut dyn BillingTx) -> TxFuture<'b, 'r, T, E> + Send + 'b,
    {
        check(&self.plan, StoreCall::Transaction)?;
        let plan = Arc::clone(&self.plan);
        self.inner
            .transaction(move |tx| -> TxFuture<'b, '_, T, E> {
                Box::pin(async move {
                    let mut faulty = Faulty { inner: tx, plan };
                    work(&mut faulty).await
                })
            })
            .await
    }

    async fn read<'b, T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'b,
        E: From<StoreError> + Send + 'b,
        F: for<'r> FnOnce(&'r mut dyn BillingRead) -> TxFuture<'b, 'r, T, E> + Send + 'b,
    {
        check(&self.plan, StoreCall::Read)?;
        let plan = Arc::clone(&self.plan);
        self.inner
            .read(move |tx| -> TxFuture<'b, '_, T, E> {
                Box::pin(async move {
                    let mut faulty = Faulty { inner: tx, plan };
                    work(&mut faulty).await
                })
            })
            .await
    }

    async fn record_failure(
        &self,
        event: &NewEvent,
        failure: &Failure<'_>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        check(&self.plan, StoreCall::RecordFailure)?;
        self.inner.record_failure(event, failure, at).await
    }

    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        check(&self.plan, StoreCall::Event)?;
        self.inner.event(id).await
    }

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventSummary>, StoreError> {
        check(&self.plan, StoreCall::ListEvents)?;
        self.inner.list_events(filter).await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<bool, StoreError> {
        check(&self.plan, StoreCall::InsertApiKey)?;
        self.inner.insert_api_key(key).await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        check(&self.plan, StoreCall::ApiKeys)?;
        self.inner.api_keys().await
    }

    async fn revoke_api_key(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        check(&self.plan, StoreCall::RevokeApiKey)?;
        self.inner.revoke_api_key(name, at).await
    }

    async fn live_api_key_hashes(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        check(&self.plan, StoreCall::LiveApiKeyHashes)?;
        self.inner.live_api_key_hashes().await
    }

    async fn purge_events(&self, before: DateTime<Utc>, batch: u32) -> Result<u64, StoreError> {
        check(&self.plan, StoreCall::PurgeEvents)?;
        self.inner.purge_events(before, batch).await
    }

    async fn event_stats(&self, since: DateTime<Utc>) -> Result<EventStats, StoreError> {
        check(&self.plan, StoreCall::EventStats)?;
        self.inner.event_stats(since).await
    }

    async fn consume_usage(&self, request: &UsageRequest) -> Result<UsageConsumed, StoreError> {
        check(&self.plan, StoreCall::ConsumeUsage)?;
        self.inner.consume_usage(request).await
    }
}

/// A unit of work's view (`dyn BillingTx` or `dyn BillingRead`) with the plan applied.
struct Faulty<'r, X: ?Sized> {
    inner: &'r mut X,
    plan: Arc<Mutex<StorePlan>>,
}

/// Implements one port trait for [`Faulty`] by checking the plan, then forwarding.
macro_rules! forward {
    ($trait:ident: $(fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty => $call:ident;)+) => {
        #[async_trait]
        impl<X: $trait + ?Sized> $trait for Faulty<'_, X> {
            $(
                async fn $name(&mut self, $($arg: $ty),*) -> Result<$out, StoreError> {
                    check(&self.plan, StoreCall::$call)?;
                    self.inner.$name($($arg),*).await
                }
            )+
        }
    };
}

forward!(EventTx:
    fn claim_event(event: &NewEvent, status: EventStatus, at: DateTime<Utc>) -> Claim => ClaimEvent;
    fn finish_event(id: &str, status: EventStatus, at: DateTime<Utc>) -> () => FinishEvent;
);
forward!(LockTx:
    fn lock_key(key: &str) -> () => LockKey;
    fn try_lock_key(key: &str) -> bool => TryLockKey;
    fn wait_for_locks(wait: bool) -> () => WaitForLocks;
);
forward!(CustomerRead:
    fn customer(id: &str) -> Option<CustomerRecord> => Customer;
    fn customer_of_user(user_id: &str) -> Option<CustomerRecord> => CustomerOfUser;
);
forward!(CustomerTx:
    fn save_customer(customer: &CustomerRecord, at: DateTime<Utc>) -> () => SaveCustomer;
    fn attribute_customer_rows(id: &str, user_id: &str) -> () => AttributeCustomerRows;
);
forward!(SubscriptionRead:
    fn customer_subscriptions(id: &str) -> Vec<SubscriptionRecord> => CustomerSubscriptions;
);
forward!(SubscriptionTx:
    fn subscription(id: &str) -> Option<SubscriptionRecord> => Subscription;
    fn save_subscription(s: &SubscriptionRecord, at: DateTime<Utc>) -> () => SaveSubscription;
);
forward!(PaymentTx:
    fn payments_matching(pi: Option<&str>, charge: Option<&str>) -> Vec<PaymentRecord> => PaymentsMatching;
    fn delete_payment(key: &str) -> () => DeletePayment;
    fn save_payment(payment: &PaymentRecord, at: DateTime<Utc>) -> () => SavePayment;
    fn insert_order(order: &OrderRecord, at: DateTime<Utc>) -> bool => InsertOrder;
    fn order_by_payment_intent(pi: &str) -> Option<OrderRecord> => OrderByPaymentIntent;
    fn update_order(order: &OrderRecord, at: DateTime<Utc>) -> () => UpdateOrder;
);
forward!(CreditRead:
    fn credit_balance(user_id: &str) -> i64 => CreditBalance;
);
#[async_trait]
impl<X: AccessRead + ?Sized> AccessRead for Faulty<'_, X> {
    async fn access_rows(&mut self, user_id: &str) -> Result<AccessRows, StoreError> {
        check(&self.plan, StoreCall::AccessRows)?;
        self.inner.access_rows(user_id).await
    }

    fn access_writes(&self) -> Option<u64> {
        self.inner.access_writes()
    }
}
/// The provided method: the plan applies to its lock and its read.
impl<X: AccessTx + ?Sized> AccessTx for Faulty<'_, X> {}
forward!(CreditTx:
    fn add_credit(entry: &CreditEntry) -> bool => AddCredit;
);
forward!(UsageRead:
    fn usage_used(user_id: &str, metric: &str, start: DateTime<Utc>) -> u64 => UsageUsed;
);
forward!(ReconcileTx:
    fn reconcile_cursor() -> Option<ReconcileCursor> => ReconcileCursor;
    fn save_reconcile_cursor(cursor: &ReconcileCursor, at: DateTime<Utc>) -> () => SaveReconcileCursor;
);
forward!(ChangeTx:
    fn insert_change(change: &NewChange) -> bool => InsertChange;
);
forward!(StripeRequestTx:
    fn begin_stripe_request(request: &StripeRequest, at: DateTime<Utc>) -> StripeRequest => BeginStripeRequest;
    fn finish_stripe_request(request: &StripeRequest, at: DateTime<Utc>) -> () => FinishStripeRequest;
);

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> StoreError {
        StoreError::Refused(crate::error::Cause::msg("injected"))
    }

    #[test]
    fn a_counted_fault_fails_that_many_calls_then_lets_them_through() {
        let store = FaultyStore::new(());
        store.fail_times(StoreCall::AddCredit, refused(), 2);
        let results: Vec<bool> = (0..4)
            .map(|_| check(&store.plan, StoreCall::AddCredit).is_err())
            .collect();
        assert_eq!(results, [true, true, false, false]);
        assert_eq!(store.calls(StoreCall::AddCredit), 4);
        assert_eq!(store.calls(StoreCall::ClaimEvent), 0);
    }

    #[test]
    fn a_standing_fault_fails_until_healed_and_only_its_call() {
        let store = FaultyStore::new(());
        let shared = store.clone();
        shared.fail(StoreCall::SaveSubscription, refused());
        for _ in 0..3 {
            assert!(matches!(
                check(&store.plan, StoreCall::SaveSubscription),
                Err(StoreError::Refused(_))
            ));
        }
        assert!(check(&store.plan, StoreCall::Subscription).is_ok());
        shared.heal();
        assert!(check(&store.plan, StoreCall::SaveSubscription).is_ok());
    }
}
