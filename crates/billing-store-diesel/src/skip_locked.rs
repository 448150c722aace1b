//! Rows read and locked by a transaction that does not wait for locks (`FOR UPDATE SKIP
//! LOCKED`), counted in the same statement, and so the same snapshot, with every row that
//! matches: whether one was skipped. The statement's shape (Postgres):
//!
//! ```sql
//! SELECT m.total, l.* FROM (SELECT count(*) AS total FROM t WHERE …) m
//! LEFT JOIN (SELECT * FROM t WHERE … FOR UPDATE SKIP LOCKED) l ON true
//! ```
//!
//! one row per row locked, or one row with no row (`NULL`s) when none could be locked.

use diesel::QueryableByName;
use diesel::sql_types::BigInt;

/// One row of such a statement.
#[derive(QueryableByName)]
pub(crate) struct Counted<R> {
    /// How many rows match, locked here or not.
    #[diesel(sql_type = BigInt)]
    total: i64,
    /// One of those this transaction locked; none when it locked none.
    #[diesel(embed)]
    row: Option<R>,
}

/// The rows locked, and whether they are every row that matches (none skipped). A statement
/// that answered no row at all (it always answers one) tells nothing: not all.
pub(crate) fn locked_rows<R>(counted: Vec<Counted<R>>) -> (Vec<R>, bool) {
    let total = <[_]>::first(&counted).map(|row| row.total);
    let rows: Vec<R> = counted.into_iter().filter_map(|row| row.row).collect();
    let all = total.is_some_and(|total| usize::try_from(total) == Ok(rows.len()));
    (rows, all)
}
