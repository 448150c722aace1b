//! The change feed (`GET /v1/changes`): one record per committed change of what a user may do.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a change record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The tier in force changed.
    TierChanged,
    /// The subscription's status changed.
    StatusChanged,
    /// A grace period started after a failed payment.
    GraceStarted,
    /// A grace period ended (a time-driven record).
    GraceEnded,
    /// Credits were granted.
    CreditsGranted,
    /// A payment failed.
    PaymentFailed,
    /// A payment succeeded.
    PaymentSucceeded,
    /// A charge was refunded.
    Refund,
    /// A charge was disputed.
    Dispute,
}

impl ChangeKind {
    /// The kind as serialised (`"tier_changed"` …).
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

/// An amount of money: integer minor units and a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Amount {
    /// Minor units (cents for `usd`).
    pub value: i64,
    /// The ISO currency code, lowercase as Stripe writes it.
    #[cfg_attr(feature = "openapi", schema(example = "usd"))]
    pub currency: String,
}

/// A user's access at one instant, as the entitlements answer names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessSnapshot {
    /// The tier in force.
    #[cfg_attr(feature = "openapi", schema(example = "PRO"))]
    pub tier: String,
    /// Stripe's subscription status, or null without a subscription.
    pub status: Option<String>,
    /// Why (the codes of the entitlements' `reason`).
    pub reason: String,
    /// When the grace period ends, if one runs.
    #[serde(with = "crate::time::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub grace_period_end: Option<DateTime<Utc>>,
    /// Prepaid credits, in minor units.
    pub credits: i64,
}

/// One change of what a user may do, written in the same transaction as the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeRecord {
    /// Opaque, strictly increasing in commit order; pass it as `after` to read on.
    pub cursor: String,
    /// The record's unique id (`chg_…`), stable across deliveries.
    pub id: String,
    /// The product's user id, or null when the customer has none linked.
    pub user_id: Option<String>,
    /// The user's Stripe customer, when linked.
    pub customer_id: Option<String>,
    /// What changed.
    pub kind: ChangeKind,
    /// The user's access just before the change.
    pub before: AccessSnapshot,
    /// The user's access just after it.
    pub after: AccessSnapshot,
    /// The credits granted, payment, refund or dispute amount, if any.
    pub amount: Option<Amount>,
    /// The Stripe event that caused it (null for a time-driven record).
    pub stripe_event_id: Option<String>,
    /// When the change committed.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
}

/// A page of the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangesPage {
    /// The records after the cursor asked, in commit order.
    pub changes: Vec<ChangeRecord>,
    /// The cursor to ask after next time: the last record's, or the one given (or the head)
    /// when the page is empty.
    pub next_cursor: String,
}

/// The body of a pushed change (an outgoing Standard Webhooks message): what a product's
/// receiver deserialises after verifying the `webhook-signature` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushMessage {
    /// `billing.` and the record's kind, e.g. `billing.tier_changed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the change was committed.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: DateTime<Utc>,
    /// The change record, exactly as `GET /v1/changes` serves it (its `cursor` orders it
    /// among the user's other records; pushes may arrive out of order).
    pub data: ChangeRecord,
}

impl PushMessage {
    /// The message carrying `record`.
    pub fn new(record: ChangeRecord) -> Self {
        Self {
            event_type: format!("billing.{}", record.kind.as_str()),
            timestamp: record.created_at,
            data: record,
        }
    }
}
