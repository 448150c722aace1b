//! Subscriptions (`customer.subscription.*`).
//!
//! Version differences handled here:
//!
//! - The current billing period is `current_period_start`/`current_period_end` on the
//!   subscription before `2025-03-31.basil`, and on each subscription item
//!   (`items.data[].current_period_start`/`_end`) since. When the subscription-level pair is
//!   present (either half) it is used; otherwise the period of the **first item** is used,
//!   the same item whose price decides the tier. Items of one subscription can have different
//!   periods since basil (mixed intervals); the first item's is the one that matches
//!   the first item's price.
//! - The prices are every item's `items.data[].price` (an expanded object, or an id string),
//!   each falling back to the item's legacy `plan`, in item order; with no items, the
//!   subscription-level legacy `plan`. The application takes the highest catalog tier among
//!   them, so an add-on listed first never hides the plan.

use billing_domain::SubscriptionStatus;
use billing_domain::facts::SubscriptionSnapshot;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::WireObject;
use super::field::{Expandable, Field, List, Metadata, Scope};
use crate::error::WireError;

/// A subscription as sent, in any supported API version.
#[derive(Debug, Deserialize)]
pub(super) struct RawSubscription {
    object: Field<String>,
    id: Field<String>,
    customer: Field<Expandable>,
    status: Field<String>,
    items: Field<List<RawSubscriptionItem>>,
    /// Legacy single-plan field, kept as a last fallback for the price.
    plan: Field<Expandable>,
    /// Before basil only.
    current_period_start: Field<i64>,
    /// Before basil only.
    current_period_end: Field<i64>,
    cancel_at_period_end: Field<bool>,
    cancel_at: Field<i64>,
    canceled_at: Field<i64>,
    ended_at: Field<i64>,
    trial_end: Field<i64>,
    metadata: Field<Metadata>,
}

/// A subscription item as sent.
#[derive(Debug, Deserialize)]
struct RawSubscriptionItem {
    price: Field<Expandable>,
    plan: Field<Expandable>,
    /// Basil and later.
    current_period_start: Field<i64>,
    /// Basil and later.
    current_period_end: Field<i64>,
}

type Period = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

impl WireObject for RawSubscription {
    type Facts = SubscriptionSnapshot;

    fn into_facts(self, scope: &Scope<'_>) -> Result<SubscriptionSnapshot, WireError> {
        scope.expect_object(&self.object, "subscription")?;
        let id = scope.required_string(&self.id, "id")?;
        let customer_id = scope.required_id(&self.customer, "customer")?;
        let status = SubscriptionStatus::parse(scope.required(&self.status, "status")?);

        let price_ids = self.item_prices(scope)?;
        let first_item = self.first_item(scope)?;

        let (current_period_start, current_period_end) = self.period(scope, first_item)?;

        Ok(SubscriptionSnapshot {
            id,
            customer_id,
            status,
            price_ids,
            current_period_start,
            current_period_end,
            cancel_at_period_end: scope.flag(&self.cancel_at_period_end, "cancel_at_period_end")?,
            cancel_at: scope.time(&self.cancel_at, "cancel_at")?,
            canceled_at: scope.time(&self.canceled_at, "canceled_at")?,
            ended_at: scope.time(&self.ended_at, "ended_at")?,
            trial_end: scope.time(&self.trial_end, "trial_end")?,
            metadata_user_id: scope.metadata_user_id(&self.metadata)?,
        })
    }
}

impl RawSubscription {
    /// Every item's price (or legacy plan), in item order; the subscription-level `plan` when
    /// there are no items.
    fn item_prices(&self, scope: &Scope<'_>) -> Result<Vec<String>, WireError> {
        let mut prices = Vec::new();
        if let Some(items) = scope.optional(&self.items, "items")? {
            let items_scope = scope.child("items");
            if let Some(data) = items_scope.optional(&items.data, "data")? {
                for (index, entry) in data.iter().enumerate() {
                    let name = format!("data[{index}]");
                    let item = items_scope.entry(entry, &name)?;
                    let item_scope = items_scope.child(&name);
                    let price = match item_scope.id(&item.price, "price")? {
                        Some(price) => Some(price),
                        None => item_scope.id(&item.plan, "plan")?,
                    };
                    if let Some(price) = price
                        && !prices.contains(&price)
                    {
                        prices.push(price);
                    }
                }
            }
        }
        if prices.is_empty()
            && let Some(plan) = scope.id(&self.plan, "plan")?
        {
            prices.push(plan);
        }
        Ok(prices)
    }

    /// The first subscription item, with its scope, if the subscription lists any.
    fn first_item<'s>(
        &'s self,
        scope: &Scope<'s>,
    ) -> Result<Option<(&'s RawSubscriptionItem, Scope<'s>)>, WireError> {
        let Some(items) = scope.optional(&self.items, "items")? else {
            return Ok(None);
        };
        let items_scope = scope.child("items");
        let Some(data) = items_scope.optional(&items.data, "data")? else {
            return Ok(None);
        };
        let Some(first) = data.first() else {
            return Ok(None);
        };
        let item = items_scope.entry(first, "data[0]")?;
        Ok(Some((item, items_scope.child("data[0]"))))
    }

    /// The current period: subscription-level before basil, first item's since.
    fn period(
        &self,
        scope: &Scope<'_>,
        first_item: Option<(&RawSubscriptionItem, Scope<'_>)>,
    ) -> Result<Period, WireError> {
        let start = scope.time(&self.current_period_start, "current_period_start")?;
        let end = scope.time(&self.current_period_end, "current_period_end")?;
        if start.is_some() || end.is_some() {
            return Ok((start, end));
        }
        match first_item {
            Some((item, item_scope)) => Ok((
                item_scope.time(&item.current_period_start, "current_period_start")?,
                item_scope.time(&item.current_period_end, "current_period_end")?,
            )),
            None => Ok((None, None)),
        }
    }
}
