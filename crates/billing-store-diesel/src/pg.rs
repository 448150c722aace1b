//! The Postgres backend: diesel-async's `AsyncPgConnection` in a deadpool pool.

use billing_ports::StoreError;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::db_err;

// `subscription()` locks the row it reads until commit.
crate::backend::diesel_backend!(
    Timestamptz,
    diesel_async::AsyncPgConnection,
    lock_row: |query| query.for_update()
);

/// Serialises transactions on one key (customer, payment intent…) until commit.
pub(crate) async fn lock_key(conn: &mut AsyncPgConnection, key: &str) -> Result<(), StoreError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(key)
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}
