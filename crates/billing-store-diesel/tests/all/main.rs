//! The Diesel adapter's integration tests, in one binary: against real databases (a fresh
//! Postgres database and SQLite file per test, copied from a migrated template), most of them
//! on both backends (`on_both_backends!`).
//!
//! - `store`: events, credits, Stripe requests;
//! - `usage`: the consume: limits, idempotency keys, concurrency, periods;
//! - `migrations`: applying them, and `NotMigrated`;
//! - `operator`: what `billingctl` reads and writes (the event listing, stored API keys);
//! - `records`: round trips of the rows whose shape carries a rule (payments, subscriptions);
//! - `locks`: what the store promises about concurrency;
//! - `faults`: a stalled, cut or terminated database, and settings that cannot work;
//! - `feed`: the change feed's outbox: commit order, dedupe keys, ended grace periods;
//! - `jobs`: failure kinds and retry schedules of failed events, and job leases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod faults;
mod feed;
mod jobs;
mod locks;
mod migrations;
mod operator;
mod records;
mod store;
mod usage;

/// A transient failure with `error` and the default retry schedule.
fn transient(error: &str) -> billing_ports::Failure<'_> {
    billing_ports::Failure {
        error,
        kind: billing_ports::FailureKind::Transient,
        backoff: billing_ports::Backoff::default(),
    }
}
