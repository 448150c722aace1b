//! Usage metering: which period usage is counted over, and whether a request fits the limit.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::catalog::Limit;
use crate::entitlement::SubscriptionState;

/// The half-open interval `[start, end)` over which usage is counted against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MeteringPeriod {
    /// First instant of the period (inclusive).
    pub start: DateTime<Utc>,
    /// First instant after the period (exclusive).
    pub end: DateTime<Utc>,
}

impl MeteringPeriod {
    /// True when `at` lies in `[start, end)`.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

/// The period usage at `now` is counted over.
///
/// It is the subscription's current billing period `[current_period_start, current_period_end)`
/// when both ends are known and the period contains `now` (whatever the status), and otherwise
/// the calendar month in UTC containing `now`.
pub fn metering_period(
    subscription: Option<&SubscriptionState>,
    now: DateTime<Utc>,
) -> MeteringPeriod {
    if let Some(sub) = subscription
        && let (Some(start), Some(end)) = (sub.current_period_start, sub.current_period_end)
    {
        let period = MeteringPeriod { start, end };
        if period.contains(now) {
            return period;
        }
    }
    calendar_month(now)
}

/// The calendar month in UTC containing `at`, saturating at the ends of chrono's range.
fn calendar_month(at: DateTime<Utc>) -> MeteringPeriod {
    let date = at.date_naive();
    let start = first_instant(date.year(), date.month()).unwrap_or(DateTime::<Utc>::MIN_UTC);
    let (next_year, next_month) = if date.month() == 12 {
        (date.year().checked_add(1), 1)
    } else {
        (Some(date.year()), date.month() + 1)
    };
    let end = next_year
        .and_then(|year| first_instant(year, next_month))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    MeteringPeriod { start, end }
}

/// Midnight UTC on the first day of a month, if representable.
fn first_instant(year: i32, month: u32) -> Option<DateTime<Utc>> {
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
}

/// Whether a metered request may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageDecision {
    /// The request fits; record it.
    Allowed {
        /// Usage in the period including this request.
        used: u64,
        /// What is left after it; `None` when unlimited.
        remaining: Option<u64>,
    },
    /// The request would exceed the limit and is refused whole; nothing is recorded.
    Denied {
        /// Usage in the period before this request.
        used: u64,
        /// The limit it would have exceeded.
        limit: u64,
    },
}

impl UsageDecision {
    /// True for [`UsageDecision::Allowed`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, UsageDecision::Allowed { .. })
    }
}

/// Decides a request for `quantity` units when `used_before` were already used this period.
///
/// Denied when `used_before + quantity` exceeds the limit (a request that would exceed is
/// denied whole, never partly granted). A `quantity` of 0 is a query: allowed, with the
/// current usage and what remains, unless usage is already over the limit (e.g. after a
/// downgrade), in which case it is denied. Arithmetic never overflows: a sum beyond `u64::MAX`
/// is denied under a limit and saturates at `u64::MAX` when unlimited.
pub fn decide(limit: Limit, used_before: u64, quantity: u64) -> UsageDecision {
    match limit {
        Limit::Unlimited => UsageDecision::Allowed {
            used: used_before.saturating_add(quantity),
            remaining: None,
        },
        Limit::Limited(max) => match used_before.checked_add(quantity) {
            Some(used) if used <= max => UsageDecision::Allowed {
                used,
                remaining: Some(max - used),
            },
            _ => UsageDecision::Denied {
                used: used_before,
                limit: max,
            },
        },
    }
}
