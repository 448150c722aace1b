//! Outgoing Stripe calls: customers, Checkout, the billing portal, and re-syncing a user.
//!
//! Every creating call is recorded in `stripe_requests` BEFORE it is made, with the Stripe
//! idempotency key it will carry. A retry finds the record: a success is answered from it
//! without calling Stripe; a pending or failed one is sent again with the same key, so Stripe
//! itself returns the object it may already have created. The same client key with other
//! parameters is refused.

use std::collections::BTreeSet;
use std::sync::Arc;

use billing_ports::{
    BillingStore, CheckoutCreated, CheckoutKind, CheckoutRequest, CustomerRecord, ErrorChain,
    ReadAhead, ScopedFutureExt, StripeGateway, StripeRequest, StripeRequestStatus,
};
use sha2::{Digest, Sha256};

use crate::BillingApp;
use crate::effects::{Context, customer, subscription};
use crate::error::AppError;
use crate::feed;
use crate::usage::MAX_IDEMPOTENCY_KEY_LEN;

/// The trial days a Checkout subscription may ask for: Stripe's limits for
/// `subscription_data.trial_period_days` (at least one day, at most two years).
pub const TRIAL_DAYS: std::ops::RangeInclusive<u32> = 1..=730;

/// What to buy: a price id, or a tier (its first price).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceChoice {
    /// A price id of the catalog.
    Price(String),
    /// A tier id of the catalog.
    Tier(String),
}

/// A Checkout Session to create for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutParams {
    /// Our user.
    pub user_id: String,
    /// Their email, for a new Stripe customer.
    pub email: Option<String>,
    /// Payment or subscription.
    pub kind: CheckoutKind,
    /// What to buy.
    pub price: PriceChoice,
    /// Where Stripe sends the customer after paying.
    pub success_url: String,
    /// Where Stripe sends the customer after giving up.
    pub cancel_url: String,
    /// Trial days (subscription only).
    pub trial_days: Option<u32>,
    /// The client's idempotency key (the `Idempotency-Key` header).
    pub idempotency_key: String,
}

/// A Checkout Session, new or replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutOutcome {
    /// `cs_…`.
    pub id: String,
    /// The hosted page.
    pub url: String,
    /// True when answered from the record of an earlier identical request.
    pub replayed: bool,
}

fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

impl<S: BillingStore> BillingApp<S> {
    fn gateway_or_err(&self) -> Result<Arc<dyn StripeGateway>, AppError> {
        self.gateway().cloned().ok_or(AppError::NoGateway)
    }

    /// Records `request` (or finds the earlier record of the same operation and stable id).
    async fn begin_request(&self, request: &StripeRequest) -> Result<StripeRequest, AppError> {
        let now = self.clock().now();
        self.store()
            .transaction(move |tx| {
                async move {
                    tx.lock_key(&format!(
                        "stripe:{}:{}",
                        request.operation, request.stable_id
                    ))
                    .await?;
                    let stored = tx.begin_stripe_request(request, now).await?;
                    if stored.fingerprint != request.fingerprint {
                        return Err(AppError::IdempotencyConflict(request.stable_id.clone()));
                    }
                    Ok(stored)
                }
                .scope_boxed()
            })
            .await
    }

    async fn finish_request(&self, request: &StripeRequest) -> Result<(), AppError> {
        let now = self.clock().now();
        self.store()
            .transaction(move |tx| {
                async move { Ok(tx.finish_stripe_request(request, now).await?) }.scope_boxed()
            })
            .await
    }

    /// The user's Stripe customer id, creating the customer at Stripe when the user has none.
    ///
    /// Race-free twice over: the Stripe idempotency key is derived from the user id, so two
    /// racing first calls get the same customer from Stripe; our `customers.user_id` is unique.
    pub async fn customer_for(
        &self,
        user_id: &str,
        email: Option<&str>,
    ) -> Result<String, AppError> {
        if let Some(customer) = self.customer_of(user_id).await? {
            return Ok(customer);
        }
        let gateway = self.gateway_or_err()?;
        let key = format!("customer-{}", digest(&[user_id]));
        let mut request = self
            .begin_request(&StripeRequest {
                operation: "customer.create".to_owned(),
                stable_id: user_id.to_owned(),
                idempotency_key: key.clone(),
                fingerprint: digest(&["customer.create", user_id]),
                status: StripeRequestStatus::Pending,
                stripe_id: None,
                response: None,
                last_error: None,
            })
            .await?;
        let customer_id = match (&request.status, &request.stripe_id) {
            (StripeRequestStatus::Succeeded, Some(id)) => id.clone(),
            _ => match gateway
                .create_customer(user_id, email, &request.idempotency_key)
                .await
            {
                Ok(id) => id,
                Err(error) => {
                    request.status = StripeRequestStatus::Failed;
                    request.last_error = Some(ErrorChain(&error).to_string());
                    self.finish_request(&request).await?;
                    return Err(error.into());
                }
            },
        };
        let now = self.clock().now();
        let (user, id) = (user_id, customer_id.as_str());
        let ctx = Context::new(self.catalog().clone(), now);
        let ctx = &ctx;
        let linked = self
            .store()
            .transaction(move |tx| {
                async move {
                    tx.lock_key(id).await?;
                    // The link can bring the user what webhooks stored for the customer before
                    // it (subscriptions, credits): the feed records it, in the feed's lock order.
                    let users = BTreeSet::from([user.to_owned()]);
                    let before =
                        feed::Before::take(tx, ctx, users.clone(), ReadAhead::default()).await?;
                    customer::lock_user(tx, user).await?;
                    if let Some(other) = tx.customer_of_user(user).await? {
                        // A webhook (or a racer) linked the user meanwhile: that link stands.
                        return Ok::<_, AppError>(other.stripe_customer_id);
                    }
                    let mut record = tx.customer(id).await?.unwrap_or(CustomerRecord {
                        stripe_customer_id: id.to_owned(),
                        user_id: None,
                        email: None,
                        deleted: false,
                    });
                    record.user_id = Some(user.to_owned());
                    record.email = email.map(str::to_owned).or(record.email);
                    tx.save_customer(&record, now).await?;
                    tx.attribute_customer_rows(id, user).await?;
                    let cause = feed::Cause {
                        key: &format!("customer_link:{id}"),
                        stripe_event_id: None,
                    };
                    before.record(tx, ctx, &cause, users).await?;
                    Ok(id.to_owned())
                }
                .scope_boxed()
            })
            .await?;
        request.status = StripeRequestStatus::Succeeded;
        request.stripe_id = Some(customer_id);
        request.last_error = None;
        self.finish_request(&request).await?;
        self.gate().invalidate_user(user_id);
        self.changes_committed();
        Ok(linked)
    }

    /// Creates (or replays) a Checkout Session for a user.
    pub async fn create_checkout(
        &self,
        params: CheckoutParams,
    ) -> Result<CheckoutOutcome, AppError> {
        if params.idempotency_key.is_empty()
            || params.idempotency_key.len() > MAX_IDEMPOTENCY_KEY_LEN
        {
            return Err(AppError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"
            )));
        }
        if params.kind == CheckoutKind::Payment && params.trial_days.is_some() {
            return Err(AppError::BadRequest(
                "trial_days applies to subscriptions only".to_owned(),
            ));
        }
        if params
            .trial_days
            .is_some_and(|days| !TRIAL_DAYS.contains(&days))
        {
            return Err(AppError::BadRequest(format!(
                "trial_days must be {} to {} (Stripe's limits for a Checkout trial)",
                TRIAL_DAYS.start(),
                TRIAL_DAYS.end()
            )));
        }
        let price_id = match &params.price {
            PriceChoice::Price(p) => self
                .catalog()
                .tier_for_price(p)
                .map(|_| p.clone())
                .ok_or_else(|| AppError::UnknownPrice(p.clone()))?,
            PriceChoice::Tier(t) => self
                .catalog()
                .tier(t)
                .and_then(|tier| tier.price_ids.first().cloned())
                .ok_or_else(|| AppError::UnknownPrice(t.clone()))?,
        };
        let gateway = self.gateway_or_err()?;
        let kind = match params.kind {
            CheckoutKind::Payment => "payment",
            CheckoutKind::Subscription => "subscription",
        };
        let trial = params.trial_days.map(|d| d.to_string()).unwrap_or_default();
        let stable_id = format!("{}:{}", params.user_id, params.idempotency_key);
        let mut request = self
            .begin_request(&StripeRequest {
                operation: "checkout.create".to_owned(),
                idempotency_key: format!(
                    "checkout-{}",
                    digest(&[&params.user_id, &params.idempotency_key])
                ),
                fingerprint: digest(&[
                    kind,
                    &price_id,
                    &params.success_url,
                    &params.cancel_url,
                    &trial,
                ]),
                stable_id,
                status: StripeRequestStatus::Pending,
                stripe_id: None,
                response: None,
                last_error: None,
            })
            .await?;
        if let (StripeRequestStatus::Succeeded, Some(id), Some(url)) =
            (&request.status, &request.stripe_id, &request.response)
        {
            return Ok(CheckoutOutcome {
                id: id.clone(),
                url: url.clone(),
                replayed: true,
            });
        }
        let customer_id = self
            .customer_for(&params.user_id, params.email.as_deref())
            .await?;
        let call = CheckoutRequest {
            customer_id,
            user_id: params.user_id.clone(),
            kind: params.kind,
            price_id,
            success_url: params.success_url.clone(),
            cancel_url: params.cancel_url.clone(),
            trial_days: params.trial_days,
        };
        match gateway
            .create_checkout_session(&call, &request.idempotency_key)
            .await
        {
            Ok(CheckoutCreated { id, url }) => {
                request.status = StripeRequestStatus::Succeeded;
                request.stripe_id = Some(id.clone());
                request.response = Some(url.clone());
                request.last_error = None;
                self.finish_request(&request).await?;
                Ok(CheckoutOutcome {
                    id,
                    url,
                    replayed: false,
                })
            }
            Err(error) => {
                request.status = StripeRequestStatus::Failed;
                request.last_error = Some(ErrorChain(&error).to_string());
                self.finish_request(&request).await?;
                Err(error.into())
            }
        }
    }

    /// A billing-portal URL for a user who has a Stripe customer.
    pub async fn portal_url(&self, user_id: &str, return_url: &str) -> Result<String, AppError> {
        let gateway = self.gateway_or_err()?;
        let customer = self.known_customer(user_id).await?;
        Ok(gateway.create_portal_session(&customer, return_url).await?)
    }

    /// The Stripe customer linked to a user, if any.
    async fn customer_of(&self, user_id: &str) -> Result<Option<String>, AppError> {
        Ok(self
            .store()
            .read(move |tx| {
                async move { Ok::<_, AppError>(tx.customer_of_user(user_id).await?) }.scope_boxed()
            })
            .await?
            .map(|c| c.stripe_customer_id))
    }

    /// The Stripe customer linked to a user; `UnknownUser` when none.
    async fn known_customer(&self, user_id: &str) -> Result<String, AppError> {
        self.customer_of(user_id)
            .await?
            .ok_or_else(|| AppError::UnknownUser(user_id.to_owned()))
    }

    /// Re-fetches the user's subscriptions from Stripe and applies them (what a checkout
    /// success page calls, since the user can come back before the webhook). Returns how many
    /// subscriptions were written.
    pub async fn sync_user(&self, user_id: &str) -> Result<usize, AppError> {
        let gateway = self.gateway_or_err()?;
        let customer = self.known_customer(user_id).await?;
        let snapshots = gateway.customer_subscriptions(&customer).await?;
        let ctx = Context::new(self.catalog().clone(), self.clock().now());
        let ctx = &ctx;
        let mut written = 0;
        for snapshot in &snapshots {
            let position = billing_domain::Position {
                created: ctx.now,
                rank: snapshot.status.progression_rank(),
                event_id: format!("sync:{}", ctx.now.timestamp_micros()),
            };
            let status = self
                .store()
                .transaction(move |tx| {
                    async move {
                        tx.lock_key(&snapshot.customer_id).await?;
                        let users = BTreeSet::from([user_id.to_owned()]);
                        let before =
                            feed::Before::take(tx, ctx, users.clone(), ReadAhead::default())
                                .await?;
                        let key = position.event_id.clone();
                        let status =
                            subscription::apply_snapshot(tx, ctx, position, snapshot, true).await?;
                        if status == billing_ports::EventStatus::Processed {
                            let cause = feed::Cause {
                                key: &format!("{key}:{}", snapshot.id),
                                stripe_event_id: None,
                            };
                            before.record(tx, ctx, &cause, users).await?;
                        }
                        Ok::<_, AppError>(status)
                    }
                    .scope_boxed()
                })
                .await?;
            if status == billing_ports::EventStatus::Processed {
                written += 1;
            }
        }
        if written > 0 {
            self.gate().invalidate_user(user_id);
            self.changes_committed();
        }
        Ok(written)
    }
}
