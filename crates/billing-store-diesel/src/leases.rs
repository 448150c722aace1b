//! The lease rows of background jobs (`job_leases`): take, renew and release, each one
//! conditional statement, so that two replicas racing for a job never both hold it
//! ([`LeaseStore`](billing_ports::LeaseStore)'s queries).

use billing_ports::{LeaseRecord, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;

use crate::schema::{Stamp, job_leases};
use crate::tx::{Tx, on_conn};

#[derive(Insertable)]
#[diesel(table_name = job_leases)]
struct NewLeaseRow<'a> {
    job: &'a str,
    holder: &'a str,
    taken_at: Stamp,
    expires_at: Stamp,
    next_run_at: Stamp,
    runs: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = job_leases)]
struct LeaseRow {
    job: String,
    holder: String,
    taken_at: Stamp,
    expires_at: Stamp,
    next_run_at: Stamp,
    runs: i64,
}

/// `now + ttl`, or the latest time when that overflows.
fn until(now: DateTime<Utc>, ttl: TimeDelta) -> DateTime<Utc> {
    now.checked_add_signed(ttl)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Tx<'_> {
    /// Takes the lease when due and free (see `LeaseStore::take_lease`): an insert, or an
    /// update of the row that only matches when its run is due and nobody else holds it.
    pub(crate) async fn take_lease(
        &mut self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool, StoreError> {
        use job_leases::dsl as l;
        let row = NewLeaseRow {
            job,
            holder,
            taken_at: Stamp(now),
            expires_at: Stamp(until(now, ttl)),
            next_run_at: Stamp(now),
            runs: 1,
        };
        let upsert = diesel::insert_into(l::job_leases)
            .values(&row)
            .on_conflict(l::job)
            .do_update()
            .set((
                l::holder.eq(excluded(l::holder)),
                l::taken_at.eq(excluded(l::taken_at)),
                l::expires_at.eq(excluded(l::expires_at)),
                l::runs.eq(l::runs + 1),
            ));
        let take = diesel::query_dsl::methods::FilterDsl::filter(
            upsert,
            l::next_run_at
                .le(Stamp(now))
                .and(l::expires_at.le(Stamp(now)).or(l::holder.eq(holder))),
        );
        let taken = on_conn!(self, |c| take.execute(c).await)?;
        Ok(taken == 1)
    }

    /// Extends an unexpired lease of `holder` (see `LeaseStore::renew_lease`).
    pub(crate) async fn renew_lease(
        &mut self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool, StoreError> {
        use job_leases::dsl as l;
        let renew = diesel::update(
            l::job_leases
                .filter(l::job.eq(job))
                .filter(l::holder.eq(holder))
                .filter(l::expires_at.gt(Stamp(now))),
        )
        .set(l::expires_at.eq(Stamp(until(now, ttl))));
        let renewed = on_conn!(self, |c| renew.execute(c).await)?;
        Ok(renewed == 1)
    }

    /// Ends `holder`'s lease and schedules the next run (see `LeaseStore::release_lease`).
    pub(crate) async fn release_lease(
        &mut self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        next_run_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use job_leases::dsl as l;
        let release = diesel::update(
            l::job_leases
                .filter(l::job.eq(job))
                .filter(l::holder.eq(holder)),
        )
        .set((
            l::expires_at.eq(Stamp(now)),
            l::next_run_at.eq(Stamp(next_run_at)),
        ));
        let released = on_conn!(self, |c| release.execute(c).await)?;
        Ok(released == 1)
    }

    /// The lease row of `job`.
    pub(crate) async fn lease(&mut self, job: &str) -> Result<Option<LeaseRecord>, StoreError> {
        let row: Option<LeaseRow> = on_conn!(self, |c| job_leases::table
            .find(job)
            .select(LeaseRow::as_select())
            .get_result(c)
            .await
            .optional())?;
        Ok(row.map(|row| LeaseRecord {
            job: row.job,
            holder: row.holder,
            taken_at: row.taken_at.0,
            expires_at: row.expires_at.0,
            next_run_at: row.next_run_at.0,
            runs: u64::try_from(row.runs).unwrap_or(0),
        }))
    }
}
