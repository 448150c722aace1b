//! The push of the change feed (`push_endpoints`, `push_deliveries`, `push_attempts`):
//! [`PushStore`](billing_ports::PushStore)'s queries. None runs inside an ingest transaction.
//!
//! An endpoint follows the feed by its newest delivery: new deliveries are the numbered
//! change records after it (after the endpoint's `start_after` before the first), inserted by
//! one `INSERT … SELECT` so no record is skipped or taken twice (`UNIQUE (endpoint_id,
//! change_seq)`).

use std::collections::HashMap;

use billing_ports::{
    AttemptOutcome, ChangeRecord, DeliveryFilter, DeliveryStatus, DeliverySummary, DuePush,
    PushAttempt, PushEndpointRecord, ReplaySelection, StoreError,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

use crate::changes::ChangeRow;
use crate::schema::{
    Stamp, Ts, changes, push_attempts, push_deliveries, push_endpoints, stamp, time,
};
use crate::tx::{Conn, Tx, on_conn};

/// The deliveries of the change records after the endpoint's newest delivery (or its start),
/// in feed order; `$1` the endpoint, `$2` the time, `$3` the most to create. The `WHERE` is
/// also what SQLite needs to parse `ON CONFLICT` after a `SELECT`.
const ENQUEUE_POSTGRES: &str = "\
INSERT INTO push_deliveries (endpoint_id, change_seq, status, next_attempt_at, created_at, updated_at) \
SELECT e.id, c.seq, 'pending', $2, $2, $2 \
FROM push_endpoints e JOIN changes c ON c.seq > coalesce( \
    (SELECT max(d.change_seq) FROM push_deliveries d WHERE d.endpoint_id = e.id), e.start_after) \
WHERE e.id = $1 \
ORDER BY c.seq LIMIT $3 \
ON CONFLICT (endpoint_id, change_seq) DO NOTHING";

/// [`ENQUEUE_POSTGRES`] with SQLite's numbered parameters.
const ENQUEUE_SQLITE: &str = "\
INSERT INTO push_deliveries (endpoint_id, change_seq, status, next_attempt_at, created_at, updated_at) \
SELECT e.id, c.seq, 'pending', ?2, ?2, ?2 \
FROM push_endpoints e JOIN changes c ON c.seq > coalesce( \
    (SELECT max(d.change_seq) FROM push_deliveries d WHERE d.endpoint_id = e.id), e.start_after) \
WHERE e.id = ?1 \
ORDER BY c.seq LIMIT ?3 \
ON CONFLICT (endpoint_id, change_seq) DO NOTHING";

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = push_endpoints)]
struct EndpointRow {
    id: String,
    display: String,
    start_after: i64,
    created_at: Stamp,
}

impl From<EndpointRow> for PushEndpointRecord {
    fn from(row: EndpointRow) -> Self {
        Self {
            id: row.id,
            display: row.display,
            start_after: row.start_after,
            created_at: row.created_at.0,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = push_attempts)]
struct NewAttemptRow<'a> {
    delivery_id: i64,
    attempt: i32,
    started_at: Stamp,
    duration_ms: i64,
    status_code: Option<i32>,
    error: Option<&'a str>,
    outcome: &'static str,
}

/// The longest error text kept per attempt (the column's limit).
const ERROR_LIMIT: usize = 1024;

/// `text` cut to at most `ERROR_LIMIT` bytes, on a character boundary.
fn bounded(text: &str) -> &str {
    if text.len() <= ERROR_LIMIT {
        return text;
    }
    let mut end = ERROR_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A listed delivery: id, endpoint id and display, change seq, id, kind and user, status,
/// attempts, next attempt, created, updated.
type SummaryRow = (
    i64,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    i32,
    Option<Stamp>,
    Stamp,
    Stamp,
);

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or_default()
}

fn status_code(code: Option<i32>) -> Option<u16> {
    code.and_then(|c| u16::try_from(c).ok())
}

impl Tx<'_> {
    /// Stores the endpoint unless stored, starting after the newest numbered record; the
    /// stored row.
    pub(crate) async fn register_push_endpoint(
        &mut self,
        id: &str,
        display: &str,
        now: DateTime<Utc>,
    ) -> Result<PushEndpointRecord, StoreError> {
        self.number_changes().await?;
        let head = self.change_head().await?;
        let row = EndpointRow {
            id: id.to_owned(),
            display: display.to_owned(),
            start_after: head,
            created_at: Stamp(now),
        };
        let insert = diesel::insert_into(push_endpoints::table)
            .values(&row)
            .on_conflict(push_endpoints::id)
            .do_nothing();
        on_conn!(self, |c| insert.execute(c).await)?;
        let query = push_endpoints::table.find(id);
        let stored: EndpointRow = on_conn!(self, |c| query
            .select(EndpointRow::as_select())
            .get_result(c)
            .await)?;
        Ok(stored.into())
    }

    /// Creates the endpoint's next deliveries (see [`ENQUEUE_POSTGRES`]).
    pub(crate) async fn enqueue_pushes(
        &mut self,
        endpoint_id: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<usize, StoreError> {
        self.number_changes().await?;
        let limit = i64::from(limit);
        let sql = match self.conn {
            Conn::Postgres(_) => ENQUEUE_POSTGRES,
            Conn::Sqlite(_) => ENQUEUE_SQLITE,
        };
        let query = diesel::sql_query(sql)
            .bind::<Text, _>(endpoint_id)
            .bind::<Ts, _>(Stamp(now))
            .bind::<BigInt, _>(limit);
        on_conn!(self, |c| query.execute(c).await)
    }

    /// The endpoint's pending deliveries due at `now`, oldest change first.
    pub(crate) async fn due_pushes(
        &mut self,
        endpoint_id: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DuePush>, StoreError> {
        use push_deliveries::dsl as d;
        let query = d::push_deliveries
            .inner_join(changes::table.on(changes::seq.eq(d::change_seq.nullable())))
            .filter(d::endpoint_id.eq(endpoint_id))
            .filter(d::status.eq(DeliveryStatus::Pending.as_str()))
            .filter(d::next_attempt_at.le(Stamp(now)))
            .order(d::change_seq.asc())
            .limit(i64::from(limit));
        let rows: Vec<(i64, i32, i32, ChangeRow)> = on_conn!(self, |c| query
            .select((d::id, d::attempts, d::failures, ChangeRow::as_select()))
            .load(c)
            .await)?;
        rows.into_iter()
            .map(|(delivery_id, attempts, failures, change)| {
                Ok(DuePush {
                    delivery_id,
                    attempts: count(attempts),
                    failures: count(failures),
                    record: ChangeRecord::try_from(change)?,
                })
            })
            .collect()
    }

    /// When the endpoint's next pending delivery is due.
    pub(crate) async fn next_push_due(
        &mut self,
        endpoint_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        use push_deliveries::dsl as d;
        let query = d::push_deliveries
            .filter(d::endpoint_id.eq(endpoint_id))
            .filter(d::status.eq(DeliveryStatus::Pending.as_str()))
            .order(d::next_attempt_at.asc())
            .select(d::next_attempt_at);
        let next: Option<Option<Stamp>> = on_conn!(self, |c| query.first(c).await.optional())?;
        Ok(time(next.flatten()))
    }

    /// One attempt row per attempt, then each delivery's state: the successes in one
    /// statement, each retry and each give-up in its own.
    pub(crate) async fn record_push_attempts(
        &mut self,
        attempts: &[PushAttempt],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use push_deliveries::dsl as d;
        if attempts.is_empty() {
            return Ok(());
        }
        let rows: Vec<NewAttemptRow<'_>> = attempts
            .iter()
            .map(|a| NewAttemptRow {
                delivery_id: a.delivery_id,
                attempt: i32::try_from(a.attempt).unwrap_or(i32::MAX),
                started_at: Stamp(a.started_at),
                duration_ms: i64::try_from(a.duration_ms).unwrap_or(i64::MAX),
                status_code: a.status_code.map(i32::from),
                error: a.error.as_deref().map(bounded),
                outcome: a.outcome.as_str(),
            })
            .collect();
        // One statement on Postgres; SQLite cannot batch rows with optional columns.
        on_conn!(
            self,
            postgres: |c| diesel::insert_into(push_attempts::table)
                .values(&rows)
                .execute(c)
                .await,
            sqlite: |c| {
                let mut written = Ok(0);
                for row in &rows {
                    written = diesel::insert_into(push_attempts::table)
                        .values(row)
                        .execute(&mut *c)
                        .await;
                    if written.is_err() {
                        break;
                    }
                }
                written
            },
        )?;
        let delivered: Vec<i64> = attempts
            .iter()
            .filter(|a| a.outcome == AttemptOutcome::Succeeded)
            .map(|a| a.delivery_id)
            .collect();
        if !delivered.is_empty() {
            let update = diesel::update(d::push_deliveries.filter(d::id.eq_any(&delivered))).set((
                d::status.eq(DeliveryStatus::Succeeded.as_str()),
                d::attempts.eq(d::attempts + 1),
                d::failures.eq(0),
                d::next_attempt_at.eq(None::<Stamp>),
                d::updated_at.eq(Stamp(now)),
            ));
            on_conn!(self, |c| update.execute(c).await)?;
        }
        for attempt in attempts {
            let (status, next) = match attempt.outcome {
                AttemptOutcome::Succeeded => continue,
                AttemptOutcome::Retry(at) => (DeliveryStatus::Pending, Some(at)),
                AttemptOutcome::Failed => (DeliveryStatus::Failed, None),
            };
            let update = diesel::update(d::push_deliveries.find(attempt.delivery_id)).set((
                d::status.eq(status.as_str()),
                d::attempts.eq(d::attempts + 1),
                d::failures.eq(d::failures + 1),
                d::next_attempt_at.eq(stamp(next)),
                d::updated_at.eq(Stamp(now)),
            ));
            on_conn!(self, |c| update.execute(c).await)?;
        }
        Ok(())
    }

    /// The deliveries matching `filter`, newest first, with their last attempt.
    pub(crate) async fn push_deliveries(
        &mut self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliverySummary>, StoreError> {
        use push_deliveries::dsl as d;
        // Expanded once per backend by `on_conn!`: a boxed query is built for one backend.
        macro_rules! listing {
            () => {{
                let mut query = d::push_deliveries
                    .inner_join(push_endpoints::table.on(push_endpoints::id.eq(d::endpoint_id)))
                    .inner_join(changes::table.on(changes::seq.eq(d::change_seq.nullable())))
                    .order(d::id.desc())
                    .limit(i64::from(filter.limit))
                    .select((
                        d::id,
                        d::endpoint_id,
                        push_endpoints::display,
                        d::change_seq,
                        changes::change_id,
                        changes::kind,
                        changes::user_id,
                        d::status,
                        d::attempts,
                        d::next_attempt_at,
                        d::created_at,
                        d::updated_at,
                    ))
                    .into_boxed();
                if let Some(status) = filter.status {
                    query = query.filter(d::status.eq(status.as_str()));
                }
                if let Some(endpoint) = &filter.endpoint_id {
                    query = query.filter(d::endpoint_id.eq(endpoint.clone()));
                }
                query
            }};
        }
        let rows: Vec<SummaryRow> = on_conn!(self, |c| listing!().load(c).await)?;
        self.summaries(rows).await
    }

    /// The listed rows with each delivery's last attempt.
    async fn summaries(
        &mut self,
        rows: Vec<SummaryRow>,
    ) -> Result<Vec<DeliverySummary>, StoreError> {
        let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
        let query = push_attempts::table
            .filter(push_attempts::delivery_id.eq_any(&ids))
            .order(push_attempts::id.desc())
            .select((
                push_attempts::delivery_id,
                push_attempts::status_code,
                push_attempts::error,
            ));
        let attempts: Vec<(i64, Option<i32>, Option<String>)> =
            on_conn!(self, |c| query.load(c).await)?;
        let mut last: HashMap<i64, (Option<i32>, Option<String>)> = HashMap::new();
        for (delivery, code, error) in attempts {
            last.entry(delivery).or_insert((code, error));
        }
        rows.into_iter()
            .map(|row| {
                let (code, error) = last.remove(&row.0).unwrap_or((None, None));
                Ok(DeliverySummary {
                    id: row.0,
                    endpoint_id: row.1,
                    endpoint: row.2,
                    change_seq: row.3,
                    change_id: row.4,
                    kind: row.5,
                    user_id: row.6,
                    status: row.7.parse()?,
                    attempts: count(row.8),
                    next_attempt_at: time(row.9),
                    last_status_code: status_code(code),
                    last_error: error,
                    created_at: row.10.0,
                    updated_at: row.11.0,
                })
            })
            .collect()
    }

    /// Makes the selected deliveries pending again, due `now`.
    pub(crate) async fn replay_pushes(
        &mut self,
        selection: &ReplaySelection,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        use push_deliveries::dsl as d;
        let again = (
            d::status.eq(DeliveryStatus::Pending.as_str()),
            d::failures.eq(0),
            d::next_attempt_at.eq(Some(Stamp(now))),
            d::updated_at.eq(Stamp(now)),
        );
        match selection {
            ReplaySelection::Ids(ids) => {
                // A delivery whose record the retention purged (a lagging endpoint's newest,
                // which stays as its position) cannot be sent again: it is left as it is.
                let record = changes::table.filter(changes::seq.eq(d::change_seq.nullable()));
                let update = diesel::update(
                    d::push_deliveries
                        .filter(d::id.eq_any(ids))
                        .filter(diesel::dsl::exists(record)),
                )
                .set(again);
                on_conn!(self, |c| update.execute(c).await)
            }
            ReplaySelection::Failed { endpoint_id: None } => {
                let update = diesel::update(
                    d::push_deliveries.filter(d::status.eq(DeliveryStatus::Failed.as_str())),
                )
                .set(again);
                on_conn!(self, |c| update.execute(c).await)
            }
            ReplaySelection::Failed {
                endpoint_id: Some(endpoint),
            } => {
                let update = diesel::update(
                    d::push_deliveries
                        .filter(d::status.eq(DeliveryStatus::Failed.as_str()))
                        .filter(d::endpoint_id.eq(endpoint)),
                )
                .set(again);
                on_conn!(self, |c| update.execute(c).await)
            }
        }
    }
}
