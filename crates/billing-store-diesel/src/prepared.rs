//! Prepared statements kept per connection for the statements Diesel would prepare anew on
//! every run.
//!
//! Diesel caches a connection's prepared statements only for queries it marks safe to cache.
//! It refuses `INSERT … ON CONFLICT DO UPDATE`, every `UPDATE`, `Insertable` rows with optional
//! columns and raw SQL, because their text can vary for one Rust type and its cache is keyed by
//! type. On Postgres an uncached statement costs a round trip of its own (`Parse`/`Describe`)
//! before it runs, and the server plans it again.
//!
//! [`cached`] wraps such a statement so it is cached keyed by its SQL text and bind types
//! instead (Diesel's cache key for a query without a static id): two runs that render different
//! SQL get two entries, so a varying text is still correct. Wrap only statements whose text has
//! a small, fixed number of shapes; a query whose text grows with its input (`eq_any` over a
//! list of any length on SQLite, a batch insert of any number of rows) would fill the cache and
//! stays uncached. A batch insert of at most a fixed number of rows, each field always a bind
//! (`treat_none_as_default_value = false`), has one shape per number of rows: the
//! subscriptions' upsert and the pending ledger entries' insert are cached so.

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

/// A statement to prepare once per connection and reuse (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cached<Q>(Q);

/// Marks `query` for the per-connection statement cache, keyed by its SQL text.
pub(crate) fn cached<Q>(query: Q) -> Cached<Q> {
    Cached(query)
}

impl<Q: Query> Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

/// No static id: the cache keys the statement by its SQL text and bind types.
impl<Q> QueryId for Cached<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB: Backend, Q: QueryFragment<DB>> QueryFragment<DB> for Cached<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    /// Safe whatever the inner query says: the key is the rendered text, not the type.
    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use billing_ports::{
        AccessTx, CustomerRecord, EventStatus, EventTx, NewEvent, ReadAhead, StoreError,
    };
    use chrono::Utc;
    use diesel::QueryableByName;
    use diesel::sql_types::{BigInt, Text};
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

    use crate::testing::TestDatabase;
    use crate::tx::Tx;

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Prepared {
        #[diesel(sql_type = Text)]
        verb: String,
        #[diesel(sql_type = BigInt)]
        statements: i64,
    }

    fn event(n: usize) -> NewEvent {
        NewEvent {
            id: format!("evt_1Q{n:03}Zk7rXbN4TgqP2sLd9mWy"),
            event_type: "customer.created".to_owned(),
            api_version: Some("2024-06-20".to_owned()),
            livemode: false,
            created: Utc::now(),
            payload: format!(r#"{{"id":"evt_1Q{n:03}Zk7rXbN4TgqP2sLd9mWy"}}"#),
            received_at: Utc::now(),
        }
    }

    /// The transaction's `BEGIN`, the claims (of one event, of several), the finish, an upsert and the
    /// advisory lock run three times on one connection: each is prepared once and kept
    /// (without the wrapper Diesel prepares each run anew and closes the statement after it,
    /// so none would be listed).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_hot_statements_are_prepared_once_per_connection() {
        let db = TestDatabase::postgres().await;
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        for n in 0..3 {
            let others = [event(n + 10), event(n + 20)];
            let event = event(n);
            let customer = CustomerRecord {
                stripe_customer_id: format!("cus_Q{n}hT8vYwXr2mKp"),
                user_id: Some(format!("user_{n}_b7f3c9")),
                email: None,
                deleted: false,
            };
            crate::tx::transaction_postgres(&mut conn, |tx| {
                Box::pin(async move {
                    tx.claim_event(&event, EventStatus::Processed, Utc::now())
                        .await?;
                    let both = [
                        (&others[0], EventStatus::Processed),
                        (&others[1], EventStatus::Ignored),
                    ];
                    tx.claim_events(&both, Utc::now()).await?;
                    tx.finish_event(&event.id, EventStatus::Stale, Utc::now())
                        .await?;
                    tx.save_customer(&customer, Utc::now()).await?;
                    tx.lock_key(&customer.stripe_customer_id).await?;
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .unwrap();
        }
        let prepared: Vec<Prepared> = diesel::sql_query(
            "SELECT substring(statement FROM
                        '^(BEGIN|INSERT INTO \\S+|UPDATE \\S+|SELECT pg_advisory_xact_lock)')
                        AS verb,
                    count(*) AS statements
             FROM pg_prepared_statements
             WHERE statement ~ '^(BEGIN|INSERT|UPDATE|SELECT pg_advisory)'
             GROUP BY 1 ORDER BY 1",
        )
        .load(&mut conn)
        .await
        .unwrap();
        let found: Vec<(&str, i64)> = prepared
            .iter()
            .map(|p| (p.verb.as_str(), p.statements))
            .collect();
        assert_eq!(
            found,
            [
                ("BEGIN", 1),
                ("INSERT INTO \"customers\"", 1),
                ("INSERT INTO stripe_events", 2),
                ("SELECT pg_advisory_xact_lock", 1),
                ("UPDATE \"stripe_events\"", 1),
            ]
        );
    }

    #[derive(QueryableByName, Debug)]
    struct Plans {
        #[diesel(sql_type = BigInt)]
        generic: i64,
        #[diesel(sql_type = BigInt)]
        custom: i64,
    }

    #[derive(QueryableByName, Debug)]
    struct UserId {
        #[diesel(sql_type = Text)]
        user_id: String,
    }

    /// How often each of the connection's kept statements with `= ANY($1)` (the reads of
    /// several users' access and credits) ran on its generic plan and on a plan made for the
    /// run.
    async fn any_plans(conn: &mut AsyncPgConnection) -> Vec<(i64, i64)> {
        let plans: Vec<Plans> = diesel::sql_query(
            "SELECT generic_plans AS generic, custom_plans AS custom
             FROM pg_prepared_statements WHERE statement LIKE 'SELECT \"%= ANY($1)%'
             ORDER BY 1, 2",
        )
        .load(conn)
        .await
        .unwrap();
        plans.iter().map(|p| (p.generic, p.custom)).collect()
    }

    /// A claim (of one event or of several) sets the rest of its transaction to generic plans:
    /// the reads of a batch's users (`= ANY`), which Postgres plans again at every execution
    /// otherwise (seen first, on a connection whose transactions claim nothing), run on the
    /// plan kept since their first execution. The session's own mode is back after each
    /// transaction.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_claim_a_transaction_runs_on_generic_plans() {
        let db = TestDatabase::postgres().await;
        let mut seed = AsyncPgConnection::establish(db.url()).await.unwrap();
        seed.batch_execute(
            "INSERT INTO customers (stripe_customer_id, user_id, deleted, created_at, updated_at)
             SELECT 'cus_' || substr(md5(n::text), 1, 14), 'user_' || substr(md5(n::text), 15, 12),
                    false, now(), now()
             FROM generate_series(1, 400) AS n;
             INSERT INTO credit_ledger (user_id, amount, reason, source_key, created_at)
             SELECT user_id, 1000, 'subscription_period', 'in_' || md5(stripe_customer_id || m),
                    now()
             FROM customers, generate_series(1, 3) AS m;
             ANALYZE customers, credit_ledger;",
        )
        .await
        .unwrap();
        let users: Vec<UserId> =
            diesel::sql_query("SELECT user_id FROM customers ORDER BY user_id LIMIT 2")
                .load(&mut seed)
                .await
                .unwrap();
        let users: Vec<String> = users.into_iter().map(|row| row.user_id).collect();
        let mode = async |conn: &mut AsyncPgConnection| {
            crate::testing::setting(conn, "plan_cache_mode").await
        };
        // A transaction of `claims` events (one claims alone, more together), then the users'
        // reads: the plan mode inside it, after them. Begun with the store's `BEGIN` (which the
        // claim checks), here by hand to read the mode in it.
        let run = async |conn: &mut AsyncPgConnection, claims: Vec<NewEvent>| {
            let keys: Vec<String> = users.iter().map(|user| format!("feed:{user}")).collect();
            conn.batch_execute(crate::begin::BEGIN).await.unwrap();
            let mut tx = Tx::new(&mut *conn);
            match claims.as_slice() {
                [] => {}
                [one] => {
                    tx.claim_event(one, EventStatus::Processed, Utc::now())
                        .await
                        .unwrap();
                }
                several => {
                    let several: Vec<_> = several
                        .iter()
                        .map(|event| (event, EventStatus::Processed))
                        .collect();
                    tx.claim_events(&several, Utc::now()).await.unwrap();
                }
            }
            tx.lock_then_keep_access(&keys, &users, ReadAhead::default())
                .await
                .unwrap();
            drop(tx);
            let inside = mode(&mut *conn).await;
            conn.batch_execute("COMMIT").await.unwrap();
            inside
        };

        let mut plain = AsyncPgConnection::establish(db.url()).await.unwrap();
        let session = mode(&mut plain).await;
        for _ in 0..8 {
            assert_eq!(run(&mut plain, Vec::new()).await, session);
        }
        let plans = any_plans(&mut plain).await;
        assert_eq!(plans.len(), 2, "{plans:?}");
        assert!(
            plans.contains(&(0, 8)),
            "one planned at every run: {plans:?}"
        );

        let mut ingest = AsyncPgConnection::establish(db.url()).await.unwrap();
        for n in 0..8 {
            let claims = (0..1 + n % 2).map(|k| event(30 + 2 * n + k)).collect();
            assert_eq!(run(&mut ingest, claims).await, "force_generic_plan");
            assert_eq!(
                mode(&mut ingest).await,
                session,
                "the session's own after it"
            );
        }
        let plans = any_plans(&mut ingest).await;
        assert_eq!(plans, [(8, 0), (8, 0)], "the kept plan at every run");
    }
}
