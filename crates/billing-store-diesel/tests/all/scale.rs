//! Statements whose cost must not grow with history: on a Postgres database holding tens of
//! thousands of rows per table (analyzed, as autovacuum would), the retention purges (events
//! and change records), the grace-period job's read and a customer's rows given to its user
//! read through indexes, never a whole table. Postgres' own counters (`pg_stat_user_tables`) tell which it did.

use std::time::{Duration, Instant};

use billing_ports::{BillingStore, FeedStore, StoreError, TxFuture};
use billing_store_diesel::DieselStore;
use billing_store_diesel::testing::TestDatabase;
use chrono::{TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// Rows per table: far past the size at which a plan reading the whole table is the cheaper.
const ROWS: i64 = 40_000;

/// The customer whose rows are given to its user, and that user.
const UNLINKED: &str = "cus_Nq3VbX8rT1kLmZ";
const LINKED_USER: &str = "user_J4wQ9zTe2LpX";

/// A history of `ROWS` customers with their subscriptions, payments, orders, credits, change
/// records and old events (ids random-looking, from md5), a few rows of `UNLINKED` not given
/// to any user yet, and one past-due subscription whose grace period ended.
fn history() -> String {
    format!(
        "\
INSERT INTO customers (stripe_customer_id, user_id, created_at, updated_at)
  SELECT 'cus_' || substr(md5('c' || g), 1, 14), 'user_' || substr(md5('u' || g), 1, 12),
         now(), now()
  FROM generate_series(1, {ROWS}) g;
INSERT INTO customers (stripe_customer_id, created_at, updated_at)
  VALUES ('{UNLINKED}', now(), now());
INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, price_id, tier, status,
    cancel_at_period_end, grace_period_end, snapshot_event_created, snapshot_event_rank,
    snapshot_event_id, updated_at, item_price_ids, status_event_created, status_event_rank,
    status_event_id)
  SELECT 'sub_' || substr(md5('s' || g), 1, 20), 'cus_' || substr(md5('c' || g), 1, 14),
         'price_1PrO', 'PRO', CASE WHEN g % 500 = 0 THEN 'past_due' ELSE 'active' END, false,
         CASE WHEN g % 500 = 0 THEN now() + interval '3 days' END,
         now(), 0, 'evt_' || substr(md5('e' || g), 1, 24), now(), '[\"price_1PrO\"]',
         now(), 0, 'evt_' || substr(md5('e' || g), 1, 24)
  FROM generate_series(1, {ROWS}) g;
UPDATE subscriptions SET grace_period_end = now() - interval '1 day'
  WHERE stripe_subscription_id = 'sub_' || substr(md5('s' || 500), 1, 20);
INSERT INTO payments (payment_key, payment_intent_id, charge_id, stripe_customer_id, user_id,
    amount_minor, currency, status, updated_at)
  SELECT 'pi_' || substr(md5('p' || g), 1, 24), 'pi_' || substr(md5('p' || g), 1, 24),
         'ch_' || substr(md5('h' || g), 1, 24), 'cus_' || substr(md5('c' || (g / 2 + 1)), 1, 14),
         'user_' || substr(md5('u' || (g / 2 + 1)), 1, 12), 2900, 'usd', 'succeeded', now()
  FROM generate_series(1, {ROWS} * 2) g;
INSERT INTO payments (payment_key, payment_intent_id, stripe_customer_id, amount_minor,
    currency, status, updated_at)
  VALUES ('pi_3Xk8Lm2eZvKYlo2C', 'pi_3Xk8Lm2eZvKYlo2C', '{UNLINKED}', 4900, 'eur', 'succeeded',
          now());
INSERT INTO orders (checkout_session_id, payment_intent_id, stripe_customer_id, user_id,
    amount_minor, currency, status, created_at, updated_at)
  SELECT 'cs_test_' || substr(md5('o' || g), 1, 24), 'pi_' || substr(md5('q' || g), 1, 24),
         'cus_' || substr(md5('c' || g), 1, 14), 'user_' || substr(md5('u' || g), 1, 12),
         2900, 'usd', 'paid', now(), now()
  FROM generate_series(1, {ROWS}) g;
INSERT INTO orders (checkout_session_id, stripe_customer_id, amount_minor, currency, status,
    created_at, updated_at)
  VALUES ('cs_test_b9Rt2Wq7Yz', '{UNLINKED}', 4900, 'eur', 'paid', now(), now());
INSERT INTO credit_ledger (user_id, stripe_customer_id, amount, reason, source_key, created_at)
  SELECT 'user_' || substr(md5('u' || (g / 2 + 1)), 1, 12),
         'cus_' || substr(md5('c' || (g / 2 + 1)), 1, 14), 100, 'subscription_period',
         'invoice:in_' || substr(md5('i' || g), 1, 24), now()
  FROM generate_series(1, {ROWS} * 2) g;
INSERT INTO credit_ledger (stripe_customer_id, amount, reason, source_key, created_at)
  VALUES ('{UNLINKED}', 500, 'adjustment', 'checkout:cs_test_b9Rt2Wq7Yz', now());
INSERT INTO changes (seq, change_id, user_id, customer_id, kind, before_tier, before_reason,
    before_credits, after_tier, after_status, after_reason, after_credits, created_at)
  SELECT g, 'chg_' || substr(md5('g' || g), 1, 24), 'user_' || substr(md5('u' || g), 1, 12),
         'cus_' || substr(md5('c' || g), 1, 14), 'tier_changed', 'FREE', 'none', 0, 'PRO',
         'active', 'subscription', 0, now() - interval '40 days'
  FROM generate_series(1, {ROWS}) g;
INSERT INTO stripe_events (id, event_type, api_version, livemode, created, payload, status,
    attempts, received_at, processed_at)
  SELECT 'evt_' || substr(md5('v' || g), 1, 24), 'invoice.paid', '2025-03-31.basil', false,
         now() - interval '40 days', '{{\"id\":\"evt_' || substr(md5('v' || g), 1, 24) || '\"}}',
         CASE WHEN g % 10 = 0 THEN 'ignored' ELSE 'processed' END, 1,
         now() - interval '40 days' + g * interval '1 second',
         now() - interval '40 days' + g * interval '1 second'
  FROM generate_series(1, {ROWS}) g;
ANALYZE;
SELECT pg_stat_force_next_flush();"
    )
}

/// The tables whose reads are counted.
const TABLES: [&str; 7] = [
    "stripe_events",
    "customers",
    "subscriptions",
    "payments",
    "orders",
    "credit_ledger",
    "changes",
];

#[derive(QueryableByName, Debug, PartialEq, Eq, Clone)]
struct Scans {
    #[diesel(sql_type = Text)]
    relname: String,
    #[diesel(sql_type = BigInt)]
    seq_scan: i64,
    #[diesel(sql_type = BigInt)]
    idx_scan: i64,
}

/// Every counted table's whole-table and index reads so far, in `TABLES` order.
async fn scans(conn: &mut AsyncPgConnection) -> Vec<Scans> {
    let mut rows: Vec<Scans> = diesel::sql_query(
        "SELECT relname::text AS relname, seq_scan, coalesce(idx_scan, 0) AS idx_scan \
         FROM pg_stat_user_tables WHERE relname = ANY($1)",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(TABLES.to_vec())
    .load(conn)
    .await
    .unwrap();
    rows.sort_by_key(|row| TABLES.iter().position(|t| *t == row.relname));
    rows
}

fn of<'a>(rows: &'a [Scans], table: &str) -> &'a Scans {
    rows.iter().find(|row| row.relname == table).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_and_a_users_new_rows_read_through_indexes_with_a_long_history() {
    let db = TestDatabase::postgres().await;
    let mut admin = AsyncPgConnection::establish(db.url()).await.unwrap();
    admin.batch_execute(&history()).await.unwrap();
    let before = scans(&mut admin).await;

    // A store of its own, on one connection, dropped after its work: its session's counters
    // reach the shared statistics when it ends (or after 10 s idle).
    let store = DieselStore::connect(db.url(), 1).unwrap();
    let purged = store
        .purge_events(Utc::now() - TimeDelta::days(30), 500)
        .await
        .unwrap();
    assert_eq!(purged, 500);
    store
        .transaction(|tx| -> TxFuture<'_, '_, _, StoreError> {
            Box::pin(async move { tx.attribute_customer_rows(UNLINKED, LINKED_USER).await })
        })
        .await
        .unwrap();
    let ended = store.grace_periods_ended(Utc::now(), 100).await.unwrap();
    assert_eq!(ended.len(), 1, "{ended:?}");
    let changes = store
        .purge_changes(Utc::now() - TimeDelta::days(30), 500)
        .await
        .unwrap();
    assert_eq!((changes.horizon, changes.changes), (500, 500));
    drop(store);

    // Every table the work must have read through an index shows it; then none was read whole.
    let read_by_index = [
        "stripe_events",
        "subscriptions",
        "payments",
        "orders",
        "changes",
    ];
    let started = Instant::now();
    let after = loop {
        let now = scans(&mut admin).await;
        let flushed = read_by_index
            .iter()
            .all(|table| of(&now, table).idx_scan > of(&before, table).idx_scan);
        if flushed || started.elapsed() > Duration::from_secs(30) {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for table in read_by_index {
        assert!(
            of(&after, table).idx_scan > of(&before, table).idx_scan,
            "{table} was never read through an index: before {before:?}, after {after:?}"
        );
    }
    for table in TABLES {
        assert_eq!(
            of(&after, table).seq_scan,
            of(&before, table).seq_scan,
            "{table} was read whole: before {before:?}, after {after:?}"
        );
    }

    // The work was done: the rows of the unlinked customer are its user's now.
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let unattributed: Count = diesel::sql_query(format!(
        "SELECT (SELECT count(*) FROM payments WHERE stripe_customer_id = '{UNLINKED}' \
                 AND user_id IS NULL) \
              + (SELECT count(*) FROM orders WHERE stripe_customer_id = '{UNLINKED}' \
                 AND user_id IS NULL) \
              + (SELECT count(*) FROM credit_ledger WHERE stripe_customer_id = '{UNLINKED}' \
                 AND user_id IS NULL) AS n"
    ))
    .get_result(&mut admin)
    .await
    .unwrap();
    assert_eq!(unattributed.n, 0);
}
