//! Invoices: payment failures open a grace period; payments close it and grant the period's
//! credits, exactly once per invoice.

use billing_domain::facts::{InvoiceChange, InvoiceFacts};
use billing_domain::{BillingEvent, SubscriptionStatus};
use billing_ports::{BillingTx, CreditEntry, CreditReason, EventStatus};

use super::subscription::{position, tier_for};
use super::{Context, customer};
use crate::error::IngestError;

/// `invoice.paid`, `invoice.payment_succeeded`, `invoice.payment_failed`.
pub(super) async fn changed(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    event: &BillingEvent,
    change: InvoiceChange,
    invoice: &InvoiceFacts,
) -> Result<EventStatus, IngestError> {
    let Some(subscription_id) = invoice.subscription_id.as_deref() else {
        // A one-off invoice: nothing of a subscription changes.
        return Ok(EventStatus::Ignored);
    };
    let lock_key = invoice.customer_id.as_deref().unwrap_or(subscription_id);
    tx.lock_key(lock_key).await?;
    let user = match invoice.customer_id.as_deref() {
        Some(customer_id) => {
            customer::ensure(tx, ctx, customer_id, None, None)
                .await?
                .user_id
        }
        None => None,
    };
    let existing = tx.subscription(subscription_id).await?;

    let mut credited = false;
    if change != InvoiceChange::PaymentFailed && invoice.amount_paid.amount_minor > 0 {
        // The period's credits, keyed by the invoice id: `invoice.paid` and
        // `invoice.payment_succeeded` of one invoice, and every redelivery, grant once.
        let price = invoice
            .price_id
            .as_deref()
            .or(existing.as_ref().and_then(|s| s.price_id.as_deref()));
        let tier = tier_for(ctx, price, &invoice.id);
        if tier.credits_per_period > 0 {
            credited = tx
                .add_credit(&CreditEntry {
                    user_id: user.clone(),
                    stripe_customer_id: invoice.customer_id.clone(),
                    amount: tier.credits_per_period,
                    reason: CreditReason::SubscriptionPeriod,
                    source_key: format!("invoice:{}", invoice.id),
                    created_at: ctx.now,
                })
                .await?;
        }
    }

    let Some(mut record) = existing else {
        // The subscription's own events will write it; the credits above do not wait for it.
        return Ok(EventStatus::Processed);
    };
    let new_status = match change {
        InvoiceChange::PaymentFailed => match record.status {
            SubscriptionStatus::Active | SubscriptionStatus::PastDue => SubscriptionStatus::PastDue,
            // A failed first payment keeps the subscription incomplete; trials and ended
            // subscriptions are not moved by an invoice.
            ref other => other.clone(),
        },
        InvoiceChange::Paid | InvoiceChange::PaymentSucceeded => match record.status {
            SubscriptionStatus::PastDue
            | SubscriptionStatus::Unpaid
            | SubscriptionStatus::Incomplete => SubscriptionStatus::Active,
            ref other => other.clone(),
        },
    };
    let incoming = position(event, &new_status);
    if incoming <= record.position {
        return Ok(if credited {
            EventStatus::Processed
        } else {
            EventStatus::Stale
        });
    }
    match change {
        InvoiceChange::PaymentFailed if new_status == SubscriptionStatus::PastDue => {
            let same_cycle =
                record.status == SubscriptionStatus::PastDue && record.grace_period_end.is_some();
            if !same_cycle {
                // One deadline per dunning cycle, anchored on the billed period's start so
                // retries of the failing invoice, and the matching subscription update, agree.
                let tier = tier_for(
                    ctx,
                    record.price_id.as_deref(),
                    &record.stripe_subscription_id,
                );
                let anchor = invoice.period_start.unwrap_or(event.created);
                record.grace_period_end = Some(billing_domain::grace_deadline(tier, anchor));
                record.dunning_invoice_id = Some(invoice.id.clone());
            }
        }
        InvoiceChange::Paid | InvoiceChange::PaymentSucceeded => {
            record.grace_period_end = None;
            record.dunning_invoice_id = None;
        }
        InvoiceChange::PaymentFailed => {}
    }
    record.status = new_status;
    record.position = incoming;
    tx.save_subscription(&record, ctx.now).await?;
    Ok(EventStatus::Processed)
}
