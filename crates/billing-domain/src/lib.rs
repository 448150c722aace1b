//! The billing domain: plans and tiers, subscription statuses, grace periods, entitlements,
//! usage limits and money.
//!
//! Architecture invariant: this crate does no IO, is not async and knows nothing of Stripe's
//! wire format or of any database. Every function that depends on time takes `now`.
//!
//! * [`catalog`] — the plan catalog, loaded and validated from TOML text.
//! * [`entitlement`](mod@entitlement) — the one access rule: which tier a subscription grants at `now`, and why.
//! * [`usage`] — the metering period and the limit decision.
//! * [`status`], [`money`], [`facts`] — Stripe statuses, money and the typed facts of events.
//! * [`ordering`], [`status_transition`] — how events of one subscription are ordered, and how
//!   its snapshots and invoices move its status and grace deadline.
//! * [`payment`], [`refund`], [`dispute`] — one-time payments: status finality, refund totals,
//!   dispute finality.
//!
//! # Example
//!
//! ```
//! use billing_domain::{
//!     AccessReason, Catalog, Limit, SubscriptionState, SubscriptionStatus, UsageDecision,
//!     decide, entitlement,
//! };
//! use chrono::{TimeZone, Utc};
//!
//! let catalog = Catalog::from_toml_str(r#"
//!     [[tiers]]
//!     id = "FREE"
//!     name = "Free"
//!     limits = { api_calls = 100 }
//!     features = { custom_domain = false }
//!
//!     [[tiers]]
//!     id = "PRO"
//!     name = "Pro"
//!     price_ids = ["price_pro_monthly"]
//!     credits_per_period = 1000
//!     limits = { api_calls = "unlimited" }
//!     features = { custom_domain = true }
//! "#)?;
//!
//! let now = Utc.with_ymd_and_hms(2025, 3, 10, 12, 0, 0).unwrap();
//! let mut sub = SubscriptionState::new(
//!     SubscriptionStatus::Active,
//!     Some("price_pro_monthly".to_owned()),
//! );
//! let access = entitlement(Some(&sub), &catalog, now);
//! assert_eq!(access.tier.id.as_str(), "PRO");
//! assert_eq!(access.reason, AccessReason::Active);
//! assert!(access.feature("custom_domain"));
//! assert_eq!(access.limit("api_calls"), Some(Limit::Unlimited));
//!
//! // A status this crate does not know never grants a paid tier.
//! sub.status = SubscriptionStatus::parse("some_future_status");
//! let access = entitlement(Some(&sub), &catalog, now);
//! assert!(!access.is_paid());
//! assert_eq!(access.reason.code(), "no_paid_access");
//! let limit = access.limit("api_calls").unwrap();
//! assert_eq!(decide(limit, 100, 1), UsageDecision::Denied { used: 100, limit: 100 });
//! # Ok::<(), billing_domain::CatalogError>(())
//! ```
#![warn(missing_docs)]

pub mod catalog;
pub mod dispute;
pub mod entitlement;
pub mod error;
pub mod facts;
pub mod ids;
pub mod money;
pub mod ordering;
pub mod payment;
pub mod refund;
pub mod status;
pub mod status_transition;
pub mod usage;

pub use catalog::{Catalog, CatalogError, CatalogProblem, Limit, Tier, TierId, UnknownPrices};
pub use entitlement::{AccessReason, Entitlement, SubscriptionState, entitlement, grace_deadline};
pub use error::DomainError;
pub use facts::{BillingEvent, Fact};
pub use money::{Currency, Money};
pub use ordering::Position;
pub use payment::PaymentStatus;
pub use refund::RefundStatus;
pub use status::SubscriptionStatus;
pub use usage::{MeteringPeriod, UsageDecision, decide, metering_period};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
