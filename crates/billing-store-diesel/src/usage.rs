//! Metered usage: every recorded use (`usage`, once per user and idempotency key) and the
//! running totals per user, metric and period (`usage_counters`) that allowed uses add to.

use async_trait::async_trait;
use billing_ports::{Cause, StoreError, UsageRead, UsageRecord, UsageTx};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;

use crate::schema::{Stamp, usage, usage_counters};
use crate::tx::{Tx, on_conn};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = usage)]
struct UsageRow {
    user_id: String,
    metric: String,
    period_start: Stamp,
    quantity: i64,
    idempotency_key: String,
    allowed: bool,
    used_after: i64,
    limit_value: Option<i64>,
    recorded_at: Stamp,
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
fn from_stored(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Corrupt(Cause::msg(format!("{what} {value} is negative"))))
}

fn usage_row(u: &UsageRecord) -> Result<UsageRow, StoreError> {
    Ok(UsageRow {
        user_id: u.user_id.clone(),
        metric: u.metric.clone(),
        period_start: Stamp(u.period_start),
        quantity: to_stored(u.quantity, "usage quantity")?,
        idempotency_key: u.idempotency_key.clone(),
        allowed: u.allowed,
        used_after: to_stored(u.used_after, "usage used_after")?,
        limit_value: u.limit.map(|l| to_stored(l, "usage limit")).transpose()?,
        recorded_at: Stamp(u.recorded_at),
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
        period_start: row.period_start.0,
        idempotency_key: row.idempotency_key,
        allowed: row.allowed,
        recorded_at: row.recorded_at.0,
    })
}

#[async_trait]
impl UsageRead for Tx<'_> {
    async fn usage_by_key(
        &mut self,
        user_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<UsageRecord>, StoreError> {
        let row: Option<UsageRow> = on_conn!(self, |c| usage::table
            .filter(usage::user_id.eq(user_id))
            .filter(usage::idempotency_key.eq(idempotency_key))
            .select(UsageRow::as_select())
            .get_result(c)
            .await
            .optional())?;
        row.map(usage_record).transpose()
    }

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

#[async_trait]
impl UsageTx for Tx<'_> {
    async fn record_usage(&mut self, record: &UsageRecord) -> Result<(), StoreError> {
        use usage_counters::dsl as c;
        let row = usage_row(record)?;
        let insert = diesel::insert_into(usage::table).values(&row);
        on_conn!(self, |conn| insert.execute(conn).await)?;
        if record.allowed {
            // A sum beyond BIGINT is refused by the database (Postgres' range check, SQLite's
            // `typeof(used) = 'integer'` check), never wrapped.
            let add = diesel::insert_into(c::usage_counters)
                .values((
                    c::user_id.eq(&row.user_id),
                    c::metric.eq(&row.metric),
                    c::period_start.eq(row.period_start),
                    c::used.eq(row.quantity),
                ))
                .on_conflict((c::user_id, c::metric, c::period_start))
                .do_update()
                .set(c::used.eq(c::used + excluded(c::used)));
            on_conn!(self, |conn| add.execute(conn).await)?;
        }
        Ok(())
    }
}
