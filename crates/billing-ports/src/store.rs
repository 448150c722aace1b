//! The transactional store port.
//!
//! A unit of work sees the store through [`BillingTx`], which is one small trait per aggregate
//! composed into one: [`EventTx`], [`LockTx`], [`CustomerRead`] / [`CustomerTx`],
//! [`SubscriptionRead`] / [`SubscriptionTx`], [`PaymentTx`] (payments and one-time orders),
//! [`CreditRead`] / [`CreditTx`], [`UsageRead`], [`StripeRequestTx`], [`ReconcileTx`] and [`ChangeTx`]. A new table adds one
//! trait; a test double implements what its test needs and forwards the rest.
//!
//! A usage consume is not a unit of work: [`BillingStore::consume_usage`] checks, counts and
//! records it atomically on its own (one statement on Postgres), so that the only thing
//! concurrent consumes of one user wait for is the row lock of their counter.
//!
//! Reads that change nothing (every gated request asks for entitlements) go through
//! [`BillingStore::read`] and see only the `*Read` traits ([`BillingRead`]): they open no write
//! transaction, and on SQLite they do not queue behind writers.
//!
//! Closures borrow from their caller: a unit of work returns a [`TxFuture`] (a scoped boxed
//! future), so `async move { … }.scope_boxed()` or `Box::pin(async move { … })` may capture
//! `&str`s and `&Catalog`s of the enclosing function instead of owned copies.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use scoped_futures::ScopedBoxFuture;

use crate::error::StoreError;
use crate::feed::ChangeTx;
use crate::records::{
    ApiKeyRecord, Claim, CreditEntry, CustomerRecord, EventFilter, EventRecord, EventStats,
    EventStatus, EventSummary, Failure, NewEvent, OrderRecord, PaymentRecord, ReconcileCursor,
    StripeRequest, SubscriptionRecord, UsageConsumed, UsageRequest,
};

/// The future a unit of work returns: it may borrow for `'b` (from the caller of
/// [`BillingStore::transaction`]) and borrows the transaction for `'r`.
pub type TxFuture<'b, 'r, T, E> = ScopedBoxFuture<'b, 'r, Result<T, E>>;

/// The store: runs units of work in transactions and answers queries outside them.
#[async_trait]
pub trait BillingStore: Send + Sync + 'static {
    /// The runtime on which this store's connections run, when it has one of its own: a
    /// caller spawning long-lived database work (ingest's lanes) spawns it there, so that its
    /// round trips wake no other thread. `None` (the provided method): the caller's runtime.
    fn runtime(&self) -> Option<tokio::runtime::Handle> {
        None
    }

    /// Runs `work` in one database transaction: commits when it returns `Ok`, rolls back
    /// everything it wrote when it returns `Err` (or panics, or the process dies).
    async fn transaction<'b, T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'b,
        E: From<StoreError> + Send + 'b,
        F: for<'r> FnOnce(&'r mut dyn BillingTx) -> TxFuture<'b, 'r, T, E> + Send + 'b;

    /// Runs `work`, which only reads, outside any write transaction: each query sees what is
    /// committed when it runs (there is no snapshot across the queries of one `work`). On
    /// SQLite it does not wait for the writer.
    async fn read<'b, T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'b,
        E: From<StoreError> + Send + 'b,
        F: for<'r> FnOnce(&'r mut dyn BillingRead) -> TxFuture<'b, 'r, T, E> + Send + 'b;

    /// Records that applying `event` failed at `at`: status `failed`, attempts + 1, the
    /// failure's error and kind kept, and for a transient failure the next attempt due at
    /// `at + failure.backoff.delay(attempts)` (none for a permanent one). Never downgrades an
    /// event that is already done.
    async fn record_failure(
        &self,
        event: &NewEvent,
        failure: &Failure<'_>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// One stored event.
    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError>;

    /// The stored events matching `filter`, newest received first (ties by id, descending).
    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventSummary>, StoreError>;

    /// Stores a new API key; `false` (and nothing written) when its name is already taken,
    /// by a live or a revoked key.
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<bool, StoreError>;

    /// Every stored API key, revoked ones included, by name.
    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Marks the key named `name` revoked at `at` (a key already revoked keeps its first
    /// time); the key as it now stands, or `None` when no key has that name.
    async fn revoke_api_key(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// The hashes of the keys not revoked: what the `/v1` gate accepts besides its bootstrap
    /// keys.
    async fn live_api_key_hashes(&self) -> Result<Vec<[u8; 32]>, StoreError>;

    /// Deletes up to `batch` done events (processed, ignored, stale) received before `before`;
    /// returns how many were deleted. Failed events are never purged.
    async fn purge_events(&self, before: DateTime<Utc>, batch: u32) -> Result<u64, StoreError>;

    /// The failed events waiting (how many, the oldest's first receipt) and how many events
    /// were first received at or after `since`; read outside any transaction, for gauges.
    async fn event_stats(&self, since: DateTime<Utc>) -> Result<EventStats, StoreError>;

    /// Checks a usage request against its limit and records it, atomically and durably (it is
    /// committed when this returns `Ok`):
    ///
    /// - a key the user already recorded returns that first record ([`UsageConsumed::Replayed`])
    ///   and changes nothing, also when the first request is still committing concurrently;
    /// - otherwise, when `used + quantity <= limit` for the period's counter as it is when the
    ///   counter is locked, the quantity is added and the request recorded as allowed with the
    ///   new total; when it does not fit, it is recorded as denied with the total it was denied
    ///   against; either way [`UsageConsumed::Recorded`];
    /// - a request that fits but would pass `i64::MAX` is [`UsageConsumed::TooLarge`] and
    ///   changes nothing.
    ///
    /// Concurrent requests never count past the limit and the counter is always the sum of the
    /// allowed quantities recorded for it. A quantity or limit past `i64::MAX` is refused
    /// ([`StoreError::Query`]).
    async fn consume_usage(&self, request: &UsageRequest) -> Result<UsageConsumed, StoreError>;
}

/// Everything a unit of work may do inside its transaction: the aggregates' traits together.
///
/// Implemented for every type that implements them all; an adapter implements the parts.
/// A `&mut dyn BillingTx` coerces to the `&mut dyn BillingRead` that read-only helpers take.
pub trait BillingTx:
    BillingRead
    + AccessTx
    + EventTx
    + LockTx
    + CustomerTx
    + SubscriptionTx
    + PaymentTx
    + CreditTx
    + StripeRequestTx
    + ReconcileTx
    + ChangeTx
{
}

impl<T> BillingTx for T where
    T: BillingRead
        + AccessTx
        + EventTx
        + LockTx
        + CustomerTx
        + SubscriptionTx
        + PaymentTx
        + CreditTx
        + StripeRequestTx
        + ReconcileTx
        + ChangeTx
        + ?Sized
{
}

/// The queries a read-only unit of work may run ([`BillingStore::read`]).
pub trait BillingRead: AccessRead + UsageRead {}

impl<T> BillingRead for T where T: AccessRead + UsageRead + ?Sized {}

/// The processed-events table: the exactly-once record of every Stripe event.
#[async_trait]
pub trait EventTx: CustomerTx {
    /// Claims an event for this transaction, recording it as done with `status` (processed
    /// or ignored) at `at`: inserts it, or takes over a `failed` one. The record is part of
    /// the transaction, so it holds only if the event's effects commit with it; concurrent
    /// claimers of one id wait for the holder and then see it done. One statement: the
    /// common case needs no [`EventTx::finish_event`].
    async fn claim_event(
        &mut self,
        event: &NewEvent,
        status: EventStatus,
        at: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;

    /// Claims the event ([`EventTx::claim_event`]) and, when it was claimed and names
    /// `customer`, takes that customer's lock and reads it ([`CustomerTx::lock_customer`]):
    /// the customer is `None` when there is none, or the event was done already. A delivery of
    /// an event done already never waits for the customer's lock. The provided method makes
    /// the calls in turn; a store that can send them at once overrides it (it may then hold
    /// the lock, until the transaction ends, for an event found done, when the lock was free).
    async fn claim_event_then_lock_customer(
        &mut self,
        event: &NewEvent,
        status: EventStatus,
        at: DateTime<Utc>,
        customer: Option<&str>,
    ) -> Result<(Claim, Option<CustomerRecord>), StoreError> {
        claim_then_lock_customer_in_turn(self, event, status, at, customer).await
    }

    /// Claims several events ([`EventTx::claim_event`] each, with its own status), all at
    /// `at`: one [`Claim`] per event, in the order given. The ids must be distinct. Concurrent
    /// claimers of overlapping sets must give them in one order (by id) so they cannot wait
    /// for each other in a cycle. The provided method claims them one by one; a store that can
    /// claim them in one statement overrides it.
    async fn claim_events(
        &mut self,
        events: &[(&NewEvent, EventStatus)],
        at: DateTime<Utc>,
    ) -> Result<Vec<Claim>, StoreError> {
        claim_events_in_turn(self, events, at).await
    }

    /// Claims several events ([`EventTx::claim_events`]), then takes the locks of
    /// `customers` and reads them ([`CustomerTx::lock_customers`]: waited for, in the order
    /// given, which must be sorted): how a transaction applying several events starts. The
    /// customers are named before the claims are known, so a customer only an event found
    /// done names is locked too, until the transaction ends. The provided method makes the
    /// two calls; a store that can send them at once overrides it.
    async fn claim_events_then_lock_customers(
        &mut self,
        events: &[(&NewEvent, EventStatus)],
        at: DateTime<Utc>,
        customers: &[String],
    ) -> Result<Vec<Claim>, StoreError> {
        let claims = self.claim_events(events, at).await?;
        self.lock_customers(customers).await?;
        Ok(claims)
    }

    /// Changes the outcome of an event claimed by this transaction to `status` (stale, when
    /// the effects found it older than what was applied).
    async fn finish_event(
        &mut self,
        id: &str,
        status: EventStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// [`EventTx::claim_event_then_lock_customer`] as the provided method does it, one call after
/// the other: for a store that overrides it only where it can send the statements at once.
pub async fn claim_then_lock_customer_in_turn<T: EventTx + ?Sized>(
    tx: &mut T,
    event: &NewEvent,
    status: EventStatus,
    at: DateTime<Utc>,
    customer: Option<&str>,
) -> Result<(Claim, Option<CustomerRecord>), StoreError> {
    let claim = tx.claim_event(event, status, at).await?;
    let record = match (&claim, customer) {
        (Claim::Claimed { .. }, Some(customer)) => tx.lock_customer(customer).await?,
        _ => None,
    };
    Ok((claim, record))
}

/// [`EventTx::claim_events`] as the provided method does it, one claim after the other: for a
/// store that overrides it only where it can claim them at once.
pub async fn claim_events_in_turn<T: EventTx + ?Sized>(
    tx: &mut T,
    events: &[(&NewEvent, EventStatus)],
    at: DateTime<Utc>,
) -> Result<Vec<Claim>, StoreError> {
    let mut claims = Vec::with_capacity(events.len());
    for (event, status) in events {
        claims.push(tx.claim_event(event, *status, at).await?);
    }
    Ok(claims)
}

/// [`CustomerTx::lock_customers`] as the provided method does it, one customer after the
/// other: for a store that overrides it only where it can lock and read them at once.
pub async fn lock_customers_in_turn<T: CustomerTx + ?Sized>(
    tx: &mut T,
    stripe_customer_ids: &[String],
) -> Result<(), StoreError> {
    for id in stripe_customer_ids {
        tx.lock_customer(id).await?;
    }
    Ok(())
}

/// Locks that serialise units of work on one key until their transaction ends.
#[async_trait]
pub trait LockTx: Send {
    /// Serialises work on one key (a customer, a payment intent, a user) until this
    /// transaction ends.
    ///
    /// The rule every writer follows: a unit of work that reads rows in order to change them
    /// takes the key of what they belong to first (a customer's Stripe id for its
    /// subscriptions and orders, the payment intent and charge ids for a payment, `user:{id}`
    /// to link a customer to a user), taking several keys in
    /// one fixed order. Rows that do not exist yet cannot be row-locked, so the key, not a row
    /// lock, is what keeps two deliveries about one object from deciding on the same "before".
    ///
    /// Taking a key the transaction already holds again returns at once (a store may answer
    /// it without a round trip), so a step may take what it needs without knowing what an
    /// earlier step took.
    async fn lock_key(&mut self, key: &str) -> Result<(), StoreError>;

    /// Takes `key`'s lock as [`LockTx::lock_key`] does when nobody holds it, without waiting:
    /// false (nothing taken) when another transaction holds it. For a lock a unit of work
    /// learns of only after it took later locks of the order, where waiting could deadlock.
    async fn try_lock_key(&mut self, key: &str) -> Result<bool, StoreError>;

    /// From now on (`wait` false), or again (true), a lock this transaction does not hold
    /// yet is only tried when it is taken ([`LockTx::lock_key`], [`LockTx::lock_keys`] and the
    /// calls that lock before they read): a busy one fails the call with
    /// [`StoreError::LockBusy`], and the unit of work rolls back. For a unit of work that
    /// took its first locks in order and then takes others as it goes, where waiting could
    /// deadlock with a transaction taking them in the rule's order (group commit: several
    /// events' locks in one transaction). The provided method does nothing: a store whose
    /// lock waits cannot deadlock (one writer at a time) may keep it.
    async fn wait_for_locks(&mut self, wait: bool) -> Result<(), StoreError> {
        let _ = wait;
        Ok(())
    }

    /// Takes the lock of each of `keys` as [`LockTx::lock_key`] does, in the order given. The
    /// provided method takes them one by one; a store that can take them in one round trip
    /// overrides it.
    async fn lock_keys(&mut self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            self.lock_key(key).await?;
        }
        Ok(())
    }
}

/// Reading customers.
#[async_trait]
pub trait CustomerRead: Send {
    /// The customer with this Stripe id.
    ///
    /// Every writer of a customer holds its lock (its Stripe id, [`LockTx::lock_key`]), so
    /// while a transaction holds it a store may answer a second read from the first one (or
    /// from what the transaction wrote since).
    async fn customer(
        &mut self,
        stripe_customer_id: &str,
    ) -> Result<Option<CustomerRecord>, StoreError>;

    /// The customer linked to this user.
    async fn customer_of_user(
        &mut self,
        user_id: &str,
    ) -> Result<Option<CustomerRecord>, StoreError>;
}

/// Writing customers.
#[async_trait]
pub trait CustomerTx: CustomerRead + LockTx {
    /// Takes the customer's lock ([`LockTx::lock_key`] of its Stripe id), then reads it
    /// ([`CustomerRead::customer`]): the read comes after the lock is granted, so it sees what
    /// the lock's earlier holders committed. The provided method makes the two calls; a store
    /// that can send both at once overrides it.
    async fn lock_customer(
        &mut self,
        stripe_customer_id: &str,
    ) -> Result<Option<CustomerRecord>, StoreError> {
        self.lock_key(stripe_customer_id).await?;
        self.customer(stripe_customer_id).await
    }

    /// Takes the locks of several customers, in the order given (give them sorted, as every
    /// unit of work taking several customers does), and reads them, as
    /// [`CustomerTx::lock_customer`] does for each: a later [`CustomerRead::customer`] or
    /// `lock_customer` of one of them in this transaction may be answered without a statement.
    /// The provided method locks and reads them one by one; a store that can do it in one
    /// round trip overrides it.
    async fn lock_customers(&mut self, stripe_customer_ids: &[String]) -> Result<(), StoreError> {
        lock_customers_in_turn(self, stripe_customer_ids).await
    }

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
}

/// Reading subscriptions.
#[async_trait]
pub trait SubscriptionRead: Send {
    /// Every subscription of a customer.
    async fn customer_subscriptions(
        &mut self,
        stripe_customer_id: &str,
    ) -> Result<Vec<SubscriptionRecord>, StoreError>;
}

/// Reading subscriptions to change them, and writing them.
#[async_trait]
pub trait SubscriptionTx: SubscriptionRead {
    /// The subscription with this id, its row locked until commit when it exists (Postgres:
    /// `SELECT … FOR UPDATE`; SQLite runs one writer at a time). A subscription that is not
    /// stored yet has no row to lock: callers that may create it hold its customer's
    /// [`LockTx::lock_key`] first, as the rule there says.
    async fn subscription(
        &mut self,
        stripe_subscription_id: &str,
    ) -> Result<Option<SubscriptionRecord>, StoreError>;

    /// Inserts or updates a subscription (keyed by Stripe id).
    async fn save_subscription(
        &mut self,
        subscription: &SubscriptionRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Reads and locks, as [`SubscriptionTx::subscription`] does, those of the stored
    /// subscriptions `stripe_subscription_ids` that no other unit of work has locked, and keeps
    /// them: [`SubscriptionTx::subscription`] then answers for them with no statement, as
    /// this unit of work last wrote them. One locked elsewhere is skipped, never waited for
    /// (a unit of work that applies several events reads their subscriptions at once this
    /// way, before their effects); `subscription` reads it later, waiting as usual. When
    /// none was skipped, a store may also keep those not stored as absent (`subscription`
    /// answers `None` for them with no statement), so the caller must hold the
    /// [`LockTx::lock_key`] of each one's customer, which whoever creates a subscription takes
    /// first. The provided method does nothing.
    async fn lock_subscriptions(
        &mut self,
        stripe_subscription_ids: &[String],
    ) -> Result<(), StoreError> {
        let _ = stripe_subscription_ids;
        Ok(())
    }
}

/// Payments and the one-time orders they pay.
#[async_trait]
pub trait PaymentTx: Send {
    /// The payments known by this payment intent id or by this charge id: none, one, or two
    /// (a row first known by its charge alone and one of its payment intent, to be merged).
    ///
    /// Read while this unit of work holds the [`LockTx::lock_key`] of each id given, the rows
    /// found stay locked until commit (Postgres: `FOR UPDATE`), so a unit of work that knows
    /// the payment by its other id alone waits, then reads what this one wrote; one that does
    /// not wait for locks ([`LockTx::wait_for_locks`]) gets [`StoreError::LockBusy`] instead.
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
}

/// Reading the credit ledger.
#[async_trait]
pub trait CreditRead: Send {
    /// The credit balance of a user (sum of their ledger entries).
    async fn credit_balance(&mut self, user_id: &str) -> Result<i64, StoreError>;
}

/// What a user's access is decided from: their customer, its subscriptions, their credits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessRows {
    /// The Stripe id of the customer linked to the user.
    pub customer: Option<String>,
    /// That customer's subscriptions, by Stripe id.
    pub subscriptions: Vec<SubscriptionRecord>,
    /// The user's credit balance.
    pub credits: i64,
}

/// Reading a user's [`AccessRows`] at once, and knowing whether a unit of work wrote to them.
#[async_trait]
pub trait AccessRead: CustomerRead + SubscriptionRead + CreditRead {
    /// The user's customer ([`CustomerRead::customer_of_user`]), its subscriptions
    /// ([`SubscriptionRead::customer_subscriptions`]) and the user's credit balance
    /// ([`CreditRead::credit_balance`]). The provided method makes those three reads; a store
    /// that can answer in fewer round trips overrides it.
    async fn access_rows(&mut self, user_id: &str) -> Result<AccessRows, StoreError> {
        let customer = self.customer_of_user(user_id).await?;
        let subscriptions = match &customer {
            Some(c) => self.customer_subscriptions(&c.stripe_customer_id).await?,
            None => Vec::new(),
        };
        Ok(AccessRows {
            customer: customer.map(|c| c.stripe_customer_id),
            subscriptions,
            credits: self.credit_balance(user_id).await?,
        })
    }

    /// How many writes to what [`AccessRead::access_rows`] reads (customers, subscriptions,
    /// the credit ledger, and the attribution of a customer's rows) this connection made so
    /// far, counting every write statement whether or not it changed a row; `None` when the
    /// store does not count (the provided method). Two equal counts around some work mean it
    /// changed no user's access rows, so they need not be read again.
    fn access_writes(&self) -> Option<u64> {
        None
    }
}

/// Locking users' records and reading their access in one step.
#[async_trait]
pub trait AccessTx: AccessRead + LockTx + SubscriptionTx {
    /// Takes the locks of `keys` ([`LockTx::lock_keys`], in their order), then reads
    /// `user_id`'s [`AccessRows`]: the read comes after every lock is granted, so it sees what
    /// the locks' earlier holders committed. The provided method makes the two calls; a store
    /// that can send both at once overrides it.
    async fn lock_then_access_rows(
        &mut self,
        keys: &[String],
        user_id: &str,
    ) -> Result<AccessRows, StoreError> {
        self.lock_keys(keys).await?;
        self.access_rows(user_id).await
    }

    /// Takes the locks of `keys` ([`LockTx::lock_keys`], in their order), then reads the
    /// [`AccessRows`] of every user of `users` and keeps them for this unit of work:
    /// [`AccessRead::access_rows`] (and [`AccessTx::lock_then_access_rows`] once its locks are
    /// held) then answers for that user from what was kept, with no statement, following this
    /// unit of work's own writes (a store that cannot follow a write reads the user again). A
    /// transaction applying several events reads all their users at once this way.
    ///
    /// `keys` must hold a lock that every writer of these users' rows takes (their feed
    /// locks): then no other unit of work can change the rows while this one runs, and what
    /// was kept stays true but for this unit of work's own writes, which the store sees.
    ///
    /// After the reads, what `ahead` names is read too ([`ReadAhead`]). The provided method
    /// takes the locks and then calls `lock_subscriptions`; the users are read later, one by
    /// one, and the credit sources at their turn. A store that can send it all at once
    /// overrides it.
    async fn lock_then_keep_access(
        &mut self,
        keys: &[String],
        users: &[String],
        ahead: ReadAhead<'_>,
    ) -> Result<(), StoreError> {
        let _ = users;
        self.lock_keys(keys).await?;
        self.lock_subscriptions(ahead.subscriptions).await
    }
}

/// The rows a unit of work's effects will change that it reads with its users' access
/// ([`AccessTx::lock_then_keep_access`]), under locks it holds already.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadAhead<'a> {
    /// Subscriptions it will change, their customer's lock held: locked and read as
    /// [`SubscriptionTx::lock_subscriptions`] does (skipping any another unit of work holds).
    pub subscriptions: &'a [String],
    /// Source keys of the ledger entries it may add ([`CreditTx::add_credit`]), the lock that
    /// every adder of an entry of that key takes held: whether one is stored cannot change
    /// until this unit of work ends, so a store may read that now and answer `add_credit` from
    /// it, writing an entry not stored with the commit.
    pub credit_sources: &'a [String],
}

/// Writing the credit ledger.
#[async_trait]
pub trait CreditTx: CreditRead {
    /// Adds a ledger entry unless one with its source key exists; true when added. A store
    /// that read the key ahead as not stored ([`ReadAhead::credit_sources`]) may write the
    /// entry with the commit instead: an entry of that key found then fails the unit of work.
    async fn add_credit(&mut self, entry: &CreditEntry) -> Result<bool, StoreError>;
}

/// Reading metered usage (recording it is [`BillingStore::consume_usage`]).
#[async_trait]
pub trait UsageRead: Send {
    /// How much of `metric` the user used in the period starting at `period_start`.
    async fn usage_used(
        &mut self,
        user_id: &str,
        metric: &str,
        period_start: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// The journal of outgoing Stripe requests (idempotency of checkout and portal calls).
#[async_trait]
pub trait StripeRequestTx: Send {
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

/// The reconciliation cursor (`reconcile_cursors`): how far the catch-up from Stripe's Events
/// API has applied, and when it last succeeded.
#[async_trait]
pub trait ReconcileTx: Send {
    /// The stored cursor, if a reconciliation ever saved one.
    async fn reconcile_cursor(&mut self) -> Result<Option<ReconcileCursor>, StoreError>;

    /// Stores `cursor`, replacing the one stored.
    async fn save_reconcile_cursor(
        &mut self,
        cursor: &ReconcileCursor,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}
