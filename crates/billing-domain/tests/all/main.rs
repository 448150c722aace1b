//! The billing domain's integration tests, one binary with a module per topic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dispute;
mod ordering;
mod payment_status;
mod refund;
mod status_transition;
