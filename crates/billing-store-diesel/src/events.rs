//! The processed-events table (`stripe_events`): claiming and finishing events inside a unit
//! of work ([`EventTx`]), and the single statements of the store itself: recording a failure,
//! reading one event, purging old ones, finding the failed ones to re-apply ([`RetryStore`]'s
//! queries).
//!
//! [`RetryStore`]: billing_ports::RetryStore

use async_trait::async_trait;
use billing_ports::{
    Cause, Claim, CustomerRecord, CustomerTx, EventFilter, EventRecord, EventStatus, EventSummary,
    EventTx, Failure, FailureKind, NewEvent, StoreError, claim_events_in_turn,
    claim_then_lock_customer_in_turn,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::begin::in_transaction;
use crate::customers::{customer_postgres, customers_postgres};
use crate::error::parse_stored;
use crate::pg;
use crate::prepared::cached;

use crate::schema::{Stamp, Ts, stripe_events, time};
use crate::tx::{Conn, Tx, on_conn};

/// One batch of the purge (Postgres): the done events of one status received before a time,
/// the oldest first, found through `stripe_events_status_received` and deleted by their row
/// addresses (a TID scan). A delete by id, `id = ANY($ids)`, read the whole table instead once
/// the batch was a large share of it; a read of the three done statuses at once (`status =
/// ANY(…) ORDER BY received_at`) always did, since it cannot walk the index in order. The
/// status is checked again: a row changed since the read (a new version, at a new address) is
/// left alone.
const PURGE_POSTGRES: &str = "\
DELETE FROM stripe_events WHERE ctid = ANY(ARRAY(\
    SELECT ctid FROM stripe_events WHERE status = $1 AND received_at < $2 \
    ORDER BY received_at LIMIT $3)) \
AND status = $4";

/// [`PURGE_POSTGRES`] on SQLite, by `rowid`.
const PURGE_SQLITE: &str = "\
DELETE FROM stripe_events WHERE rowid IN (\
    SELECT rowid FROM stripe_events WHERE status = ? AND received_at < ? \
    ORDER BY received_at LIMIT ?) \
AND status = ?";

/// A new `stripe_events` row: a claimed event inserted as done (it commits only with the
/// event's effects), or a failure.
#[derive(Insertable)]
#[diesel(table_name = stripe_events)]
struct NewEventRow<'a> {
    id: &'a str,
    event_type: &'a str,
    api_version: Option<&'a str>,
    livemode: bool,
    created: Stamp,
    payload: &'a str,
    status: &'a str,
    attempts: i32,
    last_error: Option<&'a str>,
    received_at: Stamp,
    processed_at: Option<Stamp>,
    failure_kind: Option<&'a str>,
    next_attempt_at: Option<Stamp>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = stripe_events)]
struct EventRow {
    id: String,
    event_type: String,
    created: Stamp,
    payload: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    received_at: Stamp,
    processed_at: Option<Stamp>,
    failure_kind: Option<String>,
    next_attempt_at: Option<Stamp>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = stripe_events)]
struct SummaryRow {
    id: String,
    event_type: String,
    created: Stamp,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    received_at: Stamp,
    processed_at: Option<Stamp>,
}

/// A stored attempt count; a negative one is corrupt.
fn attempts(stored: i32) -> Result<u32, StoreError> {
    u32::try_from(stored).map_err(|_| StoreError::Corrupt(Cause::msg(format!("attempts {stored}"))))
}

fn event_record(row: EventRow) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        status: parse_stored(&row.status)?,
        attempts: attempts(row.attempts)?,
        id: row.id,
        event_type: row.event_type,
        last_error: row.last_error,
        created: row.created.0,
        payload: row.payload,
        received_at: row.received_at.0,
        processed_at: time(row.processed_at),
        failure_kind: row
            .failure_kind
            .as_deref()
            .map(parse_stored::<FailureKind>)
            .transpose()?,
        next_attempt_at: time(row.next_attempt_at),
    })
}

fn event_summary(row: SummaryRow) -> Result<EventSummary, StoreError> {
    Ok(EventSummary {
        status: parse_stored(&row.status)?,
        attempts: attempts(row.attempts)?,
        id: row.id,
        event_type: row.event_type,
        last_error: row.last_error,
        created: row.created.0,
        received_at: row.received_at.0,
        processed_at: time(row.processed_at),
    })
}

/// The claim of `event` as done with `status` at `at` (see `claim_event`): inserts the event,
/// or takes over a failed one, returning its attempts; nothing when it is done already. The
/// conflicting update waits for a concurrent claimer's transaction, then only matches when
/// that one did not commit the event done (`received` is only ever seen from a claim of an
/// older version).
macro_rules! claim_statement {
    ($event:expr, $status:expr, $at:expr) => {{
        use stripe_events::dsl as e;
        let event: &NewEvent = $event;
        let row = NewEventRow {
            id: &event.id,
            event_type: &event.event_type,
            api_version: event.api_version.as_deref(),
            livemode: event.livemode,
            created: Stamp(event.created),
            payload: &event.payload,
            status: $status.as_str(),
            attempts: 0,
            last_error: None,
            received_at: Stamp(event.received_at),
            processed_at: Some(Stamp($at)),
            failure_kind: None,
            next_attempt_at: None,
        };
        let upsert = diesel::insert_into(e::stripe_events)
            .values(row)
            .on_conflict(e::id)
            .do_update()
            .set((
                e::status.eq(excluded(e::status)),
                e::processed_at.eq(excluded(e::processed_at)),
                e::last_error.eq(None::<String>),
                e::failure_kind.eq(None::<String>),
                e::next_attempt_at.eq(None::<Stamp>),
            ));
        cached(
            diesel::query_dsl::methods::FilterDsl::filter(
                upsert,
                e::status.eq_any([EventStatus::Failed.as_str(), EventStatus::Received.as_str()]),
            )
            .returning(e::attempts),
        )
    }};
}

/// A row [`claim_postgres`] claimed, with its earlier failed attempts.
#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempts: i32,
}

/// What a claim also does: it sets `plan_cache_mode` to `force_generic_plan` for the rest of
/// its transaction (`set_config(…, true)`, undone when the transaction ends; a string literal,
/// for `concat!`, true once set). Postgres plans a kept statement again at every execution
/// while it estimates that plan cheaper than the generic one, and for a statement with
/// `= ANY($1)` or `unnest($1)` of a batch's keys it often does (a plan made for the array's
/// length beats one made for an unknown length): ingest's reads of its customers, its users'
/// access and credits, its subscriptions and the statuses of its events found done were
/// planned at every execution. Generic plans are safe for every statement an ingest
/// transaction sends: each reads by keys through an index whose use does not depend on a
/// parameter's value (the partial indexes `GIVE_ROWS_TO_USER` uses match its literal
/// `user_id IS NULL`); the failed-events sweeper's `status = $1` reads, which match the
/// partial index `stripe_events_retry` only on a plan made for the value, run in transactions
/// of their own. Every other transaction keeps the session's mode (an operator's
/// `plan_cache_mode` is overridden for ingest only).
macro_rules! generic_plans {
    () => {
        "set_config('plan_cache_mode', 'force_generic_plan', true) = 'force_generic_plan'"
    };
}

/// The claim statement of `claim_statement!` on Postgres, with the rows to insert taken from
/// `$rows` (a `SELECT` of the nine columns `$1`…`$9` name): each inserted, or a failed one taken over; the claimed
/// ones returned. It fails, claiming nothing, outside a transaction begun by
/// [`PgConn`](crate::begin::PgConn) ([`in_transaction!`]): so it may be sent behind that
/// `BEGIN` in one round trip, and never commits alone if the `BEGIN` failed. It sets the rest
/// of its transaction to generic plans ([`generic_plans!`]).
macro_rules! claim_sql {
    ($rows:literal) => {
        concat!(
            "INSERT INTO stripe_events AS e (id, event_type, api_version, livemode, created, \
             payload, status, attempts, received_at, processed_at) ",
            $rows,
            " WHERE ",
            in_transaction!(),
            " AND ",
            generic_plans!(),
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
             processed_at = excluded.processed_at, last_error = NULL, failure_kind = NULL, \
             next_attempt_at = NULL \
             WHERE e.status IN ('failed', 'received') \
             RETURNING id, attempts"
        )
    };
}

/// [`claim_sql!`] of one event, from its values.
const CLAIM_ONE: &str = claim_sql!(
    "SELECT $1::text, $2::text, $3::text, $4::bool, $5::timestamptz, $6::text, $7::text, 0, \
     $8::timestamptz, $9::timestamptz"
);

/// [`claim_sql!`] of several events, from arrays of their values (`unnest`), in their order.
const CLAIM_ALL: &str = claim_sql!(
    "SELECT id, event_type, api_version, livemode, created, payload, status, 0, received_at, $9 \
     FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::timestamptz[], \
     $6::text[], $7::text[], $8::timestamptz[]) \
     AS t(id, event_type, api_version, livemode, created, payload, status, received_at)"
);

/// Claims `events` in one statement: [`CLAIM_ONE`] for one (binding nine values costs less
/// than unnesting nine arrays), [`CLAIM_ALL`] for more.
async fn claim_postgres(
    mut conn: &AsyncPgConnection,
    events: &[(&NewEvent, EventStatus)],
    at: DateTime<Utc>,
) -> QueryResult<Vec<ClaimedRow>> {
    use diesel::sql_types::{Array, Bool, Nullable, Text, Timestamptz};
    if let [(event, status)] = events {
        return cached(
            diesel::sql_query(CLAIM_ONE)
                .bind::<Text, _>(&event.id)
                .bind::<Text, _>(&event.event_type)
                .bind::<Nullable<Text>, _>(event.api_version.as_deref())
                .bind::<Bool, _>(event.livemode)
                .bind::<Timestamptz, _>(event.created)
                .bind::<Text, _>(&event.payload)
                .bind::<Text, _>(status.as_str())
                .bind::<Timestamptz, _>(event.received_at)
                .bind::<Timestamptz, _>(at),
        )
        .load(&mut conn)
        .await;
    }
    let column = |f: fn(&NewEvent) -> &str| events.iter().map(|(e, _)| f(e)).collect::<Vec<_>>();
    let ids = column(|e| &e.id);
    let types = column(|e| &e.event_type);
    let payloads = column(|e| &e.payload);
    let versions: Vec<Option<&str>> = events
        .iter()
        .map(|(e, _)| e.api_version.as_deref())
        .collect();
    let livemode: Vec<bool> = events.iter().map(|(e, _)| e.livemode).collect();
    let created: Vec<DateTime<Utc>> = events.iter().map(|(e, _)| e.created).collect();
    let received: Vec<DateTime<Utc>> = events.iter().map(|(e, _)| e.received_at).collect();
    let statuses: Vec<&str> = events.iter().map(|(_, s)| s.as_str()).collect();
    cached(
        diesel::sql_query(CLAIM_ALL)
            .bind::<Array<Text>, _>(ids)
            .bind::<Array<Text>, _>(types)
            .bind::<Array<Nullable<Text>>, _>(versions)
            .bind::<Array<Bool>, _>(livemode)
            .bind::<Array<Timestamptz>, _>(created)
            .bind::<Array<Text>, _>(payloads)
            .bind::<Array<Text>, _>(statuses)
            .bind::<Array<Timestamptz>, _>(received)
            .bind::<Timestamptz, _>(at),
    )
    .load(&mut conn)
    .await
}

impl Tx<'_> {
    /// What a claim statement's answer means: claimed with its attempts, or (no row) done
    /// already, with the status read now.
    async fn claim_outcome(&mut self, id: &str, claimed: Option<i32>) -> Result<Claim, StoreError> {
        use stripe_events::dsl as e;
        if let Some(stored) = claimed {
            return Ok(Claim::Claimed {
                attempts: attempts(stored)?,
            });
        }
        let query = e::stripe_events.find(id).select(e::status);
        let status: String = on_conn!(self, |c| query.get_result(c).await)?;
        Ok(Claim::AlreadyDone(parse_stored(&status)?))
    }
}

#[async_trait]
impl EventTx for Tx<'_> {
    async fn claim_event(
        &mut self,
        event: &NewEvent,
        status: EventStatus,
        at: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        if let Conn::Postgres(conn) = &mut self.conn {
            // The statement that may carry the transaction's `BEGIN`.
            let one = [(event, status)];
            let result = conn
                .carrying_begin(async |conn| claim_postgres(conn, &one, at).await)
                .await;
            let claimed = result.map_err(|error| self.statement_failed(error))?;
            let claimed = <[ClaimedRow]>::first(&claimed).map(|row| row.attempts);
            return self.claim_outcome(&event.id, claimed).await;
        }
        let claim = claim_statement!(event, status, at);
        let claimed: Option<i32> = on_conn!(self, |c| claim.get_result(c).await.optional())?;
        self.claim_outcome(&event.id, claimed).await
    }

    /// On Postgres the claim, a try of the customer's lock and its read go in one round trip
    /// (pipelined; Postgres runs them in that order), behind the transaction's `BEGIN` when it
    /// is still pending, so a duplicate never waits for the lock. A claimed event whose
    /// customer's lock was busy then waits for it, with a read.
    async fn claim_event_then_lock_customer(
        &mut self,
        event: &NewEvent,
        status: EventStatus,
        at: DateTime<Utc>,
        customer: Option<&str>,
    ) -> Result<(Claim, Option<CustomerRecord>), StoreError> {
        let customer = customer.filter(|customer| !self.holds(customer));
        let pipelined = match (&mut self.conn, customer) {
            (Conn::Postgres(conn), Some(customer)) => {
                let one = [(event, status)];
                let round_trip = conn
                    .carrying_begin(async |conn| {
                        let claimed = claim_postgres(conn, &one, at);
                        let tried = pg::pipelined(
                            pg::try_lock_key(conn, customer),
                            customer_postgres(conn, customer),
                        );
                        pg::pipelined(claimed, tried).await
                    })
                    .await;
                Some((customer, round_trip))
            }
            _ => None,
        };
        let Some((customer, result)) = pipelined else {
            return claim_then_lock_customer_in_turn(self, event, status, at, customer).await;
        };
        let (claimed, (taken, record)) = result.map_err(|error| self.statement_failed(error))?;
        if taken {
            self.hold(customer);
        }
        let claimed = <[ClaimedRow]>::first(&claimed).map(|row| row.attempts);
        let claim = self.claim_outcome(&event.id, claimed).await?;
        let record = match (&claim, taken) {
            (Claim::AlreadyDone(_), _) => None,
            (Claim::Claimed { .. }, true) => self.known_customer(customer, record),
            // Read without the lock: read again once it is held.
            (Claim::Claimed { .. }, false) => self.lock_customer(customer).await?,
        };
        Ok((claim, record))
    }

    /// One statement on Postgres ([`claim_postgres`]), behind the transaction's `BEGIN` when
    /// it is still pending, and a second one only when some were done already, for their
    /// statuses.
    async fn claim_events(
        &mut self,
        events: &[(&NewEvent, EventStatus)],
        at: DateTime<Utc>,
    ) -> Result<Vec<Claim>, StoreError> {
        let Conn::Postgres(conn) = &mut self.conn else {
            return claim_events_in_turn(self, events, at).await;
        };
        let result = conn
            .carrying_begin(async |conn| claim_postgres(conn, events, at).await)
            .await;
        let claimed = result.map_err(|error| self.statement_failed(error))?;
        self.claims_of(events, claimed).await
    }

    /// One round trip on Postgres: the claim statement of `claim_events`, then the customers'
    /// locks (one statement) and their rows (one statement), pipelined behind the
    /// transaction's `BEGIN` when it is still pending; a second round trip only when some
    /// events were done already, for their statuses.
    async fn claim_events_then_lock_customers(
        &mut self,
        events: &[(&NewEvent, EventStatus)],
        at: DateTime<Utc>,
        customers: &[String],
    ) -> Result<Vec<Claim>, StoreError> {
        let unknown = self.customers_to_lock(customers);
        let new = self.not_held(&unknown);
        let waits = self.waits;
        let (Conn::Postgres(conn), false) = (&mut self.conn, unknown.is_empty()) else {
            let claims = self.claim_events(events, at).await?;
            self.lock_customers(customers).await?;
            return Ok(claims);
        };
        let result = conn
            .carrying_begin(async |conn| {
                let read = customers_postgres(conn, &unknown);
                let locked = pg::take_locks_then(conn, &new, waits, read);
                pg::pipelined(claim_postgres(conn, events, at), locked).await
            })
            .await;
        let (claimed, locked) = result.map_err(|error| self.statement_failed(error))?;
        let read = self.locked_or_busy(new, Ok(locked))?;
        self.known_customers(unknown, read);
        self.claims_of(events, claimed).await
    }

    async fn finish_event(
        &mut self,
        id: &str,
        status: EventStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use stripe_events::dsl as e;
        let update = cached(diesel::update(e::stripe_events.find(id)).set((
            e::status.eq(status.as_str()),
            e::processed_at.eq(Some(Stamp(at))),
            e::last_error.eq(None::<String>),
        )));
        on_conn!(self, |c| update.execute(c).await)?;
        Ok(())
    }
}

impl Tx<'_> {
    /// The claims of `events`, from the rows the claim statement returned (`claimed`): one
    /// statement more when some were done already, for their statuses.
    async fn claims_of(
        &mut self,
        events: &[(&NewEvent, EventStatus)],
        claimed: Vec<ClaimedRow>,
    ) -> Result<Vec<Claim>, StoreError> {
        let mut claims: std::collections::HashMap<String, Claim> = claimed
            .into_iter()
            .map(|row| {
                Ok((
                    row.id,
                    Claim::Claimed {
                        attempts: attempts(row.attempts)?,
                    },
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        let done: Vec<&str> = events
            .iter()
            .map(|(event, _)| event.id.as_str())
            .filter(|id| !claims.contains_key(*id))
            .collect();
        if !done.is_empty() {
            use stripe_events::dsl as e;
            let query = cached(
                e::stripe_events
                    .filter(e::id.eq_any(&done))
                    .select((e::id, e::status)),
            );
            let statuses: Vec<(String, String)> = on_conn!(self, |c| query.load(c).await)?;
            for (id, status) in statuses {
                claims.insert(id, Claim::AlreadyDone(parse_stored(&status)?));
            }
        }
        events
            .iter()
            .map(|(event, _)| {
                claims.remove(&event.id).ok_or_else(|| {
                    StoreError::Corrupt(Cause::msg(format!(
                        "event {} neither claimed nor stored",
                        event.id
                    )))
                })
            })
            .collect()
    }
}

impl Tx<'_> {
    /// Records a failed application (see
    /// [`BillingStore::record_failure`](billing_ports::BillingStore::record_failure)): one
    /// statement records the failure and counts it; for a transient failure a second one sets
    /// the next attempt from the new count. Between the two the event is failed, transient
    /// and without a next attempt, which the sweeper takes as due now: a crash in between
    /// only brings its retry forward.
    pub(crate) async fn record_failure(
        &mut self,
        event: &NewEvent,
        failure: &Failure<'_>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use stripe_events::dsl as e;
        // The reason may quote a value the event carried; a NUL in it (which no text column
        // stores) must not keep the failure from being recorded.
        let error = failure.error.replace('\0', "\u{FFFD}");
        let row = NewEventRow {
            id: &event.id,
            event_type: &event.event_type,
            api_version: event.api_version.as_deref(),
            livemode: event.livemode,
            created: Stamp(event.created),
            payload: &event.payload,
            status: EventStatus::Failed.as_str(),
            attempts: 1,
            last_error: Some(&error),
            received_at: Stamp(at),
            processed_at: None,
            failure_kind: Some(failure.kind.as_str()),
            next_attempt_at: None,
        };
        let upsert = diesel::insert_into(e::stripe_events)
            .values(&row)
            .on_conflict(e::id)
            .do_update()
            .set((
                e::status.eq(EventStatus::Failed.as_str()),
                e::attempts.eq(e::attempts + 1),
                e::last_error.eq(excluded(e::last_error)),
                e::failure_kind.eq(excluded(e::failure_kind)),
                e::next_attempt_at.eq(None::<Stamp>),
            ));
        let record = cached(
            diesel::query_dsl::methods::FilterDsl::filter(
                upsert,
                e::status.eq_any([EventStatus::Failed.as_str(), EventStatus::Received.as_str()]),
            )
            .returning(e::attempts),
        );
        let counted: Option<i32> = on_conn!(self, |c| record.get_result(c).await.optional())?;
        let (Some(stored), FailureKind::Transient) = (counted, failure.kind) else {
            return Ok(());
        };
        let next = at + failure.backoff.delay(attempts(stored)?);
        // Only the failure counted above: a later delivery may have applied or failed it again.
        let schedule = cached(
            diesel::update(
                e::stripe_events
                    .filter(e::id.eq(&event.id))
                    .filter(e::status.eq(EventStatus::Failed.as_str()))
                    .filter(e::attempts.eq(stored)),
            )
            .set(e::next_attempt_at.eq(Some(Stamp(next)))),
        );
        on_conn!(self, |c| schedule.execute(c).await)?;
        Ok(())
    }

    /// The transient failures due at `now` with fewer than `max_attempts` attempts (see
    /// [`RetryStore::due_retries`](billing_ports::RetryStore::due_retries)). A transient
    /// failure without a next attempt (its schedule was not written) is due.
    pub(crate) async fn due_retries(
        &mut self,
        now: DateTime<Utc>,
        max_attempts: u32,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        use stripe_events::dsl as e;
        let max_attempts = i32::try_from(max_attempts).unwrap_or(i32::MAX);
        let query = e::stripe_events
            .select(e::id)
            .filter(e::status.eq(EventStatus::Failed.as_str()))
            .filter(e::failure_kind.eq(FailureKind::Transient.as_str()))
            .filter(e::attempts.lt(max_attempts))
            .filter(
                e::next_attempt_at
                    .le(Stamp(now))
                    .or(e::next_attempt_at.is_null()),
            )
            .order((e::next_attempt_at.asc(), e::id.asc()))
            .limit(i64::from(limit));
        Ok(on_conn!(self, |c| query.load(c).await)?)
    }

    /// A page of failed events (see
    /// [`RetryStore::failed_events`](billing_ports::RetryStore::failed_events)).
    pub(crate) async fn failed_events(
        &mut self,
        since: Option<DateTime<Utc>>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        use stripe_events::dsl as e;
        // No bound is the widest one: every stored time is after the epoch, every id after "".
        let since = since.unwrap_or(DateTime::UNIX_EPOCH);
        let query = e::stripe_events
            .select(e::id)
            .filter(e::status.eq(EventStatus::Failed.as_str()))
            .filter(e::received_at.ge(Stamp(since)))
            .filter(e::id.gt(after.unwrap_or_default()))
            .order(e::id.asc())
            .limit(i64::from(limit));
        Ok(on_conn!(self, |c| query.load(c).await)?)
    }

    /// Reads one stored event.
    pub(crate) async fn event(&mut self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let row: Option<EventRow> = on_conn!(self, |c| stripe_events::table
            .find(id)
            .select(EventRow::as_select())
            .get_result(c)
            .await
            .optional())?;
        row.map(event_record).transpose()
    }

    /// The events matching `filter`, newest received first.
    pub(crate) async fn list_events(
        &mut self,
        filter: &EventFilter,
    ) -> Result<Vec<EventSummary>, StoreError> {
        use stripe_events::dsl as e;
        // Boxed per backend: the macro expands the body once for each connection type.
        let rows: Vec<SummaryRow> = on_conn!(self, |c| {
            let mut query = e::stripe_events
                .select(SummaryRow::as_select())
                .order((e::received_at.desc(), e::id.desc()))
                .limit(i64::from(filter.limit))
                .into_boxed();
            if let Some(status) = filter.status {
                query = query.filter(e::status.eq(status.as_str()));
            }
            if let Some(event_type) = &filter.event_type {
                query = query.filter(e::event_type.eq(event_type.clone()));
            }
            if let Some(since) = filter.since {
                query = query.filter(e::received_at.ge(Stamp(since)));
            }
            query.load(c).await
        })?;
        rows.into_iter().map(event_summary).collect()
    }

    /// Deletes one batch of done events received before `before`, the oldest of each done
    /// status first: one statement per status ([`PURGE_POSTGRES`], [`PURGE_SQLITE`]) until the
    /// batch is full.
    pub(crate) async fn purge_events(
        &mut self,
        before: DateTime<Utc>,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let done = [
            EventStatus::Processed.as_str(),
            EventStatus::Ignored.as_str(),
            EventStatus::Stale.as_str(),
        ];
        let mut deleted = 0_u64;
        for status in done {
            let room = u64::from(batch).saturating_sub(deleted);
            if room == 0 {
                break;
            }
            let sql = match self.conn {
                Conn::Postgres(_) => PURGE_POSTGRES,
                Conn::Sqlite(_) => PURGE_SQLITE,
            };
            let delete = diesel::sql_query(sql)
                .bind::<Text, _>(status)
                .bind::<Ts, _>(Stamp(before))
                .bind::<BigInt, _>(i64::try_from(room).unwrap_or(i64::MAX))
                .bind::<Text, _>(status);
            deleted += on_conn!(self, |c| delete.clone().execute(c).await)? as u64;
        }
        Ok(deleted)
    }
}
