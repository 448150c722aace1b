//! Checkout and billing portal sessions.

use serde::{Deserialize, Serialize};

/// What a Checkout session buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A one-time payment.
    Payment,
    /// A subscription.
    Subscription,
}

/// A new Checkout session: exactly one of `price_id` and `tier`; `trial_days` with
/// `mode: subscription` only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// The product's user id: no control characters, no `/`, `?`, `#` or `%`.
    // Its pattern is set with the path parameters' (`openapi::Conventions`).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub user_id: String,
    /// The customer's email, handed to Stripe.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 254, pattern = r"^[\x21-\x7E]+@[\x21-\x7E]+$")
    )]
    pub email: Option<String>,
    /// What the session buys.
    pub mode: Mode,
    /// A price of the plan catalog (or `tier`).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub price_id: Option<String>,
    /// A purchasable tier of the plan catalog (or `price_id`).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub tier: Option<String>,
    /// Where Stripe sends the customer after paying.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, pattern = r"^https?://[\x21-\x7E]*$")
    )]
    pub success_url: String,
    /// Where Stripe sends the customer who cancels.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, pattern = r"^https?://[\x21-\x7E]*$")
    )]
    pub cancel_url: String,
    /// Trial days, subscriptions only: 1 to 730, Stripe's limits for a Checkout trial.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 730))]
    #[serde(default, deserialize_with = "crate::usage::whole_number::optional")]
    pub trial_days: Option<u32>,
}

/// A Checkout session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckoutSession {
    /// Stripe's session id.
    pub id: String,
    /// Where to send the customer.
    pub url: String,
    /// True when the idempotency key returned an earlier session.
    pub replayed: bool,
}

/// A new billing portal session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PortalRequest {
    /// The product's user id: no control characters, no `/`, `?`, `#` or `%`.
    // Its pattern is set with the path parameters' (`openapi::Conventions`).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub user_id: String,
    /// Where the portal sends the customer back.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, pattern = r"^https?://[\x21-\x7E]*$")
    )]
    pub return_url: String,
}

/// A billing portal session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortalSession {
    /// Where to send the customer.
    pub url: String,
}
