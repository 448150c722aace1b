//! The queries of the store, written once and instantiated for each backend.
//!
//! Postgres and SQLite differ in the SQL type of timestamps (`Timestamptz` against
//! `TimestamptzSqlite`) and in their connection types, which Diesel's typed DSL sees as
//! different types. [`diesel_backend!`] therefore expands the schema, the row structs, the
//! row↔domain conversions and the [`BillingTx`](billing_ports::BillingTx) implementation once
//! per backend module. Each backend module supplies the few statements that really differ:
//! `lock_key` (an advisory lock on Postgres, nothing on SQLite, whose writers are serialised).

/// Sets `user_id` on the rows of `$table` that belong to a customer and have no user yet.
macro_rules! give_rows_to_user {
    ($conn:expr, $table:ident, $customer:expr, $user:expr) => {
        diesel::update(
            $table::table
                .filter($table::stripe_customer_id.eq($customer))
                .filter($table::user_id.is_null()),
        )
        .set($table::user_id.eq($user))
        .execute($conn)
        .await
        .map_err(db_err)?
    };
}

pub(crate) use give_rows_to_user;

/// Expands the schema, rows, conversions and transaction implementation for one backend.
///
/// `$ts` is the backend's timestamp SQL type, `$conn` its connection type, and
/// `|$query| $lock_row` turns a select of one row into one that locks it until commit.
macro_rules! diesel_backend {
    ($ts:ident, $conn:ty, lock_row: |$query:ident| $lock_row:expr) => {
        /// The tables, as Diesel sees them on this backend.
        #[allow(missing_docs, unreachable_pub)]
        pub mod schema {
            diesel::table! {
                stripe_events (id) {
                    id -> Text,
                    event_type -> Text,
                    api_version -> Nullable<Text>,
                    livemode -> Bool,
                    created -> $ts,
                    payload -> Text,
                    status -> Text,
                    attempts -> Integer,
                    last_error -> Nullable<Text>,
                    received_at -> $ts,
                    processed_at -> Nullable<$ts>,
                }
            }
            diesel::table! {
                customers (stripe_customer_id) {
                    stripe_customer_id -> Text,
                    user_id -> Nullable<Text>,
                    email -> Nullable<Text>,
                    deleted -> Bool,
                    created_at -> $ts,
                    updated_at -> $ts,
                }
            }
            diesel::table! {
                subscriptions (stripe_subscription_id) {
                    stripe_subscription_id -> Text,
                    stripe_customer_id -> Text,
                    price_id -> Nullable<Text>,
                    item_price_ids -> Text,
                    tier -> Text,
                    status -> Text,
                    current_period_start -> Nullable<$ts>,
                    current_period_end -> Nullable<$ts>,
                    cancel_at_period_end -> Bool,
                    canceled_at -> Nullable<$ts>,
                    trial_end -> Nullable<$ts>,
                    grace_period_end -> Nullable<$ts>,
                    dunning_invoice_id -> Nullable<Text>,
                    snapshot_event_created -> $ts,
                    snapshot_event_rank -> SmallInt,
                    snapshot_event_id -> Text,
                    status_event_created -> $ts,
                    status_event_rank -> SmallInt,
                    status_event_id -> Text,
                    updated_at -> $ts,
                }
            }
            diesel::table! {
                payments (payment_key) {
                    payment_key -> Text,
                    payment_intent_id -> Nullable<Text>,
                    charge_id -> Nullable<Text>,
                    stripe_customer_id -> Nullable<Text>,
                    user_id -> Nullable<Text>,
                    amount_minor -> BigInt,
                    currency -> Text,
                    status -> Text,
                    status_at -> Nullable<$ts>,
                    last_error -> Nullable<Text>,
                    amount_refunded -> BigInt,
                    dispute_status -> Text,
                    dispute_stripe_status -> Nullable<Text>,
                    updated_at -> $ts,
                }
            }
            diesel::table! {
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
                    created_at -> $ts,
                    updated_at -> $ts,
                }
            }
            diesel::table! {
                credit_ledger (id) {
                    id -> BigInt,
                    user_id -> Nullable<Text>,
                    stripe_customer_id -> Nullable<Text>,
                    amount -> BigInt,
                    reason -> Text,
                    source_key -> Text,
                    created_at -> $ts,
                }
            }
            diesel::table! {
                usage_counters (user_id, metric, period_start) {
                    user_id -> Text,
                    metric -> Text,
                    period_start -> $ts,
                    used -> BigInt,
                }
            }
            diesel::table! {
                usage (id) {
                    id -> BigInt,
                    user_id -> Text,
                    metric -> Text,
                    period_start -> $ts,
                    quantity -> BigInt,
                    idempotency_key -> Text,
                    allowed -> Bool,
                    used_after -> BigInt,
                    limit_value -> Nullable<BigInt>,
                    recorded_at -> $ts,
                }
            }
            diesel::table! {
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
                    created_at -> $ts,
                    updated_at -> $ts,
                }
            }
        }

        /// Rows as Diesel reads and writes them on this backend.
        mod rows {
            use chrono::{DateTime, Utc};
            use diesel::prelude::*;

            use super::schema::*;

            #[derive(Insertable)]
            #[diesel(table_name = stripe_events)]
            pub(super) struct NewEventRow<'a> {
                pub(super) id: &'a str,
                pub(super) event_type: &'a str,
                pub(super) api_version: Option<&'a str>,
                pub(super) livemode: bool,
                pub(super) created: DateTime<Utc>,
                pub(super) payload: &'a str,
                pub(super) status: &'a str,
                pub(super) attempts: i32,
                pub(super) last_error: Option<&'a str>,
                pub(super) received_at: DateTime<Utc>,
            }

            #[derive(Queryable, Selectable)]
            #[diesel(table_name = stripe_events)]
            pub(super) struct EventRow {
                pub(super) id: String,
                pub(super) event_type: String,
                pub(super) created: DateTime<Utc>,
                pub(super) payload: String,
                pub(super) status: String,
                pub(super) attempts: i32,
                pub(super) last_error: Option<String>,
                pub(super) received_at: DateTime<Utc>,
                pub(super) processed_at: Option<DateTime<Utc>>,
            }

            #[derive(Queryable, Selectable, Insertable, AsChangeset)]
            #[diesel(table_name = customers, treat_none_as_null = true)]
            pub(super) struct CustomerRow {
                pub(super) stripe_customer_id: String,
                pub(super) user_id: Option<String>,
                pub(super) email: Option<String>,
                pub(super) deleted: bool,
            }

            #[derive(Queryable, Selectable, Insertable, AsChangeset)]
            #[diesel(table_name = subscriptions, treat_none_as_null = true)]
            pub(super) struct SubscriptionRow {
                pub(super) stripe_subscription_id: String,
                pub(super) stripe_customer_id: String,
                pub(super) price_id: Option<String>,
                pub(super) item_price_ids: String,
                pub(super) tier: String,
                pub(super) status: String,
                pub(super) current_period_start: Option<DateTime<Utc>>,
                pub(super) current_period_end: Option<DateTime<Utc>>,
                pub(super) cancel_at_period_end: bool,
                pub(super) canceled_at: Option<DateTime<Utc>>,
                pub(super) trial_end: Option<DateTime<Utc>>,
                pub(super) grace_period_end: Option<DateTime<Utc>>,
                pub(super) dunning_invoice_id: Option<String>,
                pub(super) snapshot_event_created: DateTime<Utc>,
                pub(super) snapshot_event_rank: i16,
                pub(super) snapshot_event_id: String,
                pub(super) status_event_created: DateTime<Utc>,
                pub(super) status_event_rank: i16,
                pub(super) status_event_id: String,
            }

            #[derive(Queryable, Selectable, Insertable, AsChangeset)]
            #[diesel(table_name = payments, treat_none_as_null = true)]
            pub(super) struct PaymentRow {
                pub(super) payment_key: String,
                pub(super) payment_intent_id: Option<String>,
                pub(super) charge_id: Option<String>,
                pub(super) stripe_customer_id: Option<String>,
                pub(super) user_id: Option<String>,
                pub(super) amount_minor: i64,
                pub(super) currency: String,
                pub(super) status: String,
                pub(super) status_at: Option<DateTime<Utc>>,
                pub(super) last_error: Option<String>,
                pub(super) amount_refunded: i64,
                pub(super) dispute_status: String,
                pub(super) dispute_stripe_status: Option<String>,
            }

            #[derive(Queryable, Selectable, Insertable)]
            #[diesel(table_name = orders)]
            pub(super) struct OrderRow {
                pub(super) checkout_session_id: String,
                pub(super) payment_intent_id: Option<String>,
                pub(super) stripe_customer_id: Option<String>,
                pub(super) user_id: Option<String>,
                pub(super) amount_minor: i64,
                pub(super) currency: String,
                pub(super) status: String,
                pub(super) refund_status: String,
                pub(super) amount_refunded: i64,
                pub(super) dispute_status: String,
            }

            #[derive(Insertable)]
            #[diesel(table_name = credit_ledger)]
            pub(super) struct CreditRow<'a> {
                pub(super) user_id: Option<&'a str>,
                pub(super) stripe_customer_id: Option<&'a str>,
                pub(super) amount: i64,
                pub(super) reason: &'a str,
                pub(super) source_key: &'a str,
                pub(super) created_at: DateTime<Utc>,
            }

            #[derive(Queryable, Selectable, Insertable)]
            #[diesel(table_name = usage)]
            pub(super) struct UsageRow {
                pub(super) user_id: String,
                pub(super) metric: String,
                pub(super) period_start: DateTime<Utc>,
                pub(super) quantity: i64,
                pub(super) idempotency_key: String,
                pub(super) allowed: bool,
                pub(super) used_after: i64,
                pub(super) limit_value: Option<i64>,
                pub(super) recorded_at: DateTime<Utc>,
            }

            #[derive(Queryable, Selectable, Insertable)]
            #[diesel(table_name = stripe_requests)]
            pub(super) struct StripeRequestRow {
                pub(super) operation: String,
                pub(super) stable_id: String,
                pub(super) idempotency_key: String,
                pub(super) fingerprint: String,
                pub(super) status: String,
                pub(super) stripe_id: Option<String>,
                pub(super) response: Option<String>,
                pub(super) last_error: Option<String>,
            }
        }

        /// The connection pool of this backend.
        pub(crate) type Pool = diesel_async::pooled_connection::deadpool::Pool<$conn>;

        /// Takes a connection from the pool, mapping pool failures to `Unavailable`.
        pub(crate) async fn connection(
            pool: &Pool,
        ) -> Result<
            diesel_async::pooled_connection::deadpool::Object<$conn>,
            billing_ports::StoreError,
        > {
            pool.get()
                .await
                .map_err(|e| billing_ports::StoreError::Unavailable(billing_ports::Cause::new(e)))
        }

        /// Runs a unit of work in one transaction on a pooled connection.
        pub(crate) async fn transaction<'b, T, E, F>(pool: &Pool, work: F) -> Result<T, E>
        where
            T: Send + 'b,
            E: From<billing_ports::StoreError> + Send + 'b,
            F: for<'r> FnOnce(
                    &'r mut dyn billing_ports::BillingTx,
                ) -> billing_ports::TxFuture<'b, 'r, T, E>
                + Send
                + 'b,
        {
            use diesel_async::AsyncConnection;
            let mut conn = connection(pool).await?;
            let conn: &mut $conn = &mut conn;
            let result = conn
                .transaction(async |c: &mut $conn| {
                    let mut tx = Tx { conn: c };
                    work(&mut tx).await.map_err(crate::error::TxFailure::Work)
                })
                .await;
            match result {
                Ok(value) => Ok(value),
                Err(crate::error::TxFailure::Work(e)) => Err(e),
                Err(crate::error::TxFailure::Database(e)) => Err(E::from(crate::error::db_err(e))),
            }
        }

        /// Runs a read-only unit of work on a pooled connection, outside any transaction.
        pub(crate) async fn read<'b, T, E, F>(pool: &Pool, work: F) -> Result<T, E>
        where
            T: Send + 'b,
            E: From<billing_ports::StoreError> + Send + 'b,
            F: for<'r> FnOnce(
                    &'r mut dyn billing_ports::BillingRead,
                ) -> billing_ports::TxFuture<'b, 'r, T, E>
                + Send
                + 'b,
        {
            let mut conn = connection(pool).await?;
            let mut tx = Tx { conn: &mut conn };
            work(&mut tx).await
        }

        /// A transaction on one connection of this backend.
        pub(crate) struct Tx<'c> {
            pub(crate) conn: &'c mut $conn,
        }

        pub(crate) mod tx_impl {
            use async_trait::async_trait;
            use billing_domain::{Currency, Money, SubscriptionStatus};
            use billing_ports::{
                Claim, CreditEntry, CreditRead, CreditTx, CustomerRead, CustomerRecord, CustomerTx,
                EventPosition, EventStatus, EventTx, LockTx, NewEvent, OrderRecord, PaymentRecord,
                PaymentTx, StoreError, StripeRequest, StripeRequestTx, SubscriptionRead,
                SubscriptionRecord, SubscriptionTx, UsageRead, UsageRecord, UsageTx,
            };
            use chrono::{DateTime, Utc};
            use diesel::prelude::*;
            use diesel::upsert::excluded;
            use diesel_async::RunQueryDsl;

            use super::Tx;
            use super::rows::*;
            use super::schema::*;
            use crate::error::{db_err, parse_stored};

            fn customer_record(row: CustomerRow) -> CustomerRecord {
                CustomerRecord {
                    stripe_customer_id: row.stripe_customer_id,
                    user_id: row.user_id,
                    email: row.email,
                    deleted: row.deleted,
                }
            }

            fn customer_row(c: &CustomerRecord) -> CustomerRow {
                CustomerRow {
                    stripe_customer_id: c.stripe_customer_id.clone(),
                    user_id: c.user_id.clone(),
                    email: c.email.clone(),
                    deleted: c.deleted,
                }
            }

            fn position(
                created: DateTime<Utc>,
                rank: i16,
                event_id: String,
            ) -> Result<EventPosition, StoreError> {
                Ok(EventPosition {
                    created,
                    rank: u8::try_from(rank).map_err(|e| {
                        StoreError::Corrupt(billing_ports::Cause::context(
                            format!("event rank {rank}"),
                            e,
                        ))
                    })?,
                    event_id,
                })
            }

            fn subscription_record(row: SubscriptionRow) -> Result<SubscriptionRecord, StoreError> {
                Ok(SubscriptionRecord {
                    item_price_ids: serde_json::from_str(&row.item_price_ids).map_err(|e| {
                        StoreError::Corrupt(billing_ports::Cause::context(
                            format!("item_price_ids {:?}", row.item_price_ids),
                            e,
                        ))
                    })?,
                    snapshot_position: position(
                        row.snapshot_event_created,
                        row.snapshot_event_rank,
                        row.snapshot_event_id,
                    )?,
                    status_position: position(
                        row.status_event_created,
                        row.status_event_rank,
                        row.status_event_id,
                    )?,
                    stripe_subscription_id: row.stripe_subscription_id,
                    stripe_customer_id: row.stripe_customer_id,
                    price_id: row.price_id,
                    tier: row.tier,
                    status: SubscriptionStatus::parse(&row.status),
                    current_period_start: row.current_period_start,
                    current_period_end: row.current_period_end,
                    cancel_at_period_end: row.cancel_at_period_end,
                    canceled_at: row.canceled_at,
                    trial_end: row.trial_end,
                    grace_period_end: row.grace_period_end,
                    dunning_invoice_id: row.dunning_invoice_id,
                })
            }

            fn subscription_row(s: &SubscriptionRecord) -> Result<SubscriptionRow, StoreError> {
                Ok(SubscriptionRow {
                    stripe_subscription_id: s.stripe_subscription_id.clone(),
                    stripe_customer_id: s.stripe_customer_id.clone(),
                    price_id: s.price_id.clone(),
                    item_price_ids: serde_json::to_string(&s.item_price_ids).map_err(|e| {
                        StoreError::Query(billing_ports::Cause::context("item_price_ids", e))
                    })?,
                    tier: s.tier.clone(),
                    status: s.status.as_str().to_owned(),
                    current_period_start: s.current_period_start,
                    current_period_end: s.current_period_end,
                    cancel_at_period_end: s.cancel_at_period_end,
                    canceled_at: s.canceled_at,
                    trial_end: s.trial_end,
                    grace_period_end: s.grace_period_end,
                    dunning_invoice_id: s.dunning_invoice_id.clone(),
                    snapshot_event_created: s.snapshot_position.created,
                    snapshot_event_rank: i16::from(s.snapshot_position.rank),
                    snapshot_event_id: s.snapshot_position.event_id.clone(),
                    status_event_created: s.status_position.created,
                    status_event_rank: i16::from(s.status_position.rank),
                    status_event_id: s.status_position.event_id.clone(),
                })
            }

            fn money(amount_minor: i64, currency: &str) -> Result<Money, StoreError> {
                let currency = Currency::parse(currency)
                    .map_err(|e| StoreError::Corrupt(billing_ports::Cause::new(e)))?;
                Ok(Money::new(amount_minor, currency))
            }

            fn payment_record(row: PaymentRow) -> Result<PaymentRecord, StoreError> {
                Ok(PaymentRecord {
                    amount: money(row.amount_minor, &row.currency)?,
                    status: parse_stored(&row.status)?,
                    dispute_status: parse_stored(&row.dispute_status)?,
                    amount_refunded: row.amount_refunded,
                    key: row.payment_key,
                    payment_intent_id: row.payment_intent_id,
                    charge_id: row.charge_id,
                    stripe_customer_id: row.stripe_customer_id,
                    user_id: row.user_id,
                    status_at: row.status_at,
                    last_error: row.last_error,
                    dispute_stripe_status: row.dispute_stripe_status,
                })
            }

            fn payment_row(p: &PaymentRecord) -> PaymentRow {
                PaymentRow {
                    payment_key: p.key.clone(),
                    payment_intent_id: p.payment_intent_id.clone(),
                    charge_id: p.charge_id.clone(),
                    status_at: p.status_at,
                    dispute_stripe_status: p.dispute_stripe_status.clone(),
                    stripe_customer_id: p.stripe_customer_id.clone(),
                    user_id: p.user_id.clone(),
                    amount_minor: p.amount.amount_minor,
                    currency: p.amount.currency.as_str().to_owned(),
                    status: p.status.as_str().to_owned(),
                    last_error: p.last_error.clone(),
                    amount_refunded: p.amount_refunded,
                    dispute_status: p.dispute_status.as_str().to_owned(),
                }
            }

            fn order_record(row: OrderRow) -> Result<OrderRecord, StoreError> {
                Ok(OrderRecord {
                    amount: money(row.amount_minor, &row.currency)?,
                    refund_status: parse_stored(&row.refund_status)?,
                    dispute_status: parse_stored(&row.dispute_status)?,
                    checkout_session_id: row.checkout_session_id,
                    payment_intent_id: row.payment_intent_id,
                    stripe_customer_id: row.stripe_customer_id,
                    user_id: row.user_id,
                    status: row.status,
                    amount_refunded: row.amount_refunded,
                })
            }

            /// A count for a BIGINT column; values beyond `i64::MAX` are refused, not wrapped.
            fn to_stored(value: u64, what: &str) -> Result<i64, StoreError> {
                i64::try_from(value).map_err(|_| {
                    StoreError::Query(billing_ports::Cause::msg(format!(
                        "{what} {value} exceeds the database's range"
                    )))
                })
            }

            /// A count read back from a BIGINT column; a negative one is corrupt.
            fn from_stored(value: i64, what: &str) -> Result<u64, StoreError> {
                u64::try_from(value).map_err(|_| {
                    StoreError::Corrupt(billing_ports::Cause::msg(format!(
                        "{what} {value} is negative"
                    )))
                })
            }

            fn usage_row(u: &UsageRecord) -> Result<UsageRow, StoreError> {
                Ok(UsageRow {
                    user_id: u.user_id.clone(),
                    metric: u.metric.clone(),
                    period_start: u.period_start,
                    quantity: to_stored(u.quantity, "usage quantity")?,
                    idempotency_key: u.idempotency_key.clone(),
                    allowed: u.allowed,
                    used_after: to_stored(u.used_after, "usage used_after")?,
                    limit_value: u.limit.map(|l| to_stored(l, "usage limit")).transpose()?,
                    recorded_at: u.recorded_at,
                })
            }

            fn usage_record(row: UsageRow) -> Result<UsageRecord, StoreError> {
                Ok(UsageRecord {
                    quantity: from_stored(row.quantity, "usage quantity")?,
                    used_after: from_stored(row.used_after, "usage used_after")?,
                    limit: row
                        .limit_value
                        .map(|l| from_stored(l, "usage limit"))
                        .transpose()?,
                    user_id: row.user_id,
                    metric: row.metric,
                    period_start: row.period_start,
                    idempotency_key: row.idempotency_key,
                    allowed: row.allowed,
                    recorded_at: row.recorded_at,
                })
            }

            fn stripe_request_row(r: &StripeRequest) -> StripeRequestRow {
                StripeRequestRow {
                    operation: r.operation.clone(),
                    stable_id: r.stable_id.clone(),
                    idempotency_key: r.idempotency_key.clone(),
                    fingerprint: r.fingerprint.clone(),
                    status: r.status.as_str().to_owned(),
                    stripe_id: r.stripe_id.clone(),
                    response: r.response.clone(),
                    last_error: r.last_error.clone(),
                }
            }

            fn stripe_request_record(row: StripeRequestRow) -> Result<StripeRequest, StoreError> {
                Ok(StripeRequest {
                    status: parse_stored(&row.status)?,
                    operation: row.operation,
                    stable_id: row.stable_id,
                    idempotency_key: row.idempotency_key,
                    fingerprint: row.fingerprint,
                    stripe_id: row.stripe_id,
                    response: row.response,
                    last_error: row.last_error,
                })
            }

            #[async_trait]
            impl EventTx for Tx<'_> {
                async fn claim_event(&mut self, event: &NewEvent) -> Result<Claim, StoreError> {
                    use stripe_events::dsl as e;
                    let row = NewEventRow {
                        id: &event.id,
                        event_type: &event.event_type,
                        api_version: event.api_version.as_deref(),
                        livemode: event.livemode,
                        created: event.created,
                        payload: &event.payload,
                        status: EventStatus::Received.as_str(),
                        attempts: 0,
                        last_error: None,
                        received_at: event.received_at,
                    };
                    // Inserts the event, or takes over a failed one. The conflicting update
                    // waits for a concurrent claimer's transaction, then only matches when
                    // that one did not finish the event.
                    let upsert = diesel::insert_into(e::stripe_events)
                        .values(&row)
                        .on_conflict(e::id)
                        .do_update()
                        .set(e::status.eq(EventStatus::Received.as_str()));
                    let claimed: Option<i32> = diesel::query_dsl::methods::FilterDsl::filter(
                        upsert,
                        e::status
                            .eq_any([EventStatus::Failed.as_str(), EventStatus::Received.as_str()]),
                    )
                    .returning(e::attempts)
                    .get_result(self.conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                    if let Some(attempts) = claimed {
                        return Ok(Claim::Claimed {
                            attempts: u32::try_from(attempts).map_err(|_| {
                                StoreError::Corrupt(billing_ports::Cause::msg(format!(
                                    "attempts {attempts}"
                                )))
                            })?,
                        });
                    }
                    let status: String = e::stripe_events
                        .find(&event.id)
                        .select(e::status)
                        .get_result(self.conn)
                        .await
                        .map_err(db_err)?;
                    Ok(Claim::AlreadyDone(parse_stored(&status)?))
                }

                async fn finish_event(
                    &mut self,
                    id: &str,
                    status: EventStatus,
                    at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    use stripe_events::dsl as e;
                    diesel::update(e::stripe_events.find(id))
                        .set((
                            e::status.eq(status.as_str()),
                            e::processed_at.eq(Some(at)),
                            e::last_error.eq(None::<String>),
                        ))
                        .execute(self.conn)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }
            }

            #[async_trait]
            impl CustomerRead for Tx<'_> {
                async fn customer(
                    &mut self,
                    stripe_customer_id: &str,
                ) -> Result<Option<CustomerRecord>, StoreError> {
                    let row: Option<CustomerRow> = customers::table
                        .find(stripe_customer_id)
                        .select(CustomerRow::as_select())
                        .get_result(self.conn)
                        .await
                        .optional()
                        .map_err(db_err)?;
                    Ok(row.map(customer_record))
                }

                async fn customer_of_user(
                    &mut self,
                    user_id: &str,
                ) -> Result<Option<CustomerRecord>, StoreError> {
                    let row: Option<CustomerRow> = customers::table
                        .filter(customers::user_id.eq(user_id))
                        .select(CustomerRow::as_select())
                        .get_result(self.conn)
                        .await
                        .optional()
                        .map_err(db_err)?;
                    Ok(row.map(customer_record))
                }
            }

            #[async_trait]
            impl CustomerTx for Tx<'_> {
                async fn save_customer(
                    &mut self,
                    customer: &CustomerRecord,
                    at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let row = customer_row(customer);
                    diesel::insert_into(customers::table)
                        .values((
                            &row,
                            customers::created_at.eq(at),
                            customers::updated_at.eq(at),
                        ))
                        .on_conflict(customers::stripe_customer_id)
                        .do_update()
                        .set((&row, customers::updated_at.eq(at)))
                        .execute(self.conn)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn attribute_customer_rows(
                    &mut self,
                    stripe_customer_id: &str,
                    user_id: &str,
                ) -> Result<(), StoreError> {
                    crate::backend::give_rows_to_user!(
                        self.conn,
                        credit_ledger,
                        stripe_customer_id,
                        user_id
                    );
                    crate::backend::give_rows_to_user!(
                        self.conn,
                        orders,
                        stripe_customer_id,
                        user_id
                    );
                    crate::backend::give_rows_to_user!(
                        self.conn,
                        payments,
                        stripe_customer_id,
                        user_id
                    );
                    Ok(())
                }
            }

            #[async_trait]
            impl LockTx for Tx<'_> {
                async fn lock_key(&mut self, key: &str) -> Result<(), StoreError> {
                    super::lock_key(self.conn, key).await
                }
            }

            #[async_trait]
            impl SubscriptionRead for Tx<'_> {
                async fn customer_subscriptions(
                    &mut self,
                    stripe_customer_id: &str,
                ) -> Result<Vec<SubscriptionRecord>, StoreError> {
                    let rows: Vec<SubscriptionRow> = subscriptions::table
                        .filter(subscriptions::stripe_customer_id.eq(stripe_customer_id))
                        .order(subscriptions::stripe_subscription_id)
                        .select(SubscriptionRow::as_select())
                        .load(self.conn)
                        .await
                        .map_err(db_err)?;
                    rows.into_iter().map(subscription_record).collect()
                }
            }

            #[async_trait]
            impl SubscriptionTx for Tx<'_> {
                async fn subscription(
                    &mut self,
                    stripe_subscription_id: &str,
                ) -> Result<Option<SubscriptionRecord>, StoreError> {
                    let $query = subscriptions::table
                        .find(stripe_subscription_id)
                        .select(SubscriptionRow::as_select());
                    let row: Option<SubscriptionRow> = $lock_row
                        .get_result(self.conn)
                        .await
                        .optional()
                        .map_err(db_err)?;
                    row.map(subscription_record).transpose()
                }

                async fn save_subscription(
                    &mut self,
                    subscription: &SubscriptionRecord,
                    at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let row = subscription_row(subscription)?;
                    diesel::insert_into(subscriptions::table)
                        .values((&row, subscriptions::updated_at.eq(at)))
                        .on_conflict(subscriptions::stripe_subscription_id)
                        .do_update()
                        .set((&row, subscriptions::updated_at.eq(at)))
                        .execute(self.conn)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }
            }

            #[async_trait]
            impl PaymentTx for Tx<'_> {
                async fn payments_matching(
                    &mut self,
                    payment_intent_id: Option<&str>,
                    charge_id: Option<&str>,
                ) -> Result<Vec<PaymentRecord>, StoreError> {
                    if payment_intent_id.is_none() && charge_id.is_none() {
                        return Ok(Vec::new());
                    }
                    let rows: Vec<PaymentRow> = payments::table
                        .filter(
                            // `= NULL` matches nothing, so an absent id finds no row.
                            payments::payment_intent_id
                                .eq(payment_intent_id)
                                .or(payments::charge_id.eq(charge_id)),
                        )
                        .order(payments::payment_key)
                        .select(PaymentRow::as_select())
                        .load(self.conn)
                        .await
                        .map_err(db_err)?;
                    rows.into_iter().map(payment_record).collect()
                }

                async fn delete_payment(&mut self, key: &str) -> Result<(), StoreError> {
                    diesel::delete(payments::table.find(key))
                        .execute(self.conn)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn save_payment(
                    &mut self,
                    payment: &PaymentRecord,
                    at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let row = payment_row(payment);
                    diesel::insert_into(payments::table)
                        .values((&row, payments::updated_at.eq(at)))
                        .on_conflict(payments::payment_key)
                        .do_update()
                        .set((&row, payments::updated_at.eq(at)))
                        .execute(self.conn)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn insert_order(
                    &mut self,
                    order: &OrderRecord,
                    at: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    let row = OrderRow {
                        checkout_session_id: order.checkout_session_id.clone(),
                        payment_intent_id: order.payment_intent_id.clone(),
                        stripe_customer_id: order.stripe_customer_id.clone(),
                        user_id: order.user_id.clone(),
                        amount_minor: order.amount.amount_minor,
                        currency: order.amount.currency.as_str().to_owned(),
                        status: order.status.clone(),
                        refund_status: order.refund_status.as_str().to_owned(),
                        amount_refunded: order.amount_refunded,
                        dispute_status: order.dispute_status.as_str().to_owned(),
                    };
                    let inserted = diesel::insert_into(orders::table)
                        .values((&row, orders::created_at.eq(at), orders::updated_at.eq(at)))
                        .on_conflict_do_nothing()
                        .execute(self.conn)
                        .await
                        .map_err(db_err)?;
                    Ok(inserted == 1)
                }

                async fn order_by_payment_intent(
                    &mut self,
                    payment_intent_id: &str,
                ) -> Result<Option<OrderRecord>, StoreError> {
                    let row: Option<OrderRow> = orders::table
                        .filter(orders::payment_intent_id.eq(payment_intent_id))
                        .select(OrderRow::as_select())
                        .get_result(self.conn)
                        .await
                        .optional()
                        .map_err(db_err)?;
                    row.map(order_record).transpose()
                }

                async fn update_order(
                    &mut self,
                    order: &OrderRecord,
                    at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    diesel::update(orders::table.find(&order.checkout_session_id))
                        .set((
                            orders::refund_status.eq(order.refund_status.as_str()),
                            orders::amount_refunded.eq(order.amount_refunded),
                            orders::dispute_status.eq(order.dispute_status.as_str()),
                            orders::user_id.eq(order.user_id.as_deref()),
                            orders::updated_at.eq(at),
                        ))
                        .execute(self.conn)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }
            }

            #[async_trait]
            impl CreditTx for Tx<'_> {
                async fn add_credit(&mut self, entry: &CreditEntry) -> Result<bool, StoreError> {
                    let row = CreditRow {
                        user_id: entry.user_id.as_deref(),
                        stripe_customer_id: entry.stripe_customer_id.as_deref(),
                        amount: entry.amount,
                        reason: entry.reason.as_str(),
                        source_key: &entry.source_key,
                        created_at: entry.created_at,
                    };
                    let inserted = diesel::insert_into(credit_ledger::table)
                        .values(&row)
                        .on_conflict(credit_ledger::source_key)
                        .do_nothing()
                        .execute(self.conn)
                        .await
                        .map_err(db_err)?;
                    Ok(inserted == 1)
                }
            }

            #[async_trait]
            impl CreditRead for Tx<'_> {
                async fn credit_balance(&mut self, user_id: &str) -> Result<i64, StoreError> {
                    // Summed by the database: the ledger only grows, the entitlement check
                    // reads this on every call. CAST keeps Postgres' SUM(bigint) (numeric) and
                    // SQLite's alike.
                    credit_ledger::table
                        .filter(credit_ledger::user_id.eq(user_id))
                        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                            "CAST(COALESCE(SUM(amount), 0) AS BIGINT)",
                        ))
                        .get_result(self.conn)
                        .await
                        .map_err(db_err)
                }
            }

            #[async_trait]
            impl UsageRead for Tx<'_> {
                async fn usage_by_key(
                    &mut self,
                    user_id: &str,
                    idempotency_key: &str,
                ) -> Result<Option<UsageRecord>, StoreError> {
                    let row: Option<UsageRow> = usage::table
                        .filter(usage::user_id.eq(user_id))
                        .filter(usage::idempotency_key.eq(idempotency_key))
                        .select(UsageRow::as_select())
                        .get_result(self.conn)
                        .await
                        .optional()
                        .map_err(db_err)?;
                    row.map(usage_record).transpose()
                }

                async fn usage_used(
                    &mut self,
                    user_id: &str,
                    metric: &str,
                    period_start: DateTime<Utc>,
                ) -> Result<u64, StoreError> {
                    let used: Option<i64> = usage_counters::table
                        .find((user_id, metric, period_start))
                        .select(usage_counters::used)
                        .get_result(self.conn)
                        .await
                        .optional()
                        .map_err(db_err)?;
                    used.map_or(Ok(0), |u| from_stored(u, "usage_counters.used"))
                }
            }

            #[async_trait]
            impl UsageTx for Tx<'_> {
                async fn record_usage(&mut self, record: &UsageRecord) -> Result<(), StoreError> {
                    use usage_counters::dsl as c;
                    let row = usage_row(record)?;
                    diesel::insert_into(usage::table)
                        .values(&row)
                        .execute(self.conn)
                        .await
                        .map_err(db_err)?;
                    if record.allowed {
                        // A sum beyond BIGINT is refused by the database (Postgres' range
                        // check, SQLite's `typeof(used) = 'integer'` check), never wrapped.
                        diesel::insert_into(c::usage_counters)
                            .values((
                                c::user_id.eq(&row.user_id),
                                c::metric.eq(&row.metric),
                                c::period_start.eq(row.period_start),
                                c::used.eq(row.quantity),
                            ))
                            .on_conflict((c::user_id, c::metric, c::period_start))
                            .do_update()
                            .set(c::used.eq(c::used + excluded(c::used)))
                            .execute(self.conn)
                            .await
                            .map_err(db_err)?;
                    }
                    Ok(())
                }
            }

            #[async_trait]
            impl StripeRequestTx for Tx<'_> {
                async fn begin_stripe_request(
                    &mut self,
                    request: &StripeRequest,
                    at: DateTime<Utc>,
                ) -> Result<StripeRequest, StoreError> {
                    use stripe_requests::dsl as r;
                    let row = stripe_request_row(request);
                    // Only the (operation, stable_id) conflict is expected; the same
                    // idempotency key under another operation is a conflict error.
                    diesel::insert_into(r::stripe_requests)
                        .values((&row, r::created_at.eq(at), r::updated_at.eq(at)))
                        .on_conflict((r::operation, r::stable_id))
                        .do_nothing()
                        .execute(self.conn)
                        .await
                        .map_err(db_err)?;
                    let stored: StripeRequestRow = r::stripe_requests
                        .filter(r::operation.eq(&request.operation))
                        .filter(r::stable_id.eq(&request.stable_id))
                        .select(StripeRequestRow::as_select())
                        .get_result(self.conn)
                        .await
                        .map_err(db_err)?;
                    stripe_request_record(stored)
                }

                async fn finish_stripe_request(
                    &mut self,
                    request: &StripeRequest,
                    at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    use stripe_requests::dsl as r;
                    let updated = diesel::update(
                        r::stripe_requests
                            .filter(r::operation.eq(&request.operation))
                            .filter(r::stable_id.eq(&request.stable_id)),
                    )
                    .set((
                        r::status.eq(request.status.as_str()),
                        r::stripe_id.eq(request.stripe_id.as_deref()),
                        r::response.eq(request.response.as_deref()),
                        r::last_error.eq(request.last_error.as_deref()),
                        r::updated_at.eq(at),
                    ))
                    .execute(self.conn)
                    .await
                    .map_err(db_err)?;
                    if updated == 0 {
                        // An outcome with nowhere to go would be lost silently.
                        return Err(StoreError::Query(billing_ports::Cause::msg(format!(
                            "no stripe request {} {} to finish",
                            request.operation, request.stable_id
                        ))));
                    }
                    Ok(())
                }
            }

            /// Records a failed application in its own statement (see `BillingStore::record_failure`).
            pub(crate) async fn record_failure(
                conn: &mut $conn,
                event: &NewEvent,
                error: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                use stripe_events::dsl as e;
                // The reason may quote a value the event carried; a NUL in it (which no text
                // column stores) must not keep the failure from being recorded.
                let error = error.replace('\0', "\u{FFFD}");
                let row = NewEventRow {
                    id: &event.id,
                    event_type: &event.event_type,
                    api_version: event.api_version.as_deref(),
                    livemode: event.livemode,
                    created: event.created,
                    payload: &event.payload,
                    status: EventStatus::Failed.as_str(),
                    attempts: 1,
                    last_error: Some(&error),
                    received_at: at,
                };
                let upsert = diesel::insert_into(e::stripe_events)
                    .values(&row)
                    .on_conflict(e::id)
                    .do_update()
                    .set((
                        e::status.eq(EventStatus::Failed.as_str()),
                        e::attempts.eq(e::attempts + 1),
                        e::last_error.eq(excluded(e::last_error)),
                    ));
                diesel::query_dsl::methods::FilterDsl::filter(
                    upsert,
                    e::status
                        .eq_any([EventStatus::Failed.as_str(), EventStatus::Received.as_str()]),
                )
                .execute(conn)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            /// Reads one stored event.
            pub(crate) async fn event(
                conn: &mut $conn,
                id: &str,
            ) -> Result<Option<billing_ports::EventRecord>, StoreError> {
                let row: Option<EventRow> = stripe_events::table
                    .find(id)
                    .select(EventRow::as_select())
                    .get_result(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                row.map(|r| {
                    Ok(billing_ports::EventRecord {
                        status: parse_stored(&r.status)?,
                        attempts: u32::try_from(r.attempts).map_err(|_| {
                            StoreError::Corrupt(billing_ports::Cause::msg(format!(
                                "attempts {}",
                                r.attempts
                            )))
                        })?,
                        id: r.id,
                        event_type: r.event_type,
                        last_error: r.last_error,
                        created: r.created,
                        payload: r.payload,
                        received_at: r.received_at,
                        processed_at: r.processed_at,
                    })
                })
                .transpose()
            }

            /// Deletes one batch of done events received before `before`.
            pub(crate) async fn purge_events(
                conn: &mut $conn,
                before: DateTime<Utc>,
                batch: u32,
            ) -> Result<u64, StoreError> {
                use stripe_events::dsl as e;
                let done = [
                    EventStatus::Processed.as_str(),
                    EventStatus::Ignored.as_str(),
                    EventStatus::Stale.as_str(),
                ];
                let ids: Vec<String> = e::stripe_events
                    .select(e::id)
                    .filter(e::status.eq_any(done))
                    .filter(e::received_at.lt(before))
                    .order(e::received_at)
                    .limit(i64::from(batch))
                    .load(conn)
                    .await
                    .map_err(db_err)?;
                // The status filter again: an id selected above cannot have become failed, but
                // the delete states its own rule rather than trusting the read.
                let deleted = diesel::delete(
                    e::stripe_events
                        .filter(e::id.eq_any(&ids))
                        .filter(e::status.eq_any(done)),
                )
                .execute(conn)
                .await
                .map_err(db_err)?;
                Ok(deleted as u64)
            }
        }
    };
}

pub(crate) use diesel_backend;
