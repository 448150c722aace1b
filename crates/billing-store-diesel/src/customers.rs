//! Customers (`customers`): who a Stripe customer is, and the attribution of a customer's
//! earlier rows (credits, orders, payments) to the user it turns out to belong to.

use std::collections::HashMap;

use async_trait::async_trait;
use billing_ports::{
    CustomerRead, CustomerRecord, CustomerTx, LockTx, StoreError, lock_customers_in_turn,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::prepared::cached;
use crate::schema::{Stamp, credit_ledger, customers, orders, payments};
use crate::tx::{Tx, after_locks, on_conn};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = customers, treat_none_as_null = true)]
struct CustomerRow {
    stripe_customer_id: String,
    user_id: Option<String>,
    email: Option<String>,
    deleted: bool,
}

fn customer_record(row: CustomerRow) -> CustomerRecord {
    CustomerRecord {
        stripe_customer_id: row.stripe_customer_id,
        user_id: row.user_id,
        email: row.email,
        deleted: row.deleted,
    }
}

fn customer_row(c: &CustomerRecord) -> CustomerRow {
    CustomerRow {
        stripe_customer_id: c.stripe_customer_id.clone(),
        user_id: c.user_id.clone(),
        email: c.email.clone(),
        deleted: c.deleted,
    }
}

/// Sets `user_id` on the rows of `$table` that belong to a customer and have no user yet, on
/// the connection `$c` (SQLite: one statement per table).
macro_rules! give_rows_to_user {
    ($c:expr, $table:ident, $customer:expr, $user:expr) => {
        cached(
            diesel::update(
                $table::table
                    .filter($table::stripe_customer_id.eq($customer))
                    .filter($table::user_id.is_null()),
            )
            .set($table::user_id.eq($user)),
        )
        .execute($c)
        .await
    };
}

/// `give_rows_to_user!` of the ledger, orders and payments in one Postgres statement: the first
/// two as data-modifying `WITH` queries, which Postgres runs to completion whether or not the
/// main query reads them. `$1` is the customer, `$2` the user.
const GIVE_ROWS_TO_USER: &str = "WITH credits AS (UPDATE credit_ledger SET user_id = $2 \
     WHERE stripe_customer_id = $1 AND user_id IS NULL), \
     given_orders AS (UPDATE orders SET user_id = $2 \
     WHERE stripe_customer_id = $1 AND user_id IS NULL) \
     UPDATE payments SET user_id = $2 WHERE stripe_customer_id = $1 AND user_id IS NULL";

/// The customer row with this Stripe id (for every backend, and after a lock).
macro_rules! customer_by_id {
    ($id:expr) => {
        customers::table.find($id).select(CustomerRow::as_select())
    };
}

/// The customer with this Stripe id, on a connection that may run other statements at once
/// (`pg::pipelined`).
pub(crate) async fn customer_postgres(
    mut conn: &AsyncPgConnection,
    stripe_customer_id: &str,
) -> QueryResult<Option<CustomerRecord>> {
    let row = customer_by_id!(stripe_customer_id)
        .get_result::<CustomerRow>(&mut conn)
        .await
        .optional()?;
    Ok(row.map(customer_record))
}

/// The customers with these Stripe ids (those that exist), on a connection that may run other
/// statements at once (`pg::pipelined`). One statement: the ids are one array bind.
pub(crate) async fn customers_postgres(
    mut conn: &AsyncPgConnection,
    stripe_customer_ids: &[String],
) -> QueryResult<Vec<CustomerRecord>> {
    let rows = cached(
        customers::table
            .filter(customers::stripe_customer_id.eq_any(stripe_customer_ids))
            .select(CustomerRow::as_select()),
    )
    .load::<CustomerRow>(&mut conn)
    .await?;
    Ok(rows.into_iter().map(customer_record).collect())
}

impl Tx<'_> {
    /// Those of `stripe_customer_ids` this transaction does not both hold and know: what
    /// `lock_customers` locks and reads.
    pub(crate) fn customers_to_lock(&self, stripe_customer_ids: &[String]) -> Vec<String> {
        stripe_customer_ids
            .iter()
            .filter(|id| !(self.holds(id) && self.customers.contains_key(id.as_str())))
            .cloned()
            .collect()
    }

    /// Keeps what was read of `ids` under their locks (`read`: those that exist) for this
    /// transaction's next reads.
    pub(crate) fn known_customers(&mut self, ids: Vec<String>, read: Vec<CustomerRecord>) {
        let mut found: HashMap<String, CustomerRecord> = read
            .into_iter()
            .map(|record| (record.stripe_customer_id.clone(), record))
            .collect();
        for id in ids {
            let record = found.remove(&id);
            self.known_customer(&id, record);
        }
    }

    /// Keeps `record`, read under the customer's lock, for this transaction's next reads.
    pub(crate) fn known_customer(
        &mut self,
        stripe_customer_id: &str,
        record: Option<CustomerRecord>,
    ) -> Option<CustomerRecord> {
        self.customers
            .insert(stripe_customer_id.to_owned(), record.clone());
        record
    }
}

#[async_trait]
impl CustomerRead for Tx<'_> {
    /// Read once per transaction while the transaction holds the customer's lock.
    async fn customer(
        &mut self,
        stripe_customer_id: &str,
    ) -> Result<Option<CustomerRecord>, StoreError> {
        if let Some(known) = self.customers.get(stripe_customer_id) {
            return Ok(known.clone());
        }
        let row: Option<CustomerRow> = on_conn!(self, |c| customer_by_id!(stripe_customer_id)
            .get_result(c)
            .await
            .optional())?;
        let record = row.map(customer_record);
        if self.holds(stripe_customer_id) {
            return Ok(self.known_customer(stripe_customer_id, record));
        }
        Ok(record)
    }

    /// One statement, or none when the transaction keeps the user's access rows and they have
    /// no customer (a customer about to be linked to them, in a shared ingest transaction).
    async fn customer_of_user(
        &mut self,
        user_id: &str,
    ) -> Result<Option<CustomerRecord>, StoreError> {
        if self.kept.has_no_customer(user_id) {
            return Ok(None);
        }
        let row: Option<CustomerRow> = on_conn!(self, |c| customers::table
            .filter(customers::user_id.eq(user_id))
            .select(CustomerRow::as_select())
            .get_result(c)
            .await
            .optional())?;
        Ok(row.map(customer_record))
    }
}

#[async_trait]
impl CustomerTx for Tx<'_> {
    /// One round trip on Postgres (the lock and the read pipelined); the row is then known
    /// to the transaction (see `customer`).
    async fn lock_customer(
        &mut self,
        stripe_customer_id: &str,
    ) -> Result<Option<CustomerRecord>, StoreError> {
        if !self.holds(stripe_customer_id) {
            let keys = [stripe_customer_id.to_owned()];
            let read = after_locks!(self, &keys, |c| customer_postgres(c, stripe_customer_id));
            if let Some(record) = read {
                return Ok(self.known_customer(stripe_customer_id, record?));
            }
            self.lock_key(stripe_customer_id).await?;
        }
        self.customer(stripe_customer_id).await
    }

    /// One round trip on Postgres: the locks not held yet (one statement) and the rows not
    /// known yet (one statement), pipelined; the rows are then known to the transaction.
    async fn lock_customers(&mut self, stripe_customer_ids: &[String]) -> Result<(), StoreError> {
        let unknown = self.customers_to_lock(stripe_customer_ids);
        if unknown.is_empty() {
            return Ok(());
        }
        let Some(read) = after_locks!(self, &unknown, |c| customers_postgres(c, &unknown)) else {
            return lock_customers_in_turn(self, &unknown).await;
        };
        self.known_customers(unknown, read?);
        Ok(())
    }

    async fn save_customer(
        &mut self,
        customer: &CustomerRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = customer_row(customer);
        self.access_writes += 1;
        self.kept
            .forget_customer(&customer.stripe_customer_id, customer.user_id.as_deref());
        let upsert = cached(
            diesel::insert_into(customers::table)
                .values((
                    &row,
                    customers::created_at.eq(Stamp(at)),
                    customers::updated_at.eq(Stamp(at)),
                ))
                .on_conflict(customers::stripe_customer_id)
                .do_update()
                .set((&row, customers::updated_at.eq(Stamp(at)))),
        );
        // Forgotten before the statement: if it fails, the transaction fails with it.
        self.customers.remove(&customer.stripe_customer_id);
        on_conn!(self, |c| upsert.execute(c).await)?;
        Ok(())
    }

    async fn attribute_customer_rows(
        &mut self,
        stripe_customer_id: &str,
        user_id: &str,
    ) -> Result<(), StoreError> {
        // Entries waiting to be written may be the customer's: given to the user with the rest.
        self.write_credits().await?;
        self.access_writes += 1;
        self.kept.forget_customer(stripe_customer_id, Some(user_id));
        self.payment_rows_attributed();
        on_conn!(self,
            postgres: |c| cached(
                diesel::sql_query(GIVE_ROWS_TO_USER)
                    .bind::<Text, _>(stripe_customer_id)
                    .bind::<Text, _>(user_id),
            )
            .execute(c)
            .await,
            sqlite: |c| async {
                give_rows_to_user!(&mut *c, credit_ledger, stripe_customer_id, user_id)?;
                give_rows_to_user!(&mut *c, orders, stripe_customer_id, user_id)?;
                give_rows_to_user!(&mut *c, payments, stripe_customer_id, user_id)
            }
            .await,
        )?;
        Ok(())
    }
}
