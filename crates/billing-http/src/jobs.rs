//! The server's background jobs, each on one replica at a time: the event retention purge,
//! the failed-event sweeper, the change feed's `grace_ended` records and (off by default) the scheduled reconciliation with Stripe's
//! Events API, scheduled under lease rows by [`billing_app::JobRunner`].
//!
//! Every replica runs a loop per enabled job that asks, a few times per interval, whether the
//! job's run is due; the one replica whose conditional `take_lease` succeeds runs it, renews
//! the lease between items, and schedules the next run when it releases it. A replica that
//! dies midway leaves its lease to expire, and the next replica to ask runs the job again
//! (each item commits on its own, so the run it died in left nothing half-done).
//!
//! A job is a name, an interval and its work (`Job`): adding one is an entry in `jobs`, its
//! name in `JOB_NAMES` (so its metrics exist from start) and its settings in [`JobSettings`].

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use billing_app::{AppError, BillingApp, JobLease, JobRun, JobRunner, ReconcileScope};
use billing_ports::{Backoff, ErrorChain, LeaseStore};
use billing_push::Pusher;
use billing_store_diesel::DieselStore;
use chrono::TimeDelta;

use crate::telemetry::{JOB_LAST_SUCCESS, JOB_RUNS, SWEEPER_REPLAYS};

/// The retention purge's job name.
pub const RETENTION_JOB: &str = "retention";
/// The failed-event sweeper's job name.
pub const SWEEPER_JOB: &str = "sweeper";
/// The scheduled reconciliation's job name.
pub const RECONCILE_JOB: &str = "reconcile";
/// The change feed's `grace_ended` records' job name.
pub const GRACE_JOB: &str = "grace_ended";
/// The push of the change feed to the product's URLs' job name.
pub const PUSH_JOB: &str = "push";
/// Every job's name (their metrics series exist from start, enabled or not).
pub(crate) const JOB_NAMES: [&str; 5] = [
    RETENTION_JOB,
    SWEEPER_JOB,
    RECONCILE_JOB,
    GRACE_JOB,
    PUSH_JOB,
];
/// How often a replica not pushing asks whether the push's lease is free (a quarter of it).
const PUSH_INTERVAL: Duration = Duration::from_secs(4);
/// The outcomes of a run, as `billing_job_runs_total` labels them.
pub(crate) const JOB_OUTCOMES: [&str; 3] = ["success", "failure", "lease_lost"];

/// Whether a job runs, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSchedule {
    /// False: this server never runs it (another replica may).
    pub enabled: bool,
    /// The time from the start of one run (on any replica) to the start of the next.
    pub interval: Duration,
}

/// The background jobs' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    /// How long a replica holds a job's lease without renewing it; after a crash, another
    /// replica takes the job over this long after the last renewal. Longer than one item of
    /// any job takes (a purge batch, one event's replay) and than the replicas' clock skew.
    pub lease_ttl: Duration,
    /// The purge of done events, then of change feed records, past their retention.
    pub retention: JobSchedule,
    /// The share of its run time the purge spends deleting (1–100): after each batch it
    /// pauses `elapsed × (100 − duty) / duty`, so a backlog is deleted at most this busy and
    /// a slower database (under load) gets longer pauses. 100: no pause.
    pub retention_duty_percent: u8,
    /// The failed-event sweeper.
    pub sweeper: JobSchedule,
    /// The catch-up from Stripe's Events API after the stored cursor
    /// ([`ReconcileScope::Events`]): heals a missed webhook without an operator. Needs a real
    /// Stripe key that may read events.
    pub reconcile: JobSchedule,
    /// The change feed's `grace_ended` records: written for each grace period that ended
    /// without a payment since the last run ([`BillingApp::record_grace_ended`]).
    pub grace: JobSchedule,
    /// The sweeper's retry schedule of transient failures.
    pub retry: Backoff,
    /// The sweeper gives an event up after this many failed attempts.
    pub max_attempts: u32,
}

impl Default for JobSettings {
    /// The purge hourly and the sweeper every 30 s (retries from one minute doubling to six
    /// hours, ten attempts); the scheduled reconciliation off (every 10 min when switched
    /// on); the `grace_ended` records every minute; leases of 60 s.
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(60),
            retention: JobSchedule {
                enabled: true,
                interval: Duration::from_secs(3600),
            },
            retention_duty_percent: 50,
            sweeper: JobSchedule {
                enabled: true,
                interval: Duration::from_secs(30),
            },
            reconcile: JobSchedule {
                enabled: false,
                interval: Duration::from_secs(600),
            },
            grace: JobSchedule {
                enabled: true,
                interval: Duration::from_secs(60),
            },
            retry: Backoff::default(),
            max_attempts: 10,
        }
    }
}

/// What a job's run reports for its log line.
type RunFuture = Pin<Box<dyn Future<Output = Result<String, AppError>> + Send>>;

/// One scheduled job: its name, its interval and its work, given the app and its lease.
pub(crate) struct Job {
    name: &'static str,
    interval: Duration,
    work: Box<dyn Fn(BillingApp<DieselStore>, JobLease) -> RunFuture + Send + Sync>,
}

/// The enabled jobs of `settings`.
pub(crate) fn jobs(settings: &JobSettings) -> Vec<Job> {
    let all = [
        (
            settings.retention,
            Job {
                name: RETENTION_JOB,
                interval: settings.retention.interval,
                work: {
                    let duty = settings.retention_duty_percent;
                    Box::new(move |app, lease| Box::pin(purge(app, lease, duty)))
                },
            },
        ),
        (
            settings.sweeper,
            Job {
                name: SWEEPER_JOB,
                interval: settings.sweeper.interval,
                work: Box::new(|app, lease| Box::pin(sweep(app, lease))),
            },
        ),
        (
            settings.reconcile,
            Job {
                name: RECONCILE_JOB,
                interval: settings.reconcile.interval,
                work: Box::new(|app, _lease| Box::pin(catch_up(app))),
            },
        ),
        (
            settings.grace,
            Job {
                name: GRACE_JOB,
                interval: settings.grace.interval,
                work: Box::new(|app, lease| Box::pin(grace_ended(app, lease))),
            },
        ),
    ];
    all.into_iter()
        .filter(|(schedule, _)| schedule.enabled)
        .map(|(_, job)| job)
        .collect()
}

/// The retention purge: done events, then the change feed's records (and their succeeded
/// push deliveries), batch by batch, each committed on its own ([`in_batches`]).
async fn purge(
    app: BillingApp<DieselStore>,
    lease: JobLease,
    duty_percent: u8,
) -> Result<String, AppError> {
    let mut events = 0;
    in_batches(
        &lease,
        duty_percent,
        || app.purge_events_batch(),
        |(deleted, more)| {
            events += deleted;
            more
        },
    )
    .await?;
    let (mut changes, mut deliveries) = (0, 0);
    in_batches(
        &lease,
        duty_percent,
        || app.purge_changes_batch(),
        |batch| {
            changes += batch.changes;
            deliveries += batch.deliveries;
            batch.advanced
        },
    )
    .await?;
    Ok(format!(
        "{events} done events purged, {changes} change records and {deliveries} push deliveries"
    ))
}

/// Runs `batch` until `counted` (given each batch's result, to count it) says there is no
/// more, or the lease is lost: the lease renewed before each batch, a pause after each so
/// that deleting takes `duty_percent` of the time.
async fn in_batches<T, E, F: Future<Output = Result<T, E>>>(
    lease: &JobLease,
    duty_percent: u8,
    mut batch: impl FnMut() -> F,
    mut counted: impl FnMut(T) -> bool,
) -> Result<(), E> {
    while lease.renew().await {
        let started = std::time::Instant::now();
        if !counted(batch().await?) {
            break;
        }
        actix_web::rt::time::sleep(purge_pause(started.elapsed(), duty_percent)).await;
    }
    Ok(())
}

/// The pause after a purge batch that took `batch` so that deleting takes `duty_percent` of
/// the purge's time.
fn purge_pause(batch: Duration, duty_percent: u8) -> Duration {
    let duty = u32::from(duty_percent.clamp(1, 100));
    batch * (100 - duty) / duty
}

/// The sweeper: the due transient failures, replayed one by one, each counted by outcome.
async fn sweep(app: BillingApp<DieselStore>, lease: JobLease) -> Result<String, AppError> {
    let swept = app.sweep_failed(Some(&lease)).await?;
    for replay in &swept {
        metrics::counter!(SWEEPER_REPLAYS, "outcome" => replay.outcome.label()).increment(1);
    }
    Ok(format!("{} failed events replayed", swept.len()))
}

/// The scheduled reconciliation: Stripe's events after the stored cursor, each through the
/// ingest. It does not renew its lease: a catch-up longer than the lease's time to live may
/// overlap one on another replica, which is safe (each event applies once; the cursor never
/// moves back) and only costs listing calls.
async fn catch_up(app: BillingApp<DieselStore>) -> Result<String, AppError> {
    let report = app.reconcile(ReconcileScope::Events, false).await?;
    let events = &report.events;
    Ok(format!(
        "{} events listed, {} applied, {} duplicates, {} failed",
        events.listed,
        events.applied,
        events.duplicates,
        events.failed.len()
    ))
}

/// The `grace_ended` records: a batch at a time (each record committed on its own), renewing
/// the lease before each, until a batch finds none left.
async fn grace_ended(app: BillingApp<DieselStore>, lease: JobLease) -> Result<String, AppError> {
    let mut total = 0;
    while lease.renew().await {
        let written = app.record_grace_ended().await?;
        total += written;
        if written == 0 {
            break;
        }
    }
    Ok(format!("{total} grace_ended records written"))
}

/// The push: every endpoint's pusher runs until the lease is lost (renewed every third of
/// its time to live) or the server stops. One replica pushes at a time; when it dies, the
/// next takes over once the lease expires and sends again what was not recorded.
async fn push(
    lease: JobLease,
    pushers: Arc<Vec<Pusher<DieselStore>>>,
    app: BillingApp<DieselStore>,
    lease_ttl: Duration,
) -> Result<String, AppError> {
    let all =
        futures_util::future::join_all(pushers.iter().map(|pusher| pusher.run(app.feed_commits())));
    let held = async {
        loop {
            actix_web::rt::time::sleep(lease_ttl / 3).await;
            if !lease.renew().await {
                return;
            }
        }
    };
    tokio::select! {
        _ = all => Ok("every pusher stopped".to_owned()),
        () = held => Ok("push stopped: its lease was lost".to_owned()),
    }
}

/// A random id for this process's leases: the host name when set, the pid, 64 random bits.
pub(crate) fn holder_id() -> String {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "billing".to_owned());
    format!("{host}-{}-{random:016x}", std::process::id())
}

/// Starts the loop of every enabled job on the current actix/tokio runtime; abort the
/// handles to stop them.
pub(crate) fn spawn(
    app: &BillingApp<DieselStore>,
    settings: &JobSettings,
    pushers: Vec<Pusher<DieselStore>>,
) -> Vec<actix_web::rt::task::JoinHandle<()>> {
    let leases: Arc<dyn LeaseStore> = Arc::new(app.store().as_ref().clone());
    let ttl = TimeDelta::from_std(settings.lease_ttl).unwrap_or(TimeDelta::seconds(60));
    let runner = Arc::new(JobRunner::new(
        leases,
        Arc::clone(app.clock()),
        holder_id(),
        ttl,
    ));
    tracing::info!(holder = runner.holder(), "background jobs starting");
    let mut all = jobs(settings);
    if !pushers.is_empty() {
        let pushers = Arc::new(pushers);
        let ttl = settings.lease_ttl;
        all.push(Job {
            name: PUSH_JOB,
            interval: PUSH_INTERVAL,
            work: Box::new(move |app, lease| Box::pin(push(lease, Arc::clone(&pushers), app, ttl))),
        });
    }
    all.into_iter()
        .map(|job| {
            actix_web::rt::spawn(run(
                Arc::clone(&runner),
                app.clone(),
                job,
                settings.lease_ttl,
            ))
        })
        .collect()
}

/// Asks whether `job` is due a few times per interval (at most every 30 s, and within its
/// lease's time to live) and runs it when this replica gets the lease.
async fn run(runner: Arc<JobRunner>, app: BillingApp<DieselStore>, job: Job, lease_ttl: Duration) {
    let poll = (job.interval / 4)
        .min(lease_ttl / 2)
        .clamp(Duration::from_millis(100), Duration::from_secs(30));
    let interval = TimeDelta::from_std(job.interval).unwrap_or(TimeDelta::hours(1));
    let mut ticks = actix_web::rt::time::interval(poll);
    loop {
        ticks.tick().await;
        let work = |lease| (job.work)(app.clone(), lease);
        let outcome = match runner.run_if_due(job.name, interval, work).await {
            Ok(JobRun::NotDue) => continue,
            Ok(JobRun::Succeeded(summary)) => {
                let now = app.clock().now().timestamp() as f64;
                metrics::gauge!(JOB_LAST_SUCCESS, "job" => job.name).set(now);
                tracing::info!(job = job.name, summary, "job run");
                "success"
            }
            Ok(JobRun::Failed(error)) => {
                let error = ErrorChain(&error).to_string();
                tracing::warn!(
                    job = job.name,
                    error,
                    "job run failed; retried at its next run"
                );
                "failure"
            }
            Ok(JobRun::LeaseLost(summary)) => {
                tracing::warn!(
                    job = job.name,
                    summary,
                    "job lease lost midway; the run stopped"
                );
                "lease_lost"
            }
            Err(error) => {
                let error = ErrorChain(&error).to_string();
                tracing::warn!(
                    job = job.name,
                    error,
                    "job lease could not be taken or released"
                );
                continue;
            }
        };
        metrics::counter!(JOB_RUNS, "job" => job.name, "outcome" => outcome).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::purge_pause;

    #[test]
    fn the_purge_pauses_so_deleting_takes_its_duty_share_of_the_time() {
        let batch = Duration::from_millis(40);
        assert_eq!(purge_pause(batch, 50), Duration::from_millis(40));
        assert_eq!(purge_pause(batch, 25), Duration::from_millis(120));
        assert_eq!(purge_pause(batch, 80), Duration::from_millis(10));
        assert_eq!(purge_pause(batch, 100), Duration::ZERO);
        // Out of range: treated as the nearest bound, never a division by zero.
        assert_eq!(purge_pause(batch, 0), Duration::from_millis(40 * 99));
    }
}
