//! A Postgres transaction's `BEGIN`, deferred to its first round trip.
//!
//! [`transaction_postgres`](crate::tx::transaction_postgres) sends no `BEGIN` of its own: the
//! connection is lent as a [`PgConn`] whose `BEGIN` is pending. Every statement reaches the
//! connection through [`PgConn::ready`], which sends the pending `BEGIN` first in a round trip
//! of its own, except ingest's claim, which carries it in its own round trip
//! ([`PgConn::carrying_begin`]). The compiler holds that rule: the connection
//! is private to this module.
//!
//! **Why the claim may carry it.** tokio-postgres ends every statement with its own `Sync`, so
//! Postgres answers each alone: a `BEGIN` that fails (a cancel or an out-of-memory landing on
//! it, the connection alive) does not stop the statements behind it, which would then run
//! outside any transaction block, each committing on its own. A claim committed alone marks
//! its event done without its effects. So the claim checks that it runs inside a transaction
//! this module began, and fails otherwise ([`in_transaction!`]). The mark is the `BEGIN`
//! itself: [`BEGIN`] declares the transaction `DEFERRABLE` (which changes nothing unless the
//! transaction is also `SERIALIZABLE READ ONLY`, where it waits for a safe snapshot), and
//! `current_setting('transaction_deferrable')` shows it, while the session's
//! `default_transaction_deferrable` is `off`: every pooled connection sets it so when opened
//! ([`StoreSettings::session_setup`](crate::settings::StoreSettings::session_setup)).
//! Outside a transaction block a statement is a transaction of its own, which takes the
//! session's default: either `transaction_deferrable` is `off`, or the default is `on`; the
//! check fails either way, whatever the database's or role's defaults, or a reset of the
//! session, made them. (A session whose default was reset to `on` fails closed: its claims
//! are refused inside the store's transactions too.) So the mark costs no statement; a
//! marker set by a statement after the `BEGIN` would cost one per transaction. The
//! statements after the claim in its round trip (a lock tried, a read) change nothing that
//! outlives their own statement. The claim's one side effect besides its rows, the
//! transaction's `plan_cache_mode` (`events::generic_plans!`), is transaction-local: outside a
//! transaction block it belongs to the claim's own implicit transaction, which the guard's
//! error aborts.
//!
//! The connection's transaction manager counts the transaction open from just before the
//! `BEGIN` is sent: a round trip that fails ends with a `ROLLBACK` (a warning when the `BEGIN`
//! never ran), and one that is cancelled leaves the connection counted inside a transaction,
//! which the pool discards instead of lending it out again. After a round trip that carried
//! the `BEGIN` failed, every later statement of the transaction is refused without being
//! sent: it might otherwise run outside a transaction.

use diesel::QueryResult;
use diesel::connection::TransactionDepthChange;
use diesel::result::Error as DieselError;
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, TransactionManager};

use crate::pg::pipelined;
use crate::prepared::cached;

/// A transaction's `BEGIN`: `DEFERRABLE`, the mark [`in_transaction!`] checks (no effect
/// unless the transaction is also `SERIALIZABLE READ ONLY`).
pub(crate) const BEGIN: &str = "BEGIN DEFERRABLE";

/// The condition a claim carrying the `BEGIN` puts in its `WHERE` (a string literal, for
/// `concat!`): true inside a transaction begun by [`BEGIN`] on a session whose default is not
/// `DEFERRABLE`; anywhere else an error ("invalid input syntax for type boolean: run outside
/// its transaction…"), so the statement writes nothing. Stable functions, evaluated when the
/// statement runs (a one-time filter), never when it is planned.
macro_rules! in_transaction {
    () => {
        "CASE WHEN current_setting('transaction_deferrable') = 'on' \
         AND current_setting('default_transaction_deferrable') = 'off' THEN true \
         ELSE ('run outside its transaction: transaction_deferrable ' || \
         current_setting('transaction_deferrable') || ', default_transaction_deferrable ' || \
         current_setting('default_transaction_deferrable'))::boolean END"
    };
}

pub(crate) use in_transaction;

/// Where a transaction's `BEGIN` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Begin {
    /// Not sent yet: it goes with the first round trip.
    Pending,
    /// Sent (or not needed: outside a transaction, or inside one begun before).
    Sent,
    /// The round trip that carried it failed: the transaction may not have begun.
    Failed,
}

/// A Postgres connection lent to a [`Tx`](crate::tx::Tx), whose transaction's `BEGIN` may
/// not have been sent yet (see the module docs).
pub(crate) struct PgConn<'c> {
    conn: &'c mut AsyncPgConnection,
    begin: Begin,
}

impl<'c> PgConn<'c> {
    /// `conn` as it is: outside a transaction, or in one already begun.
    pub(crate) fn new(conn: &'c mut AsyncPgConnection) -> Self {
        Self {
            conn,
            begin: Begin::Sent,
        }
    }

    /// `conn`, outside any transaction, lent to a transaction whose `BEGIN` goes with its first
    /// round trip.
    pub(crate) fn deferring_begin(conn: &'c mut AsyncPgConnection) -> Self {
        Self {
            conn,
            begin: Begin::Pending,
        }
    }

    /// True while no statement of the transaction has been sent (nor its `BEGIN`).
    pub(crate) fn begin_pending(&self) -> bool {
        self.begin == Begin::Pending
    }

    /// The connection, once the pending `BEGIN` (if any) has been sent, in a round trip of its
    /// own ([`PgConn::carrying_begin`] with nothing behind it).
    pub(crate) async fn ready(&mut self) -> QueryResult<&mut AsyncPgConnection> {
        self.carrying_begin(async |_| Ok(())).await?;
        Ok(&mut *self.conn)
    }

    /// Runs `round_trip` on the connection, behind the pending `BEGIN` in the same round trip
    /// ([`pipelined`]) when there is one. Only for a round trip that sends nothing, or whose
    /// first statement checks [`in_transaction!`] and whose other statements change nothing
    /// that outlives them.
    pub(crate) async fn carrying_begin<T>(
        &mut self,
        round_trip: impl AsyncFnOnce(&AsyncPgConnection) -> QueryResult<T>,
    ) -> QueryResult<T> {
        match self.begin {
            Begin::Sent => return round_trip(&*self.conn).await,
            Begin::Failed => return Err(DieselError::BrokenTransactionManager),
            Begin::Pending => self.count_begun()?,
        }
        let conn: &AsyncPgConnection = self.conn;
        let result = pipelined(begin(conn), round_trip(conn)).await;
        if result.is_err() {
            // The BEGIN, or a statement behind it, failed: either way nothing more is sent.
            self.begin = Begin::Failed;
        }
        result.map(|((), value)| value)
    }

    /// The connection without sending anything: for what ends or inspects the transaction
    /// itself (its commit, its depth), and for statements outside any transaction.
    pub(crate) fn connection(&mut self) -> &mut AsyncPgConnection {
        debug_assert!(self.begin != Begin::Pending, "a statement before the BEGIN");
        self.conn
    }

    /// Counts the transaction open in the connection's transaction manager, before its
    /// `BEGIN` is sent; the `BEGIN` is no longer pending.
    fn count_begun(&mut self) -> QueryResult<()> {
        <AnsiTransactionManager as TransactionManager<AsyncPgConnection>>::transaction_manager_status_mut(
            self.conn,
        )
        .transaction_state()?
        .change_transaction_depth(TransactionDepthChange::IncreaseDepth)?;
        self.begin = Begin::Sent;
        Ok(())
    }
}

/// [`BEGIN`], prepared once per connection.
async fn begin(mut conn: &AsyncPgConnection) -> QueryResult<()> {
    cached(diesel::sql_query(BEGIN)).execute(&mut conn).await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use billing_ports::{EventStatus, EventTx, NewEvent, StoreError};
    use chrono::Utc;
    use diesel::QueryableByName;
    use diesel::sql_types::BigInt;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

    use crate::settings::StoreSettings;
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
    /// transaction block it fails and claims nothing, one event or several, in a database
    /// whose default makes every transaction `DEFERRABLE`: on a connection opened as the pool
    /// opens them (its session setup), before any transaction and after one has ended, and on
    /// one without that setup (a session reset to the database's default), where it is also
    /// refused inside the store's transaction (it fails closed). Inside one on a pooled
    /// connection, it claims.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_outside_a_transaction_block_fails_and_claims_nothing() {
        let db = TestDatabase::postgres().await;
        let mut admin = AsyncPgConnection::establish(db.url()).await.unwrap();
        admin
            .batch_execute(
                "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET \
                 default_transaction_deferrable = on', current_database()); END $$",
            )
            .await
            .unwrap();
        let now = Utc::now();
        let alone = async |conn: &mut AsyncPgConnection, tag: &str| {
            let one = event(tag);
            let two = event(&format!("{tag}x"));
            let single = Tx::new(&mut *conn)
                .claim_event(&one, EventStatus::Processed, now)
                .await;
            let both = [(&one, EventStatus::Processed), (&two, EventStatus::Ignored)];
            let several = Tx::new(&mut *conn).claim_events(&both, now).await;
            assert!(single.is_err(), "{single:?}");
            assert!(several.is_err(), "{several:?}");
        };
        let inside = async |conn: &mut AsyncPgConnection, tag: &str| {
            let event = event(tag);
            transaction_postgres(conn, |tx| {
                Box::pin(async move {
                    tx.claim_event(&event, EventStatus::Processed, now).await?;
                    Ok::<_, StoreError>(())
                })
            })
            .await
        };

        let mut reset = AsyncPgConnection::establish(db.url()).await.unwrap();
        alone(&mut reset, "a1").await;
        assert!(inside(&mut reset, "b2").await.is_err());
        assert_eq!(stored_events(&mut reset).await, 0);

        let mut pooled = AsyncPgConnection::establish(db.url()).await.unwrap();
        pooled
            .batch_execute(&StoreSettings::default().session_setup())
            .await
            .unwrap();
        alone(&mut pooled, "c3").await;
        inside(&mut pooled, "d4").await.unwrap();
        assert_eq!(stored_events(&mut pooled).await, 1);
        alone(&mut pooled, "e5").await;
        assert_eq!(stored_events(&mut pooled).await, 1);
    }
}
