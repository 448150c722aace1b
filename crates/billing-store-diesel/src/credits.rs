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
    /// One statement, or none when this transaction already added an entry of this source key
    /// or found one stored (`Tx::credit_keys`).
    async fn add_credit(&mut self, entry: &CreditEntry) -> Result<bool, StoreError> {
        if self.credit_keys.contains(&entry.source_key) {
            return Ok(false);
        }
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
        self.credit_keys.insert(entry.source_key.clone());
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use billing_ports::{CreditEntry, CreditRead, CreditReason, CreditTx};
    use chrono::{TimeZone, Utc};
    use diesel::QueryableByName;
    use diesel::sql_types::BigInt;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    use crate::testing::TestDatabase;
    use crate::tx::Tx;

    #[derive(QueryableByName)]
    struct Runs {
        #[diesel(sql_type = BigInt)]
        runs: i64,
    }

    fn entry(key: &str, amount: i64) -> CreditEntry {
        CreditEntry {
            user_id: Some("user_Hw3Rk8Zq".to_owned()),
            stripe_customer_id: Some("cus_Pq7Xn2Lw5VtR9d".to_owned()),
            amount,
            reason: CreditReason::SubscriptionPeriod,
            source_key: key.to_owned(),
            created_at: Utc.timestamp_opt(1_765_000_000, 0).unwrap(),
        }
    }

    /// A source key added, or found stored, is not sent again by the same transaction (an
    /// invoice's `invoice.paid` and `invoice.payment_succeeded` applied together): the second
    /// add answers "not added" with no statement, and the balance counts the entry once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_key_seen_by_the_transaction_is_not_sent_again() {
        let db = TestDatabase::postgres().await;
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        let stored = "invoice:in_1Vb3Md2eZvKYlo2CqK8w";
        let mut tx = Tx::new(&mut conn);
        assert!(tx.add_credit(&entry(stored, 300)).await.unwrap());
        let mut tx = Tx::new(&mut conn);
        let added = "invoice:in_1Vb3Me2eZvKYlo2Cj5Tn";
        assert!(tx.add_credit(&entry(added, 500)).await.unwrap());
        assert!(!tx.add_credit(&entry(added, 500)).await.unwrap());
        assert!(!tx.add_credit(&entry(stored, 300)).await.unwrap());
        assert!(!tx.add_credit(&entry(stored, 300)).await.unwrap());
        assert_eq!(tx.credit_balance("user_Hw3Rk8Zq").await.unwrap(), 800);
        let runs: Runs = diesel::sql_query(
            "SELECT generic_plans + custom_plans AS runs FROM pg_prepared_statements \
             WHERE statement LIKE 'INSERT INTO \"credit_ledger\"%'",
        )
        .get_result(&mut conn)
        .await
        .unwrap();
        assert_eq!(runs.runs, 3, "one insert per key per transaction");
    }
}
