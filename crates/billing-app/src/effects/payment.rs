//! One-time payments: orders from Checkout, payment intents, refunds and disputes.
//!
//! Refunds and disputes are found by payment intent (never by comparing a checkout session id
//! with a payment intent id). Their state is kept on the payment row too, so a refund that
//! arrives before its order is applied to the order when the order is written.

use billing_domain::Money;
use billing_domain::facts::{
    ChargeFacts, CheckoutSession, DisputeFacts, PaymentIntentFacts, RefundFacts,
};
use billing_ports::{
    BillingTx, DisputeStatus, EventStatus, OrderRecord, PaymentRecord, PaymentStatus, RefundStatus,
};

use super::Context;
use crate::error::IngestError;

/// Writes the payment and the order of a paid Checkout session, once.
pub(super) async fn checkout_order(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    session: &CheckoutSession,
    user: Option<&str>,
) -> Result<(), IngestError> {
    let Some(amount) = session.amount_total.clone() else {
        return Err(IngestError::Invalid(format!(
            "payment-mode checkout session {} has no amount_total",
            session.id
        )));
    };
    let payment = match &session.payment_intent_id {
        Some(pi) => {
            tx.lock_key(pi).await?;
            let status = if session.payment_status.as_deref() == Some("paid") {
                PaymentStatus::Succeeded
            } else {
                PaymentStatus::Processing
            };
            let mut payment = tx.payment(pi).await?.unwrap_or_else(|| PaymentRecord {
                payment_intent_id: pi.clone(),
                stripe_customer_id: None,
                user_id: None,
                amount: amount.clone(),
                status,
                last_error: None,
                amount_refunded: 0,
                dispute_status: DisputeStatus::None,
            });
            payment.stripe_customer_id = payment
                .stripe_customer_id
                .or_else(|| session.customer_id.clone());
            payment.user_id = payment.user_id.or_else(|| user.map(str::to_owned));
            if status == PaymentStatus::Succeeded {
                payment.status = status;
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

/// `payment_intent.succeeded` / `payment_intent.payment_failed`.
pub(super) async fn intent(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    succeeded: bool,
    intent: &PaymentIntentFacts,
) -> Result<EventStatus, IngestError> {
    tx.lock_key(&intent.id).await?;
    let user = match intent.customer_id.as_deref() {
        Some(c) => tx.customer(c).await?.and_then(|c| c.user_id),
        None => None,
    }
    .or_else(|| intent.metadata_user_id.clone());
    let mut payment = payment_or_new(tx, &intent.id, &intent.amount).await?;
    payment.stripe_customer_id = payment
        .stripe_customer_id
        .or_else(|| intent.customer_id.clone());
    payment.user_id = payment.user_id.or(user);
    if succeeded {
        payment.status = PaymentStatus::Succeeded;
        payment.last_error = None;
    } else if payment.status != PaymentStatus::Succeeded {
        // A late failure of an earlier attempt never undoes a success.
        payment.status = PaymentStatus::Failed;
        payment.last_error = intent.last_error.clone();
        tracing::warn!(
            payment_intent_id = %intent.id,
            user_id = payment.user_id.as_deref().unwrap_or(""),
            error = intent.last_error.as_deref().unwrap_or(""),
            "payment failed"
        );
    }
    tx.save_payment(&payment, ctx.now).await?;
    Ok(EventStatus::Processed)
}

/// `charge.refunded`: the charge carries the total refunded so far.
pub(super) async fn charge_refunded(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    charge: &ChargeFacts,
) -> Result<EventStatus, IngestError> {
    let Some(pi) = charge.payment_intent_id.as_deref() else {
        tracing::warn!(charge_id = %charge.id, "refunded charge has no payment intent; ignored");
        return Ok(EventStatus::Ignored);
    };
    record_refund(tx, ctx, pi, &charge.amount, charge.amount_refunded).await
}

/// `charge.refund.updated`: one refund. A pending or succeeded refund is at least this much
/// refunded; a failed or canceled one is left to the charge's next `charge.refunded` total.
pub(super) async fn refund_updated(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    refund: &RefundFacts,
) -> Result<EventStatus, IngestError> {
    let Some(pi) = refund.payment_intent_id.as_deref() else {
        tracing::warn!(refund_id = %refund.id, "refund has no payment intent; ignored");
        return Ok(EventStatus::Ignored);
    };
    match refund.status.as_str() {
        "succeeded" | "pending" => {
            record_refund(tx, ctx, pi, &refund.amount, refund.amount.amount_minor).await
        }
        other => {
            tracing::warn!(refund_id = %refund.id, status = other, "refund did not go through");
            Ok(EventStatus::Processed)
        }
    }
}

/// `charge.dispute.created` / `charge.dispute.closed`.
pub(super) async fn dispute(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    closed: bool,
    dispute: &DisputeFacts,
) -> Result<EventStatus, IngestError> {
    let Some(pi) = dispute.payment_intent_id.as_deref() else {
        tracing::warn!(dispute_id = %dispute.id, "dispute has no payment intent; ignored");
        return Ok(EventStatus::Ignored);
    };
    tx.lock_key(pi).await?;
    let outcome = if closed {
        match dispute.status.as_str() {
            "lost" => DisputeStatus::Lost,
            _ => DisputeStatus::Won,
        }
    } else {
        DisputeStatus::Open
    };
    let mut payment = payment_or_new(tx, pi, &dispute.amount).await?;
    // A closed dispute is final: a late `created` never reopens it.
    if !(outcome == DisputeStatus::Open
        && matches!(
            payment.dispute_status,
            DisputeStatus::Won | DisputeStatus::Lost
        ))
    {
        payment.dispute_status = outcome;
    }
    tx.save_payment(&payment, ctx.now).await?;
    if let Some(mut order) = tx.order_by_payment_intent(pi).await? {
        order.dispute_status = payment.dispute_status;
        tx.update_order(&order, ctx.now).await?;
    }
    Ok(EventStatus::Processed)
}

async fn record_refund(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    pi: &str,
    amount: &Money,
    refunded_total: i64,
) -> Result<EventStatus, IngestError> {
    tx.lock_key(pi).await?;
    let mut payment = payment_or_new(tx, pi, amount).await?;
    // Refund totals only grow; taking the maximum makes the order of deliveries irrelevant.
    payment.amount_refunded = payment.amount_refunded.max(refunded_total);
    tx.save_payment(&payment, ctx.now).await?;
    if let Some(mut order) = tx.order_by_payment_intent(pi).await? {
        let refunded = payment.amount_refunded.min(order.amount.amount_minor);
        order.amount_refunded = order.amount_refunded.max(refunded);
        order.refund_status = refund_status(order.amount_refunded, order.amount.amount_minor);
        tx.update_order(&order, ctx.now).await?;
    }
    Ok(EventStatus::Processed)
}

async fn payment_or_new(
    tx: &mut dyn BillingTx,
    pi: &str,
    amount: &Money,
) -> Result<PaymentRecord, IngestError> {
    Ok(tx.payment(pi).await?.unwrap_or_else(|| PaymentRecord {
        payment_intent_id: pi.to_owned(),
        stripe_customer_id: None,
        user_id: None,
        amount: amount.clone(),
        status: PaymentStatus::Succeeded,
        last_error: None,
        amount_refunded: 0,
        dispute_status: DisputeStatus::None,
    }))
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
