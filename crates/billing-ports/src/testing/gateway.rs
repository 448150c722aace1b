//! [`FakeGateway`]: Stripe's API as an in-memory test double behind the [`StripeGateway`] port.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use billing_domain::facts::SubscriptionSnapshot;

use super::{Plan, lock};
use crate::error::{Cause, GatewayError};
use crate::gateway::{
    CheckoutCreated, CheckoutRequest, EventPage, EventQuery, LIST_PAGE_SIZE, ListedEvent,
    StripeGateway, SubscriptionPage,
};

/// One method of the [`StripeGateway`] port, as a [`FakeGateway`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // Each variant is the port method of the same name.
pub enum GatewayCall {
    FetchSubscription,
    CustomerSubscriptions,
    CreateCustomer,
    CreateCheckoutSession,
    CreatePortalSession,
    ListEvents,
    ListSubscriptions,
}

/// A customer the fake created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCustomer {
    /// Its id (`cus_` and 14 random characters).
    pub id: String,
    /// The user it was created for (`metadata.user_id`).
    pub user_id: String,
    /// The email it was created with.
    pub email: Option<String>,
    /// The idempotency key of the call that created it.
    pub idempotency_key: String,
}

/// A Checkout Session the fake created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCheckoutSession {
    /// What was asked for.
    pub request: CheckoutRequest,
    /// What was answered: a `cs_test_…` id and its `https://checkout.stripe.com/…` page.
    pub created: CheckoutCreated,
    /// The idempotency key of the call that created it.
    pub idempotency_key: String,
}

/// A billing-portal session the fake created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePortalSession {
    /// The customer it is for.
    pub customer_id: String,
    /// Where the portal sends the customer back to.
    pub return_url: String,
    /// The answered `https://billing.stripe.com/p/session/…` page.
    pub url: String,
}

/// What the fake holds: Stripe's side of the test's world.
#[derive(Debug, Default)]
struct State {
    subscriptions: Vec<SubscriptionSnapshot>,
    customers: Vec<FakeCustomer>,
    sessions: Vec<FakeCheckoutSession>,
    portal_sessions: Vec<FakePortalSession>,
    /// Oldest first (by `created`, then by when they were put).
    events: Vec<ListedEvent>,
    /// The page size of the listings (Stripe's maximum when 0).
    page_size: usize,
    delays: HashMap<GatewayCall, Duration>,
}

/// Stripe's answer to an idempotency key re-used with other parameters.
const KEY_REUSED: &str = "Keys for idempotent requests can only be used with the same \
                          parameters they were first used with.";

/// A [`StripeGateway`] that keeps Stripe's objects in memory.
///
/// - Subscriptions: [`FakeGateway::fetch_subscription`] and
///   [`FakeGateway::customer_subscriptions`] answer from the snapshots stored with
///   [`FakeGateway::put_subscription`]; an unknown id is [`GatewayError::NotFound`].
/// - Events: [`FakeGateway::list_events`] pages through the events stored with
///   [`FakeGateway::put_event`], oldest first, and [`FakeGateway::list_subscriptions`] through
///   the stored snapshots, in pages of [`FakeGateway::set_page_size`] (Stripe's 100 by
///   default); a cursor naming nothing stored is [`GatewayError::NotFound`], as at Stripe.
/// - Creating calls keep Stripe's idempotency semantics: the same key with the same parameters
///   answers the object created first, the same key with other parameters is
///   [`GatewayError::Rejected`]. Every created object is recorded once.
/// - Ids and URLs are shaped like Stripe's and random, so a test cannot come to depend on a
///   counter; it reads them back from [`FakeGateway::customers`],
///   [`FakeGateway::checkout_sessions`] and [`FakeGateway::portal_sessions`].
/// - A call can be planned to fail ([`FakeGateway::fail`], [`FakeGateway::fail_times`]) or to
///   answer late ([`FakeGateway::delay`]); [`FakeGateway::calls`] counts every call made.
///
/// Clones share one state and plan.
#[derive(Debug, Clone, Default)]
pub struct FakeGateway {
    state: Arc<Mutex<State>>,
    plan: Arc<Mutex<Plan<GatewayCall, GatewayError>>>,
}

impl FakeGateway {
    /// A Stripe account with no objects, where nothing fails.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `snapshot` as Stripe's current state of its subscription (replacing the one with
    /// the same id).
    pub fn put_subscription(&self, snapshot: SubscriptionSnapshot) {
        let mut state = self.state();
        match state.subscriptions.iter_mut().find(|s| s.id == snapshot.id) {
            Some(stored) => *stored = snapshot,
            None => state.subscriptions.push(snapshot),
        }
    }

    /// Forgets the subscription `id`, returning its snapshot if it was stored.
    pub fn remove_subscription(&self, id: &str) -> Option<SubscriptionSnapshot> {
        let mut state = self.state();
        let at = state.subscriptions.iter().position(|s| s.id == id)?;
        Some(state.subscriptions.remove(at))
    }

    /// Stores an event for [`StripeGateway::list_events`], after those created at or before
    /// it (replacing an event with the same id).
    pub fn put_event(&self, event: ListedEvent) {
        let mut state = self.state();
        state.events.retain(|e| e.id() != event.id());
        let at = state
            .events
            .iter()
            .position(|e| e.created() > event.created())
            .unwrap_or(state.events.len());
        state.events.insert(at, event);
    }

    /// Forgets every stored event created before `before`, as Stripe forgets events after 30
    /// days.
    pub fn expire_events(&self, before: chrono::DateTime<chrono::Utc>) {
        self.state().events.retain(|e| e.created() >= before);
    }

    /// Makes listings answer pages of at most `size` objects (at least 1).
    pub fn set_page_size(&self, size: usize) {
        self.state().page_size = size.max(1);
    }

    /// The customers created so far, oldest first.
    pub fn customers(&self) -> Vec<FakeCustomer> {
        self.state().customers.clone()
    }

    /// The Checkout Sessions created so far, oldest first.
    pub fn checkout_sessions(&self) -> Vec<FakeCheckoutSession> {
        self.state().sessions.clone()
    }

    /// The Checkout Session with id `id`, if the fake created it.
    pub fn checkout_session(&self, id: &str) -> Option<FakeCheckoutSession> {
        let state = self.state();
        state.sessions.iter().find(|s| s.created.id == id).cloned()
    }

    /// The billing-portal sessions created so far, oldest first.
    pub fn portal_sessions(&self) -> Vec<FakePortalSession> {
        self.state().portal_sessions.clone()
    }

    /// Makes every later `call` return `error`.
    pub fn fail(&self, call: GatewayCall, error: GatewayError) {
        lock(&self.plan).fail(call, error, None);
    }

    /// Makes the next `times` calls of `call` return `error`, then lets it through again.
    pub fn fail_times(&self, call: GatewayCall, error: GatewayError, times: usize) {
        lock(&self.plan).fail(call, error, Some(times));
    }

    /// Removes every planned failure (delays stay).
    pub fn heal(&self) {
        lock(&self.plan).faults.clear();
    }

    /// How many times `call` was made (failed or not).
    pub fn calls(&self, call: GatewayCall) -> usize {
        lock(&self.plan).calls(call)
    }

    /// Makes every later `call` wait `latency` before it is answered (or fails), the way a
    /// racing duplicate request reaches Stripe while the first is still in flight.
    pub fn delay(&self, call: GatewayCall, latency: Duration) {
        self.state().delays.insert(call, latency);
    }

    /// Waits the planned latency of `call`, then counts it and returns its planned failure.
    async fn enter(&self, call: GatewayCall) -> Result<(), GatewayError> {
        let latency = self.state().delays.get(&call).copied();
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        lock(&self.plan).check(call)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

#[async_trait]
impl StripeGateway for FakeGateway {
    async fn fetch_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<SubscriptionSnapshot, GatewayError> {
        self.enter(GatewayCall::FetchSubscription).await?;
        let state = self.state();
        state
            .subscriptions
            .iter()
            .find(|s| s.id == subscription_id)
            .cloned()
            .ok_or_else(|| {
                GatewayError::NotFound(Cause::msg(format!(
                    "No such subscription: '{subscription_id}'"
                )))
            })
    }

    async fn customer_subscriptions(
        &self,
        customer_id: &str,
    ) -> Result<Vec<SubscriptionSnapshot>, GatewayError> {
        self.enter(GatewayCall::CustomerSubscriptions).await?;
        let state = self.state();
        Ok(state
            .subscriptions
            .iter()
            .filter(|s| s.customer_id == customer_id)
            .cloned()
            .collect())
    }

    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, GatewayError> {
        self.enter(GatewayCall::ListEvents).await?;
        let state = self.state();
        let mut events: Vec<&ListedEvent> = state
            .events
            .iter()
            .filter(|e| e.created() >= query.since)
            .collect();
        if let Some(after) = &query.after {
            let at = events.iter().position(|e| e.id() == after).ok_or_else(|| {
                GatewayError::NotFound(Cause::msg(format!("No such event: '{after}'")))
            })?;
            events.drain(..=at);
        }
        let size = page_size(&state);
        Ok(EventPage {
            has_more: events.len() > size,
            events: events.into_iter().take(size).cloned().collect(),
        })
    }

    async fn list_subscriptions(
        &self,
        customer_id: Option<&str>,
        starting_after: Option<&str>,
    ) -> Result<SubscriptionPage, GatewayError> {
        self.enter(GatewayCall::ListSubscriptions).await?;
        let state = self.state();
        let mut listed: Vec<&SubscriptionSnapshot> = state
            .subscriptions
            .iter()
            .filter(|s| customer_id.is_none_or(|c| s.customer_id == c))
            .collect();
        if let Some(after) = starting_after {
            let at = listed.iter().position(|s| s.id == after).ok_or_else(|| {
                GatewayError::NotFound(Cause::msg(format!("No such subscription: '{after}'")))
            })?;
            listed.drain(..=at);
        }
        let size = page_size(&state);
        let page: Vec<SubscriptionSnapshot> =
            listed.iter().take(size).map(|s| (*s).clone()).collect();
        Ok(SubscriptionPage {
            next: (listed.len() > size)
                .then(|| page.last().map(|s| s.id.clone()))
                .flatten(),
            subscriptions: page,
            unreadable: Vec::new(),
        })
    }

    async fn create_customer(
        &self,
        user_id: &str,
        email: Option<&str>,
        idempotency_key: &str,
    ) -> Result<String, GatewayError> {
        self.enter(GatewayCall::CreateCustomer).await?;
        let mut state = self.state();
        if let Some(first) = state
            .customers
            .iter()
            .find(|c| c.idempotency_key == idempotency_key)
        {
            return if first.user_id == user_id && first.email.as_deref() == email {
                Ok(first.id.clone())
            } else {
                Err(GatewayError::Rejected(Cause::msg(KEY_REUSED)))
            };
        }
        let id = format!("cus_{}", random_chars(14));
        state.customers.push(FakeCustomer {
            id: id.clone(),
            user_id: user_id.to_owned(),
            email: email.map(str::to_owned),
            idempotency_key: idempotency_key.to_owned(),
        });
        Ok(id)
    }

    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutCreated, GatewayError> {
        self.enter(GatewayCall::CreateCheckoutSession).await?;
        let mut state = self.state();
        if let Some(first) = state
            .sessions
            .iter()
            .find(|s| s.idempotency_key == idempotency_key)
        {
            return if &first.request == request {
                Ok(first.created.clone())
            } else {
                Err(GatewayError::Rejected(Cause::msg(KEY_REUSED)))
            };
        }
        let id = format!("cs_test_{}", random_chars(58));
        let created = CheckoutCreated {
            url: format!("https://checkout.stripe.com/c/pay/{id}"),
            id,
        };
        state.sessions.push(FakeCheckoutSession {
            request: request.clone(),
            created: created.clone(),
            idempotency_key: idempotency_key.to_owned(),
        });
        Ok(created)
    }

    async fn create_portal_session(
        &self,
        customer_id: &str,
        return_url: &str,
    ) -> Result<String, GatewayError> {
        self.enter(GatewayCall::CreatePortalSession).await?;
        let url = format!(
            "https://billing.stripe.com/p/session/test_{}",
            random_chars(40)
        );
        self.state().portal_sessions.push(FakePortalSession {
            customer_id: customer_id.to_owned(),
            return_url: return_url.to_owned(),
            url: url.clone(),
        });
        Ok(url)
    }
}

/// The listings' page size: the test's, else Stripe's.
fn page_size(state: &State) -> usize {
    if state.page_size == 0 {
        LIST_PAGE_SIZE
    } else {
        state.page_size
    }
}

/// `len` random characters of `[0-9A-Za-z]`, the alphabet of Stripe's ids.
///
/// Drawn from the standard library's randomly seeded hasher, fed a process-wide counter so no
/// two draws repeat; good enough for ids that only must not collide or be predictable.
fn random_chars(len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let seed = RandomState::new();
    let mut out = String::with_capacity(len);
    let mut bits = 0_u64;
    let mut left = 0;
    while out.len() < len {
        if left == 0 {
            bits = seed.hash_one(DRAWS.fetch_add(1, Ordering::Relaxed));
            left = 10; // ten 6-bit draws per 64-bit hash
        }
        // 62 symbols: a 6-bit value of 62 or 63 is skipped so every symbol is equally likely.
        let index = (bits & 0x3f) as usize;
        bits >>= 6;
        left -= 1;
        if let Some(&symbol) = ALPHABET.get(index) {
            out.push(char::from(symbol));
        }
    }
    out
}

#[cfg(test)]
mod tests;
