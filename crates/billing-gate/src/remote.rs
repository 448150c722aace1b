//! The remote backend: the billing server's `/v1` API through [`billing_client::Client`], for
//! a product service that does not share the billing database. With the client's entitlement
//! cache ([`billing_client::ClientBuilder::cache`], invalidated by the change feed), feature
//! and tier checks are answered in memory on a hit; a consume is always one call (retried by
//! the client with the same idempotency key, so it never counts twice).

use std::time::Duration;

use async_trait::async_trait;
use billing_client::{Client, Denial, Error};
use chrono::Utc;

use crate::GateError;
use crate::backend::{CatalogNames, FeatureDecision, GateBackend, Standing, UsageDecision};

/// Answers the guards through the billing server's API.
pub struct RemoteBackend {
    client: Client,
}

impl RemoteBackend {
    /// A backend asking the billing server through `client` (its base URL, API key, time
    /// limits, retries and optional cache are the client's).
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// The gate's reading of a client error that is not a denial: billing gave no answer (an
/// outage: 503, or a pass when failing open), or it refused what the gate sent.
fn gate_error(error: Error) -> GateError {
    match error {
        error if error.is_outage() => GateError::unavailable(error),
        Error::InvalidInput { code, message } if code == "idempotency_key_reused" => {
            GateError::IdempotencyConflict(message)
        }
        Error::InvalidInput { code, message } if code == "invalid_user_id" => {
            GateError::InvalidUserId(message)
        }
        other => GateError::Refused(other.to_string()),
    }
}

#[async_trait]
impl GateBackend for RemoteBackend {
    async fn feature(&self, user_id: &str, feature: &str) -> Result<FeatureDecision, GateError> {
        match self.client.feature(user_id, feature).await {
            Ok(answer) => Ok(FeatureDecision {
                allowed: answer.allowed,
                tier: answer.tier.into_owned(),
                reason: answer.reason.into_owned(),
            }),
            Err(Error::NotFound { code, .. }) if code == "unknown_feature" => {
                Err(GateError::UnknownFeature(feature.to_owned()))
            }
            Err(error) => Err(gate_error(error)),
        }
    }

    async fn standing(&self, user_id: &str) -> Result<Standing, GateError> {
        let entitlements = self
            .client
            .entitlements(user_id)
            .await
            .map_err(gate_error)?;
        Ok(Standing {
            tier: entitlements.tier.clone(),
            reason: entitlements.reason.clone(),
        })
    }

    async fn consume(
        &self,
        user_id: &str,
        metric: &str,
        quantity: u64,
        idempotency_key: &str,
    ) -> Result<UsageDecision, GateError> {
        let until =
            |end: chrono::DateTime<Utc>| (end - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        match self
            .client
            .consume(user_id, metric, quantity, idempotency_key)
            .await
        {
            Ok(accepted) => Ok(UsageDecision {
                allowed: true,
                used: accepted.used,
                limit: accepted.limit,
                remaining: accepted.remaining,
                period_ends_in: until(accepted.period_end),
                replayed: accepted.replayed,
            }),
            Err(Error::Denied {
                reason: Denial::UsageLimit(refused),
            }) => Ok(UsageDecision {
                allowed: false,
                used: refused.used,
                limit: refused.limit,
                remaining: None,
                period_ends_in: until(refused.period_end),
                replayed: refused.replayed,
            }),
            Err(Error::InvalidInput { code, .. }) if code == "unknown_metric" => {
                Err(GateError::UnknownMetric(metric.to_owned()))
            }
            Err(error) => Err(gate_error(error)),
        }
    }

    async fn catalog(&self) -> Result<CatalogNames, GateError> {
        let catalog = self.client.catalog().await.map_err(gate_error)?;
        let mut tiers = catalog.tiers;
        tiers.sort_by_key(|t| t.rank);
        Ok(CatalogNames {
            tiers: tiers.into_iter().map(|t| t.id).collect(),
            features: catalog.features.into_iter().map(|f| f.name).collect(),
            metrics: catalog.metrics.into_iter().map(|m| m.name).collect(),
        })
    }
}
