//! A user's access rows (their customer, its subscriptions, their credit balance) read in one
//! statement, and the count of writes to them ([`AccessRead`]).

use async_trait::async_trait;
use billing_ports::{AccessRead, AccessRows, AccessTx, CreditRead, LockTx, StoreError};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

use crate::prepared::cached;
use crate::schema::{credit_ledger, customers, subscriptions};
use crate::subscriptions::{SubscriptionRow, subscription_record};
use crate::tx::{Tx, after_locks, on_conn};

/// One row of the access query: the customer, one of its subscriptions (none when it has
/// none), the user's credit balance.
type AccessRow = (String, Option<SubscriptionRow>, Option<i64>);

/// The user's customer joined to its subscriptions, with the credit balance as a scalar
/// subquery on each row (for every backend, and after a lock).
macro_rules! access_query {
    ($user_id:expr) => {{
        let credits = credit_ledger::table
            .filter(credit_ledger::user_id.eq($user_id))
            .select(sql::<BigInt>(
                "CAST(COALESCE(SUM(credit_ledger.amount), 0) AS BIGINT)",
            ))
            .single_value();
        cached(
            customers::table
                .left_join(
                    subscriptions::table
                        .on(subscriptions::stripe_customer_id.eq(customers::stripe_customer_id)),
                )
                .filter(customers::user_id.eq($user_id))
                .order(subscriptions::stripe_subscription_id)
                .select((
                    customers::stripe_customer_id,
                    Option::<SubscriptionRow>::as_select(),
                    credits,
                )),
        )
    }};
}

impl Tx<'_> {
    /// `user_id`'s access from the access query's rows. A user with no customer gets no row;
    /// their balance is then read on its own.
    async fn access_of(
        &mut self,
        user_id: &str,
        rows: Vec<AccessRow>,
    ) -> Result<AccessRows, StoreError> {
        let Some((customer, _, credits)) = <[_]>::first(&rows) else {
            return Ok(AccessRows {
                customer: None,
                subscriptions: Vec::new(),
                credits: self.credit_balance(user_id).await?,
            });
        };
        let (customer, credits) = (customer.clone(), credits.unwrap_or(0));
        let subscriptions = rows
            .into_iter()
            .filter_map(|(_, subscription, _)| subscription)
            .map(subscription_record)
            .collect::<Result<_, _>>()?;
        Ok(AccessRows {
            customer: Some(customer),
            subscriptions,
            credits,
        })
    }
}

#[async_trait]
impl AccessRead for Tx<'_> {
    /// One statement (`access_query!`).
    async fn access_rows(&mut self, user_id: &str) -> Result<AccessRows, StoreError> {
        // Written inside `on_conn!` so `as_select` is built for each backend.
        let rows: Vec<AccessRow> = on_conn!(self, |c| access_query!(user_id).load(c).await)?;
        self.access_of(user_id, rows).await
    }

    fn access_writes(&self) -> Option<u64> {
        Some(self.access_writes)
    }
}

#[async_trait]
impl AccessTx for Tx<'_> {
    /// One round trip on Postgres: the locks and the access query pipelined.
    async fn lock_then_access_rows(
        &mut self,
        keys: &[String],
        user_id: &str,
    ) -> Result<AccessRows, StoreError> {
        let read = after_locks!(self, keys, |c| async move {
            let mut c = c;
            access_query!(user_id).load::<AccessRow>(&mut c).await
        });
        match read {
            Some(rows) => {
                let rows = rows?;
                self.access_of(user_id, rows).await
            }
            None => {
                self.lock_keys(keys).await?;
                self.access_rows(user_id).await
            }
        }
    }
}
