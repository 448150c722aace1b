//! The billing state as data: a generic dump of every table (so columns added later are
//! compared too), the server's own commit order of events, and a readable difference.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cluster::Cluster;
use crate::error::{ChaosError, Result};

/// Columns holding wall-clock times of our own (not Stripe's), excluded in every table.
pub const WALL_CLOCK_COLUMNS: &[&str] = &[
    "created_at",
    "updated_at",
    "received_at",
    "processed_at",
    "recorded_at",
];

/// Delivery bookkeeping of `stripe_events`: how often and why a delivery failed depends on
/// when the faults hit, not on the events.
pub const DELIVERY_COLUMNS: &[(&str, &str)] = &[
    ("stripe_events", "attempts"),
    ("stripe_events", "last_error"),
    ("stripe_events", "failure_kind"),
    ("stripe_events", "next_attempt_at"),
];

/// The change feed's positions: numbered in commit order by whoever reads the feed or runs its
/// retention first, so whether a record has one yet depends on when that happened, not on the
/// events (a serial replay that nobody reads leaves them unnumbered).
pub const NUMBERING_COLUMNS: &[(&str, &str)] = &[("changes", "seq")];

/// Tables that are not billing state (migrations, the background jobs' leases).
const SKIPPED_TABLES: &[&str] = &["__diesel_schema_migrations", "job_leases"];

/// Every billing table's rows as JSON objects, sorted, without the excluded columns (wall
/// clock, delivery bookkeeping, feed positions, and serial ids whose values depend on
/// rolled-back inserts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// Table name → sorted rows.
    pub tables: BTreeMap<String, Vec<Value>>,
}

impl Dump {
    /// Rows of `table` (empty when absent).
    pub fn rows(&self, table: &str) -> &[Value] {
        self.tables.get(table).map_or(&[], Vec::as_slice)
    }

    /// A readable description of how `self` differs from `other`, `None` when equal.
    pub fn difference(&self, other: &Dump) -> Option<String> {
        let mut out = String::new();
        let names: std::collections::BTreeSet<&String> =
            self.tables.keys().chain(other.tables.keys()).collect();
        for name in names {
            let left = self.rows(name);
            let right = other.rows(name);
            if left == right {
                continue;
            }
            let only_left: Vec<&Value> = left.iter().filter(|r| !right.contains(r)).collect();
            let only_right: Vec<&Value> = right.iter().filter(|r| !left.contains(r)).collect();
            out.push_str(&format!(
                "table {name}: {} vs {} rows; {} only on the left, {} only on the right\n",
                left.len(),
                right.len(),
                only_left.len(),
                only_right.len()
            ));
            for row in only_left.iter().take(3) {
                out.push_str(&format!("  < {row}\n"));
            }
            for row in only_right.iter().take(3) {
                out.push_str(&format!("  > {row}\n"));
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

fn parse(what: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text.trim()).map_err(|source| ChaosError::Json {
        what: what.to_owned(),
        source,
    })
}

/// Dumps database `db` of `cluster`.
pub async fn dump(cluster: &Cluster, db: &str) -> Result<Dump> {
    let columns = cluster
        .psql(
            db,
            "SELECT coalesce(json_agg(json_build_array(table_name, column_name, \
             coalesce(column_default, '')) ORDER BY table_name, ordinal_position), '[]') \
             FROM information_schema.columns WHERE table_schema = 'public'",
        )
        .await?;
    let columns = parse("the column list", &columns)?;
    let mut excluded: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in columns.as_array().into_iter().flatten() {
        let (Some(table), Some(column), Some(default)) =
            (entry[0].as_str(), entry[1].as_str(), entry[2].as_str())
        else {
            continue;
        };
        let list = excluded.entry(table.to_owned()).or_default();
        if WALL_CLOCK_COLUMNS.contains(&column)
            || DELIVERY_COLUMNS.contains(&(table, column))
            || NUMBERING_COLUMNS.contains(&(table, column))
            || default.starts_with("nextval(")
        {
            list.push(column.to_owned());
        }
    }
    let mut tables = BTreeMap::new();
    for (table, drop) in excluded {
        if SKIPPED_TABLES.contains(&table.as_str()) {
            continue;
        }
        let drop = drop
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT coalesce(jsonb_agg(r ORDER BY r::text), '[]'::jsonb) FROM \
             (SELECT to_jsonb(t) - ARRAY[{drop}]::text[] AS r FROM \"{table}\" t) s"
        );
        let rows = parse(&format!("table {table}"), &cluster.psql(db, &sql).await?)?;
        let rows = match rows {
            Value::Array(rows) => rows,
            _ => Vec::new(),
        };
        tables.insert(table, rows);
    }
    Ok(Dump { tables })
}

/// Event ids in the order their final transaction committed (Postgres
/// `track_commit_timestamp`; the row's `xmin` is the transaction that applied the event).
pub async fn commit_order(cluster: &Cluster, db: &str) -> Result<Vec<String>> {
    let missing = cluster
        .psql(
            db,
            "SELECT count(*) FROM stripe_events WHERE pg_xact_commit_timestamp(xmin) IS NULL",
        )
        .await?;
    if missing.trim() != "0" {
        return Err(ChaosError::Setup(format!(
            "{} events have no commit timestamp (is track_commit_timestamp on?)",
            missing.trim()
        )));
    }
    let text = cluster
        .psql(
            db,
            "SELECT coalesce(json_agg(id ORDER BY pg_xact_commit_timestamp(xmin), \
             xmin::text::bigint, id), '[]') FROM stripe_events",
        )
        .await?;
    let ids = parse("the commit order", &text)?;
    Ok(ids
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect())
}

/// Every stored event's status.
pub async fn event_statuses(cluster: &Cluster, db: &str) -> Result<BTreeMap<String, String>> {
    let text = cluster
        .psql(
            db,
            "SELECT coalesce(json_object_agg(id, status), '{}') FROM stripe_events",
        )
        .await?;
    let map = parse("the event statuses", &text)?;
    Ok(map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect())
}

/// True for the statuses of an applied event (`processed`, `ignored`, `stale`).
pub fn is_final(status: &str) -> bool {
    matches!(status, "processed" | "ignored" | "stale")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn dump(rows: &[(&str, Vec<Value>)]) -> Dump {
        Dump {
            tables: rows
                .iter()
                .map(|(t, r)| ((*t).to_owned(), r.clone()))
                .collect(),
        }
    }

    #[test]
    fn equal_dumps_have_no_difference_and_a_changed_row_is_shown() {
        let a = dump(&[(
            "subscriptions",
            vec![json!({"id": "sub_1", "status": "active"})],
        )]);
        assert_eq!(a.difference(&a.clone()), None);
        let b = dump(&[(
            "subscriptions",
            vec![json!({"id": "sub_1", "status": "past_due"})],
        )]);
        let text = a.difference(&b).unwrap();
        assert!(
            text.contains("table subscriptions") && text.contains("past_due"),
            "{text}"
        );
        let missing = dump(&[]);
        assert!(a.difference(&missing).unwrap().contains("1 vs 0 rows"));
    }
}
