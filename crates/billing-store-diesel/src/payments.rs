//! Payments (`payments`, one per payment intent or, without one, per charge) and one-time
//! orders (`orders`, one per Checkout session), with their refunds and disputes.

use async_trait::async_trait;
use billing_domain::{Currency, Money};
use billing_ports::{Cause, OrderRecord, PaymentRecord, PaymentTx, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::error::parse_stored;
use crate::prepared::cached;
use crate::schema::{Stamp, orders, payments, stamp, time};
use crate::tx::{Tx, on_conn};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = payments, treat_none_as_null = true)]
struct PaymentRow {
    payment_key: String,
    payment_intent_id: Option<String>,
    charge_id: Option<String>,
    stripe_customer_id: Option<String>,
    user_id: Option<String>,
    amount_minor: i64,
    currency: String,
    status: String,
    status_at: Option<Stamp>,
    last_error: Option<String>,
    amount_refunded: i64,
    dispute_status: String,
    dispute_stripe_status: Option<String>,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = orders)]
struct OrderRow {
    checkout_session_id: String,
    payment_intent_id: Option<String>,
    stripe_customer_id: Option<String>,
    user_id: Option<String>,
    amount_minor: i64,
    currency: String,
    status: String,
    refund_status: String,
    amount_refunded: i64,
    dispute_status: String,
}

pub(crate) fn money(amount_minor: i64, currency: &str) -> Result<Money, StoreError> {
    let currency = Currency::parse(currency).map_err(|e| StoreError::Corrupt(Cause::new(e)))?;
    Ok(Money::new(amount_minor, currency))
}

fn payment_record(row: PaymentRow) -> Result<PaymentRecord, StoreError> {
    Ok(PaymentRecord {
        amount: money(row.amount_minor, &row.currency)?,
        status: parse_stored(&row.status)?,
        dispute_status: parse_stored(&row.dispute_status)?,
        amount_refunded: row.amount_refunded,
        key: row.payment_key,
        payment_intent_id: row.payment_intent_id,
        charge_id: row.charge_id,
        stripe_customer_id: row.stripe_customer_id,
        user_id: row.user_id,
        status_at: time(row.status_at),
        last_error: row.last_error,
        dispute_stripe_status: row.dispute_stripe_status,
    })
}

fn payment_row(p: &PaymentRecord) -> PaymentRow {
    PaymentRow {
        payment_key: p.key.clone(),
        payment_intent_id: p.payment_intent_id.clone(),
        charge_id: p.charge_id.clone(),
        status_at: stamp(p.status_at),
        dispute_stripe_status: p.dispute_stripe_status.clone(),
        stripe_customer_id: p.stripe_customer_id.clone(),
        user_id: p.user_id.clone(),
        amount_minor: p.amount.amount_minor,
        currency: p.amount.currency.as_str().to_owned(),
        status: p.status.as_str().to_owned(),
        last_error: p.last_error.clone(),
        amount_refunded: p.amount_refunded,
        dispute_status: p.dispute_status.as_str().to_owned(),
    }
}

fn order_record(row: OrderRow) -> Result<OrderRecord, StoreError> {
    Ok(OrderRecord {
        amount: money(row.amount_minor, &row.currency)?,
        refund_status: parse_stored(&row.refund_status)?,
        dispute_status: parse_stored(&row.dispute_status)?,
        checkout_session_id: row.checkout_session_id,
        payment_intent_id: row.payment_intent_id,
        stripe_customer_id: row.stripe_customer_id,
        user_id: row.user_id,
        status: row.status,
        amount_refunded: row.amount_refunded,
    })
}

fn order_row(order: &OrderRecord) -> OrderRow {
    OrderRow {
        checkout_session_id: order.checkout_session_id.clone(),
        payment_intent_id: order.payment_intent_id.clone(),
        stripe_customer_id: order.stripe_customer_id.clone(),
        user_id: order.user_id.clone(),
        amount_minor: order.amount.amount_minor,
        currency: order.amount.currency.as_str().to_owned(),
        status: order.status.clone(),
        refund_status: order.refund_status.as_str().to_owned(),
        amount_refunded: order.amount_refunded,
        dispute_status: order.dispute_status.as_str().to_owned(),
    }
}

#[async_trait]
impl PaymentTx for Tx<'_> {
    async fn payments_matching(
        &mut self,
        payment_intent_id: Option<&str>,
        charge_id: Option<&str>,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        if payment_intent_id.is_none() && charge_id.is_none() {
            return Ok(Vec::new());
        }
        // `= NULL` matches nothing, so an absent id finds no row.
        let matching = payments::payment_intent_id
            .eq(payment_intent_id)
            .or(payments::charge_id.eq(charge_id));
        let rows: Vec<PaymentRow> = on_conn!(self, |c| payments::table
            .filter(matching)
            .order(payments::payment_key)
            .select(PaymentRow::as_select())
            .load(c)
            .await)?;
        rows.into_iter().map(payment_record).collect()
    }

    async fn delete_payment(&mut self, key: &str) -> Result<(), StoreError> {
        let delete = diesel::delete(payments::table.find(key));
        on_conn!(self, |c| delete.execute(c).await)?;
        Ok(())
    }

    async fn save_payment(
        &mut self,
        payment: &PaymentRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = payment_row(payment);
        let upsert = cached(
            diesel::insert_into(payments::table)
                .values((&row, payments::updated_at.eq(Stamp(at))))
                .on_conflict(payments::payment_key)
                .do_update()
                .set((&row, payments::updated_at.eq(Stamp(at)))),
        );
        on_conn!(self, |c| upsert.execute(c).await)?;
        Ok(())
    }

    async fn insert_order(
        &mut self,
        order: &OrderRecord,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let row = order_row(order);
        let insert = cached(
            diesel::insert_into(orders::table)
                .values((
                    &row,
                    orders::created_at.eq(Stamp(at)),
                    orders::updated_at.eq(Stamp(at)),
                ))
                .on_conflict_do_nothing(),
        );
        let inserted = on_conn!(self, |c| insert.execute(c).await)?;
        Ok(inserted == 1)
    }

    async fn order_by_payment_intent(
        &mut self,
        payment_intent_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let row: Option<OrderRow> = on_conn!(self, |c| orders::table
            .filter(orders::payment_intent_id.eq(payment_intent_id))
            .select(OrderRow::as_select())
            .get_result(c)
            .await
            .optional())?;
        row.map(order_record).transpose()
    }

    async fn update_order(
        &mut self,
        order: &OrderRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let update = cached(
            diesel::update(orders::table.find(&order.checkout_session_id)).set((
                orders::refund_status.eq(order.refund_status.as_str()),
                orders::amount_refunded.eq(order.amount_refunded),
                orders::dispute_status.eq(order.dispute_status.as_str()),
                orders::user_id.eq(order.user_id.as_deref()),
                orders::updated_at.eq(Stamp(at)),
            )),
        );
        on_conn!(self, |c| update.execute(c).await)?;
        Ok(())
    }
}
