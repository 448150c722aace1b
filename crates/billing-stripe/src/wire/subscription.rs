//! Subscriptions (`customer.subscription.*`).
//!
//! Version differences handled here:
//!
//! - The current billing period is `current_period_start`/`current_period_end` on the
//!   subscription before `2025-03-31.basil`, and on each subscription item
//!   (`items.data[].current_period_start`/`_end`) since. When the subscription-level pair is
//!   present (either half) it is used; otherwise the period of the **first item** is used.
//!   Items of one subscription can have different periods since basil (mixed intervals); the
//!   first item's is the one kept.
//! - The prices ([`SubscriptionSnapshot::price_ids`]) are read from **every** item, in item
//!   order: `items.data[i].price` (an expanded object, or an id string) in every version that
//!   has prices, falling back to the item's legacy `items.data[i].plan` (renderings from before
//!   prices, or plans created as such). An item with neither contributes nothing. When no item
//!   gives a price (no `items`, an empty list, or items without either field), the
//!   subscription-level legacy `plan` (single-plan subscriptions of old versions) is the only
//!   price. Only the first page of items Stripe sends inline (up to ten) is seen.

use billing_domain::SubscriptionStatus;
use billing_domain::facts::SubscriptionSnapshot;
use chrono::{DateTime, Utc};

use super::WireObject;
use super::field::{Expandable, Field, List, Metadata, Scope, wire_struct};
use crate::error::WireError;

wire_struct! {
    /// A subscription as sent, in any supported API version.
    #[derive(Debug)]
    pub(super) struct RawSubscription {
        object: Field<String>,
        id: Field<String>,
        customer: Field<Expandable>,
        status: Field<String>,
        items: Field<List<RawSubscriptionItem>>,
        /// Legacy single-plan field, the price when no item gives one.
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
}

wire_struct! {
    /// A subscription item as sent.
    #[derive(Debug)]
    struct RawSubscriptionItem {
        /// Every version with prices.
        price: Field<Expandable>,
        /// Legacy; read when `price` is absent.
        plan: Field<Expandable>,
        /// Basil and later.
        current_period_start: Field<i64>,
        /// Basil and later.
        current_period_end: Field<i64>,
    }
}

type Period = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

impl WireObject for RawSubscription {
    type Facts = SubscriptionSnapshot;

    fn into_facts(self, scope: &Scope<'_>) -> Result<SubscriptionSnapshot, WireError> {
        scope.expect_object(&self.object, "subscription")?;
        let id = scope.object_id(&self.id, "id", &["sub_"])?;
        let customer_id = scope.required_id(&self.customer, "customer")?;
        let status = SubscriptionStatus::parse(&scope.required_string(&self.status, "status")?);

        let items = self.items(scope)?;
        let mut price_ids = Vec::with_capacity(items.len());
        for (item, item_scope) in &items {
            if let Some(price) = item.price(item_scope)? {
                price_ids.push(price);
            }
        }
        if price_ids.is_empty()
            && let Some(plan) = scope.id(&self.plan, "plan")?
        {
            price_ids.push(plan);
        }

        let (current_period_start, current_period_end) =
            self.period(scope, items.into_iter().next())?;

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
    /// Every subscription item sent inline, in order, each with its scope.
    fn items<'s>(
        &'s self,
        scope: &Scope<'s>,
    ) -> Result<Vec<(&'s RawSubscriptionItem, Scope<'s>)>, WireError> {
        let Some(items) = scope.optional(&self.items, "items")? else {
            return Ok(Vec::new());
        };
        let items_scope = scope.child("items");
        let Some(data) = items_scope.optional(&items.data, "data")? else {
            return Ok(Vec::new());
        };
        data.iter()
            .enumerate()
            .map(|(index, entry)| {
                let name = format!("data[{index}]");
                let item = items_scope.entry(entry, &name)?;
                Ok((item, items_scope.child(&name)))
            })
            .collect()
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

impl RawSubscriptionItem {
    /// The item's price: `price`, else the legacy `plan`.
    fn price(&self, scope: &Scope<'_>) -> Result<Option<String>, WireError> {
        match scope.id(&self.price, "price")? {
            Some(price) => Ok(Some(price)),
            None => scope.id(&self.plan, "plan"),
        }
    }
}
