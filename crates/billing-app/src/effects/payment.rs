//! One-time payments: orders from Checkout, payment intents, charges, refunds and disputes.
//!
//! A payment row is found by its payment intent or by its charge (Charges API integrations
//! have charges without a payment intent; old dispute renderings name only the charge). Refund
//! and dispute state is kept on the payment row too, so a refund that arrives before its order
//! is applied to the order when the order is written, and the first event of any kind creates
//! the row: nothing is lost whatever the delivery order.

use billing_domain::facts::{
    ChargeFacts, CheckoutSession, DisputeFacts, DisputeOutcome, PaymentIntentChange,
    PaymentIntentFacts, RefundFacts,
};
use billing_domain::{BillingEvent, Money};
use billing_ports::{
    BillingTx, DisputeStatus, EventStatus, OrderRecord, PaymentRecord, PaymentStatus, RefundStatus,
};
use chrono::{DateTime, Utc};

use super::Context;
use crate::error::AppError;

/// Writes the payment and the order of a paid Checkout session, once.
pub(super) async fn checkout_order(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    event: &BillingEvent,
    session: &CheckoutSession,
    user: Option<&str>,
) -> Result<(), AppError> {
    let Some(amount) = session.amount_total.clone() else {
        return Err(AppError::Invalid(format!(
            "payment-mode checkout session {} has no amount_total",
            session.id
        )));
    };
    let payment = match &session.payment_intent_id {
        Some(pi) => {
            let status = if session.payment_status.as_deref() == Some("paid") {
                PaymentStatus::Succeeded
            } else {
                PaymentStatus::Processing
            };
            let found = Key {
                payment_intent_id: Some(pi),
                charge_id: None,
            };
            let mut payment = load(tx, found, Amount::Of(&amount), status, event.created)
                .await?
                .payment;
            payment.stripe_customer_id = payment
                .stripe_customer_id
                .or_else(|| session.customer_id.clone());
            payment.user_id = payment.user_id.or_else(|| user.map(str::to_owned));
            if status == PaymentStatus::Succeeded {
                set_status(&mut payment, status, event.created);
            }
            tx.save_payment(&payment, ctx.now).await?;
            Some(payment)
        }
        None => None,
    };
    let amount_refunded = payment
        .as_ref()
        .map_or(0, |p| p.amount_refunded)
        .min(amount.amount_minor);
    let order = OrderRecord {
        checkout_session_id: session.id.clone(),
        payment_intent_id: session.payment_intent_id.clone(),
        stripe_customer_id: session.customer_id.clone(),
        user_id: user.map(str::to_owned),
        refund_status: refund_status(amount_refunded, amount.amount_minor),
        amount_refunded,
        dispute_status: payment
            .as_ref()
            .map_or(DisputeStatus::None, |p| p.dispute_status),
        amount,
        status: session
            .payment_status
            .clone()
            .unwrap_or_else(|| "paid".to_owned()),
    };
    tx.insert_order(&order, ctx.now).await?;
    Ok(())
}

/// `payment_intent.succeeded`, `.payment_failed`, `.processing`, `.requires_action`,
/// `.canceled`. A payment intent seen first here starts in the event's status.
pub(super) async fn intent(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    event: &BillingEvent,
    change: PaymentIntentChange,
    intent: &PaymentIntentFacts,
) -> Result<EventStatus, AppError> {
    let status = match change {
        PaymentIntentChange::Succeeded => PaymentStatus::Succeeded,
        PaymentIntentChange::PaymentFailed => PaymentStatus::Failed,
        PaymentIntentChange::Processing => PaymentStatus::Processing,
        PaymentIntentChange::RequiresAction => PaymentStatus::RequiresAction,
        PaymentIntentChange::Canceled => PaymentStatus::Canceled,
    };
    let key = Key {
        payment_intent_id: Some(&intent.id),
        charge_id: intent.latest_charge_id.as_deref(),
    };
    let user = match intent.customer_id.as_deref() {
        Some(c) => tx.customer(c).await?.and_then(|c| c.user_id),
        None => None,
    }
    .or_else(|| intent.metadata_user_id.clone());
    let mut loaded = load(tx, key, Amount::Of(&intent.amount), status, event.created).await?;
    let payment = &mut loaded.payment;
    payment.stripe_customer_id = payment
        .stripe_customer_id
        .take()
        .or_else(|| intent.customer_id.clone());
    payment.user_id = payment.user_id.take().or(user);
    if let Some(charge) = &intent.latest_charge_id {
        payment.charge_id = Some(charge.clone());
    }
    if set_status(payment, status, event.created) {
        payment.last_error = match status {
            PaymentStatus::Failed => intent.last_error.clone(),
            _ => None,
        };
    }
    if status == PaymentStatus::Failed {
        tracing::warn!(
            payment_intent_id = ?intent.id,
            user_id = ?payment.user_id.as_deref().unwrap_or(""),
            error = ?intent.last_error.as_deref().unwrap_or(""),
            "payment failed"
        );
    }
    save(tx, ctx, &loaded).await?;
    Ok(EventStatus::Processed)
}

/// `charge.refunded`: the charge carries the total refunded so far.
pub(super) async fn charge_refunded(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    event: &BillingEvent,
    charge: &ChargeFacts,
) -> Result<EventStatus, AppError> {
    let key = Key {
        payment_intent_id: charge.payment_intent_id.as_deref(),
        charge_id: Some(&charge.id),
    };
    let mut loaded = load(
        tx,
        key,
        Amount::Of(&charge.amount),
        PaymentStatus::Succeeded,
        event.created,
    )
    .await?;
    let payment = &mut loaded.payment;
    payment.stripe_customer_id = payment
        .stripe_customer_id
        .take()
        .or_else(|| charge.customer_id.clone());
    record_refund(tx, ctx, loaded, charge.amount_refunded).await
}

/// `charge.refund.updated`: one refund. A pending or succeeded refund is at least this much
/// refunded; a failed or canceled one is left to the charge's next `charge.refunded` total.
pub(super) async fn refund_updated(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    event: &BillingEvent,
    refund: &RefundFacts,
) -> Result<EventStatus, AppError> {
    let key = Key {
        payment_intent_id: refund.payment_intent_id.as_deref(),
        charge_id: refund.charge_id.as_deref(),
    };
    if key.is_empty() {
        tracing::warn!(refund_id = ?refund.id, "refund names neither a charge nor a payment intent; ignored");
        return Ok(EventStatus::Ignored);
    }
    match refund.status.as_str() {
        "succeeded" | "pending" => {
            let loaded = load(
                tx,
                key,
                Amount::AtLeast(&refund.amount),
                PaymentStatus::Succeeded,
                event.created,
            )
            .await?;
            record_refund(tx, ctx, loaded, refund.amount.amount_minor).await
        }
        other => {
            tracing::warn!(refund_id = ?refund.id, status = ?other, "refund did not go through");
            Ok(EventStatus::Processed)
        }
    }
}

/// `charge.dispute.*`: Stripe's status is kept as sent, the outcome derived from it. A
/// decided dispute is final: a late event of an open state never reopens it.
pub(super) async fn dispute(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    event: &BillingEvent,
    dispute: &DisputeFacts,
) -> Result<EventStatus, AppError> {
    let key = Key {
        payment_intent_id: dispute.payment_intent_id.as_deref(),
        charge_id: dispute.charge_id.as_deref(),
    };
    if key.is_empty() {
        tracing::warn!(dispute_id = ?dispute.id, "dispute names neither a charge nor a payment intent; ignored");
        return Ok(EventStatus::Ignored);
    }
    let mut loaded = load(
        tx,
        key,
        Amount::AtLeast(&dispute.amount),
        PaymentStatus::Succeeded,
        event.created,
    )
    .await?;
    let payment = &mut loaded.payment;
    if !payment_dispute_closed(payment) {
        payment.dispute_status = dispute_status(DisputeOutcome::of_status(&dispute.status));
        payment.dispute_stripe_status = Some(dispute.status.clone());
    }
    save(tx, ctx, &loaded).await?;
    Ok(EventStatus::Processed)
}

/// The ids an event knows a payment by.
#[derive(Clone, Copy)]
struct Key<'a> {
    payment_intent_id: Option<&'a str>,
    charge_id: Option<&'a str>,
}

impl Key<'_> {
    fn is_empty(&self) -> bool {
        self.payment_intent_id.is_none() && self.charge_id.is_none()
    }
}

/// What an event says of the payment's amount.
#[derive(Clone, Copy)]
enum Amount<'a> {
    /// The payment's own amount (a payment intent, a charge, a Checkout total).
    Of(&'a Money),
    /// A part of it (a refund, a dispute): the amount is at least this much until the payment
    /// itself is seen.
    AtLeast(&'a Money),
}

/// Locks the payment's ids and returns its row: the stored one (a row known by its charge
/// alone merged into its payment intent's), or a new one in `status`, with its amount updated
/// from `amount`.
async fn load(
    tx: &mut dyn BillingTx,
    key: Key<'_>,
    amount: Amount<'_>,
    status: PaymentStatus,
    at: DateTime<Utc>,
) -> Result<Loaded, AppError> {
    // Every transaction takes these locks in the same (sorted) order, so two events naming
    // the same payment by different ids serialise without deadlocking.
    let mut locks: Vec<&str> = [key.payment_intent_id, key.charge_id]
        .into_iter()
        .flatten()
        .collect();
    locks.sort_unstable();
    locks.dedup();
    for lock in locks {
        tx.lock_key(lock).await?;
    }
    let mut rows = tx
        .payments_matching(key.payment_intent_id, key.charge_id)
        .await?;
    // Only a single row already known by its payment intent has its refund and dispute state
    // on the order (see `save`); a new, merged or newly linked row does not yet.
    let order_reflects = match rows.as_slice() {
        [stored] if stored.payment_intent_id.is_some() => {
            Some((stored.amount_refunded, stored.dispute_status))
        }
        _ => None,
    };
    let mut payment = match rows.len() {
        0 => PaymentRecord {
            key: key
                .payment_intent_id
                .or(key.charge_id)
                .unwrap_or_default()
                .to_owned(),
            payment_intent_id: None,
            charge_id: None,
            stripe_customer_id: None,
            user_id: None,
            amount: match amount {
                Amount::Of(money) | Amount::AtLeast(money) => money.clone(),
            },
            status,
            status_at: Some(at),
            last_error: None,
            amount_refunded: 0,
            dispute_status: DisputeStatus::None,
            dispute_stripe_status: None,
        },
        _ => {
            // Keep the payment intent's row; fold a row known only by the charge into it.
            rows.sort_by_key(|p| p.payment_intent_id.is_none());
            let mut kept = rows.remove(0);
            for other in rows {
                tx.delete_payment(&other.key).await?;
                kept = merge(kept, other);
            }
            kept
        }
    };
    if payment.payment_intent_id.is_none() {
        payment.payment_intent_id = key.payment_intent_id.map(str::to_owned);
    }
    if payment.charge_id.is_none() {
        payment.charge_id = key.charge_id.map(str::to_owned);
    }
    match amount {
        Amount::Of(money) => payment.amount = money.clone(),
        Amount::AtLeast(money)
            if money.currency == payment.amount.currency
                && money.amount_minor > payment.amount.amount_minor =>
        {
            payment.amount = money.clone();
        }
        Amount::AtLeast(_) => {}
    }
    Ok(Loaded {
        payment,
        order_reflects,
    })
}

/// A payment row as loaded for an event, and the refund and dispute state its order already
/// reflects, when that is known.
struct Loaded {
    payment: PaymentRecord,
    order_reflects: Option<(i64, DisputeStatus)>,
}

/// Folds `other` (a row of the same payment known by its charge alone) into `kept`.
fn merge(mut kept: PaymentRecord, other: PaymentRecord) -> PaymentRecord {
    kept.charge_id = kept.charge_id.or(other.charge_id);
    kept.stripe_customer_id = kept.stripe_customer_id.or(other.stripe_customer_id);
    kept.user_id = kept.user_id.or(other.user_id);
    kept.amount_refunded = kept.amount_refunded.max(other.amount_refunded);
    if !payment_dispute_closed(&kept) && other.dispute_status != DisputeStatus::None {
        kept.dispute_status = other.dispute_status;
        kept.dispute_stripe_status = other.dispute_stripe_status;
    }
    kept
}

/// Sets the payment's status unless it is already final or was set by a newer event; returns
/// whether it was set. Succeeded and canceled are final: a late failure of an earlier attempt
/// never undoes a success.
fn set_status(payment: &mut PaymentRecord, status: PaymentStatus, at: DateTime<Utc>) -> bool {
    let current_final = matches!(
        payment.status,
        PaymentStatus::Succeeded | PaymentStatus::Canceled
    );
    let incoming_final = matches!(status, PaymentStatus::Succeeded | PaymentStatus::Canceled);
    let newer = payment.status_at.is_none_or(|held| at >= held);
    if current_final && payment.status != status {
        return false;
    }
    if !(incoming_final || newer) {
        return false;
    }
    payment.status = status;
    payment.status_at = Some(payment.status_at.map_or(at, |held| held.max(at)));
    true
}

fn payment_dispute_closed(payment: &PaymentRecord) -> bool {
    matches!(
        payment.dispute_status,
        DisputeStatus::Won | DisputeStatus::Lost | DisputeStatus::ClosedWithoutChargeback
    )
}

fn dispute_status(outcome: DisputeOutcome) -> DisputeStatus {
    match outcome {
        DisputeOutcome::Open => DisputeStatus::Open,
        DisputeOutcome::Won => DisputeStatus::Won,
        DisputeOutcome::Lost => DisputeStatus::Lost,
        DisputeOutcome::ClosedWithoutChargeback => DisputeStatus::ClosedWithoutChargeback,
    }
}

async fn record_refund(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    mut loaded: Loaded,
    refunded_total: i64,
) -> Result<EventStatus, AppError> {
    // Refund totals only grow; taking the maximum makes the order of deliveries irrelevant.
    loaded.payment.amount_refunded = loaded.payment.amount_refunded.max(refunded_total);
    save(tx, ctx, &loaded).await?;
    Ok(EventStatus::Processed)
}

/// Saves the payment and carries its refund and dispute state to its order, if there is one
/// (found by payment intent). The order is read only when that state may differ from what the
/// order already holds, so most payment intent events cost no order lookup.
async fn save(tx: &mut dyn BillingTx, ctx: &Context, loaded: &Loaded) -> Result<(), AppError> {
    let payment = &loaded.payment;
    tx.save_payment(payment, ctx.now).await?;
    if loaded.order_reflects == Some((payment.amount_refunded, payment.dispute_status)) {
        return Ok(());
    }
    let Some(pi) = payment.payment_intent_id.as_deref() else {
        return Ok(());
    };
    let Some(mut order) = tx.order_by_payment_intent(pi).await? else {
        return Ok(());
    };
    let before = order.clone();
    let refunded = payment.amount_refunded.min(order.amount.amount_minor);
    order.amount_refunded = order.amount_refunded.max(refunded);
    order.refund_status = refund_status(order.amount_refunded, order.amount.amount_minor);
    order.dispute_status = payment.dispute_status;
    if order != before {
        tx.update_order(&order, ctx.now).await?;
    }
    Ok(())
}

fn refund_status(refunded: i64, total: i64) -> RefundStatus {
    if refunded <= 0 {
        RefundStatus::None
    } else if refunded >= total {
        RefundStatus::Full
    } else {
        RefundStatus::Partial
    }
}
