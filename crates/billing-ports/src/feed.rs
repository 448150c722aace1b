//! The change feed's outbox: one record per change of a user's access ([`NewChange`]), written
//! inside the transaction that made the change ([`ChangeTx`]), read in commit order outside any
//! transaction ([`FeedStore`]).

use std::str::FromStr;

use async_trait::async_trait;
use billing_domain::{Money, SubscriptionStatus, TierId};
use chrono::{DateTime, Utc};

use crate::error::{Cause, StoreError};

/// What kind of change a record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    /// The tier in force changed.
    TierChanged,
    /// The deciding subscription's status changed.
    StatusChanged,
    /// A failed payment opened a grace period.
    GraceStarted,
    /// A grace period ended without a payment (time-driven, no event).
    GraceEnded,
    /// Credits were added to the balance.
    CreditsGranted,
    /// A payment failed.
    PaymentFailed,
    /// A payment succeeded.
    PaymentSucceeded,
    /// A payment was (partly) refunded.
    Refund,
    /// A payment's dispute opened or changed.
    Dispute,
}

impl ChangeKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [ChangeKind] = &[
        ChangeKind::TierChanged,
        ChangeKind::StatusChanged,
        ChangeKind::GraceStarted,
        ChangeKind::GraceEnded,
        ChangeKind::CreditsGranted,
        ChangeKind::PaymentFailed,
        ChangeKind::PaymentSucceeded,
        ChangeKind::Refund,
        ChangeKind::Dispute,
    ];

    /// The kind as stored and served (`"tier_changed"` …).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::TierChanged => "tier_changed",
            ChangeKind::StatusChanged => "status_changed",
            ChangeKind::GraceStarted => "grace_started",
            ChangeKind::GraceEnded => "grace_ended",
            ChangeKind::CreditsGranted => "credits_granted",
            ChangeKind::PaymentFailed => "payment_failed",
            ChangeKind::PaymentSucceeded => "payment_succeeded",
            ChangeKind::Refund => "refund",
            ChangeKind::Dispute => "dispute",
        }
    }
}

impl FromStr for ChangeKind {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChangeKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(Cause::msg(format!("unknown change kind {s:?}"))))
    }
}

/// A user's access at one instant, as the entitlements answer states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSnapshot {
    /// The tier in force.
    pub tier: TierId,
    /// The deciding subscription's status, when there is one.
    pub status: Option<SubscriptionStatus>,
    /// Why this tier ([`billing_domain::AccessReason::code`]).
    pub reason: String,
    /// The grace period's end, when one is in force or recorded.
    pub grace_period_end: Option<DateTime<Utc>>,
    /// The credit balance.
    pub credits: i64,
}

/// A change record to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChange {
    /// `chg_…`, unique, stable across deliveries.
    pub change_id: String,
    /// Our user.
    pub user_id: String,
    /// The user's Stripe customer, when linked.
    pub customer_id: Option<String>,
    /// What changed.
    pub kind: ChangeKind,
    /// The access just before the transaction.
    pub before: AccessSnapshot,
    /// The access just after it.
    pub after: AccessSnapshot,
    /// The amount of a payment, refund or dispute, or the credits granted.
    pub amount: Option<Money>,
    /// The Stripe event that caused it (none for a time-driven change).
    pub stripe_event_id: Option<String>,
    /// A key written at most once (a time-driven change's), when the change has one.
    pub dedupe_key: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A stored change record with its place in the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Its position in commit order (the feed's cursor): strictly increasing, from 1.
    pub seq: i64,
    /// The record as written.
    pub change: NewChange,
}

/// Writing change records, inside the unit of work that made the change.
#[async_trait]
pub trait ChangeTx: Send {
    /// Writes `change` in this transaction; false (nothing written) when a record with its
    /// dedupe key exists.
    async fn insert_change(&mut self, change: &NewChange) -> Result<bool, StoreError>;

    /// Writes each of `changes` in this transaction, in their order, as
    /// [`ChangeTx::insert_change`] would one after the other (a record whose dedupe key exists,
    /// or came earlier in `changes`, is skipped); how many were written. The provided method
    /// makes those calls; a store that can write them in one statement overrides it.
    async fn insert_changes(&mut self, changes: &[NewChange]) -> Result<usize, StoreError> {
        insert_changes_in_turn(self, changes).await
    }

    /// Writes `changes` as [`ChangeTx::insert_changes`] does, as this transaction's last
    /// write: a store may send them with its commit (in the commit's round trip), so a failure
    /// to write them may come from the commit, and nothing of the transaction commits then.
    /// Nothing in the transaction may read them after this call; a record written at once
    /// later in it ([`ChangeTx::insert_change`], [`ChangeTx::insert_changes`]) still comes
    /// after them in the feed. The provided method writes them now.
    async fn insert_changes_at_commit(
        &mut self,
        changes: Vec<NewChange>,
    ) -> Result<(), StoreError> {
        self.insert_changes(&changes).await.map(|_| ())
    }
}

/// [`ChangeTx::insert_changes`] as the provided method does it, one record after the other:
/// for a store that overrides it only where it can write them at once.
pub async fn insert_changes_in_turn<T: ChangeTx + ?Sized>(
    tx: &mut T,
    changes: &[NewChange],
) -> Result<usize, StoreError> {
    let mut written = 0;
    for change in changes {
        if tx.insert_change(change).await? {
            written += 1;
        }
    }
    Ok(written)
}

/// A user whose grace period has ended without a recorded `grace_ended` change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraceEnded {
    /// Our user.
    pub user_id: String,
    /// The subscription's Stripe id.
    pub subscription_id: String,
    /// When the grace period ended.
    pub grace_period_end: DateTime<Utc>,
}

/// What one batch of [`FeedStore::purge_changes`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangePurge {
    /// The horizon after the batch.
    pub horizon: i64,
    /// True when the batch moved the horizon (another batch may move it further).
    pub advanced: bool,
    /// Change records deleted.
    pub changes: u64,
    /// Push deliveries deleted (with their attempts).
    pub deliveries: u64,
}

/// Reading the feed, outside any transaction.
#[async_trait]
pub trait FeedStore: Send + Sync + 'static {
    /// Up to `limit` change records after `after` (from the first when `None`), in commit
    /// order. Records committed since the last read are numbered first, so a record committed
    /// later never gets a position before one already served.
    async fn changes_after(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChangeRecord>, StoreError>;

    /// The position of the newest numbered record (0 when there is none), after numbering the
    /// records committed since the last read.
    async fn change_head(&self) -> Result<i64, StoreError>;

    /// True when a record has position `seq`.
    async fn change_exists(&self, seq: i64) -> Result<bool, StoreError>;

    /// The position through which records may have been purged (0 when none was): records
    /// after it are all kept, in order; a cursor before it may have lost records after it.
    /// It only grows, and it grows before the records are deleted.
    async fn change_horizon(&self) -> Result<i64, StoreError>;

    /// Purges one batch of the feed's retention: moves the horizon over the oldest numbered
    /// records created before `before`, at most `batch` positions and never over the newest
    /// record (the numbering continues from it), then deletes the records at or before it,
    /// except those a push delivery not yet succeeded points at and each user's newest
    /// `grace_ended` record (what [`FeedStore::grace_periods_ended`] checks), with the
    /// succeeded push deliveries of deleted positions except each endpoint's newest (where it
    /// follows the feed from).
    async fn purge_changes(
        &self,
        before: DateTime<Utc>,
        batch: u32,
    ) -> Result<ChangePurge, StoreError>;

    /// Up to `limit` past-due subscriptions of linked users whose recorded grace period
    /// ended at or before `now` and for whose user no `grace_ended` record was written since
    /// that end.
    async fn grace_periods_ended(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<GraceEnded>, StoreError>;
}
