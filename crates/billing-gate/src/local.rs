//! The local backend: the billing application itself ([`BillingApp`]) over the billing
//! database, for a service that shares it. A decision is the in-process gate cache's (no
//! database round trip for a cached user); a consume is one statement on the store.

use std::time::Duration;

use async_trait::async_trait;
use billing_app::{AppError, BillingApp};
use billing_ports::BillingStore;

use crate::GateError;
use crate::backend::{CatalogNames, FeatureDecision, GateBackend, Standing, UsageDecision};

/// Answers the guards from a [`BillingApp`] in this process.
///
/// Its gate cache sees this process's own writes at once; changes committed by the billing
/// server show when the entry's time to live ends
/// ([`AppSettings::gate_ttl`](billing_app::AppSettings::gate_ttl)), or at once on Postgres when
/// the application listens on the gate channel (`billing_store_diesel::DieselStore::gate_channel`
/// handing each change to [`BillingApp::forget_gate_state`], as the billing server does).
pub struct LocalBackend<S> {
    app: BillingApp<S>,
}

impl<S: BillingStore> LocalBackend<S> {
    /// A backend answering from `app`.
    pub fn new(app: BillingApp<S>) -> Self {
        Self { app }
    }
}

/// The gate's reading of an application error: unavailable unless no retry can change it.
fn gate_error(error: AppError) -> GateError {
    match error {
        AppError::UnknownMetric(metric) => GateError::UnknownMetric(metric),
        AppError::IdempotencyConflict(key) => GateError::IdempotencyConflict(key),
        AppError::BadRequest(message) => GateError::Refused(message),
        other => GateError::unavailable(other),
    }
}

#[async_trait]
impl<S: BillingStore + 'static> GateBackend for LocalBackend<S> {
    async fn feature(&self, user_id: &str, feature: &str) -> Result<FeatureDecision, GateError> {
        let access = self
            .app
            .feature(user_id, feature)
            .await
            .map_err(gate_error)?
            .ok_or_else(|| GateError::UnknownFeature(feature.to_owned()))?;
        Ok(FeatureDecision {
            allowed: access.allowed,
            tier: access.tier.as_str().to_owned(),
            reason: access.reason.code().to_owned(),
        })
    }

    async fn standing(&self, user_id: &str) -> Result<Standing, GateError> {
        let entitlements = self.app.entitlements(user_id).await.map_err(gate_error)?;
        Ok(Standing {
            tier: entitlements.tier.as_str().to_owned(),
            reason: entitlements.reason.code().to_owned(),
        })
    }

    async fn consume(
        &self,
        user_id: &str,
        metric: &str,
        quantity: u64,
        idempotency_key: &str,
    ) -> Result<UsageDecision, GateError> {
        let outcome = self
            .app
            .record_usage(user_id, metric, quantity, idempotency_key)
            .await
            .map_err(gate_error)?;
        let period_ends_in = (outcome.period_end - self.app.clock().now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        Ok(UsageDecision {
            allowed: outcome.allowed,
            used: outcome.used,
            limit: outcome.limit,
            remaining: outcome.remaining,
            period_ends_in,
            replayed: outcome.replayed,
        })
    }

    async fn catalog(&self) -> Result<CatalogNames, GateError> {
        let catalog = self.app.catalog();
        let mut tiers: Vec<_> = catalog.tiers().iter().collect();
        tiers.sort_by_key(|t| t.rank);
        Ok(CatalogNames {
            tiers: tiers.iter().map(|t| t.id.as_str().to_owned()).collect(),
            features: catalog.features().map(str::to_owned).collect(),
            metrics: catalog.metrics().map(str::to_owned).collect(),
        })
    }
}
