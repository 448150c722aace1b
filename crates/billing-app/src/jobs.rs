//! Background jobs on one replica at a time: a [`JobRunner`] takes a job's lease row when its
//! run is due ([`LeaseStore::take_lease`], one conditional statement), runs the job, and
//! releases the lease with the next run's time. The job renews the lease between the items it
//! handles ([`JobLease::renew`]) and stops when it was lost; each item commits on its own, so
//! a job that stops or dies midway leaves nothing half-done, and once its lease expires
//! another replica takes the run over (its next run was never scheduled).
//!
//! Any job runs this way: the server's retention purge and failed-event sweeper, and any job
//! added later (a scheduled reconciliation) under its own name.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use billing_ports::{Clock, ErrorChain, LeaseStore, StoreError};
use chrono::TimeDelta;

use crate::error::AppError;

/// A lease held by this process for one run of a job. Clones share it.
#[derive(Clone)]
pub struct JobLease {
    inner: Arc<LeaseInner>,
}

struct LeaseInner {
    store: Arc<dyn LeaseStore>,
    clock: Arc<dyn Clock>,
    job: String,
    holder: String,
    ttl: TimeDelta,
    lost: AtomicBool,
}

impl JobLease {
    /// The job's name.
    pub fn job(&self) -> &str {
        &self.inner.job
    }

    /// Extends the lease by its time to live from now; false when it was lost (expired and
    /// taken, or the store could not be reached): the job must stop before its next item.
    pub async fn renew(&self) -> bool {
        let lease = &self.inner;
        if lease.lost.load(Ordering::Acquire) {
            return false;
        }
        let renewed = lease
            .store
            .renew_lease(&lease.job, &lease.holder, lease.clock.now(), lease.ttl)
            .await;
        let held = match renewed {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(
                    job = lease.job.as_str(),
                    error = ErrorChain(&e).to_string(),
                    "job lease could not be renewed; stopping the run"
                );
                false
            }
        };
        if !held {
            lease.lost.store(true, Ordering::Release);
        }
        held
    }

    /// True once a renewal failed.
    pub fn is_lost(&self) -> bool {
        self.inner.lost.load(Ordering::Acquire)
    }
}

/// What became of one attempt to run a job.
#[derive(Debug)]
pub enum JobRun<T> {
    /// Not due yet, or another replica holds it: nothing ran here.
    NotDue,
    /// It ran to the end with this result.
    Succeeded(T),
    /// It failed with this error (items done before the failure stay committed).
    Failed(AppError),
    /// It lost its lease midway and stopped; what it did stays committed.
    LeaseLost(T),
}

/// Runs jobs under their lease rows, as one `holder` (a random id per process).
pub struct JobRunner {
    store: Arc<dyn LeaseStore>,
    clock: Arc<dyn Clock>,
    holder: String,
    ttl: TimeDelta,
}

impl JobRunner {
    /// A runner holding leases as `holder` for `ttl` at a time.
    pub fn new(
        store: Arc<dyn LeaseStore>,
        clock: Arc<dyn Clock>,
        holder: impl Into<String>,
        ttl: TimeDelta,
    ) -> Self {
        Self {
            store,
            clock,
            holder: holder.into(),
            ttl,
        }
    }

    /// The id this runner holds leases as.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Runs `job` when its run is due and no other process holds it: takes its lease, runs
    /// `work` with it, then releases it and schedules the next run `interval` after this one
    /// started (also after a failure: the next run is the retry). `Err` only when the lease
    /// row cannot be read or written.
    pub async fn run_if_due<T, F, Fut>(
        &self,
        job: &str,
        interval: TimeDelta,
        work: F,
    ) -> Result<JobRun<T>, StoreError>
    where
        F: FnOnce(JobLease) -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        let started = self.clock.now();
        if !self
            .store
            .take_lease(job, &self.holder, started, self.ttl)
            .await?
        {
            return Ok(JobRun::NotDue);
        }
        let lease = JobLease {
            inner: Arc::new(LeaseInner {
                store: Arc::clone(&self.store),
                clock: Arc::clone(&self.clock),
                job: job.to_owned(),
                holder: self.holder.clone(),
                ttl: self.ttl,
                lost: AtomicBool::new(false),
            }),
        };
        let result = work(lease.clone()).await;
        let next_run_at = started
            .checked_add_signed(interval)
            .unwrap_or(started + self.ttl);
        // Only this holder's lease is released: after a loss, the new holder's stays.
        self.store
            .release_lease(job, &self.holder, self.clock.now(), next_run_at)
            .await?;
        Ok(match result {
            Err(error) => JobRun::Failed(error),
            Ok(done) if lease.is_lost() => JobRun::LeaseLost(done),
            Ok(done) => JobRun::Succeeded(done),
        })
    }
}
