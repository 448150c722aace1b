//! What a user may do now: tier, features, limits, usage this period, credits.

use std::collections::BTreeMap;
use std::sync::Arc;

use billing_domain::{
    AccessReason, Catalog, Limit, MeteringPeriod, SubscriptionState, SubscriptionStatus, TierId,
    entitlement, metering_period,
};
use billing_ports::{
    AccessRows, BillingRead, BillingStore, ScopedFutureExt, StoreError, SubscriptionRecord,
};
use chrono::{DateTime, Utc};

use crate::BillingApp;
use crate::error::AppError;
use crate::feed;
use crate::gate::{self, UserState};

/// A user's billing state as the product sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserEntitlements {
    /// Our user.
    pub user_id: String,
    /// The tier in force now.
    pub tier: TierId,
    /// Why this tier (a stable snake_case code is [`AccessReason::code`]).
    pub reason: AccessReason,
    /// Stripe's status of the subscription that decides, if any.
    pub status: Option<SubscriptionStatus>,
    /// That subscription's id, if any.
    pub subscription_id: Option<String>,
    /// Every feature of the catalog and whether the tier has it.
    pub features: BTreeMap<String, bool>,
    /// Every metric's limit in the tier.
    pub limits: BTreeMap<String, Limit>,
    /// Every metric's usage in the current metering period.
    pub usage: BTreeMap<String, u64>,
    /// The metering period usage counts in.
    pub period: MeteringPeriod,
    /// The credit balance (sum of the credit ledger).
    pub credits: i64,
    /// End of the paid period, if any.
    pub period_end: Option<DateTime<Utc>>,
    /// End of the grace period while past due, if any.
    pub grace_period_end: Option<DateTime<Utc>>,
    /// End of the trial, if any.
    pub trial_end: Option<DateTime<Utc>>,
    /// The subscription ends at the end of its period.
    pub cancel_at_period_end: bool,
}

/// The state the access rule reads from a stored subscription.
pub(crate) fn state_of(record: &SubscriptionRecord) -> SubscriptionState {
    SubscriptionState {
        status: record.status.clone(),
        price_id: record.price_id.clone(),
        current_period_start: record.current_period_start,
        current_period_end: record.current_period_end,
        cancel_at_period_end: record.cancel_at_period_end,
        grace_period_end: record.grace_period_end,
        trial_end: record.trial_end,
    }
}

/// Reads what a user's access is computed from, with the usage of the metering period in force
/// at `now`.
async fn load_user(
    tx: &mut dyn BillingRead,
    catalog: &Catalog,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<UserState, StoreError> {
    let AccessRows {
        customer,
        subscriptions,
        credits,
    } = tx.access_rows(user_id).await?;
    let deciding = gate::deciding(&subscriptions, catalog, now);
    let period = metering_period(deciding.map(state_of).as_ref(), now);
    let mut usage = Vec::new();
    for metric in catalog.metrics() {
        usage.push((
            metric.to_owned(),
            tx.usage_used(user_id, metric, period.start).await?,
        ));
    }
    Ok(UserState {
        customer_id: customer,
        subscriptions,
        credits,
        period_start: period.start,
        usage,
    })
}

/// The answer of the feature gate.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureAccess {
    /// Whether the tier in force has the feature.
    pub allowed: bool,
    /// The tier in force now.
    pub tier: TierId,
    /// Why this tier.
    pub reason: AccessReason,
}

impl<S: BillingStore> BillingApp<S> {
    /// The feature gate: whether the user's tier has `feature` now; `None` when the catalog
    /// has no such feature. Reads only the subscriptions (no usage, no credits): this is the
    /// check a product calls on every gated request.
    pub async fn feature(
        &self,
        user_id: &str,
        feature: &str,
    ) -> Result<Option<FeatureAccess>, AppError> {
        if !self.catalog().features().any(|f| f == feature) {
            return Ok(None);
        }
        let now = self.clock().now();
        let user = self.user_state(user_id, now).await?;
        let subscription = gate::deciding(&user.subscriptions, self.catalog(), now);
        let granted = entitlement(subscription.map(state_of).as_ref(), self.catalog(), now);
        Ok(Some(FeatureAccess {
            allowed: granted.feature(feature),
            tier: granted.tier.id.clone(),
            reason: granted.reason,
        }))
    }

    /// The user's entitlements now. A user we do not know is on the free tier (not an error).
    pub async fn entitlements(&self, user_id: &str) -> Result<UserEntitlements, AppError> {
        let catalog = self.catalog();
        let now = self.clock().now();
        let user = self.user_state(user_id, now).await?;
        let (subscription, granted, grace_period_end) =
            feed::decide(&user.subscriptions, catalog, now);
        let period = metering_period(subscription.map(state_of).as_ref(), now);
        Ok(UserEntitlements {
            user_id: user_id.to_owned(),
            tier: granted.tier.id.clone(),
            features: catalog
                .features()
                .map(|f| (f.to_owned(), granted.feature(f)))
                .collect(),
            limits: granted.tier.limits.clone(),
            reason: granted.reason,
            status: subscription.as_ref().map(|s| s.status.clone()),
            subscription_id: subscription
                .as_ref()
                .map(|s| s.stripe_subscription_id.clone()),
            usage: user.usage.iter().cloned().collect(),
            period,
            credits: user.credits,
            period_end: subscription.as_ref().and_then(|s| s.current_period_end),
            grace_period_end,
            trial_end: subscription.as_ref().and_then(|s| s.trial_end),
            cancel_at_period_end: subscription
                .as_ref()
                .is_some_and(|s| s.cancel_at_period_end),
        })
    }

    /// The user's state from the gate cache, or read (outside any write transaction) and
    /// cached. A cached state whose metering period has ended since it was loaded is read again.
    pub(crate) async fn user_state(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<UserState>, AppError> {
        let catalog = self.catalog();
        if let Some(cached) = self.gate().get(user_id) {
            let deciding = gate::deciding(&cached.subscriptions, catalog, now);
            let period = metering_period(deciding.map(state_of).as_ref(), now);
            if period.start == cached.period_start {
                return Ok(cached);
            }
        }
        let generation = self.gate().generation();
        let loaded = self
            .store()
            .read(move |tx| {
                async move { Ok::<_, AppError>(load_user(tx, catalog, user_id, now).await?) }
                    .scope_boxed()
            })
            .await?;
        let loaded = Arc::new(loaded);
        self.gate().insert(user_id, Arc::clone(&loaded), generation);
        Ok(loaded)
    }
}
