//! The Stripe gateway port: outgoing calls to Stripe's API.
//!
//! Every creating call takes the Stripe idempotency key to send. The application derives and
//! records it (table `stripe_requests`) before the call, so a retry re-uses the same key and
//! Stripe answers with the object it already created.

use async_trait::async_trait;
use billing_domain::BillingEvent;
use billing_domain::facts::SubscriptionSnapshot;
use chrono::{DateTime, Utc};

use crate::error::GatewayError;

/// What a Checkout Session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutKind {
    /// A one-time payment.
    Payment,
    /// A subscription.
    Subscription,
}

/// A Checkout Session to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// The Stripe customer (`cus_…`).
    pub customer_id: String,
    /// Our user; sent as `client_reference_id` and `metadata.user_id` (and on the
    /// subscription's metadata in subscription mode).
    pub user_id: String,
    /// Payment or subscription.
    pub kind: CheckoutKind,
    /// The price to buy (`price_…`), quantity 1.
    pub price_id: String,
    /// Where Stripe sends the customer after paying.
    pub success_url: String,
    /// Where Stripe sends the customer after giving up.
    pub cancel_url: String,
    /// Trial days (subscription mode only).
    pub trial_days: Option<u32>,
}

/// A created Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutCreated {
    /// `cs_…`.
    pub id: String,
    /// The hosted page to send the customer to.
    pub url: String,
}

/// The most events or subscriptions one listing page holds (Stripe's `limit` maximum).
pub const LIST_PAGE_SIZE: usize = 100;

/// Which events to list ([`StripeGateway::list_events`]): those created at or after `since`
/// and, when `after` is set, after that event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// The oldest `created` to list (`created[gte]`); Stripe keeps events for 30 days.
    pub since: DateTime<Utc>,
    /// An event already seen (`evt_…`): only events newer than it are listed
    /// (`ending_before`).
    pub after: Option<String>,
}

/// An event Stripe listed whose object our parser could not read: its identity, so it can be
/// stored as failed the way the webhook stores one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableEvent {
    /// `evt_…`.
    pub id: String,
    /// Stripe's event type string.
    pub event_type: String,
    /// The API version it was rendered with, when Stripe says.
    pub api_version: Option<String>,
    /// Live mode or test mode.
    pub livemode: bool,
    /// When Stripe created it.
    pub created: DateTime<Utc>,
    /// Why its object could not be read (the parser's message).
    pub error: String,
}

/// One event listed by Stripe's Events API.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedEvent {
    /// The event's JSON text as listed (the page's object written out again: the same members
    /// as a webhook delivery of it, not the same bytes), stored with the event as a webhook's
    /// body is.
    pub payload: String,
    /// The event as the webhook parser reads it, or why it cannot be read.
    pub parsed: Result<BillingEvent, UnreadableEvent>,
}

impl ListedEvent {
    /// `evt_…`.
    pub fn id(&self) -> &str {
        match &self.parsed {
            Ok(event) => &event.id,
            Err(unreadable) => &unreadable.id,
        }
    }

    /// When Stripe created the event.
    pub fn created(&self) -> DateTime<Utc> {
        match &self.parsed {
            Ok(event) => event.created,
            Err(unreadable) => unreadable.created,
        }
    }
}

/// One page of events, oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventPage {
    /// At most [`LIST_PAGE_SIZE`] events, oldest first: the oldest of those the query matches.
    pub events: Vec<ListedEvent>,
    /// Newer events follow the last one of this page.
    pub has_more: bool,
}

/// A subscription Stripe listed that could not be read as a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableObject {
    /// Its id, as listed (`<no id>` when it has none).
    pub id: String,
    /// Why it could not be read.
    pub error: String,
}

/// One page of subscriptions ([`StripeGateway::list_subscriptions`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubscriptionPage {
    /// The subscriptions of this page read as snapshots, in Stripe's order (newest first).
    pub subscriptions: Vec<SubscriptionSnapshot>,
    /// The subscriptions of this page that could not be read.
    pub unreadable: Vec<UnreadableObject>,
    /// The `starting_after` of the next page, when there is one.
    pub next: Option<String>,
}

/// Reads and creates objects at Stripe.
#[async_trait]
pub trait StripeGateway: Send + Sync {
    /// Fetches the current state of one subscription.
    async fn fetch_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<SubscriptionSnapshot, GatewayError>;

    /// Fetches every subscription of a customer (all statuses).
    async fn customer_subscriptions(
        &self,
        customer_id: &str,
    ) -> Result<Vec<SubscriptionSnapshot>, GatewayError>;

    /// Lists one page of events ([`EventPage`]): the oldest [`LIST_PAGE_SIZE`] of those
    /// `query` matches, oldest first, each read by the webhook parser.
    ///
    /// [`GatewayError::NotFound`] when `query.after` names an event Stripe no longer has.
    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, GatewayError>;

    /// Lists one page of subscriptions of every status, of one customer or of the whole
    /// account, starting after the subscription `starting_after` (the previous page's
    /// [`SubscriptionPage::next`]).
    async fn list_subscriptions(
        &self,
        customer_id: Option<&str>,
        starting_after: Option<&str>,
    ) -> Result<SubscriptionPage, GatewayError>;

    /// Creates a customer for our user (`metadata.user_id`), returning its id (`cus_…`).
    async fn create_customer(
        &self,
        user_id: &str,
        email: Option<&str>,
        idempotency_key: &str,
    ) -> Result<String, GatewayError>;

    /// Creates a Checkout Session.
    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutCreated, GatewayError>;

    /// Creates a billing-portal session for a customer, returning its URL.
    async fn create_portal_session(
        &self,
        customer_id: &str,
        return_url: &str,
    ) -> Result<String, GatewayError>;
}
