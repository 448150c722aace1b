//! Invoices: payment failures open a grace period; payments close it and grant the period's
//! credits, exactly once per invoice.
//!
//! An invoice event never touches a subscription's snapshot fields or their position. It may
//! only infer a status: `past_due` when a renewal fails on an active (or already past due)
//! subscription, `active` when a past due, unpaid or incomplete subscription is paid. The
//! inference is applied only when it is newer than whatever last set the status
//! ([`SubscriptionRecord::status_position`](billing_ports::SubscriptionRecord)), and only then
//! does it move that position: an invoice that infers nothing moves nothing.

use billing_domain::facts::{InvoiceChange, InvoiceFacts};
use billing_domain::{BillingEvent, SubscriptionStatus};
use billing_ports::{BillingTx, CreditEntry, CreditReason, EventStatus, SubscriptionRecord};

use super::subscription::{grace_after, position, tier_for, tier_for_items};
use super::{Context, customer};
use crate::error::AppError;

/// `invoice.paid`, `invoice.payment_succeeded`, `invoice.payment_failed`.
pub(super) async fn changed(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    event: &BillingEvent,
    change: InvoiceChange,
    invoice: &InvoiceFacts,
) -> Result<EventStatus, AppError> {
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
        // `invoice.payment_succeeded` of one invoice, and every redelivery, grant once. The
        // tier is the highest among the invoice's subscription lines, else the subscription's.
        let tier = match tier_for_items(ctx, &invoice.price_ids) {
            (Some(_), tier) if !tier.is_free() => tier,
            _ => tier_for(
                ctx,
                existing.as_ref().and_then(|s| s.price_id.as_deref()),
                &invoice.id,
            ),
        };
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
    let Some(inferred) = inferred_status(change, invoice, &record) else {
        // Nothing to infer (a trial, a first invoice, an ended subscription…): the status and
        // its position stay as they are.
        return Ok(EventStatus::Processed);
    };
    let incoming = position(event, &inferred);
    if incoming <= record.status_position {
        tracing::info!(
            event_id = ?event.id,
            subscription_id = ?subscription_id,
            "a newer event already set the subscription's status"
        );
        return Ok(if credited {
            EventStatus::Processed
        } else {
            EventStatus::Stale
        });
    }
    let tier = tier_for(
        ctx,
        record.price_id.as_deref(),
        &record.stripe_subscription_id,
    );
    // Anchored on the billed period's start, so retries of the failing invoice and the
    // matching subscription update agree on one deadline per dunning cycle.
    let anchor = invoice.period_start.unwrap_or(event.created);
    let (grace_period_end, dunning_invoice_id) =
        grace_after(Some(&record), &inferred, tier, anchor);
    let no_dunning_invoice_yet =
        inferred == SubscriptionStatus::PastDue && dunning_invoice_id.is_none();
    record.dunning_invoice_id = if no_dunning_invoice_yet {
        Some(invoice.id.clone())
    } else {
        dunning_invoice_id
    };
    record.grace_period_end = grace_period_end;
    record.status = inferred;
    record.status_position = incoming;
    tx.save_subscription(&record, ctx.now).await?;
    Ok(EventStatus::Processed)
}

/// The status an invoice event implies for a subscription stored as `current`, if it implies
/// one. An invoice of a period older than the stored one implies nothing: paying an old
/// invoice late does not end the dunning of a newer one, and its failure does not start one.
fn inferred_status(
    change: InvoiceChange,
    invoice: &InvoiceFacts,
    current: &SubscriptionRecord,
) -> Option<SubscriptionStatus> {
    if let (Some(billed), Some(current_start)) =
        (invoice.period_start, current.current_period_start)
        && billed < current_start
    {
        return None;
    }
    match change {
        // Only a failed renewal says "past due": a failed first invoice keeps the subscription
        // incomplete, and a failed proration invoice may leave it active (a pending update).
        InvoiceChange::PaymentFailed if is_renewal(invoice) => match current.status {
            SubscriptionStatus::Active | SubscriptionStatus::PastDue => {
                Some(SubscriptionStatus::PastDue)
            }
            _ => None,
        },
        InvoiceChange::PaymentFailed => None,
        InvoiceChange::Paid | InvoiceChange::PaymentSucceeded => match current.status {
            SubscriptionStatus::PastDue
            | SubscriptionStatus::Unpaid
            | SubscriptionStatus::Incomplete => Some(SubscriptionStatus::Active),
            _ => None,
        },
    }
}

/// True for invoices that bill a subscription's next period: `subscription_cycle`, usage
/// thresholds, the legacy `subscription`, and renderings without a `billing_reason`.
fn is_renewal(invoice: &InvoiceFacts) -> bool {
    matches!(
        invoice.billing_reason.as_deref(),
        None | Some("subscription_cycle" | "subscription_threshold" | "subscription")
    )
}
