//! The push of the change feed to the product's URLs: the endpoints, one delivery per change
//! record an endpoint must receive, one attempt row per try ([`PushStore`]). Nothing here runs
//! inside an ingest transaction: deliveries are taken from the committed feed.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Cause, StoreError};
use crate::feed::ChangeRecord;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (`next_attempt_at`).
    Pending,
    /// The product answered 2xx.
    Succeeded,
    /// Given up after the last allowed attempt; `billingctl deliveries replay` sends it again.
    Failed,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: &'static [DeliveryStatus] = &[
        DeliveryStatus::Pending,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
    ];

    /// The status as stored (`"pending"` …).
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl FromStr for DeliveryStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryStatus::ALL
            .iter()
            .copied()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                StoreError::Corrupt(Cause::msg(format!("unknown delivery status {s:?}")))
            })
    }
}

/// What one attempt decided about its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Delivered: the delivery is done.
    Succeeded,
    /// Failed; tried again at this time.
    Retry(DateTime<Utc>),
    /// Failed, and it was the last allowed attempt: the delivery is given up.
    Failed,
}

impl AttemptOutcome {
    /// The outcome as stored (`"succeeded"`, `"retry"`, `"failed"`).
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Retry(_) => "retry",
            AttemptOutcome::Failed => "failed",
        }
    }
}

/// A configured endpoint, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEndpointRecord {
    /// Derived from the whole URL (`ep_…`).
    pub id: String,
    /// The URL without user info or query, for people.
    pub display: String,
    /// The feed position it started after.
    pub start_after: i64,
    /// When it was first configured.
    pub created_at: DateTime<Utc>,
}

/// A delivery whose attempt is due, with the change record it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct DuePush {
    /// The delivery's id.
    pub delivery_id: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Failed attempts since the last success or replay.
    pub failures: u32,
    /// The record to send.
    pub record: ChangeRecord,
}

/// One finished attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushAttempt {
    /// The delivery it tried.
    pub delivery_id: i64,
    /// Its number among the delivery's attempts (from 1).
    pub attempt: u32,
    /// When the request started.
    pub started_at: DateTime<Utc>,
    /// How long until the answer, or until it was given up.
    pub duration_ms: u64,
    /// The product's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why it failed (no body of the product's answer), when it did.
    pub error: Option<String>,
    /// What becomes of the delivery.
    pub outcome: AttemptOutcome,
}

/// A delivery as listed for operators, with its last attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySummary {
    /// The delivery's id.
    pub id: i64,
    /// The endpoint's id.
    pub endpoint_id: String,
    /// The endpoint's URL without user info or query.
    pub endpoint: String,
    /// The change record's feed position.
    pub change_seq: i64,
    /// The change record's id (`chg_…`, the `webhook-id` sent).
    pub change_id: String,
    /// The change's kind (`tier_changed` …).
    pub kind: String,
    /// The change's user.
    pub user_id: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The next attempt, when pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last attempt's HTTP status, when it got an answer.
    pub last_status_code: Option<u16>,
    /// The last attempt's error, when it failed.
    pub last_error: Option<String>,
    /// When the delivery was created.
    pub created_at: DateTime<Utc>,
    /// Its last change of state.
    pub updated_at: DateTime<Utc>,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Only this endpoint's (its id).
    pub endpoint_id: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// Which deliveries to send again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaySelection {
    /// These deliveries, whatever their status.
    Ids(Vec<i64>),
    /// Every failed delivery (of one endpoint, when given).
    Failed {
        /// Only this endpoint's (its id).
        endpoint_id: Option<String>,
    },
}

/// The push's rows, each call on its own (no call runs inside an ingest transaction).
#[async_trait]
pub trait PushStore: Send + Sync + 'static {
    /// Stores `endpoint` unless its id is stored, starting it after the feed's newest record
    /// (numbering the committed records first); returns the stored row (the existing one when
    /// it was configured before).
    async fn register_push_endpoint(
        &self,
        id: &str,
        display: &str,
        now: DateTime<Utc>,
    ) -> Result<PushEndpointRecord, StoreError>;

    /// Creates a pending delivery, due `now`, for each of up to `limit` change records after
    /// the endpoint's newest delivery (or its start), in feed order; returns how many.
    async fn enqueue_pushes(
        &self,
        endpoint_id: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<usize, StoreError>;

    /// Up to `limit` of the endpoint's pending deliveries due at `now`, oldest change first.
    async fn due_pushes(
        &self,
        endpoint_id: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DuePush>, StoreError>;

    /// The time the endpoint's next pending delivery is due, if any.
    async fn next_push_due(&self, endpoint_id: &str) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Records finished attempts: one attempt row each, and each delivery's new state.
    async fn record_push_attempts(
        &self,
        attempts: &[PushAttempt],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The deliveries matching `filter`, newest first, each with its last attempt.
    async fn push_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliverySummary>, StoreError>;

    /// Makes the selected deliveries pending again, due `now`, with their failure count
    /// reset; returns how many. A delivery whose change record the retention purged is left
    /// as it is: there is nothing to send.
    async fn replay_pushes(
        &self,
        selection: &ReplaySelection,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError>;
}
