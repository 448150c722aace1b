//! The Stripe gateway port: outgoing calls to Stripe's API.
//!
//! Every creating call takes the Stripe idempotency key to send. The application derives and
//! records it (table `stripe_requests`) before the call, so a retry re-uses the same key and
//! Stripe answers with the object it already created.

use async_trait::async_trait;
use billing_domain::facts::SubscriptionSnapshot;

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
