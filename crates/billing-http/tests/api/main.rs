//! Black-box HTTP tests: the server on port 0 over a fresh Postgres database per test, a
//! fake Stripe gateway that keeps Stripe's idempotency-key semantics, and an HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod auth_and_bodies;
mod catalog;
mod changes;
mod checkout;
mod database_faults;
mod helpers;
mod input_checks;
mod jobs;
mod logs;
mod ops;
mod poison;
mod push;
mod replicas;
mod slow_clients;
mod stored_keys;
mod stripe_http;
mod usage;
mod webhook;
