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
//! - `gate_channel`: invalidations between processes, sent together under load;
//! - `jobs`: failure kinds and retry schedules of failed events, and job leases;
//! - `scale`: the statements of the jobs and of a customer's rows given to its user read
//!   through indexes on a database with a long history;
//! - `thread`: the store's own database thread.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod faults;
mod feed;
mod gate_channel;
mod jobs;
mod locks;
mod migrations;
mod operator;
mod records;
mod scale;
mod store;
mod thread;
mod usage;

/// `second` seconds after the instant the tests' records are dated from.
fn at(second: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .timestamp_opt(1_767_000_000 + second, 0)
        .unwrap()
}

/// A PRO subscription `id` of `customer` in `status` for the period from 0 to 30 days, its
/// snapshot and its status last set by `event` at `second`.
fn pro_subscription(
    id: &str,
    customer: &str,
    status: billing_domain::SubscriptionStatus,
    event: &str,
    second: i64,
) -> billing_ports::SubscriptionRecord {
    let position = billing_ports::EventPosition {
        created: at(second),
        rank: status.progression_rank(),
        event_id: event.to_owned(),
    };
    billing_ports::SubscriptionRecord {
        stripe_subscription_id: id.to_owned(),
        stripe_customer_id: customer.to_owned(),
        price_id: Some("price_pro_monthly".to_owned()),
        item_price_ids: vec!["price_pro_monthly".to_owned()],
        tier: "PRO".to_owned(),
        status,
        current_period_start: Some(at(0)),
        current_period_end: Some(at(2_592_000)),
        cancel_at_period_end: false,
        canceled_at: None,
        trial_end: None,
        grace_period_end: None,
        dunning_invoice_id: None,
        snapshot_position: position.clone(),
        status_position: position,
    }
}

/// A transient failure with `error` and the default retry schedule.
fn transient(error: &str) -> billing_ports::Failure<'_> {
    billing_ports::Failure {
        error,
        kind: billing_ports::FailureKind::Transient,
        backoff: billing_ports::Backoff::default(),
    }
}
