//! Metered usage: every recorded use (`usage`, once per user and idempotency key) and the
//! running totals per user, metric and period (`usage_counters`) that allowed uses add to.
//!
//! A consume ([`BillingStore::consume_usage`](billing_ports::BillingStore::consume_usage)) is
//! checked, counted and recorded atomically:
//!
//! - **Postgres: one statement, no transaction around it** ([`consume_postgres`]), for a
//!   consume that comes alone; concurrent ones share a transaction (`usage_batch`). It reads the
//!   key's earlier record and the counter in its snapshot, decides, adds the quantity with
//!   `INSERT … ON CONFLICT DO UPDATE SET used = used + q WHERE used <= limit - q`, and inserts
//!   the usage row, all in one CTE. The counter's row lock, held from that upsert until the
//!   statement commits, is the only thing concurrent consumes of one counter wait for; the
//!   `WHERE` is evaluated on the locked, newest row, so the limit is never passed. Two races
//!   end the statement without effect and it runs again on a new snapshot: the counter grew
//!   between the snapshot and the lock so the request no longer fits (it is then denied
//!   against the total it sees, never on a stale one), or another request with the same key
//!   committed first (the usage row's unique key refuses the insert and rolls the whole
//!   statement back, counter included; the next run replays that request's record).
//! - **SQLite: one transaction** of small statements ([`consume_sqlite`]). SQLite has one
//!   writer at a time (and the store queues its writers), so nothing can come between them.

use billing_ports::{Cause, StoreError, UsageConsumed, UsageRead, UsageRecord, UsageRequest};
use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz};
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::schema::{Stamp, usage, usage_counters};
use crate::sqlite::SqliteConn;
use crate::tx::{self, Tx, on_conn};

/// How many times a consume runs again after a race (see the module docs) before it gives up
/// as [`StoreError::Unavailable`]. Each race means another request committed on the same
/// counter or key in the meantime, so a run that is raced this often is starved by a hot
/// counter; the caller may retry.
pub(crate) const MAX_RUNS: usize = 32;

#[derive(Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = usage)]
pub(crate) struct UsageRow {
    pub(crate) user_id: String,
    pub(crate) metric: String,
    pub(crate) period_start: Stamp,
    pub(crate) quantity: i64,
    pub(crate) idempotency_key: String,
    pub(crate) allowed: bool,
    pub(crate) used_after: i64,
    pub(crate) limit_value: Option<i64>,
    pub(crate) recorded_at: Stamp,
}

/// A count for a BIGINT column; values beyond `i64::MAX` are refused, not wrapped.
fn to_stored(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        StoreError::Query(Cause::msg(format!(
            "{what} {value} exceeds the database's range"
        )))
    })
}

/// A count read back from a BIGINT column; a negative one is corrupt.
pub(crate) fn from_stored(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Corrupt(Cause::msg(format!("{what} {value} is negative"))))
}

pub(crate) fn usage_record(row: UsageRow) -> Result<UsageRecord, StoreError> {
    Ok(UsageRecord {
        quantity: from_stored(row.quantity, "usage quantity")?,
        used_after: from_stored(row.used_after, "usage used_after")?,
        limit: row
            .limit_value
            .map(|l| from_stored(l, "usage limit"))
            .transpose()?,
        user_id: row.user_id,
        metric: row.metric,
        period_start: row.period_start.0,
        idempotency_key: row.idempotency_key,
        allowed: row.allowed,
        recorded_at: row.recorded_at.0,
    })
}

/// A request's values as the database stores them.
pub(crate) struct Stored<'a> {
    pub(crate) user_id: &'a str,
    pub(crate) metric: &'a str,
    pub(crate) period_start: DateTime<Utc>,
    pub(crate) quantity: i64,
    pub(crate) idempotency_key: &'a str,
    pub(crate) limit: Option<i64>,
    pub(crate) recorded_at: DateTime<Utc>,
}

impl<'a> Stored<'a> {
    pub(crate) fn of(request: &'a UsageRequest) -> Result<Self, StoreError> {
        Ok(Self {
            user_id: &request.user_id,
            metric: &request.metric,
            // Postgres keeps microseconds: the batch's counters are matched by this value.
            period_start: request.period_start.trunc_subsecs(6),
            quantity: to_stored(request.quantity, "usage quantity")?,
            idempotency_key: &request.idempotency_key,
            limit: request
                .limit
                .map(|l| to_stored(l, "usage limit"))
                .transpose()?,
            recorded_at: request.recorded_at,
        })
    }

    /// The row recording this request, allowed or not, with `used_after`.
    pub(crate) fn row(&self, allowed: bool, used_after: i64) -> UsageRow {
        UsageRow {
            user_id: self.user_id.to_owned(),
            metric: self.metric.to_owned(),
            period_start: Stamp(self.period_start),
            quantity: self.quantity,
            idempotency_key: self.idempotency_key.to_owned(),
            allowed,
            used_after,
            limit_value: self.limit,
            recorded_at: Stamp(self.recorded_at),
        }
    }
}

/// What a request gets against a counter at `used`: the rule both backends apply (the
/// Postgres statement spells it in SQL). Neither side of a comparison can overflow: both
/// values are in `0..=i64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// `used + quantity <= limit` (and within BIGINT): counted.
    Count,
    /// `used + quantity > limit`: denied and recorded.
    Deny,
    /// Within the limit but past `i64::MAX`: refused, nothing recorded.
    TooLarge,
}

pub(crate) fn verdict(used: i64, quantity: i64, limit: Option<i64>) -> Verdict {
    if limit.is_some_and(|limit| used > limit - quantity) {
        Verdict::Deny
    } else if used > i64::MAX - quantity {
        Verdict::TooLarge
    } else {
        Verdict::Count
    }
}

#[async_trait::async_trait]
impl UsageRead for Tx<'_> {
    async fn usage_used(
        &mut self,
        user_id: &str,
        metric: &str,
        period_start: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let query = usage_counters::table
            .find((user_id, metric, Stamp(period_start)))
            .select(usage_counters::used);
        let used: Option<i64> = on_conn!(self, |c| query.get_result(c).await.optional())?;
        used.map_or(Ok(0), |u| from_stored(u, "usage_counters.used"))
    }
}

/// The Postgres consume statement (see the module docs). A type of its own, not a
/// `sql_query`, so that diesel-async prepares it once per connection and keeps it.
struct ConsumeStatement<'q> {
    request: &'q Stored<'q>,
}

impl QueryId for ConsumeStatement<'_> {
    type QueryId = ConsumeStatement<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for ConsumeStatement<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl QueryFragment<Pg> for ConsumeStatement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let r = self.request;
        out.push_sql(
            "WITH p (user_id, metric, period_start, quantity, idempotency_key, limit_value, \
             recorded_at) AS (VALUES (",
        );
        out.push_bind_param::<Text, _>(&r.user_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&r.metric)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&r.period_start)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&r.quantity)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&r.idempotency_key)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<BigInt>, _>(&r.limit)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&r.recorded_at)?;
        // The earlier record of the key, and the counter, as of the snapshot.
        out.push_sql(
            ")), \
             prior AS ( \
                SELECT u.metric, u.period_start, u.quantity, u.allowed, u.used_after, \
                       u.limit_value, u.recorded_at \
                FROM usage u, p \
                WHERE u.user_id = p.user_id AND u.idempotency_key = p.idempotency_key), \
             decision AS ( \
                SELECT p.*, seen.used, \
                   CASE WHEN EXISTS (SELECT 1 FROM prior) THEN 'replay' \
                        WHEN p.limit_value IS NOT NULL \
                             AND seen.used > p.limit_value - p.quantity THEN 'deny' \
                        WHEN seen.used > 9223372036854775807 - p.quantity THEN 'too_large' \
                        ELSE 'count' END AS verdict \
                FROM p CROSS JOIN LATERAL ( \
                   SELECT COALESCE((SELECT c.used FROM usage_counters c \
                                    WHERE c.user_id = p.user_id AND c.metric = p.metric \
                                      AND c.period_start = p.period_start), 0) AS used) seen), ",
        );
        // The count, checked again on the newest row once it is locked.
        out.push_sql(
            "bump AS ( \
                INSERT INTO usage_counters (user_id, metric, period_start, used) \
                SELECT user_id, metric, period_start, quantity FROM decision \
                WHERE verdict = 'count' \
                ON CONFLICT (user_id, metric, period_start) DO UPDATE \
                SET used = usage_counters.used + excluded.used \
                WHERE usage_counters.used <= COALESCE(",
        );
        out.push_bind_param::<Nullable<BigInt>, _>(&r.limit)?;
        out.push_sql(
            ", 9223372036854775807) - excluded.used \
                RETURNING used), \
             recorded AS ( \
                INSERT INTO usage (user_id, metric, period_start, quantity, idempotency_key, \
                                   allowed, used_after, limit_value, recorded_at) \
                SELECT d.user_id, d.metric, d.period_start, d.quantity, d.idempotency_key, \
                       d.verdict = 'count', COALESCE((SELECT used FROM bump), d.used), \
                       d.limit_value, d.recorded_at \
                FROM decision d \
                WHERE d.verdict = 'deny' \
                   OR (d.verdict = 'count' AND EXISTS (SELECT 1 FROM bump)) \
                RETURNING allowed, used_after) \
             SELECT d.verdict, d.used AS seen, \
                    pr.metric AS prior_metric, pr.period_start AS prior_period_start, \
                    pr.quantity AS prior_quantity, pr.allowed AS prior_allowed, \
                    pr.used_after AS prior_used_after, pr.limit_value AS prior_limit, \
                    pr.recorded_at AS prior_recorded_at, \
                    r.allowed AS recorded_allowed, r.used_after AS recorded_used_after \
             FROM decision d LEFT JOIN prior pr ON true LEFT JOIN recorded r ON true",
        );
        Ok(())
    }
}

/// The one row the consume statement answers.
#[derive(QueryableByName)]
struct ConsumeRow {
    #[diesel(sql_type = Text)]
    verdict: String,
    #[diesel(sql_type = BigInt)]
    seen: i64,
    #[diesel(sql_type = Nullable<Text>)]
    prior_metric: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    prior_period_start: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    prior_quantity: Option<i64>,
    #[diesel(sql_type = Nullable<Bool>)]
    prior_allowed: Option<bool>,
    #[diesel(sql_type = Nullable<BigInt>)]
    prior_used_after: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    prior_limit: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    prior_recorded_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Bool>)]
    recorded_allowed: Option<bool>,
    #[diesel(sql_type = Nullable<BigInt>)]
    recorded_used_after: Option<i64>,
}

/// What one run of a consume ended with.
enum Run {
    /// Decided (recorded, replayed or too large).
    Done(UsageConsumed),
    /// Raced (see the module docs): nothing was written; run again.
    Again,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(Cause::msg(format!("consume statement: {what}")))
}

impl ConsumeRow {
    fn run(self, stored: &Stored<'_>) -> Result<Run, StoreError> {
        let record = |metric: String,
                      period_start: DateTime<Utc>,
                      quantity: i64,
                      allowed: bool,
                      used_after: i64,
                      limit: Option<i64>,
                      recorded_at: DateTime<Utc>| {
            usage_record(UsageRow {
                user_id: stored.user_id.to_owned(),
                metric,
                period_start: Stamp(period_start),
                quantity,
                idempotency_key: stored.idempotency_key.to_owned(),
                allowed,
                used_after,
                limit_value: limit,
                recorded_at: Stamp(recorded_at),
            })
        };
        match self.verdict.as_str() {
            "replay" => {
                let (
                    Some(metric),
                    Some(period_start),
                    Some(quantity),
                    Some(allowed),
                    Some(used_after),
                    Some(recorded_at),
                ) = (
                    self.prior_metric,
                    self.prior_period_start,
                    self.prior_quantity,
                    self.prior_allowed,
                    self.prior_used_after,
                    self.prior_recorded_at,
                )
                else {
                    return Err(corrupt("a replay without its earlier record"));
                };
                Ok(Run::Done(UsageConsumed::Replayed(record(
                    metric,
                    period_start,
                    quantity,
                    allowed,
                    used_after,
                    self.prior_limit,
                    recorded_at,
                )?)))
            }
            "too_large" => Ok(Run::Done(UsageConsumed::TooLarge {
                used: from_stored(self.seen, "usage_counters.used")?,
            })),
            "deny" | "count" => match (self.recorded_allowed, self.recorded_used_after) {
                (Some(allowed), Some(used_after)) => {
                    Ok(Run::Done(UsageConsumed::Recorded(record(
                        stored.metric.to_owned(),
                        stored.period_start,
                        stored.quantity,
                        allowed,
                        used_after,
                        stored.limit,
                        stored.recorded_at,
                    )?)))
                }
                // Counted in the snapshot, no longer fitting once locked: nothing written.
                _ if self.verdict == "count" => Ok(Run::Again),
                _ => Err(corrupt("a denial that was not recorded")),
            },
            other => Err(corrupt(&format!("unknown verdict {other:?}"))),
        }
    }
}

/// Consumes on Postgres in one statement, outside any transaction (see the module docs).
pub(crate) async fn consume_postgres(
    conn: &mut AsyncPgConnection,
    request: &UsageRequest,
) -> Result<UsageConsumed, StoreError> {
    let stored = Stored::of(request)?;
    for _ in 0..MAX_RUNS {
        let statement = ConsumeStatement { request: &stored };
        let failed_with = match statement.get_result::<ConsumeRow>(&mut *conn).await {
            Ok(row) => match row.run(&stored)? {
                Run::Done(consumed) => return Ok(consumed),
                Run::Again => continue,
            },
            // The key was committed by a concurrent request: the statement rolled back.
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => continue,
            Err(error) => error,
        };
        return failed(conn, failed_with).await;
    }
    Err(StoreError::Unavailable(Cause::msg(format!(
        "usage of {} raced by other requests {MAX_RUNS} times in a row",
        request.metric
    ))))
}

/// A consume's statement that failed otherwise than by a race, diagnosed on its connection as
/// every store call's is ([`tx::confirm`]).
pub(crate) async fn failed<T>(
    conn: &mut AsyncPgConnection,
    error: DieselError,
) -> Result<T, StoreError> {
    let mut tx = Tx::new(conn);
    let error = tx.statement_failed(error);
    tx::confirm(&mut tx, Err(error)).await
}

/// Consumes on SQLite in one transaction (the caller holds the store's writer gate).
pub(crate) async fn consume_sqlite(
    conn: &mut SqliteConn,
    request: &UsageRequest,
) -> Result<UsageConsumed, StoreError> {
    let stored = Stored::of(request)?;
    let stored = &stored;
    let result = conn
        .transaction(async |c: &mut SqliteConn| consume_steps(c, stored).await)
        .await;
    let mut tx = Tx::new(conn);
    let result = match result {
        Ok(Step::Replayed(row)) => usage_record(row).map(UsageConsumed::Replayed),
        Ok(Step::Recorded(row)) => usage_record(row).map(UsageConsumed::Recorded),
        Ok(Step::TooLarge(used)) => {
            from_stored(used, "usage_counters.used").map(|used| UsageConsumed::TooLarge { used })
        }
        Err(error) => Err(tx.statement_failed(error)),
    };
    tx::confirm(&mut tx, result).await
}

/// What the SQLite steps found or wrote.
enum Step {
    Replayed(UsageRow),
    Recorded(UsageRow),
    TooLarge(i64),
}

async fn consume_steps(c: &mut SqliteConn, stored: &Stored<'_>) -> QueryResult<Step> {
    use usage_counters::dsl as counters;
    let prior: Option<UsageRow> = usage::table
        .filter(usage::user_id.eq(stored.user_id))
        .filter(usage::idempotency_key.eq(stored.idempotency_key))
        .select(UsageRow::as_select())
        .get_result(c)
        .await
        .optional()?;
    if let Some(prior) = prior {
        return Ok(Step::Replayed(prior));
    }
    let used: i64 = usage_counters::table
        .find((stored.user_id, stored.metric, Stamp(stored.period_start)))
        .select(usage_counters::used)
        .get_result(c)
        .await
        .optional()?
        .unwrap_or(0);
    let row = match verdict(used, stored.quantity, stored.limit) {
        Verdict::TooLarge => return Ok(Step::TooLarge(used)),
        Verdict::Deny => stored.row(false, used),
        Verdict::Count => {
            diesel::insert_into(counters::usage_counters)
                .values((
                    counters::user_id.eq(stored.user_id),
                    counters::metric.eq(stored.metric),
                    counters::period_start.eq(Stamp(stored.period_start)),
                    counters::used.eq(stored.quantity),
                ))
                .on_conflict((counters::user_id, counters::metric, counters::period_start))
                .do_update()
                .set(counters::used.eq(counters::used + excluded(counters::used)))
                .execute(c)
                .await?;
            stored.row(true, used + stored.quantity)
        }
    };
    diesel::insert_into(usage::table)
        .values(&row)
        .execute(c)
        .await?;
    Ok(Step::Recorded(row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_denies_past_the_limit_and_refuses_past_bigint() {
        let max = i64::MAX;
        assert_eq!(verdict(0, 10, Some(10)), Verdict::Count);
        assert_eq!(verdict(1, 10, Some(10)), Verdict::Deny);
        assert_eq!(verdict(11, 0, Some(10)), Verdict::Deny);
        assert_eq!(verdict(10, 0, Some(10)), Verdict::Count);
        assert_eq!(verdict(max, 1, None), Verdict::TooLarge);
        assert_eq!(verdict(max - 1, 1, None), Verdict::Count);
        assert_eq!(verdict(0, max, Some(max)), Verdict::Count);
        assert_eq!(verdict(1, max, Some(max)), Verdict::Deny);
        assert_eq!(verdict(max, max, None), Verdict::TooLarge);
    }
}
