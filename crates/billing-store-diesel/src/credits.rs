//! The credit ledger (`credit_ledger`): entries only ever added, each once per source key, and
//! a user's balance summed by the database.
//!
//! A transaction that read a source key ahead as not stored
//! ([`ReadAhead::credit_sources`](billing_ports::ReadAhead::credit_sources), under the lock
//! every adder of that key holds) adds its entry without a statement: the entry waits in
//! [`Tx::pending_credits`] and is written before the next statement that reads the ledger, or
//! in the commit's round trip ([`Tx::take_one_credit_insert`]).

use async_trait::async_trait;
use billing_ports::{CreditEntry, CreditRead, CreditTx, StoreError};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::prepared::cached;
use crate::schema::{Stamp, credit_ledger};
use crate::tx::{Tx, on_conn};

/// A ledger entry as the ledger stores it. A `None` is sent as a `NULL` bind, not written as
/// `DEFAULT`, so the text of an insert of several rows depends on their number only.
#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = credit_ledger, treat_none_as_default_value = false)]
pub(crate) struct CreditRow {
    user_id: Option<String>,
    stripe_customer_id: Option<String>,
    amount: i64,
    reason: String,
    source_key: String,
    created_at: Stamp,
}

impl From<&CreditEntry> for CreditRow {
    fn from(entry: &CreditEntry) -> Self {
        Self {
            user_id: entry.user_id.clone(),
            stripe_customer_id: entry.stripe_customer_id.clone(),
            amount: entry.amount,
            reason: entry.reason.as_str().to_owned(),
            source_key: entry.source_key.clone(),
            created_at: Stamp(entry.created_at),
        }
    }
}

/// The most entries one insert of pending entries writes: each number of rows is a statement
/// of its own in the connection's cache ([`cached`]), so their number is bounded (a batch of
/// deliveries rarely holds more than one or two paid invoices).
const ROWS_PER_INSERT: usize = 8;

/// Writes `rows` (pending entries, their keys read as not stored under their adders' lock) in
/// one statement, with no `ON CONFLICT`: an entry of one of those keys stored meanwhile breaks
/// the locking rule, and fails the transaction rather than being skipped.
pub(crate) async fn insert_pending_postgres(
    mut conn: &AsyncPgConnection,
    rows: &[CreditRow],
) -> QueryResult<usize> {
    cached(diesel::insert_into(credit_ledger::table).values(rows))
        .execute(&mut conn)
        .await
}

/// Which of `keys` are stored, in one statement (none for no keys): sent after the locks that
/// every adder of those keys takes ([`ReadAhead::credit_sources`](billing_ports::ReadAhead)).
pub(crate) async fn stored_sources_postgres(
    mut conn: &AsyncPgConnection,
    keys: &[String],
) -> QueryResult<Vec<String>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    cached(
        credit_ledger::table
            .filter(credit_ledger::source_key.eq_any(keys))
            .select(credit_ledger::source_key),
    )
    .load(&mut conn)
    .await
}

#[async_trait]
impl CreditTx for Tx<'_> {
    /// One statement; none when this transaction already added an entry of this source key
    /// or found one stored (`Tx::credit_keys`), nor when it read the key ahead as not stored
    /// (`Tx::credits_absent`): that entry is written later ([`Tx::write_credits`]).
    async fn add_credit(&mut self, entry: &CreditEntry) -> Result<bool, StoreError> {
        if self.credit_keys.contains(&entry.source_key) {
            return Ok(false);
        }
        let row = CreditRow::from(entry);
        self.access_writes += 1;
        let inserted = if self.credits_absent.remove(&entry.source_key) {
            self.pending_credits.push(row);
            true
        } else {
            let insert = cached(
                diesel::insert_into(credit_ledger::table)
                    .values(&row)
                    .on_conflict(credit_ledger::source_key)
                    .do_nothing(),
            );
            on_conn!(self, |c| insert.execute(c).await)? == 1
        };
        self.credit_keys.insert(entry.source_key.clone());
        if let (true, Some(user_id)) = (inserted, &entry.user_id) {
            self.kept.credited(user_id, entry.amount);
        }
        Ok(inserted)
    }
}

impl Tx<'_> {
    /// Of `keys`, those this transaction knows nothing of yet (neither added, found stored,
    /// nor read as absent), in their order.
    pub(crate) fn credit_sources_to_read(&self, keys: &[String]) -> Vec<String> {
        keys.iter()
            .filter(|key| !self.credit_keys.contains(*key) && !self.credits_absent.contains(*key))
            .cloned()
            .collect()
    }

    /// Records what reading `asked` found: the `stored` keys are seen (an entry of one adds
    /// nothing), the others known absent until this transaction ends.
    pub(crate) fn keep_credit_sources(&mut self, asked: &[String], stored: Vec<String>) {
        let stored: std::collections::HashSet<String> = stored.into_iter().collect();
        for key in asked {
            if stored.contains(key) {
                self.credit_keys.insert(key.clone());
            } else {
                self.credits_absent.insert(key.clone());
            }
        }
    }

    /// The pending entries, taken to be written by the caller, when there are some and one
    /// insert ([`insert_pending_postgres`]) writes them all.
    pub(crate) fn take_one_credit_insert(&mut self) -> Option<Vec<CreditRow>> {
        (1..=ROWS_PER_INSERT)
            .contains(&self.pending_credits.len())
            .then(|| std::mem::take(&mut self.pending_credits))
    }

    /// Writes the pending entries (only ever on Postgres, where keys are read ahead), up to
    /// [`ROWS_PER_INSERT`] per statement. Runs before every statement that reads or writes
    /// the ledger but the insert of one entry, and before the commit.
    pub(crate) async fn write_credits(&mut self) -> Result<(), StoreError> {
        if self.pending_credits.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending_credits);
        on_conn!(self,
            postgres: |c| async {
                for rows in pending.chunks(ROWS_PER_INSERT) {
                    insert_pending_postgres(c, rows).await?;
                }
                QueryResult::Ok(())
            }
            .await,
            // Nothing is read ahead on SQLite, so nothing waits there; were it to, each entry
            // is written as it would have been.
            sqlite: |c| async {
                for row in &pending {
                    diesel::insert_into(credit_ledger::table)
                        .values(row)
                        .execute(&mut *c)
                        .await?;
                }
                QueryResult::Ok(())
            }
            .await,
        )
    }
}

#[async_trait]
impl CreditRead for Tx<'_> {
    async fn credit_balance(&mut self, user_id: &str) -> Result<i64, StoreError> {
        self.write_credits().await?;
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
    use billing_ports::{
        AccessTx, CreditEntry, CreditRead, CreditReason, CreditTx, CustomerTx, ReadAhead,
    };
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

    /// The runs of the ledger's inserts prepared on `conn`: (with `ON CONFLICT DO NOTHING`,
    /// without).
    async fn insert_runs(conn: &mut AsyncPgConnection) -> (i64, i64) {
        let runs = |conflict: &'static str| {
            diesel::sql_query(format!(
                "SELECT COALESCE(SUM(generic_plans + custom_plans), 0)::bigint AS runs \
                 FROM pg_prepared_statements \
                 WHERE statement LIKE 'INSERT INTO \"credit_ledger\"%' \
                 AND statement {conflict} LIKE '%ON CONFLICT%'"
            ))
        };
        let skipping: Runs = runs("").get_result(&mut *conn).await.unwrap();
        let plain: Runs = runs("NOT").get_result(&mut *conn).await.unwrap();
        (skipping.runs, plain.runs)
    }

    /// Reads `keys` ahead in `tx`, under no lock.
    async fn read_ahead(tx: &mut Tx<'_>, keys: &[&str]) {
        let keys: Vec<String> = keys.iter().map(|key| (*key).to_owned()).collect();
        let ahead = ReadAhead {
            credit_sources: &keys,
            ..ReadAhead::default()
        };
        tx.lock_then_keep_access(&[], &[], ahead).await.unwrap();
    }

    /// Source keys read ahead: one found stored adds nothing, one read as absent is added with
    /// no statement of its own (once), and is written, by an insert without `ON CONFLICT`,
    /// before the next statement that reads the ledger.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_key_read_ahead_as_absent_is_added_without_a_statement() {
        let db = TestDatabase::postgres().await;
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        let stored = "invoice:in_1Wc5Nf2eZvKYlo2CzR3p";
        let absent = "invoice:in_1Wc5Ng2eZvKYlo2Cb8Hv";
        assert!(
            Tx::new(&mut conn)
                .add_credit(&entry(stored, 300))
                .await
                .unwrap()
        );
        let mut tx = Tx::new(&mut conn);
        read_ahead(&mut tx, &[stored, absent]).await;
        assert!(!tx.add_credit(&entry(stored, 300)).await.unwrap());
        assert!(tx.add_credit(&entry(absent, 500)).await.unwrap());
        assert!(!tx.add_credit(&entry(absent, 500)).await.unwrap());
        assert_eq!(tx.pending_credits.len(), 1, "not written yet");
        assert_eq!(tx.credit_balance("user_Hw3Rk8Zq").await.unwrap(), 800);
        assert!(tx.pending_credits.is_empty());
        assert_eq!(insert_runs(&mut conn).await, (1, 1));
    }

    /// An entry of a key read as absent that another unit of work stored meanwhile (which the
    /// locking rule forbids) fails the write instead of being skipped: the transaction could
    /// not have told its caller the entry was added.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_entry_stored_after_its_key_was_read_absent_fails_the_write() {
        let db = TestDatabase::postgres().await;
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        let mut other = AsyncPgConnection::establish(db.url()).await.unwrap();
        let key = "invoice:in_1Wc5Nh2eZvKYlo2Cq6Tm";
        let mut tx = Tx::new(&mut conn);
        read_ahead(&mut tx, &[key]).await;
        assert!(
            Tx::new(&mut other)
                .add_credit(&entry(key, 200))
                .await
                .unwrap()
        );
        assert!(tx.add_credit(&entry(key, 200)).await.unwrap());
        assert!(tx.write_credits().await.is_err());
        assert_eq!(
            Tx::new(&mut other)
                .credit_balance("user_Hw3Rk8Zq")
                .await
                .unwrap(),
            200
        );
    }

    /// An entry added to a customer with no user yet, waiting to be written, is given to the
    /// user the customer is then linked to, as a written one is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_entry_is_given_to_the_user_its_customer_is_linked_to() {
        let db = TestDatabase::postgres().await;
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        let key = "invoice:in_1Wc5Nj2eZvKYlo2Cx1Gd";
        let mut tx = Tx::new(&mut conn);
        read_ahead(&mut tx, &[key]).await;
        let unlinked = CreditEntry {
            user_id: None,
            ..entry(key, 900)
        };
        assert!(tx.add_credit(&unlinked).await.unwrap());
        tx.attribute_customer_rows("cus_Pq7Xn2Lw5VtR9d", "user_Hw3Rk8Zq")
            .await
            .unwrap();
        assert_eq!(tx.credit_balance("user_Hw3Rk8Zq").await.unwrap(), 900);
    }

    /// Two pending entries are written by one insert whose text is the same whether or not an
    /// entry has a user: one statement in the connection's cache, run twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pending_entries_insert_has_one_text_per_number_of_rows() {
        let db = TestDatabase::postgres().await;
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        for (first, second, user) in [
            ("in_1Wd7Qa2eZvKYlo2Ck3Ve", "in_1Wd7Qb2eZvKYlo2Cu8Rz", None),
            (
                "in_1Wd7Qc2eZvKYlo2Cg5Lm",
                "in_1Wd7Qd2eZvKYlo2Cw0Fs",
                Some("user_Hw3Rk8Zq"),
            ),
        ] {
            let keys = [format!("invoice:{first}"), format!("invoice:{second}")];
            let mut tx = Tx::new(&mut conn);
            read_ahead(&mut tx, &[&keys[0], &keys[1]]).await;
            for key in &keys {
                let added = CreditEntry {
                    user_id: user.map(str::to_owned),
                    ..entry(key, 100)
                };
                assert!(tx.add_credit(&added).await.unwrap());
            }
            tx.write_credits().await.unwrap();
        }
        let texts: Vec<Runs> = diesel::sql_query(
            "SELECT generic_plans + custom_plans AS runs FROM pg_prepared_statements \
             WHERE statement LIKE 'INSERT INTO \"credit_ledger\"%'",
        )
        .load(&mut conn)
        .await
        .unwrap();
        assert_eq!(texts.len(), 1, "one text");
        assert_eq!(texts[0].runs, 2);
    }
}
