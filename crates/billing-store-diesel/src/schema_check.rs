//! The hand-written `table!` schema and the enum value lists checked against freshly migrated
//! databases of both backends, so a migration and the code can never drift apart unnoticed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use billing_ports::{
    CreditReason, DisputeStatus, EventStatus, FailureKind, PaymentStatus, RefundStatus,
    StripeRequestStatus,
};
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::Backend;
use crate::testing::TestDatabase;

type Columns = BTreeMap<String, BTreeSet<String>>;

/// The column names of a `SELECT table.*` as Diesel writes it: `"table"."column"` on
/// Postgres, `` `table`.`column` `` on SQLite.
fn quoted_columns(sql: &str, table: &str) -> BTreeSet<String> {
    ['"', '`']
        .into_iter()
        .flat_map(|quote| {
            let prefix = format!("{quote}{table}{quote}.{quote}");
            sql.split(&prefix)
                .skip(1)
                .filter_map(move |rest| rest.split(quote).next())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

macro_rules! diesel_columns {
    ($schema:path, $backend:ty, [$($table:ident),+ $(,)?]) => {{
        use diesel::prelude::*;
        use $schema as s;
        let mut columns = Columns::new();
        $(
            let sql = diesel::debug_query::<$backend, _>(
                &s::$table::table.select(s::$table::all_columns),
            )
            .to_string();
            columns.insert(stringify!($table).to_owned(), quoted_columns(&sql, stringify!($table)));
        )+
        columns
    }};
}

fn declared(backend: Backend) -> Columns {
    match backend {
        Backend::Postgres => diesel_columns!(
            crate::schema,
            diesel::pg::Pg,
            [
                stripe_events,
                customers,
                subscriptions,
                payments,
                orders,
                credit_ledger,
                usage_counters,
                usage,
                stripe_requests,
                api_keys,
                job_leases,
                reconcile_cursors,
                changes,
                change_horizon,
                push_endpoints,
                push_deliveries,
                push_attempts
            ]
        ),
        Backend::Sqlite => diesel_columns!(
            crate::schema,
            diesel::sqlite::Sqlite,
            [
                stripe_events,
                customers,
                subscriptions,
                payments,
                orders,
                credit_ledger,
                usage_counters,
                usage,
                stripe_requests,
                api_keys,
                job_leases,
                reconcile_cursors,
                changes,
                change_horizon,
                push_endpoints,
                push_deliveries,
                push_attempts
            ]
        ),
    }
}

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    t: String,
    #[diesel(sql_type = Text)]
    c: String,
}

#[derive(QueryableByName)]
struct TableSql {
    #[diesel(sql_type = Text)]
    t: String,
    #[diesel(sql_type = Text)]
    def: String,
}

/// The migrated database's columns, and the text of its table definitions (SQLite) or of its
/// CHECK constraints (Postgres), per table.
async fn migrated(db: &TestDatabase) -> (Columns, Vec<(String, String)>) {
    let (rows, defs): (Vec<ColumnRow>, Vec<TableSql>) = match db.store().backend() {
        Backend::Postgres => {
            let mut conn = diesel_async::AsyncPgConnection::establish(db.url())
                .await
                .unwrap();
            let rows = diesel::sql_query(
                "SELECT table_name::text AS t, column_name::text AS c \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() \
                   AND table_name <> '__diesel_schema_migrations'",
            )
            .load(&mut conn)
            .await
            .unwrap();
            let defs = diesel::sql_query(
                "SELECT conrelid::regclass::text AS t, pg_get_constraintdef(oid) AS def \
                 FROM pg_constraint WHERE contype = 'c'",
            )
            .load(&mut conn)
            .await
            .unwrap();
            (rows, defs)
        }
        Backend::Sqlite => {
            let path = db.url().strip_prefix("sqlite://").unwrap();
            let mut conn = diesel_async::sync_connection_wrapper::SyncConnectionWrapper::<
                diesel::SqliteConnection,
            >::establish(path)
            .await
            .unwrap();
            let rows = diesel::sql_query(
                "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
                   AND m.name <> '__diesel_schema_migrations'",
            )
            .load(&mut conn)
            .await
            .unwrap();
            let defs = diesel::sql_query(
                "SELECT name AS t, sql AS def FROM sqlite_master WHERE type = 'table'",
            )
            .load(&mut conn)
            .await
            .unwrap();
            (rows, defs)
        }
    };
    let mut columns = Columns::new();
    for row in rows {
        columns.entry(row.t).or_default().insert(row.c);
    }
    (columns, defs.into_iter().map(|d| (d.t, d.def)).collect())
}

/// The values a `CHECK (column IN (…))` allows, as either backend renders it.
fn checked_values(defs: &[(String, String)], table: &str, column: &str) -> BTreeSet<String> {
    let postgres = format!("CHECK (({column} = ANY (ARRAY[");
    let sqlite = format!("CHECK ({column} IN (");
    let mut found = Vec::new();
    for (_, def) in defs.iter().filter(|(t, _)| t == table) {
        for marker in [&postgres, &sqlite] {
            for part in def.split(marker.as_str()).skip(1) {
                let list = part.split([']', ')']).next().unwrap_or("");
                found.push(
                    list.split(',')
                        .filter_map(|item| item.split('\'').nth(1))
                        .map(str::to_owned)
                        .collect::<BTreeSet<_>>(),
                );
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "one enum CHECK on {table}.{column}: {found:?}"
    );
    found.remove(0)
}

/// Every `(table, column)` whose values a CHECK limits to a list, as either backend renders
/// it (`CHECK ((column = ANY (ARRAY[…` on Postgres, `CHECK (column IN (…` on SQLite).
fn enum_checks(defs: &[(String, String)]) -> BTreeSet<(String, String)> {
    let identifier = |part: &str| -> String {
        part.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for (table, def) in defs {
        for part in def.split("CHECK ((").skip(1) {
            let column = identifier(part);
            if part[column.len()..].starts_with(" = ANY (ARRAY[") {
                found.insert((table.clone(), column));
            }
        }
        for part in def.split("CHECK (").skip(1) {
            let column = identifier(part);
            if !column.is_empty() && part[column.len()..].starts_with(" IN (") {
                found.insert((table.clone(), column));
            }
        }
    }
    found
}

/// Columns whose CHECK lists values of Stripe's that the code keeps as text: Checkout's
/// `payment_status` of a one-time order.
const CHECKED_TEXT: [(&str, &str); 1] = [("orders", "status")];

/// Every value a `string_enum!` type stores.
macro_rules! stored {
    ($enum:ty) => {
        <$enum>::ALL
            .iter()
            .map(|value| value.as_str().to_owned())
            .collect::<BTreeSet<String>>()
    };
}

fn values(all: &[&'static str]) -> BTreeSet<String> {
    all.iter().map(|v| (*v).to_owned()).collect()
}

async fn schema_matches_the_migrations(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let (columns, defs) = migrated(&db).await;
    assert_eq!(
        declared(backend),
        columns,
        "table! and the migrations differ"
    );
    let enums: [(&str, &str, BTreeSet<String>); 11] = [
        ("stripe_events", "status", stored!(EventStatus)),
        ("stripe_events", "failure_kind", stored!(FailureKind)),
        ("payments", "status", stored!(PaymentStatus)),
        ("payments", "dispute_status", stored!(DisputeStatus)),
        ("orders", "dispute_status", stored!(DisputeStatus)),
        ("orders", "refund_status", stored!(RefundStatus)),
        ("credit_ledger", "reason", stored!(CreditReason)),
        ("stripe_requests", "status", stored!(StripeRequestStatus)),
        ("changes", "kind", stored!(billing_ports::ChangeKind)),
        (
            "push_deliveries",
            "status",
            stored!(billing_ports::DeliveryStatus),
        ),
        (
            "push_attempts",
            "outcome",
            values(&["succeeded", "retry", "failed"]),
        ),
    ];
    let mut listed: BTreeSet<(String, String)> = CHECKED_TEXT
        .iter()
        .map(|(t, c)| ((*t).to_owned(), (*c).to_owned()))
        .collect();
    for (table, column, expected) in enums {
        assert_eq!(
            checked_values(&defs, table, column),
            expected,
            "{table}.{column}: CHECK list and enum differ"
        );
        listed.insert((table.to_owned(), column.to_owned()));
    }
    // A new enum column must be checked above too (or listed as text).
    assert_eq!(
        enum_checks(&defs),
        listed,
        "every CHECK (column IN (…)) has its string_enum! compared here"
    );
}

#[test]
fn enum_checks_are_found_in_both_renderings() {
    let defs = [
        (
            "orders".to_owned(),
            "CHECK ((refund_status = ANY (ARRAY['none'::text, 'full'::text])))".to_owned(),
        ),
        (
            "stripe_events".to_owned(),
            "CREATE TABLE stripe_events (status TEXT NOT NULL CHECK (status IN ('received')), \
             attempts INTEGER CHECK (attempts >= 0), \
             CHECK ((status IN ('processed')) = (processed_at IS NOT NULL)))"
                .to_owned(),
        ),
    ];
    let expected: BTreeSet<(String, String)> =
        [("orders", "refund_status"), ("stripe_events", "status")]
            .iter()
            .map(|(t, c)| ((*t).to_owned(), (*c).to_owned()))
            .collect();
    assert_eq!(enum_checks(&defs), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_matches_the_migrations() {
    schema_matches_the_migrations(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_schema_matches_the_migrations() {
    schema_matches_the_migrations(Backend::Sqlite).await;
}

#[test]
fn columns_are_read_in_both_quotings() {
    let sql = r#"SELECT "payments"."payment_key", "payments"."status" FROM "payments""#;
    assert_eq!(
        quoted_columns(sql, "payments"),
        values(&["payment_key", "status"])
    );
    let sql = "SELECT `orders`.`status` FROM `orders`";
    assert_eq!(quoted_columns(sql, "orders"), values(&["status"]));
}
