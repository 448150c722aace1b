//! One-time payments: orders from Checkout, payment intents, charges, refunds and disputes.
//!
//! A payment row is found by its payment intent or by its charge (Charges API integrations
//! have charges without a payment intent; old dispute renderings name only the charge). Refund
//! and dispute state is kept on the payment row too, so a refund that arrives before its order
//! is applied to the order when the order is written, and the first event of any kind creates
//! the row: nothing is lost whatever the delivery order.
//!
//! Each effect locks the payment's ids and loads its row ([`lock_and_load`]), asks the domain's
//! rules ([`billing_domain::payment`], [`billing_domain::refund`], [`billing_domain::dispute`])
//! and saves the row and its order ([`save`]).

use billing_domain::facts::{
    ChargeFacts, CheckoutSession, DisputeFacts, PaymentIntentChange, PaymentIntentFacts,
    RefundFacts,
};
use billing_domain::payment::{self as rules, ReportedAmount};
use billing_domain::refund;
use billing_domain::{BillingEvent, Money};
use billing_ports::{
    BillingTx, ChangeKind, DisputeStatus, EventStatus, OrderRecord, PaymentRecord, PaymentStatus,
    RefundStatus,
};
use chrono::{DateTime, Utc};

use super::{Context, payment_row};
use crate::error::AppError;
use crate::feed::Note;

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
            let status = PaymentStatus::of_checkout(session.payment_status.as_deref());
            let found = Key {
                payment_intent_id: Some(pi),
                charge_id: None,
            };
            let mut payment = lock_and_load(
                tx,
                found,
                ReportedAmount::Whole(&amount),
                status,
                event.created,
            )
            .await?
            .payment;
            payment.stripe_customer_id = payment
                .stripe_customer_id
                .or_else(|| session.customer_id.clone());
            payment.user_id = payment.user_id.or_else(|| user.map(str::to_owned));
            if status == PaymentStatus::Succeeded {
                payment_row::set_status(&mut payment, status, event.created);
                // Also when its payment intent marked it paid first: that intent may not have
                // been known as one-time then (no metadata, no order yet). Once per payment.
                note_payment(ctx, &payment, ChangeKind::PaymentSucceeded);
            }
            tx.save_payment(&payment, ctx.now).await?;
            Some(payment)
        }
        None => None,
    };
    let amount_refunded = refund::order_share(
        payment.as_ref().map_or(0, |p| p.amount_refunded),
        amount.amount_minor,
    );
    let order = OrderRecord {
        checkout_session_id: session.id.clone(),
        payment_intent_id: session.payment_intent_id.clone(),
        stripe_customer_id: session.customer_id.clone(),
        user_id: user.map(str::to_owned),
        refund_status: RefundStatus::of(amount_refunded, amount.amount_minor),
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
    let status = PaymentStatus::of_change(change);
    let key = Key {
        payment_intent_id: Some(&intent.id),
        charge_id: intent.latest_charge_id.as_deref(),
    };
    let user = match intent.customer_id.as_deref() {
        Some(c) => tx.customer(c).await?.and_then(|c| c.user_id),
        None => None,
    }
    .or_else(|| intent.metadata_user_id.clone());
    let mut loaded = lock_and_load(
        tx,
        key,
        ReportedAmount::Whole(&intent.amount),
        status,
        event.created,
    )
    .await?;
    let payment = &mut loaded.payment;
    payment.stripe_customer_id = payment
        .stripe_customer_id
        .take()
        .or_else(|| intent.customer_id.clone());
    payment.user_id = payment.user_id.take().or(user);
    if let Some(charge) = &intent.latest_charge_id {
        payment.charge_id = Some(charge.clone());
    }
    if payment_row::set_status(payment, status, event.created) {
        payment.last_error = match status {
            PaymentStatus::Failed => intent.last_error.clone(),
            _ => None,
        };
        let kind = match status {
            PaymentStatus::Succeeded => Some(ChangeKind::PaymentSucceeded),
            PaymentStatus::Failed => Some(ChangeKind::PaymentFailed),
            _ => None,
        };
        if let Some(kind) = kind
            && one_time(tx, intent).await?
        {
            note_payment(ctx, payment, kind);
        }
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
    let mut loaded = lock_and_load(
        tx,
        key,
        ReportedAmount::Whole(&charge.amount),
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
    if !refund::refund_counts(&refund.status) {
        tracing::warn!(refund_id = ?refund.id, status = ?refund.status, "refund did not go through");
        return Ok(EventStatus::Processed);
    }
    let loaded = lock_and_load(
        tx,
        key,
        ReportedAmount::AtLeast(&refund.amount),
        PaymentStatus::Succeeded,
        event.created,
    )
    .await?;
    record_refund(tx, ctx, loaded, refund.amount.amount_minor).await
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
    let mut loaded = lock_and_load(
        tx,
        key,
        ReportedAmount::AtLeast(&dispute.amount),
        PaymentStatus::Succeeded,
        event.created,
    )
    .await?;
    let payment = &mut loaded.payment;
    let was = (
        payment.dispute_status,
        payment.dispute_stripe_status.clone(),
    );
    payment_row::apply_dispute(payment, &dispute.status);
    if (
        payment.dispute_status,
        payment.dispute_stripe_status.clone(),
    ) != was
    {
        ctx.notes.push(Note::new(
            ChangeKind::Dispute,
            payment.user_id.as_deref(),
            payment.stripe_customer_id.as_deref(),
            Some(dispute.amount.clone()),
        ));
    }
    save(tx, ctx, &loaded).await?;
    Ok(EventStatus::Processed)
}

/// Notes that `payment` reached its status (succeeded or failed), for the change feed.
/// True when the payment intent is a one-time purchase: ours carry `metadata.user_id` (our
/// Checkout sets it on the intent), or its Checkout session was already stored as an order.
/// Any other intent (an invoice's: a subscription's payment) gets no change record of its own:
/// its invoice reports the payment once (`payment_succeeded` per invoice, `payment_failed`
/// per attempt), so the feed does not report one payment twice.
async fn one_time(tx: &mut dyn BillingTx, intent: &PaymentIntentFacts) -> Result<bool, AppError> {
    if intent.metadata_user_id.is_some() {
        return Ok(true);
    }
    Ok(tx.order_by_payment_intent(&intent.id).await?.is_some())
}

/// A change record of a one-time payment: a success once per payment (its payment intent
/// and its Checkout session may both report it, in either order), a failure per status change.
fn note_payment(ctx: &Context, payment: &PaymentRecord, kind: ChangeKind) {
    let note = Note::new(
        kind,
        payment.user_id.as_deref(),
        payment.stripe_customer_id.as_deref(),
        Some(payment.amount.clone()),
    );
    ctx.notes.push(match kind {
        ChangeKind::PaymentSucceeded => note.once(format!("payment_succeeded:{}", payment.key)),
        _ => note,
    });
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

/// Locks the payment's ids and returns its row: the stored one (a row known by its charge
/// alone merged into its payment intent's), or a new one in `status`, with its amount updated
/// from `amount`.
async fn lock_and_load(
    tx: &mut dyn BillingTx,
    key: Key<'_>,
    amount: ReportedAmount<'_>,
    status: PaymentStatus,
    at: DateTime<Utc>,
) -> Result<Loaded, AppError> {
    // Every transaction takes these locks in the same (sorted) order, so two events naming
    // the same payment serialise without deadlocking; one naming a stored payment by another
    // id alone waits for the row, which the read under these locks locks too.
    let mut locks: Vec<String> = [key.payment_intent_id, key.charge_id]
        .into_iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    locks.sort_unstable();
    locks.dedup();
    tx.lock_keys(&locks).await?;
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
        0 => payment_row::new_row(
            key.payment_intent_id.or(key.charge_id).unwrap_or_default(),
            amount.money(),
            status,
            at,
        ),
        _ => {
            // Keep the payment intent's row; fold a row known only by the charge into it.
            rows.sort_by_key(|p| p.payment_intent_id.is_none());
            let mut kept = rows.remove(0);
            for other in rows {
                tx.delete_payment(&other.key).await?;
                kept = payment_row::merge(kept, other);
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
    payment.amount = rules::amount_after(&payment.amount, amount);
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

/// Raises the payment's refunded total to `refunded_total` (totals only grow) and saves it
/// with its order.
async fn record_refund(
    tx: &mut dyn BillingTx,
    ctx: &Context,
    mut loaded: Loaded,
    refunded_total: i64,
) -> Result<EventStatus, AppError> {
    let was = loaded.payment.amount_refunded;
    loaded.payment.amount_refunded =
        refund::refunded_total(loaded.payment.amount_refunded, refunded_total);
    let payment = &loaded.payment;
    if payment.amount_refunded > was {
        ctx.notes.push(Note::new(
            ChangeKind::Refund,
            payment.user_id.as_deref(),
            payment.stripe_customer_id.as_deref(),
            Some(Money::new(
                payment.amount_refunded - was,
                payment.amount.currency.clone(),
            )),
        ));
    }
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
    payment_row::carry_to_order(&mut order, payment);
    if order != before {
        tx.update_order(&order, ctx.now).await?;
    }
    Ok(())
}
