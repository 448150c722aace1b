//! The ports of the background jobs: finding failed events to re-apply ([`RetryStore`]) and
//! running a job on one replica at a time ([`LeaseStore`]).

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::error::StoreError;
use crate::records::LeaseRecord;

/// The failed events a replay or the sweeper re-applies.
#[async_trait]
pub trait RetryStore: Send + Sync + 'static {
    /// Up to `limit` transient failures whose next attempt is due at `now` and that failed
    /// fewer than `max_attempts` times, the longest-waiting first (their ids).
    async fn due_retries(
        &self,
        now: DateTime<Utc>,
        max_attempts: u32,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Up to `limit` failed events (of any kind) received at or after `since` (all when
    /// `None`) whose id sorts after `after` (from the start when `None`), in id order: a page
    /// of a walk through every failed event.
    async fn failed_events(
        &self,
        since: Option<DateTime<Utc>>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
}

/// Leases of background jobs: a row per job says which process may run it until when, and when
/// its next run is due. Each call is one conditional statement, so two processes racing for a
/// lease never both get it. Times come from the caller's clock.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes `job`'s lease for `holder` until `now + ttl` when its run is due (`next_run_at <=
    /// now`, or no row yet) and nobody holds it (expired, or held by `holder` itself); counts
    /// the run. True when taken.
    async fn take_lease(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool, StoreError>;

    /// Extends `holder`'s unexpired lease of `job` to `now + ttl`; false when it was lost
    /// (expired, or taken by another process): the job must stop.
    async fn renew_lease(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool, StoreError>;

    /// Ends `holder`'s lease of `job` at `now` and sets its next run at `next_run_at`; false
    /// when another process holds it now (nothing is changed then).
    async fn release_lease(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        next_run_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The lease row of `job`, if it was ever taken.
    async fn lease(&self, job: &str) -> Result<Option<LeaseRecord>, StoreError>;
}
