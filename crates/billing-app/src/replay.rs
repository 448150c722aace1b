//! Replays: a stored event's verified body re-applied through the same exactly-once path as a
//! delivery ([`BillingApp::ingest`]), one event by id or every failed one; and the sweeper's
//! pass, which replays the transient failures whose next attempt is due.
//!
//! The stored body is read again by the [`EventDecoder`](billing_ports::EventDecoder) the app
//! was given ([`BillingApp::with_decoder`]), so this crate never sees Stripe's wire format.
//! Nothing here writes outside ingest: an event replayed while a delivery of it is in flight
//! waits on its claim and is a duplicate, and a replay of a done event changes nothing.

use billing_ports::{
    BillingStore, ErrorChain, EventRecord, EventStatus, FailureKind, NewEvent, RetryStore,
};
use chrono::{DateTime, Utc};

use crate::error::{AppError, IngestError};
use crate::ingest::{BillingApp, IngestOutcome};
use crate::jobs::JobLease;

/// How many failed ids [`BillingApp::replay_failed`] reads per page.
const FAILED_PAGE: u32 = 100;

/// What became of one replayed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// Its effects were committed now.
    Applied,
    /// A type we do not act on; stored as ignored.
    Ignored,
    /// Older than what was already applied; stored as stale, nothing changed.
    Stale,
    /// Already done (processed, ignored or stale) before this replay; nothing was touched.
    Duplicate(EventStatus),
    /// It failed again; the failure is recorded (attempts + 1) with this error and kind.
    Failed {
        /// The error with all its causes, as stored in `last_error`.
        error: String,
        /// Whether the sweeper may retry it.
        kind: FailureKind,
    },
    /// No event with this id is stored.
    NotFound,
}

impl ReplayOutcome {
    /// Every label [`ReplayOutcome::label`] gives, for metrics series that exist from start.
    pub const LABELS: [&'static str; 6] = [
        "applied",
        "ignored",
        "stale",
        "duplicate",
        "failed",
        "not_found",
    ];

    /// A short name of the outcome (`applied`, `duplicate`, `failed`, …) for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Ignored => "ignored",
            Self::Stale => "stale",
            Self::Duplicate(_) => "duplicate",
            Self::Failed { .. } => "failed",
            Self::NotFound => "not_found",
        }
    }
}

/// One event a replay or a sweep handled, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventReplay {
    /// The event's id.
    pub id: String,
    /// What became of it.
    pub outcome: ReplayOutcome,
}

/// The envelope of a stored event, for recording a failure of it (the row exists, so only
/// its status, attempts, error and schedule are written).
fn stored_envelope(stored: &EventRecord) -> NewEvent {
    NewEvent {
        id: stored.id.clone(),
        event_type: stored.event_type.clone(),
        api_version: None,
        livemode: false,
        created: stored.created,
        payload: stored.payload.clone(),
        received_at: stored.received_at,
    }
}

impl<S: BillingStore + RetryStore> BillingApp<S> {
    /// Re-applies the stored event `id` through [`BillingApp::ingest`] and says what became
    /// of it. A body that cannot be read (or that names another event) is recorded as a
    /// permanent failure. `Err` when the store cannot be read, when no decoder is configured,
    /// or when a new failure could not even be recorded.
    #[tracing::instrument(name = "replay", skip(self))]
    pub async fn replay_event(&self, id: &str) -> Result<ReplayOutcome, AppError> {
        let decoder = self.decoder().ok_or(AppError::NoDecoder)?;
        let Some(stored) = self.store().event(id).await? else {
            return Ok(ReplayOutcome::NotFound);
        };
        let decoded = decoder
            .decode(stored.payload.as_bytes())
            .map_err(|e| ErrorChain(&e).to_string())
            .and_then(|event| match event.id == stored.id {
                true => Ok(event),
                false => Err(format!("the stored body is of another event, {}", event.id)),
            });
        let event = match decoded {
            Ok(event) => event,
            // Read when it was delivered, and done: nothing to apply again.
            Err(_) if stored.status.is_final() => {
                return Ok(ReplayOutcome::Duplicate(stored.status));
            }
            Err(error) => {
                let kind = FailureKind::Permanent;
                let now = self.clock().now();
                self.record_failure(&stored_envelope(&stored), &error, kind, now)
                    .await?;
                return Ok(ReplayOutcome::Failed { error, kind });
            }
        };
        let outcome = match self.ingest(event, stored.payload).await {
            Ok(IngestOutcome::Processed) => ReplayOutcome::Applied,
            Ok(IngestOutcome::Ignored) => ReplayOutcome::Ignored,
            Ok(IngestOutcome::Stale) => ReplayOutcome::Stale,
            Ok(IngestOutcome::Duplicate(status)) => ReplayOutcome::Duplicate(status),
            Err(IngestError {
                cause,
                recorded: true,
            }) => ReplayOutcome::Failed {
                error: ErrorChain(&cause).to_string(),
                kind: cause.failure_kind(),
            },
            Err(IngestError {
                cause,
                recorded: false,
            }) => return Err(cause),
        };
        tracing::info!(event_id = id, outcome = outcome.label(), "event replayed");
        Ok(outcome)
    }

    /// Replays every failed event received at or after `since` (all when `None`), whatever
    /// its kind or attempt count, one by one in id order, calling `progress` after each; returns
    /// what became of each. An event still failing is not tried twice.
    pub async fn replay_failed(
        &self,
        since: Option<DateTime<Utc>>,
        mut progress: impl FnMut(&EventReplay) + Send,
    ) -> Result<Vec<EventReplay>, AppError> {
        let mut replayed = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store()
                .failed_events(since, after.as_deref(), FAILED_PAGE)
                .await?;
            let Some(last) = page.last().cloned() else {
                return Ok(replayed);
            };
            for id in page {
                let outcome = self.replay_event(&id).await?;
                let replay = EventReplay { id, outcome };
                progress(&replay);
                replayed.push(replay);
            }
            after = Some(last);
        }
    }

    /// One pass of the sweeper: replays the transient failures whose next attempt is due now
    /// (by the app's clock) and that failed fewer than [`AppSettings::max_attempts`] times, at
    /// most [`AppSettings::sweep_batch`] of them, each committed on its own. Permanent
    /// failures and events given up are left for an operator. With a `lease`, it is renewed
    /// before each event and the pass stops as soon as it is lost.
    ///
    /// [`AppSettings::max_attempts`]: crate::AppSettings::max_attempts
    /// [`AppSettings::sweep_batch`]: crate::AppSettings::sweep_batch
    pub async fn sweep_failed(
        &self,
        lease: Option<&JobLease>,
    ) -> Result<Vec<EventReplay>, AppError> {
        let settings = self.settings();
        let due = self
            .store()
            .due_retries(
                self.clock().now(),
                settings.max_attempts,
                settings.sweep_batch,
            )
            .await?;
        let mut replayed = Vec::with_capacity(due.len());
        for id in due {
            if let Some(lease) = lease
                && !lease.renew().await
            {
                break;
            }
            let outcome = self.replay_event(&id).await?;
            if let ReplayOutcome::Failed { error, .. } = &outcome {
                tracing::warn!(
                    event_id = id.as_str(),
                    error,
                    "sweeper: the event failed again"
                );
            }
            replayed.push(EventReplay { id, outcome });
        }
        Ok(replayed)
    }
}
