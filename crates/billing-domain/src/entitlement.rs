//! The one access rule: which tier a user's subscription grants at a given instant, and why.
//!
//! [`entitlement`] is the only place that turns a subscription's state into access. It is a
//! pure function of the stored state, the catalog and `now`, so late or missing webhooks
//! cannot leave paid access open past the moment the state itself says it ends.
//!
//! # Rules
//!
//! 1. No subscription → the free tier ([`AccessReason::NoSubscription`]).
//! 2. A status that never grants paid access — `canceled`, `unpaid`, `incomplete`,
//!    `incomplete_expired`, `paused` and every status this crate does not know — → the free tier
//!    ([`AccessReason::NoPaidAccess`]), whatever the price.
//! 3. Otherwise (`active`, `trialing`, `past_due`) the tier is the one the price buys; a missing
//!    price or one the catalog does not know → the free tier ([`AccessReason::UnknownPrice`]).
//! 4. With `cancel_at_period_end` and a known `current_period_end`: at or after the period end
//!    → the free tier ([`AccessReason::PaidPeriodOver`]) even if the deletion event has not
//!    arrived; before it, `active` and `trialing` give [`AccessReason::CancelingAtPeriodEnd`].
//!    (With the flag but no known period end, access follows the status alone.)
//! 5. `active` → [`AccessReason::Active`], `trialing` → [`AccessReason::Trialing`]. A period end
//!    in the past without `cancel_at_period_end` does not end access: Stripe renews, and a failed
//!    renewal arrives as `past_due`.
//! 6. `past_due` → the tier until the grace deadline ([`AccessReason::InGracePeriod`]), then the
//!    free tier ([`AccessReason::GracePeriodOver`]). The deadline is the recorded
//!    `grace_period_end`; when none is recorded it is `current_period_start` plus the tier's grace
//!    period (the renewal invoice fails at the period start); when neither is known there is no
//!    grace to give, so → the free tier ([`AccessReason::NoPaidAccess`] with status `past_due`).
//!    When the subscription also cancels at period end, the grace never outlasts the period.
//!
//! Every deadline is exclusive: access holds while `now < deadline`; at the deadline it is gone.

use std::fmt;

use chrono::{DateTime, Utc};
use strum::{IntoStaticStr, VariantNames};

use crate::catalog::{Catalog, Limit, Tier};
use crate::status::SubscriptionStatus;

/// What the store knows of a user's current subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// Stripe's status.
    pub status: SubscriptionStatus,
    /// The price of the subscription's first item, which decides the tier.
    pub price_id: Option<String>,
    /// Start of the current billing period.
    pub current_period_start: Option<DateTime<Utc>>,
    /// End of the current billing period (exclusive).
    pub current_period_end: Option<DateTime<Utc>>,
    /// The subscription ends when the current period ends.
    pub cancel_at_period_end: bool,
    /// While `past_due`, paid access holds until this instant (exclusive).
    pub grace_period_end: Option<DateTime<Utc>>,
    /// End of the trial, if any (informational: access follows the status).
    pub trial_end: Option<DateTime<Utc>>,
}

impl SubscriptionState {
    /// A state with this status and price and every other field empty or false.
    pub fn new(status: SubscriptionStatus, price_id: Option<String>) -> Self {
        Self {
            status,
            price_id,
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: false,
            grace_period_end: None,
            trial_end: None,
        }
    }
}

/// Why an [`Entitlement`] grants the tier it grants.
///
/// Its stable [`code`](AccessReason::code) is the variant's name in snake_case; its `Display`
/// is a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, IntoStaticStr, VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum AccessReason {
    /// The user has no subscription: free tier.
    NoSubscription,
    /// Active and paid: the price's tier.
    Active,
    /// In a trial: the price's tier.
    Trialing,
    /// A payment failed; the price's tier is kept until `until` (exclusive).
    InGracePeriod {
        /// When paid access ends unless a payment succeeds.
        until: DateTime<Utc>,
    },
    /// A payment failed and the grace period ended at `ended`: free tier.
    GracePeriodOver {
        /// When the grace period ended.
        ended: DateTime<Utc>,
    },
    /// Set to cancel at period end; the price's tier is kept until `until` (exclusive).
    CancelingAtPeriodEnd {
        /// When the subscription ends.
        until: DateTime<Utc>,
    },
    /// Set to cancel at period end and the period ended at `ended`: free tier.
    PaidPeriodOver {
        /// When the last paid period ended.
        ended: DateTime<Utc>,
    },
    /// The status grants no paid access (canceled, unpaid, incomplete, paused, unknown, or past
    /// due with no grace deadline known): free tier.
    NoPaidAccess {
        /// The subscription's status.
        status: SubscriptionStatus,
    },
    /// The subscription's price is missing or not in the catalog: free tier.
    UnknownPrice {
        /// The price, when there is one.
        price_id: Option<String>,
    },
}

impl AccessReason {
    /// Every code [`AccessReason::code`] can return, in declaration order.
    pub const CODES: &'static [&'static str] = Self::VARIANTS;

    /// A stable snake_case name for APIs and logs, e.g. `"in_grace_period"`.
    pub fn code(&self) -> &'static str {
        self.into()
    }

    /// True when the reason keeps the subscription's paid tier.
    pub fn grants_paid_tier(&self) -> bool {
        matches!(
            self,
            AccessReason::Active
                | AccessReason::Trialing
                | AccessReason::InGracePeriod { .. }
                | AccessReason::CancelingAtPeriodEnd { .. }
        )
    }
}

impl fmt::Display for AccessReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessReason::NoSubscription => f.write_str("no subscription"),
            AccessReason::Active => f.write_str("subscription active"),
            AccessReason::Trialing => f.write_str("subscription in trial"),
            AccessReason::InGracePeriod { until } => {
                write!(
                    f,
                    "payment failed; in grace period until {}",
                    until.to_rfc3339()
                )
            }
            AccessReason::GracePeriodOver { ended } => {
                write!(
                    f,
                    "payment failed; grace period ended {}",
                    ended.to_rfc3339()
                )
            }
            AccessReason::CancelingAtPeriodEnd { until } => {
                write!(f, "canceling; paid access until {}", until.to_rfc3339())
            }
            AccessReason::PaidPeriodOver { ended } => {
                write!(
                    f,
                    "canceled at period end; period ended {}",
                    ended.to_rfc3339()
                )
            }
            AccessReason::NoPaidAccess { status } => {
                write!(
                    f,
                    "subscription status {status:?} grants no paid access",
                    status = status.as_str()
                )
            }
            AccessReason::UnknownPrice {
                price_id: Some(price),
            } => {
                write!(f, "price {price:?} is not in the plan catalog")
            }
            AccessReason::UnknownPrice { price_id: None } => {
                f.write_str("subscription has no price")
            }
        }
    }
}

/// What a user may do right now: a tier of the catalog and the reason for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entitlement<'c> {
    /// The tier in force.
    pub tier: &'c Tier,
    /// Why this tier.
    pub reason: AccessReason,
}

impl Entitlement<'_> {
    /// Whether the tier includes a feature; `false` for a feature the catalog does not know.
    pub fn feature(&self, name: &str) -> bool {
        self.tier.feature(name)
    }

    /// The tier's limit for a metered action; `None` for a metric the catalog does not know.
    pub fn limit(&self, metric: &str) -> Option<Limit> {
        self.tier.limit(metric)
    }

    /// True when the tier in force is a paid one (not the free tier, rank 0).
    pub fn is_paid(&self) -> bool {
        !self.tier.is_free()
    }
}

/// When paid access ends after a payment failed at `failed_at`: `failed_at` plus the tier's
/// grace period (saturating at the latest representable instant).
pub fn grace_deadline(tier: &Tier, failed_at: DateTime<Utc>) -> DateTime<Utc> {
    failed_at.checked_add_signed(tier.grace_period).unwrap_or(
        if tier.grace_period < chrono::TimeDelta::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        },
    )
}

/// The tier a subscription grants at `now`, and why (see the [module docs](self) for the rules).
pub fn entitlement<'c>(
    subscription: Option<&SubscriptionState>,
    catalog: &'c Catalog,
    now: DateTime<Utc>,
) -> Entitlement<'c> {
    let free = |reason| Entitlement {
        tier: catalog.free_tier(),
        reason,
    };

    let Some(sub) = subscription else {
        return free(AccessReason::NoSubscription);
    };

    // Only these statuses can grant paid access; everything else, including statuses this
    // version does not know, is the free tier.
    match sub.status {
        SubscriptionStatus::Active | SubscriptionStatus::Trialing | SubscriptionStatus::PastDue => {
        }
        SubscriptionStatus::Canceled
        | SubscriptionStatus::Unpaid
        | SubscriptionStatus::Incomplete
        | SubscriptionStatus::IncompleteExpired
        | SubscriptionStatus::Paused
        | SubscriptionStatus::Unknown(_) => {
            return free(AccessReason::NoPaidAccess {
                status: sub.status.clone(),
            });
        }
    }

    let Some(tier) = sub
        .price_id
        .as_deref()
        .and_then(|price| catalog.tier_for_price(price))
    else {
        return free(AccessReason::UnknownPrice {
            price_id: sub.price_id.clone(),
        });
    };
    let paid = |reason| Entitlement { tier, reason };

    // When the subscription cancels at period end, nothing outlasts the period.
    let scheduled_end = if sub.cancel_at_period_end {
        sub.current_period_end
    } else {
        None
    };
    if let Some(end) = scheduled_end
        && now >= end
    {
        return free(AccessReason::PaidPeriodOver { ended: end });
    }

    match sub.status {
        SubscriptionStatus::Active | SubscriptionStatus::Trialing => match scheduled_end {
            Some(until) => paid(AccessReason::CancelingAtPeriodEnd { until }),
            None if sub.status == SubscriptionStatus::Trialing => paid(AccessReason::Trialing),
            None => paid(AccessReason::Active),
        },
        SubscriptionStatus::PastDue => {
            let deadline = sub.grace_period_end.or_else(|| {
                sub.current_period_start
                    .map(|start| grace_deadline(tier, start))
            });
            match deadline {
                None => free(AccessReason::NoPaidAccess {
                    status: sub.status.clone(),
                }),
                Some(deadline) if now < deadline => paid(AccessReason::InGracePeriod {
                    until: scheduled_end.map_or(deadline, |end| end.min(deadline)),
                }),
                Some(deadline) => free(AccessReason::GracePeriodOver { ended: deadline }),
            }
        }
        // Handled above; kept explicit so a new status cannot slip through unnoticed.
        SubscriptionStatus::Canceled
        | SubscriptionStatus::Unpaid
        | SubscriptionStatus::Incomplete
        | SubscriptionStatus::IncompleteExpired
        | SubscriptionStatus::Paused
        | SubscriptionStatus::Unknown(_) => free(AccessReason::NoPaidAccess {
            status: sub.status.clone(),
        }),
    }
}
