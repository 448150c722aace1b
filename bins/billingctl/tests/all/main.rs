//! The real `billingctl` binary against a fresh Postgres database per test, and for `trigger`
//! a server on port 0 started in-process as billing-http's black-box tests start it.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod deliveries;
mod events;
mod keys;
mod migrate_and_plans;
mod reconcile;
mod replay;
mod support;
mod trigger;

// billing-http's black-box helpers (Server::build_with on port 0, the test settings), reused
// rather than copied.
#[path = "../../../../crates/billing-http/tests/api/helpers.rs"]
#[allow(dead_code)]
mod server;
