//! What a user may do: their entitlements and the answer of the feature check.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The start and end of the metering period usage is counted in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsagePeriod {
    /// The period's first instant.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub start: DateTime<Utc>,
    /// The instant after the period's last.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub end: DateTime<Utc>,
}

/// What a user may do now, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entitlements {
    /// The product's user id.
    pub user_id: String,
    /// The tier in force (a tier id of the plan catalog).
    #[cfg_attr(feature = "openapi", schema(example = "PRO"))]
    pub tier: String,
    /// no_subscription, active, trialing, in_grace_period, grace_period_over,
    /// canceling_at_period_end, paid_period_over, no_paid_access or unknown_price.
    pub reason: String,
    /// Stripe's subscription status, or null without a subscription.
    pub status: Option<String>,
    /// The Stripe subscription deciding the tier, if any.
    pub subscription_id: Option<String>,
    /// Every feature of the catalog and whether the user has it.
    pub features: BTreeMap<String, bool>,
    /// Each metric's limit in this period; null is unlimited.
    pub limits: BTreeMap<String, Option<u64>>,
    /// Each metric's usage counted in this period.
    pub usage: BTreeMap<String, u64>,
    /// The period usage is counted in.
    pub usage_period: UsagePeriod,
    /// Prepaid credits, in minor units of the account's currency.
    pub credits: i64,
    /// The end of the paid period, if any.
    #[serde(with = "crate::time::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub period_end: Option<DateTime<Utc>>,
    /// When the grace period after a failed payment ends, if any.
    #[serde(with = "crate::time::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub grace_period_end: Option<DateTime<Utc>>,
    /// When the trial ends, if any.
    #[serde(with = "crate::time::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub trial_end: Option<DateTime<Utc>>,
    /// Whether the subscription ends at the end of the period.
    pub cancel_at_period_end: bool,
}

impl Entitlements {
    /// The feature check's answer for `feature`, from these entitlements (`None`: the catalog
    /// has no such feature). The server answers the same from the same decision.
    pub fn feature(&self, feature: &str) -> Option<FeatureAnswer<'_>> {
        let allowed = *self.features.get(feature)?;
        Some(FeatureAnswer {
            user_id: Cow::Borrowed(&self.user_id),
            feature: Cow::Owned(feature.to_owned()),
            allowed,
            tier: Cow::Borrowed(&self.tier),
            reason: Cow::Borrowed(&self.reason),
        })
    }
}

/// The entitlements after a sync, with how many subscriptions were written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Synced {
    /// The entitlements after the sync.
    #[serde(flatten)]
    pub entitlements: Entitlements,
    /// How many subscriptions were read from Stripe and written.
    pub synced_subscriptions: u64,
}

// Borrows when the server writes it (the request's and the decision's strings, serialised at
// once: two allocations fewer on the hottest route); owned when a client reads it.
/// Whether a user has a feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureAnswer<'a> {
    /// The product's user id.
    pub user_id: Cow<'a, str>,
    /// The feature asked about.
    pub feature: Cow<'a, str>,
    /// Whether the user has it now.
    pub allowed: bool,
    /// The tier in force.
    pub tier: Cow<'a, str>,
    /// Why (the same codes as [`Entitlements::reason`]).
    pub reason: Cow<'a, str>,
}

impl FeatureAnswer<'_> {
    /// The same answer owning its strings.
    pub fn into_owned(self) -> FeatureAnswer<'static> {
        FeatureAnswer {
            user_id: Cow::Owned(self.user_id.into_owned()),
            feature: Cow::Owned(self.feature.into_owned()),
            allowed: self.allowed,
            tier: Cow::Owned(self.tier.into_owned()),
            reason: Cow::Owned(self.reason.into_owned()),
        }
    }
}
