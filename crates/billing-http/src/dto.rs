//! The bodies the webhook and the ops routes answer, and the `/v1` bodies' mapping from the
//! application's types. The `/v1` bodies themselves are `billing_api`'s (one definition for the
//! server and its clients); the OpenAPI document (`openapi`) is derived from both, with the
//! input rules the edge enforces (`input`) written into the schema.

use billing_api::{Catalog, CatalogFeature, CatalogMetric, CatalogTier, Entitlements, UsagePeriod};
use billing_app::UserEntitlements;
use serde::Serialize;
use utoipa::ToSchema;

/// The entitlements answer of `e`.
pub(crate) fn entitlements(e: &UserEntitlements) -> Entitlements {
    Entitlements {
        user_id: e.user_id.clone(),
        tier: e.tier.as_str().to_owned(),
        reason: e.reason.code().to_owned(),
        status: e.status.as_ref().map(|s| s.as_str().to_owned()),
        subscription_id: e.subscription_id.clone(),
        features: e.features.clone(),
        limits: e
            .limits
            .iter()
            .map(|(metric, limit)| (metric.clone(), limit.as_option()))
            .collect(),
        usage: e.usage.clone(),
        usage_period: UsagePeriod {
            start: e.period.start,
            end: e.period.end,
        },
        credits: e.credits,
        period_end: e.period_end,
        grace_period_end: e.grace_period_end,
        trial_end: e.trial_end,
        cancel_at_period_end: e.cancel_at_period_end,
    }
}

/// The catalog answer of the configured plan catalog: tiers in order, each feature with the
/// tiers that have it, each metric with every tier's limit.
pub(crate) fn catalog(catalog: &billing_domain::Catalog) -> Catalog {
    let tiers = catalog.tiers();
    Catalog {
        tiers: tiers
            .iter()
            .map(|tier| CatalogTier {
                id: tier.id.as_str().to_owned(),
                name: tier.name.clone(),
                rank: u32::try_from(tier.rank).unwrap_or(u32::MAX),
                price_ids: tier.price_ids.clone(),
                credits_per_period: tier.credits_per_period,
            })
            .collect(),
        features: catalog
            .features()
            .map(|feature| CatalogFeature {
                name: feature.to_owned(),
                tiers: tiers
                    .iter()
                    .filter(|tier| tier.feature(feature))
                    .map(|tier| tier.id.as_str().to_owned())
                    .collect(),
            })
            .collect(),
        metrics: catalog
            .metrics()
            .map(|metric| CatalogMetric {
                name: metric.to_owned(),
                limits: tiers
                    .iter()
                    .filter_map(|tier| {
                        let limit = tier.limit(metric)?;
                        Some((tier.id.as_str().to_owned(), limit.as_option()))
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A delivery the server has taken (applied, ignored, stale or a duplicate).
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct Received {
    pub(crate) received: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ignored: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stale: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) duplicate: Option<bool>,
}

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    #[schema(example = "ok")]
    pub(crate) status: &'static str,
}
