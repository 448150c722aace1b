//! The application's integration tests against real databases, in one test binary (one module
//! per topic, as crates.io does) so a test run links once.
//!
//! Most tests run on Postgres and on SQLite, each in a fresh database (`on_both_backends!`);
//! `support` holds the shared set-up: the example catalog, the app, and builders of one
//! purchase story's events.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// `on_both_backends!`: each listed test on Postgres and on SQLite, on a fresh database.
#[macro_use]
extern crate billing_store_diesel;

mod support;

mod customers;
mod failed_events;
mod feed;
mod gate_cache;
mod group_commit;
mod ingest;
mod lifecycle;
mod ordering;
mod payments;
mod real_world;
mod reconcile;
mod refetch;
mod reorder;
mod replay;
mod replicas;
mod usage;
