//! Where the gate's answers come from: one trait, [`GateBackend`], with the local backend
//! ([`crate::LocalBackend`], on the billing application and its store) and the remote one
//! ([`crate::RemoteBackend`], through the billing server's `/v1` API).

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;

use crate::GateError;

/// Whether a user's tier has a feature now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureDecision {
    /// True when the tier in force has the feature.
    pub allowed: bool,
    /// The tier in force (`FREE`, `PRO`, …).
    pub tier: String,
    /// Why this tier, as the billing server's snake_case reason code (`active`,
    /// `in_grace_period`, `no_paid_access`, …).
    pub reason: String,
}

/// The tier a user is on now, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The tier in force.
    pub tier: String,
    /// Why this tier (the billing server's reason code).
    pub reason: String,
}

/// The answer to one atomic usage consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDecision {
    /// True when the quantity fitted and was counted.
    pub allowed: bool,
    /// Usage in the period: after this consume when allowed, before it when refused.
    pub used: u64,
    /// The period's limit; `None` when unlimited.
    pub limit: Option<u64>,
    /// What is left after this consume (allowed only; `None` when unlimited).
    pub remaining: Option<u64>,
    /// How long until the metering period ends (when a refused consume can pass again).
    pub period_ends_in: Duration,
    /// True when this is the stored answer to an earlier consume with the same key.
    pub replayed: bool,
}

/// The names a guard may use: the billing catalog's tiers (lowest first), features and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogNames {
    /// Tier ids from the lowest (the free tier) to the highest.
    pub tiers: Vec<String>,
    /// Every feature of the catalog.
    pub features: BTreeSet<String>,
    /// Every metered metric of the catalog.
    pub metrics: BTreeSet<String>,
}

impl CatalogNames {
    /// The rank of `tier` (0 for the lowest), `None` when the catalog has no such tier.
    pub fn rank(&self, tier: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t == tier)
    }
}

/// What the guards ask billing. Implementations answer [`GateError::Unavailable`] when billing
/// cannot answer (the guards then fail closed, or open when told to), and the other
/// [`GateError`] variants for answers that no retry changes.
#[async_trait]
pub trait GateBackend: Send + Sync + 'static {
    /// Whether `user_id`'s tier has `feature` now.
    async fn feature(&self, user_id: &str, feature: &str) -> Result<FeatureDecision, GateError>;

    /// The tier `user_id` is on now.
    async fn standing(&self, user_id: &str) -> Result<Standing, GateError>;

    /// Counts `quantity` of `metric` for `user_id` when it fits in the period's limit, at most
    /// once per `idempotency_key` (the same key again answers the first decision).
    async fn consume(
        &self,
        user_id: &str,
        metric: &str,
        quantity: u64,
        idempotency_key: &str,
    ) -> Result<UsageDecision, GateError>;

    /// The catalog's tier, feature and metric names, read once when the gate is built.
    async fn catalog(&self) -> Result<CatalogNames, GateError>;
}
