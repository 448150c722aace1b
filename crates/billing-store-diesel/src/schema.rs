//! The tables, as Diesel sees them on both backends.
//!
//! Written by hand and checked against freshly migrated databases of both backends by
//! `schema_check` (a test). Timestamps have the SQL type [`Ts`], which is Postgres'
//! `Timestamptz` on Postgres and Diesel's `TimestamptzSqlite` on SQLite, so one schema (and
//! one set of rows and queries) serves both.
#![allow(missing_docs, unreachable_pub)]

use chrono::{DateTime, SubsecRound, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{Timestamptz, TimestamptzSqlite};
use diesel::sqlite::{Sqlite, SqliteValue};

/// A timestamp with its time zone: `timestamptz` on Postgres, text on SQLite.
#[derive(
    Debug, Clone, Copy, Default, diesel::query_builder::QueryId, diesel::sql_types::SqlType,
)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Ts;

/// A [`Ts`] value: a UTC time written and read exactly as Diesel writes and reads a
/// `DateTime<Utc>` as `Timestamptz` on Postgres and as `TimestamptzSqlite` on SQLite (the impls
/// below delegate to Diesel's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Ts)]
pub(crate) struct Stamp(pub(crate) DateTime<Utc>);

impl Stamp {
    /// `at` as the database keeps it: whole microseconds, Postgres' precision (written so on
    /// SQLite too). A record built from such stamps is what reading it back gives.
    pub(crate) fn stored(at: DateTime<Utc>) -> Self {
        Stamp(at.trunc_subsecs(6))
    }
}

impl ToSql<Ts, Pg> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <DateTime<Utc> as ToSql<Timestamptz, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Ts, Pg> for Stamp {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<Timestamptz, Pg>>::from_sql(value).map(Stamp)
    }
}

impl ToSql<Ts, Sqlite> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        <DateTime<Utc> as ToSql<TimestamptzSqlite, Sqlite>>::to_sql(&self.0, out)
    }
}

impl FromSql<Ts, Sqlite> for Stamp {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<TimestamptzSqlite, Sqlite>>::from_sql(value).map(Stamp)
    }
}

/// `Option<Stamp>` ↔ `Option<DateTime<Utc>>` for nullable timestamp columns.
pub(crate) fn stamp(at: Option<DateTime<Utc>>) -> Option<Stamp> {
    at.map(Stamp)
}

/// The time of a nullable timestamp column.
pub(crate) fn time(stamp: Option<Stamp>) -> Option<DateTime<Utc>> {
    stamp.map(|s| s.0)
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    stripe_events (id) {
        id -> Text,
        event_type -> Text,
        api_version -> Nullable<Text>,
        livemode -> Bool,
        created -> Ts,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        received_at -> Ts,
        processed_at -> Nullable<Ts>,
        failure_kind -> Nullable<Text>,
        next_attempt_at -> Nullable<Ts>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    customers (stripe_customer_id) {
        stripe_customer_id -> Text,
        user_id -> Nullable<Text>,
        email -> Nullable<Text>,
        deleted -> Bool,
        created_at -> Ts,
        updated_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    subscriptions (stripe_subscription_id) {
        stripe_subscription_id -> Text,
        stripe_customer_id -> Text,
        price_id -> Nullable<Text>,
        item_price_ids -> Text,
        tier -> Text,
        status -> Text,
        current_period_start -> Nullable<Ts>,
        current_period_end -> Nullable<Ts>,
        cancel_at_period_end -> Bool,
        canceled_at -> Nullable<Ts>,
        trial_end -> Nullable<Ts>,
        grace_period_end -> Nullable<Ts>,
        dunning_invoice_id -> Nullable<Text>,
        snapshot_event_created -> Ts,
        snapshot_event_rank -> SmallInt,
        snapshot_event_id -> Text,
        status_event_created -> Ts,
        status_event_rank -> SmallInt,
        status_event_id -> Text,
        updated_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    payments (payment_key) {
        payment_key -> Text,
        payment_intent_id -> Nullable<Text>,
        charge_id -> Nullable<Text>,
        stripe_customer_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        amount_minor -> BigInt,
        currency -> Text,
        status -> Text,
        status_at -> Nullable<Ts>,
        last_error -> Nullable<Text>,
        amount_refunded -> BigInt,
        dispute_status -> Text,
        dispute_stripe_status -> Nullable<Text>,
        updated_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    orders (checkout_session_id) {
        checkout_session_id -> Text,
        payment_intent_id -> Nullable<Text>,
        stripe_customer_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        amount_minor -> BigInt,
        currency -> Text,
        status -> Text,
        refund_status -> Text,
        amount_refunded -> BigInt,
        dispute_status -> Text,
        created_at -> Ts,
        updated_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    credit_ledger (id) {
        id -> BigInt,
        user_id -> Nullable<Text>,
        stripe_customer_id -> Nullable<Text>,
        amount -> BigInt,
        reason -> Text,
        source_key -> Text,
        created_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    usage_counters (user_id, metric, period_start) {
        user_id -> Text,
        metric -> Text,
        period_start -> Ts,
        used -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    usage (id) {
        id -> BigInt,
        user_id -> Text,
        metric -> Text,
        period_start -> Ts,
        quantity -> BigInt,
        idempotency_key -> Text,
        allowed -> Bool,
        used_after -> BigInt,
        limit_value -> Nullable<BigInt>,
        recorded_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    stripe_requests (id) {
        id -> BigInt,
        operation -> Text,
        stable_id -> Text,
        idempotency_key -> Text,
        fingerprint -> Text,
        stripe_id -> Nullable<Text>,
        response -> Nullable<Text>,
        status -> Text,
        last_error -> Nullable<Text>,
        created_at -> Ts,
        updated_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    api_keys (name) {
        name -> Text,
        prefix -> Text,
        key_hash -> Text,
        created_at -> Ts,
        revoked_at -> Nullable<Ts>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    job_leases (job) {
        job -> Text,
        holder -> Text,
        taken_at -> Ts,
        expires_at -> Ts,
        next_run_at -> Ts,
        runs -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    reconcile_cursors (name) {
        name -> Text,
        event_id -> Nullable<Text>,
        event_created -> Nullable<Ts>,
        last_success_at -> Nullable<Ts>,
        updated_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    changes (id) {
        id -> BigInt,
        seq -> Nullable<BigInt>,
        change_id -> Text,
        user_id -> Text,
        customer_id -> Nullable<Text>,
        kind -> Text,
        before_tier -> Text,
        before_status -> Nullable<Text>,
        before_reason -> Text,
        before_grace_end -> Nullable<Ts>,
        before_credits -> BigInt,
        after_tier -> Text,
        after_status -> Nullable<Text>,
        after_reason -> Text,
        after_grace_end -> Nullable<Ts>,
        after_credits -> BigInt,
        amount_minor -> Nullable<BigInt>,
        currency -> Nullable<Text>,
        stripe_event_id -> Nullable<Text>,
        dedupe_key -> Nullable<Text>,
        created_at -> Ts,
    }
}

diesel::allow_tables_to_appear_in_same_query!(changes, customers, subscriptions);

diesel::allow_tables_to_appear_in_same_query!(credit_ledger, customers);
diesel::allow_tables_to_appear_in_same_query!(credit_ledger, subscriptions);

diesel::table! {
    /// The change feed's retention horizon: one row (`id` 1).
    change_horizon (id) {
        id -> Integer,
        purged_through -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    push_endpoints (id) {
        id -> Text,
        display -> Text,
        start_after -> BigInt,
        created_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    push_deliveries (id) {
        id -> BigInt,
        endpoint_id -> Text,
        change_seq -> BigInt,
        status -> Text,
        attempts -> Integer,
        failures -> Integer,
        next_attempt_at -> Nullable<Ts>,
        created_at -> Ts,
        updated_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::Ts;

    push_attempts (id) {
        id -> BigInt,
        delivery_id -> BigInt,
        attempt -> Integer,
        started_at -> Ts,
        duration_ms -> BigInt,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        outcome -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    changes,
    push_endpoints,
    push_deliveries,
    push_attempts
);
