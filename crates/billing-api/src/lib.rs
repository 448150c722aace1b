//! The billing server's wire types: every request and response body of its `/v1` API and of
//! its change feed, defined once. The server (`billing-http`) answers with these types and
//! derives its OpenAPI document from them (feature `openapi`, on by default, derives
//! `utoipa::ToSchema`); the client (`billing-client`) reads them.
//!
//! Times are RFC 3339 in UTC, written to the second ([`time`]); money is integer minor units
//! with a currency ([`Amount`]); every error answer is an [`ErrorBody`] whose
//! [`ErrorCode`] fixes the HTTP status.
//!
//! ```
//! use billing_api::{ErrorCode, FeatureAnswer};
//!
//! let answer: FeatureAnswer<'static> = serde_json::from_str(
//!     r#"{"user_id":"user_1","feature":"advanced_analytics","allowed":true,"tier":"PRO","reason":"active"}"#,
//! )?;
//! assert!(answer.allowed);
//! assert_eq!(answer.tier, "PRO");
//! assert_eq!(ErrorCode::UnknownFeature.http_status(), 404);
//! assert_eq!("unknown_feature".parse::<ErrorCode>(), Ok(ErrorCode::UnknownFeature));
//! # Ok::<(), serde_json::Error>(())
//! ```
#![warn(missing_docs)]

mod catalog;
mod changes;
mod entitlements;
mod error;
mod sessions;
pub mod time;
mod usage;

pub use catalog::{Catalog, CatalogFeature, CatalogMetric, CatalogTier};
pub use changes::{AccessSnapshot, Amount, ChangeKind, ChangeRecord, ChangesPage, PushMessage};
pub use entitlements::{Entitlements, FeatureAnswer, Synced, UsagePeriod};
pub use error::{ErrorBody, ErrorCode, ErrorDetail, UnknownErrorCode};
pub use sessions::{CheckoutRequest, CheckoutSession, Mode, PortalRequest, PortalSession};
pub use usage::{UsageAccepted, UsageRefused, UsageRequest};
