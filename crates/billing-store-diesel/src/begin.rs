//! A Postgres transaction's `BEGIN`, deferred to its first round trip.
//!
//! [`transaction_postgres`](crate::tx::transaction_postgres) sends no `BEGIN` of its own: the
//! connection is lent as a [`PgConn`] whose `BEGIN` is pending. Every statement reaches the
//! connection through [`PgConn::ready`], which sends the pending `BEGIN` first in a round trip
//! of its own, except ingest's claim, which carries it in its own round trip
//! ([`PgConn::carry_begin`], [`after_begin`]). The compiler holds that rule: the connection
//! is private to this module.
//!
//! **Why the claim may carry it.** tokio-postgres ends every statement with its own `Sync`, so
//! Postgres answers each alone: a `BEGIN` that fails (a cancel or an out-of-memory landing on
//! it, the connection alive) does not stop the statements behind it, which would then run
//! outside any transaction block, each committing on its own. A claim committed alone marks
//! its event done without its effects. So the `BEGIN` is followed by `SET LOCAL` of a marker
//! ([`MARKER`]), and a claim that may be sent behind a pending `BEGIN` reads that marker
//! (`current_setting('billing.in_transaction')::boolean`) and fails when it is not set:
//! outside a transaction block `SET LOCAL` sets nothing (a warning), and the marker's value
//! is then unknown or empty, which the cast refuses. The statements after the claim in its
//! round trip (a lock tried, a read) change nothing that outlives their own statement.
//!
//! The connection's transaction manager counts the transaction open from just before the
//! `BEGIN` is sent: a round trip that fails ends with a `ROLLBACK` (a warning when the `BEGIN`
//! never ran), and one that is cancelled leaves the connection counted inside a transaction,
//! which the pool discards instead of lending it out again.

use diesel::QueryResult;
use diesel::connection::TransactionDepthChange;
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, TransactionManager};

use crate::pg::pipelined;
use crate::prepared::cached;

/// What the `BEGIN` sets for the transaction's statements to check that they run inside it:
/// `SET LOCAL`, so it ends with the transaction and does nothing outside a transaction block.
const MARKER: &str = "SET LOCAL billing.in_transaction = on";

/// A Postgres connection lent to a [`Tx`](crate::tx::Tx), whose transaction's `BEGIN` may
/// not have been sent yet (see the module docs).
pub(crate) struct PgConn<'c> {
    conn: &'c mut AsyncPgConnection,
    /// True while the transaction's `BEGIN` is still to be sent.
    begin_pending: bool,
}

impl<'c> PgConn<'c> {
    /// `conn` as it is: outside a transaction, or in one already begun.
    pub(crate) fn new(conn: &'c mut AsyncPgConnection) -> Self {
        Self {
            conn,
            begin_pending: false,
        }
    }

    /// `conn`, outside any transaction, lent to a transaction whose `BEGIN` goes with its first
    /// round trip.
    pub(crate) fn deferring_begin(conn: &'c mut AsyncPgConnection) -> Self {
        Self {
            conn,
            begin_pending: true,
        }
    }

    /// True while no statement of the transaction has been sent (nor its `BEGIN`).
    pub(crate) fn begin_pending(&self) -> bool {
        self.begin_pending
    }

    /// The connection, once the pending `BEGIN` (if any) has been sent, in a round trip of its
    /// own.
    pub(crate) async fn ready(&mut self) -> QueryResult<&mut AsyncPgConnection> {
        if self.begin_pending {
            self.count_begun()?;
            begin(&*self.conn).await?;
        }
        Ok(&mut *self.conn)
    }

    /// The connection for a round trip that sends the pending `BEGIN` first when the returned
    /// flag is true ([`after_begin`]); it is no longer pending then. Only for a round trip
    /// whose first statement fails unless it runs inside the transaction (it reads the
    /// marker, see the module docs) and whose other statements change nothing that outlives
    /// them.
    pub(crate) fn carry_begin(&mut self) -> QueryResult<(&AsyncPgConnection, bool)> {
        let pending = self.begin_pending;
        if pending {
            self.count_begun()?;
        }
        Ok((&*self.conn, pending))
    }

    /// The connection without sending anything: for what ends or inspects the transaction
    /// itself (its commit, its depth), and for statements outside any transaction.
    pub(crate) fn connection(&mut self) -> &mut AsyncPgConnection {
        self.conn
    }

    /// Counts the transaction open in the connection's transaction manager, before its
    /// `BEGIN` is sent; the `BEGIN` is no longer pending.
    fn count_begun(&mut self) -> QueryResult<()> {
        self.begin_pending = false;
        <AnsiTransactionManager as TransactionManager<AsyncPgConnection>>::transaction_manager_status_mut(
            self.conn,
        )
        .transaction_state()?
        .change_transaction_depth(TransactionDepthChange::IncreaseDepth)
    }
}

/// `BEGIN`, then the marker, pipelined (both prepared once per connection).
async fn begin(conn: &AsyncPgConnection) -> QueryResult<()> {
    let statement = |sql| async move {
        let mut conn = conn;
        cached(diesel::sql_query(sql)).execute(&mut conn).await
    };
    pipelined(statement("BEGIN"), statement(MARKER)).await?;
    Ok(())
}

/// Runs `then` behind the transaction's `BEGIN` in the same round trip ([`pipelined`]) when
/// `begin` is true ([`PgConn::carry_begin`]); `then` alone otherwise.
pub(crate) async fn after_begin<T>(
    conn: &AsyncPgConnection,
    begin_first: bool,
    then: impl Future<Output = QueryResult<T>>,
) -> QueryResult<T> {
    if !begin_first {
        return then.await;
    }
    let ((), value) = pipelined(begin(conn), then).await?;
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use billing_ports::{EventStatus, EventTx, NewEvent, StoreError};
    use chrono::Utc;
    use diesel::QueryableByName;
    use diesel::sql_types::BigInt;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

    use crate::testing::TestDatabase;
    use crate::tx::{Tx, transaction_postgres};

    fn event(tag: &str) -> NewEvent {
        let id = format!("evt_1Qb{tag}Hx4mWq7Tz2NcLr8Ke5Vd");
        NewEvent {
            payload: format!(r#"{{"id":"{id}","object":"event","type":"invoice.paid"}}"#),
            id,
            event_type: "invoice.paid".to_owned(),
            api_version: Some("2025-03-31.basil".to_owned()),
            livemode: false,
            created: Utc::now(),
            received_at: Utc::now(),
        }
    }

    async fn stored_events(conn: &mut AsyncPgConnection) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let count: Count = diesel::sql_query("SELECT count(*) AS n FROM stripe_events")
            .get_result(conn)
            .await
            .unwrap();
        count.n
    }

    /// What makes a claim safe to send behind a `BEGIN` that may fail alone: run outside a
    /// transaction block it fails and claims nothing, whether the marker was never set on the
    /// connection, was set by a `SET LOCAL` that ran alone (as when the `BEGIN` before it
    /// failed), or was set by a transaction that has ended. Inside one, it claims.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_outside_a_transaction_block_fails_and_claims_nothing() {
        let db = TestDatabase::postgres().await;
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        let now = Utc::now();

        let never_set = Tx::new(&mut conn)
            .claim_event(&event("a1"), EventStatus::Processed, now)
            .await;
        assert!(never_set.is_err(), "{never_set:?}");

        conn.batch_execute(super::MARKER).await.unwrap();
        let set_alone = Tx::new(&mut conn)
            .claim_event(&event("b2"), EventStatus::Processed, now)
            .await;
        assert!(set_alone.is_err(), "{set_alone:?}");
        assert_eq!(stored_events(&mut conn).await, 0);

        let inside = event("c3");
        transaction_postgres(&mut conn, |tx| {
            Box::pin(async move {
                tx.claim_event(&inside, EventStatus::Processed, now).await?;
                Ok::<_, StoreError>(())
            })
        })
        .await
        .unwrap();
        assert_eq!(stored_events(&mut conn).await, 1);

        let after_one = Tx::new(&mut conn)
            .claim_event(&event("d4"), EventStatus::Processed, now)
            .await;
        assert!(after_one.is_err(), "{after_one:?}");
        assert_eq!(stored_events(&mut conn).await, 1);
    }
}
