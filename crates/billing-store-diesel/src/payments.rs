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
/// and its order up to twice; the second read is answered from here. A payment this
/// transaction saves or deletes is followed in what it kept (the upsert answers the row as
/// stored); a customer's payments given to its user, and any write to orders, forget what it
/// kept of that table.
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

    /// This transaction writes to `payments` other than by `save_payment` or `delete_payment`:
    /// what it kept of them is forgotten.
    fn payments_written(&mut self) {
        self.payments.matching.clear();
    }

    /// This transaction stored `stored` (as its upsert answered it) or, with `None`, deleted
    /// the payment keyed `key`: every kept answer follows the write. The row is locked by the
    /// write until commit, and the other rows of an answer are unchanged, so each answer stays
    /// what the statement would return now: the row replaced where it was, or dropped when it
    /// no longer matches (or is gone); one that starts to match is added to an answer that
    /// held no row, and an answer that held another row is forgotten instead (where the new
    /// one sorts among them is the database's collation).
    fn payment_followed(&mut self, key: &str, stored: Option<&PaymentRecord>) {
        self.payments.matching.retain(|(intent, charge), records| {
            let matches = stored.is_some_and(|row| {
                (intent.is_some() && *intent == row.payment_intent_id)
                    || (charge.is_some() && *charge == row.charge_id)
            });
            let at = records.iter().position(|record| record.key == key);
            match (at, stored.filter(|_| matches)) {
                (Some(at), Some(row)) => records[at] = row.clone(),
                (Some(at), None) => {
                    records.remove(at);
                }
                (None, Some(row)) if records.is_empty() => records.push(row.clone()),
                (None, Some(_)) => return false,
                (None, None) => {}
            }
            true
        });
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
                let mut conn: &AsyncPgConnection = conn;
                let counted: Vec<Counted<PaymentRow>> = cached(
                    diesel::sql_query(MATCHING_SKIP_LOCKED)
                        .bind::<Nullable<Text>, _>(payment_intent_id)
                        .bind::<Nullable<Text>, _>(charge_id),
                )
                .load(&mut conn)
                .await
                .map_err(|error| self.statement_failed(error))?;
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
        let delete = diesel::delete(payments::table.find(key));
        // Should the statement fail, nothing kept is trusted any more.
        let kept = std::mem::take(&mut self.payments.matching);
        on_conn!(self, |c| delete.execute(c).await)?;
        self.payments.matching = kept;
        self.payment_followed(key, None);
        Ok(())
    }

    async fn save_payment(
        &mut self,
        payment: &PaymentRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = payment_row(payment);
        // Should the statement fail, nothing kept is trusted any more.
        let kept = std::mem::take(&mut self.payments.matching);
        // `as_returning` is per backend: the statement is written once for each.
        macro_rules! upsert {
            () => {
                cached(
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
                        ))
                        .returning(PaymentRow::as_returning()),
                )
            };
        }
        let stored: PaymentRow = on_conn!(self, |c| upsert!().get_result(c).await)?;
        let stored = payment_record(stored)?;
        self.payments.matching = kept;
        self.payment_followed(&stored.key, Some(&stored));
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use billing_domain::{Currency, Money};
    use billing_ports::{
        DisputeStatus, LockTx, PaymentRecord, PaymentStatus, PaymentTx, StoreError,
    };
    use chrono::{TimeZone, Utc};
    use diesel::QueryableByName;
    use diesel::sql_types::BigInt;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    use crate::testing::TestDatabase;
    use crate::tx::{Conn, Tx};

    const INTENT: &str = "pi_3Rb7Kx2eZvKYlo2C0mQ4";
    const CHARGE: &str = "ch_3Rb7Kx2eZvKYlo2C1wT8";
    const OTHER_CHARGE: &str = "ch_3Rb7Lq2eZvKYlo2C5hN2";

    #[derive(QueryableByName)]
    struct Runs {
        #[diesel(sql_type = BigInt)]
        runs: i64,
    }

    fn paid(user_id: Option<&str>, refunded: i64) -> PaymentRecord {
        PaymentRecord {
            key: INTENT.to_owned(),
            payment_intent_id: Some(INTENT.to_owned()),
            charge_id: Some(CHARGE.to_owned()),
            stripe_customer_id: Some("cus_R4wLm8Tq2XvB7n".to_owned()),
            user_id: user_id.map(str::to_owned),
            amount: Money::new(2_900, Currency::parse("usd").unwrap()),
            status: PaymentStatus::Succeeded,
            status_at: Utc.timestamp_opt(1_765_100_000, 0).single(),
            last_error: None,
            amount_refunded: refunded,
            dispute_status: DisputeStatus::None,
            dispute_stripe_status: None,
        }
    }

    /// How many payment reads `tx`'s connection has sent.
    async fn reads(tx: &mut Tx<'_>) -> i64 {
        let Conn::Postgres(conn) = &mut tx.conn else {
            unreachable!("a Postgres transaction")
        };
        let runs: Runs = diesel::sql_query(
            "SELECT COALESCE(sum(generic_plans + custom_plans), 0)::bigint AS runs \
             FROM pg_prepared_statements WHERE statement LIKE 'SELECT \"payments\".%'",
        )
        .get_result(&mut **conn)
        .await
        .unwrap();
        runs.runs
    }

    /// What a transaction of its own reads now, by each id alone.
    async fn stored(url: &str) -> (Vec<PaymentRecord>, Vec<PaymentRecord>) {
        let mut conn = AsyncPgConnection::establish(url).await.unwrap();
        let mut tx = Tx::new(&mut conn);
        let by_intent = tx.payments_matching(Some(INTENT), None).await.unwrap();
        let by_charge = tx.payments_matching(None, Some(CHARGE)).await.unwrap();
        (by_intent, by_charge)
    }

    /// A payment this transaction saves or deletes is followed in what it kept: each read of
    /// it again answers what the database holds now (the user kept by the upsert's `COALESCE`
    /// included), with no statement; only the first read by each id is sent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_payment_saved_by_the_transaction_is_answered_as_stored_without_a_read()
    -> Result<(), StoreError> {
        let db = TestDatabase::postgres().await;
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        let mut tx = Tx::new(&mut conn);
        tx.lock_keys(&[INTENT.to_owned(), CHARGE.to_owned()])
            .await?;
        let at = Utc.timestamp_opt(1_765_100_100, 0).unwrap();
        tx.save_payment(&paid(Some("user_Tz5Kq9Wm"), 0), at).await?;
        let read = (
            tx.payments_matching(Some(INTENT), None).await?,
            tx.payments_matching(None, Some(CHARGE)).await?,
        );
        assert_eq!(read, stored(db.url()).await);
        assert_eq!(reads(&mut tx).await, 2, "one read by each id");
        // Refunded, saved without its user: the stored row keeps the user.
        tx.save_payment(&paid(None, 900), at).await?;
        let refunded = (
            tx.payments_matching(Some(INTENT), None).await?,
            tx.payments_matching(None, Some(CHARGE)).await?,
        );
        assert_eq!(refunded, stored(db.url()).await);
        assert_eq!(refunded.0[0].amount_refunded, 900);
        assert_eq!(refunded.0[0].user_id.as_deref(), Some("user_Tz5Kq9Wm"));
        assert_eq!(reads(&mut tx).await, 2, "no read after the refund");
        // Its charge replaced: no longer found by the old one.
        let mut moved = paid(None, 900);
        moved.charge_id = Some(OTHER_CHARGE.to_owned());
        tx.save_payment(&moved, at).await?;
        let after_move = (
            tx.payments_matching(Some(INTENT), None).await?,
            tx.payments_matching(None, Some(CHARGE)).await?,
        );
        assert_eq!(after_move, stored(db.url()).await);
        assert!(after_move.1.is_empty());
        assert_eq!(reads(&mut tx).await, 2, "no read after the charge moved");
        tx.delete_payment(INTENT).await?;
        let deleted = (
            tx.payments_matching(Some(INTENT), None).await?,
            tx.payments_matching(None, Some(CHARGE)).await?,
        );
        assert_eq!(deleted, (Vec::new(), Vec::new()));
        assert_eq!(deleted, stored(db.url()).await);
        assert_eq!(reads(&mut tx).await, 2, "no read after the delete");
        Ok(())
    }
}
