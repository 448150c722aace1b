//! What a user may do now: tier, features, limits, usage this period, credits.

use std::collections::BTreeMap;

use billing_domain::{
    AccessReason, Catalog, Limit, MeteringPeriod, SubscriptionState, SubscriptionStatus, TierId,
    entitlement, metering_period,
};
use billing_ports::{BillingRead, BillingStore, ScopedFutureExt, StoreError, SubscriptionRecord};
use chrono::{DateTime, Utc};

use crate::BillingApp;
use crate::error::AppError;

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

/// The subscription that decides a user's access: the one granting the highest tier now; among
/// equals, the one whose last event is newest.
pub(crate) async fn deciding_subscription(
    tx: &mut dyn BillingRead,
    catalog: &Catalog,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<SubscriptionRecord>, StoreError> {
    let Some(customer) = tx.customer_of_user(user_id).await? else {
        return Ok(None);
    };
    let subscriptions = tx
        .customer_subscriptions(&customer.stripe_customer_id)
        .await?;
    Ok(subscriptions.into_iter().max_by(|a, b| {
        let rank = |s: &SubscriptionRecord| entitlement(Some(&state_of(s)), catalog, now).tier.rank;
        (rank(a), &a.snapshot_position).cmp(&(rank(b), &b.snapshot_position))
    }))
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
        let catalog = self.catalog();
        let now = self.clock().now();
        self.store()
            .read(move |tx| {
                async move {
                    let subscription = deciding_subscription(tx, catalog, user_id, now).await?;
                    let state = subscription.as_ref().map(state_of);
                    let granted = entitlement(state.as_ref(), catalog, now);
                    Ok::<_, AppError>(Some(FeatureAccess {
                        allowed: granted.feature(feature),
                        tier: granted.tier.id.clone(),
                        reason: granted.reason,
                    }))
                }
                .scope_boxed()
            })
            .await
    }

    /// The user's entitlements now. A user we do not know is on the free tier (not an error).
    pub async fn entitlements(&self, user_id: &str) -> Result<UserEntitlements, AppError> {
        let catalog = self.catalog();
        let now = self.clock().now();
        self.store()
            .read(move |tx| {
                async move {
                    let subscription = deciding_subscription(tx, catalog, user_id, now).await?;
                    let state = subscription.as_ref().map(state_of);
                    let granted = entitlement(state.as_ref(), catalog, now);
                    let period = metering_period(state.as_ref(), now);
                    let mut usage = BTreeMap::new();
                    for metric in catalog.metrics() {
                        usage.insert(
                            metric.to_owned(),
                            tx.usage_used(user_id, metric, period.start).await?,
                        );
                    }
                    let credits = tx.credit_balance(user_id).await?;
                    let grace_period_end = match &granted.reason {
                        AccessReason::InGracePeriod { until } => Some(*until),
                        _ => subscription.as_ref().and_then(|s| s.grace_period_end),
                    };
                    Ok::<_, AppError>(UserEntitlements {
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
                        usage,
                        period,
                        credits,
                        period_end: subscription.as_ref().and_then(|s| s.current_period_end),
                        grace_period_end,
                        trial_end: subscription.as_ref().and_then(|s| s.trial_end),
                        cancel_at_period_end: subscription
                            .as_ref()
                            .is_some_and(|s| s.cancel_at_period_end),
                    })
                }
                .scope_boxed()
            })
            .await
    }
}
