//! The integration tests of `stripe-webhook-signature`, in one binary: the public API
//! ([`api`]), properties over arbitrary input ([`properties`]), and the verdicts of the
//! official SDKs ([`vectors`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod properties;
mod vectors;
