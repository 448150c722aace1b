//! Payments (`payments`, one per payment intent or, without one, per charge) and one-time
//! orders (`orders`, one per Checkout session), with their refunds and disputes.

use std::collections::HashMap;

use async_trait::async_trait;
use billing_domain::{Currency, Money};
use billing_ports::{Cause, OrderRecord, PaymentRecord, PaymentTx, StoreError};
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::parse_stored;
use crate::prepared::cached;
use crate::schema::{Stamp, orders, payments, stamp, time};
use crate::skip_locked::{Counted, locked_rows};
use crate::tx::{Conn, Tx, busy, on_conn};

#[derive(Queryable, QueryableByName, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = payments, treat_none_as_null = true)]
struct PaymentRow {
    payment_key: String,
    payment_intent_id: Option<String>,
    charge_id: Option<String>,
    stripe_customer_id: Option<String>,
    /// Never set back to NULL by an update (`save_payment`).
    #[diesel(skip_update)]
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

/// Payments and orders a transaction read under the locks of the ids it read them by, as
/// read. A payment event reads its payment twice (the feed for its users, then the effect)
/// and its order up to twice; the second read is answered from here. Any write by this
/// transaction to payments or orders forgets what it kept of that table.
///
/// What another transaction may change meanwhile: nothing of a kept payment row, which the
/// read locked until commit (`FOR UPDATE`): a writer holding only the lock of the row's other
/// id, and a customer's rows given to its user (`attribute_customer_rows`), wait for it. No
/// other row starts to match: a row takes an id only from a writer holding that id's lock.
/// A kept order may meanwhile be given its customer's user (`attribute_customer_rows` holds
/// the customer's lock, not the payment's); this transaction's writes never set a `user_id`
/// back to NULL (`COALESCE` in `save_payment` and `update_order`), so that is never lost.
#[derive(Debug, Default)]
pub(crate) struct KeptPayments {
    /// `payments_matching`'s answers, by its (payment intent, charge) ids.
    matching: HashMap<(Option<String>, Option<String>), Vec<PaymentRecord>>,
    /// `order_by_payment_intent`'s answers, by payment intent id.
    orders: HashMap<String, Option<OrderRecord>>,
}

/// The payments matching a payment intent (`$1`) or a charge (`$2`; `NULL` matches nothing),
/// locked until commit (`FOR UPDATE`) except those locked elsewhere (`SKIP LOCKED`), counted
/// with all that match ([`skip_locked`](crate::skip_locked)).
const MATCHING_SKIP_LOCKED: &str = "SELECT m.total, l.payment_key, l.payment_intent_id, \
     l.charge_id, l.stripe_customer_id, l.user_id, l.amount_minor, l.currency, l.status, \
     l.status_at, l.last_error, l.amount_refunded, l.dispute_status, l.dispute_stripe_status \
     FROM (SELECT count(*) AS total FROM payments \
     WHERE payment_intent_id = $1 OR charge_id = $2) m \
     LEFT JOIN (SELECT * FROM payments WHERE payment_intent_id = $1 OR charge_id = $2 \
     FOR UPDATE SKIP LOCKED) l ON true \
     ORDER BY l.payment_key";

impl Tx<'_> {
    /// Whether this transaction holds the lock of each of `ids` given (and one at least).
    fn holds_all(&self, ids: [Option<&str>; 2]) -> bool {
        ids.iter().any(Option::is_some) && ids.iter().flatten().all(|id| self.holds(id))
    }

    /// This transaction writes to `payments`: what it kept of them is forgotten.
    fn payments_written(&mut self) {
        self.payments.matching.clear();
    }

    /// This transaction writes to `orders`: what it kept of them is forgotten.
    fn orders_written(&mut self) {
        self.payments.orders.clear();
    }

    /// This transaction gave a customer's rows to its user: payments and orders among them.
    pub(crate) fn payment_rows_attributed(&mut self) {
        self.payments_written();
        self.orders_written();
    }
}

#[async_trait]
impl PaymentTx for Tx<'_> {
    /// One statement, or none when this transaction read the same ids under their locks
    /// and wrote no payment since ([`KeptPayments`]). Under the locks of all the ids given,
    /// Postgres locks the rows found until commit (`FOR UPDATE`).
    async fn payments_matching(
        &mut self,
        payment_intent_id: Option<&str>,
        charge_id: Option<&str>,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        if payment_intent_id.is_none() && charge_id.is_none() {
            return Ok(Vec::new());
        }
        // Keyed only when kept: the lookup of an unlocked id allocates nothing.
        let key = self.holds_all([payment_intent_id, charge_id]).then(|| {
            (
                payment_intent_id.map(str::to_owned),
                charge_id.map(str::to_owned),
            )
        });
        if let Some(kept) = key.as_ref().and_then(|key| self.payments.matching.get(key)) {
            return Ok(kept.clone());
        }
        // `= NULL` matches nothing, so an absent id finds no row.
        let matching = payments::payment_intent_id
            .eq(payment_intent_id)
            .or(payments::charge_id.eq(charge_id));
        // `as_select` is per backend: the statement is written once for each.
        macro_rules! query {
            () => {
                payments::table
                    .filter(matching)
                    .order(payments::payment_key)
                    .select(PaymentRow::as_select())
            };
        }
        // Under the ids' locks the rows found are locked too (Postgres; SQLite has one writer
        // at a time), so a transaction holding the lock of the row's other id only waits. A
        // transaction that does not wait for locks ([`LockTx::wait_for_locks`]) skips a row
        // locked elsewhere and counts the rows in the same statement: one missing is busy.
        let rows: Vec<PaymentRow> = match (&mut self.conn, key.is_some(), self.waits) {
            (Conn::Postgres(conn), true, false) => {
                let counted = async {
                    let mut conn: &AsyncPgConnection = conn.ready().await?;
                    cached(
                        diesel::sql_query(MATCHING_SKIP_LOCKED)
                            .bind::<Nullable<Text>, _>(payment_intent_id)
                            .bind::<Nullable<Text>, _>(charge_id),
                    )
                    .load::<Counted<PaymentRow>>(&mut conn)
                    .await
                }
                .await;
                let counted = counted.map_err(|error| self.statement_failed(error))?;
                let (locked, all) = locked_rows(counted);
                if !all {
                    let ids = [payment_intent_id, charge_id].into_iter().flatten();
                    return Err(busy(&ids.map(str::to_owned).collect::<Vec<_>>()));
                }
                locked
            }
            (_, true, _) => on_conn!(self,
                postgres: |c| query!().for_update().load(c).await,
                sqlite: |c| query!().load(c).await,
            )?,
            (_, false, _) => on_conn!(self, |c| query!().load(c).await)?,
        };
        let records = rows
            .into_iter()
            .map(payment_record)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(key) = key {
            self.payments.matching.insert(key, records.clone());
        }
        Ok(records)
    }

    async fn delete_payment(&mut self, key: &str) -> Result<(), StoreError> {
        self.payments_written();
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
        self.payments_written();
        let upsert = cached(
            diesel::insert_into(payments::table)
                .values((&row, payments::updated_at.eq(Stamp(at))))
                .on_conflict(payments::payment_key)
                .do_update()
                .set((
                    &row,
                    payments::user_id.eq(sql::<Nullable<Text>>(
                        "COALESCE(excluded.user_id, payments.user_id)",
                    )),
                    payments::updated_at.eq(Stamp(at)),
                )),
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
        self.orders_written();
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

    /// One statement, or none when this transaction read it under the payment intent's lock
    /// and wrote no order since ([`KeptPayments`]).
    async fn order_by_payment_intent(
        &mut self,
        payment_intent_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let held = self.holds(payment_intent_id);
        if held && let Some(kept) = self.payments.orders.get(payment_intent_id) {
            return Ok(kept.clone());
        }
        let row: Option<OrderRow> = on_conn!(self, |c| orders::table
            .filter(orders::payment_intent_id.eq(payment_intent_id))
            .select(OrderRow::as_select())
            .get_result(c)
            .await
            .optional())?;
        let record = row.map(order_record).transpose()?;
        if held {
            self.payments
                .orders
                .insert(payment_intent_id.to_owned(), record.clone());
        }
        Ok(record)
    }

    async fn update_order(
        &mut self,
        order: &OrderRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.orders_written();
        let update = cached(
            diesel::update(orders::table.find(&order.checkout_session_id)).set((
                orders::refund_status.eq(order.refund_status.as_str()),
                orders::amount_refunded.eq(order.amount_refunded),
                orders::dispute_status.eq(order.dispute_status.as_str()),
                orders::user_id.eq(sql::<Nullable<Text>>("COALESCE(")
                    .bind::<Nullable<Text>, _>(order.user_id.as_deref())
                    .sql(", orders.user_id)")),
                orders::updated_at.eq(Stamp(at)),
            )),
        );
        on_conn!(self, |c| update.execute(c).await)?;
        Ok(())
    }
}
