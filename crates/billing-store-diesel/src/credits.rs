//! The credit ledger (`credit_ledger`): entries only ever added, each once per source key, and
//! a user's balance summed by the database.

use async_trait::async_trait;
use billing_ports::{CreditEntry, CreditRead, CreditTx, StoreError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::prepared::cached;
use crate::schema::{Stamp, credit_ledger};
use crate::tx::{Tx, on_conn};

#[derive(Insertable)]
#[diesel(table_name = credit_ledger)]
struct CreditRow<'a> {
    user_id: Option<&'a str>,
    stripe_customer_id: Option<&'a str>,
    amount: i64,
    reason: &'a str,
    source_key: &'a str,
    created_at: Stamp,
}

#[async_trait]
impl CreditTx for Tx<'_> {
    async fn add_credit(&mut self, entry: &CreditEntry) -> Result<bool, StoreError> {
        let row = CreditRow {
            user_id: entry.user_id.as_deref(),
            stripe_customer_id: entry.stripe_customer_id.as_deref(),
            amount: entry.amount,
            reason: entry.reason.as_str(),
            source_key: &entry.source_key,
            created_at: Stamp(entry.created_at),
        };
        self.access_writes += 1;
        let insert = cached(
            diesel::insert_into(credit_ledger::table)
                .values(&row)
                .on_conflict(credit_ledger::source_key)
                .do_nothing(),
        );
        let inserted = on_conn!(self, |c| insert.execute(c).await)? == 1;
        if let (true, Some(user_id)) = (inserted, &entry.user_id) {
            self.kept.credited(user_id, entry.amount);
        }
        Ok(inserted)
    }
}

#[async_trait]
impl CreditRead for Tx<'_> {
    async fn credit_balance(&mut self, user_id: &str) -> Result<i64, StoreError> {
        // Summed by the database: the ledger only grows, the entitlement check reads this on
        // every call. CAST keeps Postgres' SUM(bigint) (numeric) and SQLite's alike.
        let query = cached(
            credit_ledger::table
                .filter(credit_ledger::user_id.eq(user_id))
                .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "CAST(COALESCE(SUM(amount), 0) AS BIGINT)",
                )),
        );
        on_conn!(self, |c| query.get_result(c).await)
    }
}
