//! billing-domain's integration tests, in one binary (one link step): each module tests one
//! part of the public API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod catalog;
mod dispute;
mod entitlement;
mod facts;
mod money;
mod ordering;
mod payment_status;
mod refund;
mod status;
mod status_transition;
mod usage;

/// The plan catalog the server ships (`plans.toml` at the workspace root).
const PLANS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plans.toml"));
