//! Metered usage: check the limit and record, atomically and idempotently.

use billing_domain::{MeteringPeriod, UsageDecision, decide, entitlement, metering_period};
use billing_ports::{BillingStore, ScopedFutureExt, UsageRecord};
use chrono::{DateTime, Utc};

use crate::BillingApp;
use crate::entitlements::{deciding_subscription, state_of};
use crate::error::AppError;

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
    /// in one transaction serialised per user, so concurrent requests can never overshoot.
    /// The same `idempotency_key` again returns the first answer and counts nothing.
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
        let (user, metric, key) = (user_id, metric, idempotency_key);
        let outcome = self
            .store()
            .transaction(move |tx| {
                async move {
                    tx.lock_key(&format!("usage:{user}")).await?;
                    let subscription = deciding_subscription(tx, catalog, user, now).await?;
                    let state = subscription.as_ref().map(state_of);
                    let period: MeteringPeriod = metering_period(state.as_ref(), now);
                    if let Some(earlier) = tx.usage_by_key(user, key).await? {
                        if earlier.metric != metric || earlier.quantity != quantity {
                            return Err(AppError::IdempotencyConflict(key.to_owned()));
                        }
                        return Ok(outcome(&earlier, period.end, true));
                    }
                    let granted = entitlement(state.as_ref(), catalog, now);
                    let limit = granted
                        .limit(metric)
                        .ok_or_else(|| AppError::UnknownMetric(metric.to_owned()))?;
                    let used_before = tx.usage_used(user, metric, period.start).await?;
                    let (allowed, used_after) = match decide(limit, used_before, quantity) {
                        UsageDecision::Allowed { used, .. } => (true, used),
                        UsageDecision::Denied { used, .. } => (false, used),
                    };
                    // Unlimited tiers (and absurd limits) allow any sum: refuse one the store
                    // cannot count instead of failing in the database. Both terms are at most
                    // MAX_COUNTABLE, so the u64 sum itself never overflowed.
                    if allowed && used_after > MAX_COUNTABLE {
                        return Err(AppError::BadRequest(format!(
                            "{metric}: {used_before} used plus {quantity} exceeds the largest countable total {MAX_COUNTABLE}"
                        )));
                    }
                    let record = UsageRecord {
                        user_id: user.to_owned(),
                        metric: metric.to_owned(),
                        period_start: period.start,
                        quantity,
                        idempotency_key: key.to_owned(),
                        allowed,
                        used_after,
                        limit: limit.as_option(),
                        recorded_at: now,
                    };
                    tx.record_usage(&record).await?;
                    Ok(outcome(&record, period.end, false))
                }
                .scope_boxed()
            })
            .await?;
        if outcome.allowed && !outcome.replayed {
            // Committed: the next check of this user on this replica counts it.
            self.gate().invalidate_user(user_id);
        }
        Ok(outcome)
    }
}
