//! The plan catalog as the server configured it (`GET /v1/catalog`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The server's plan catalog: its tiers from lowest to highest, its features and its metrics.
/// A service checks the names it uses against it at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Catalog {
    /// Every tier, lowest first; the first is the free tier.
    pub tiers: Vec<CatalogTier>,
    /// Every feature, with the tiers that have it.
    pub features: Vec<CatalogFeature>,
    /// Every metered metric, with each tier's limit.
    pub metrics: Vec<CatalogMetric>,
}

/// One tier of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogTier {
    /// The tier id (`FREE`, `PRO`, …), as entitlements name it.
    #[cfg_attr(feature = "openapi", schema(example = "PRO"))]
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its place from the lowest (0, the free tier) up.
    pub rank: u32,
    /// The Stripe prices that buy it (none for the free tier).
    pub price_ids: Vec<String>,
    /// Credits granted once per paid billing period, in minor units.
    pub credits_per_period: i64,
}

/// One feature of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogFeature {
    /// The feature's name, as the feature check takes it.
    pub name: String,
    /// The tiers that have it, lowest first.
    pub tiers: Vec<String>,
}

/// One metered metric of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogMetric {
    /// The metric's name, as usage takes it.
    pub name: String,
    /// Each tier's limit per period, by tier id; null is unlimited.
    pub limits: BTreeMap<String, Option<u64>>,
}

impl Catalog {
    /// The tier with this id.
    pub fn tier(&self, id: &str) -> Option<&CatalogTier> {
        self.tiers.iter().find(|tier| tier.id == id)
    }

    /// The feature with this name.
    pub fn feature(&self, name: &str) -> Option<&CatalogFeature> {
        self.features.iter().find(|feature| feature.name == name)
    }

    /// The metric with this name.
    pub fn metric(&self, name: &str) -> Option<&CatalogMetric> {
        self.metrics.iter().find(|metric| metric.name == name)
    }
}
