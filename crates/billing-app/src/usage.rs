//! Metered usage: check the limit and record, atomically and idempotently.
//!
//! A consume is one call to the store, [`BillingStore::consume_usage`]: on Postgres one
//! statement that checks the limit, adds to the counter and records the request (with its
//! idempotency key) at once, serialised only by the row lock of the user's counter for that
//! metric and period. No advisory lock, and no database read before it when the gate cache
//! knows the user.
//!
//! **Where the limit comes from.** The limit and the metering period are computed from the
//! user's subscriptions as the gate cache holds them ([`crate::gate`]), exactly as the feature
//! check and the entitlements compute them; only when the cache has no fresh entry are they
//! read from the database (and cached). So the limit a consume is checked against can be as
//! stale as the gate cache: a change this replica commits (a webhook, a link) is seen at once;
//! a change committed by another replica is seen when its notification arrives, and at the
//! latest when the entry's time to live ([`AppSettings::gate_ttl`](crate::AppSettings)) ends.
//! Until then a downgrade elsewhere may let a consume be counted against the old, higher limit
//! (or an upgrade deny one against the old, lower limit), and a renewal elsewhere may count it
//! in the period that just ended. The count itself is always exact: it is the counter's value
//! at the moment it is locked, concurrent consumes never take it past the limit they were
//! checked against, and it equals the sum of the allowed quantities recorded for it.
//!
//! **Read-your-writes.** After an allowed consume, the user's cached usage of that metric is
//! raised to the total the store returned, so the next check on this replica includes it.

use billing_domain::{entitlement, metering_period};
use billing_ports::{BillingStore, UsageConsumed, UsageRecord, UsageRequest};
use chrono::{DateTime, Utc};

use crate::BillingApp;
use crate::entitlements::state_of;
use crate::error::AppError;
use crate::gate;

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The largest quantity, and the largest total of a period, the store can count (BIGINT).
pub(crate) const MAX_COUNTABLE: u64 = i64::MAX as u64;

/// The answer to a usage request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageOutcome {
    /// True when the request fitted and was counted.
    pub allowed: bool,
    /// Usage in the period: after this request when allowed, before it when denied.
    pub used: u64,
    /// The limit, `None` when unlimited.
    pub limit: Option<u64>,
    /// What is left after this request (allowed only; `None` when unlimited).
    pub remaining: Option<u64>,
    /// When the metering period ends.
    pub period_end: DateTime<Utc>,
    /// True when this is the stored answer to an earlier request with the same key.
    pub replayed: bool,
}

fn outcome(record: &UsageRecord, period_end: DateTime<Utc>, replayed: bool) -> UsageOutcome {
    UsageOutcome {
        allowed: record.allowed,
        used: record.used_after,
        limit: record.limit,
        remaining: if record.allowed {
            record.limit.map(|l| l.saturating_sub(record.used_after))
        } else {
            None
        },
        period_end,
        replayed,
    }
}

impl<S: BillingStore> BillingApp<S> {
    /// Checks `quantity` of `metric` against the user's limit and, when it fits, counts it —
    /// atomically, so concurrent requests can never overshoot (see the module docs for where
    /// the limit comes from). The same `idempotency_key` again returns the first answer and
    /// counts nothing; with another metric or quantity it is an
    /// [`AppError::IdempotencyConflict`].
    pub async fn record_usage(
        &self,
        user_id: &str,
        metric: &str,
        quantity: u64,
        idempotency_key: &str,
    ) -> Result<UsageOutcome, AppError> {
        if !self.catalog().metrics().any(|m| m == metric) {
            return Err(AppError::UnknownMetric(metric.to_owned()));
        }
        if idempotency_key.is_empty() || idempotency_key.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(AppError::BadRequest(format!(
                "idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"
            )));
        }
        if quantity > MAX_COUNTABLE {
            return Err(AppError::BadRequest(format!(
                "quantity {quantity} is larger than the largest countable {MAX_COUNTABLE}"
            )));
        }
        let catalog = self.catalog();
        let now = self.clock().now();
        let user = self.user_state(user_id, now).await?;
        let state = gate::deciding(&user.subscriptions, catalog, now).map(state_of);
        let period = metering_period(state.as_ref(), now);
        let limit = entitlement(state.as_ref(), catalog, now)
            .limit(metric)
            .ok_or_else(|| AppError::UnknownMetric(metric.to_owned()))?;
        let request = UsageRequest {
            user_id: user_id.to_owned(),
            metric: metric.to_owned(),
            period_start: period.start,
            quantity,
            idempotency_key: idempotency_key.to_owned(),
            limit: limit.as_option(),
            recorded_at: now,
        };
        match self.store().consume_usage(&request).await? {
            UsageConsumed::Recorded(record) => {
                if record.allowed {
                    // Committed: the next check of this user on this replica counts it.
                    self.gate()
                        .note_usage(user_id, period.start, metric, record.used_after);
                }
                Ok(outcome(&record, period.end, false))
            }
            UsageConsumed::Replayed(earlier) => {
                if earlier.metric != metric || earlier.quantity != quantity {
                    return Err(AppError::IdempotencyConflict(idempotency_key.to_owned()));
                }
                Ok(outcome(&earlier, period.end, true))
            }
            // Unlimited tiers (and absurd limits) allow any sum: one the store cannot count is
            // refused instead of failing in the database.
            UsageConsumed::TooLarge { used } => Err(AppError::BadRequest(format!(
                "{metric}: {used} used plus {quantity} exceeds the largest countable total {MAX_COUNTABLE}"
            ))),
        }
    }
}
