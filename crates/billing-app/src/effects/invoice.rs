//! Invoices: payment failures open a grace period; payments close it and grant the period's
//! credits, exactly once per invoice.
//!
//! An invoice event never touches a subscription's snapshot fields or their position. It may
//! only infer a status: `past_due` when a renewal fails on an active (or already past due)
//! subscription, `active` when a past due, unpaid or incomplete subscription is paid. The
//! inference is applied only when it is newer than whatever last set the status
//! ([`SubscriptionRecord::status_position`](billing_ports::SubscriptionRecord)), and only then
//! does it move that position: an invoice that infers nothing moves nothing. The rules are
//! [`billing_domain::status_transition`]'s; this effect locks, loads, asks them and saves.

use billing_domain::facts::{InvoiceChange, InvoiceFacts};
use billing_domain::status_transition::{Inference, invoice_inference};
use billing_domain::{BillingEvent, UnknownPrices};
use billing_ports::{BillingTx, ChangeKind, CreditEntry, CreditReason, EventStatus};

use super::subscription::{standing_of, tier_for, tier_for_items, write_standing};
use super::{Context, customer};
use crate::error::AppError;
use crate::feed::Note;

/// The source key of the ledger entry applying `invoice` may add (its period's credits, if
/// its tier grants any): `None` when it adds none (a failed payment, nothing paid, or no
/// subscription).
pub(crate) fn credit_source(change: InvoiceChange, invoice: &InvoiceFacts) -> Option<String> {
    invoice.subscription_id.as_ref()?;
    let paid = change != InvoiceChange::PaymentFailed && invoice.amount_paid.amount_minor > 0;
    paid.then(|| format!("invoice:{}", invoice.id))
}

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
    // Whoever adds an entry of this invoice's source key holds this lock (an invoice's
    // customer never changes at Stripe): what lets a transaction that holds it read the key
    // ahead (`ingest::credit_source_to_read`). Were two payloads of one invoice to disagree on
    // its customer, the entry written with the commit would fail on the stored one, not be
    // added twice.
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
    if let Some(source_key) = credit_source(change, invoice) {
        // The period's credits, keyed by the invoice id: `invoice.paid` and
        // `invoice.payment_succeeded` of one invoice, and every redelivery, grant once. The
        // tier is the highest among the invoice's subscription lines, else the subscription's.
        let stored_price = existing.as_ref().and_then(|s| s.price_id.as_deref());
        let known = |price: &str| ctx.catalog.tier_for_price(price).is_some();
        if ctx.catalog.unknown_prices() == UnknownPrices::Fail
            && !invoice.price_ids.iter().any(|p| known(p))
            && !stored_price.is_some_and(known)
        {
            let prices = match invoice.price_ids.as_slice() {
                [] => stored_price.unwrap_or("none").to_owned(),
                named => named.join(", "),
            };
            return Err(AppError::PriceNotInCatalog {
                invoice: invoice.id.clone(),
                prices,
            });
        }
        let tier = match tier_for_items(ctx, &invoice.price_ids) {
            (Some(_), tier) if !tier.is_free() => tier,
            _ => tier_for(ctx, stored_price, &invoice.id),
        };
        if tier.credits_per_period > 0 {
            credited = tx
                .add_credit(&CreditEntry {
                    user_id: user.clone(),
                    stripe_customer_id: invoice.customer_id.clone(),
                    amount: tier.credits_per_period,
                    reason: CreditReason::SubscriptionPeriod,
                    source_key,
                    created_at: ctx.now,
                })
                .await?;
        }
    }

    if change == InvoiceChange::PaymentFailed {
        // One record per failed attempt (an event of a later attempt is a new failure).
        ctx.notes.push(
            Note::new(
                ChangeKind::PaymentFailed,
                user.as_deref(),
                invoice.customer_id.as_deref(),
                Some(invoice.amount_due.clone()),
            )
            .once(format!(
                "payment_failed:{}:{}",
                invoice.id, invoice.attempt_count
            )),
        );
    } else if invoice.amount_paid.amount_minor > 0 {
        // `invoice.paid` and `invoice.payment_succeeded` of one invoice: one record.
        ctx.notes.push(
            Note::new(
                ChangeKind::PaymentSucceeded,
                user.as_deref(),
                invoice.customer_id.as_deref(),
                Some(invoice.amount_paid.clone()),
            )
            .once(format!("payment_succeeded:{}", invoice.id)),
        );
    }

    let Some(mut record) = existing else {
        // The subscription's own events will write it; the credits above do not wait for it.
        return Ok(EventStatus::Processed);
    };
    let current = standing_of(&record);
    let inferred = match invoice_inference(&current, change, invoice, event.created, &event.id) {
        // Nothing to infer (a trial, a first invoice, an ended subscription…): the status and
        // its position stay as they are.
        Inference::Nothing => return Ok(EventStatus::Processed),
        Inference::Stale => {
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
        Inference::Newer(inferred) => inferred,
    };
    let tier = tier_for(
        ctx,
        record.price_id.as_deref(),
        &record.stripe_subscription_id,
    );
    // The grace is anchored on the billed period's start, so retries of the failing invoice
    // and the matching subscription update agree on one deadline per dunning cycle.
    write_standing(&mut record, inferred.apply(&current, tier));
    tx.save_subscription(&record, ctx.now).await?;
    Ok(EventStatus::Processed)
}
