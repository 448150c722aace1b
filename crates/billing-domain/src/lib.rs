//! The billing domain: plans and tiers, subscription statuses, grace periods, entitlements,
//! usage limits and money.
//!
//! Architecture invariant: this crate does no IO, is not async and knows nothing of Stripe's
//! wire format or of any database. Every function that depends on time takes `now`.

pub mod error;
pub mod facts;
pub mod money;
pub mod status;

pub use error::DomainError;
pub use facts::{BillingEvent, Fact};
pub use money::{Currency, Money};
pub use status::SubscriptionStatus;
