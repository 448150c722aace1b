//! The Stripe gateway port: outgoing calls to Stripe's API.

use async_trait::async_trait;
use billing_domain::facts::SubscriptionSnapshot;

use crate::error::GatewayError;

/// Reads (and, later, creates) objects at Stripe.
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
}
