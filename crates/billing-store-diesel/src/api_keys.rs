//! The stored API keys (`api_keys`): a key's SHA-256 (hex), its display prefix, when it was
//! created and revoked. The key itself is never stored.

use billing_ports::{ApiKeyRecord, Cause, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::schema::{Stamp, api_keys, stamp, time};
use crate::tx::{Tx, on_conn};

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
struct ApiKeyRow {
    name: String,
    prefix: String,
    key_hash: String,
    created_at: Stamp,
    revoked_at: Option<Stamp>,
}

/// A stored hash: 64 hex digits, else the row is corrupt.
fn hash(stored: &str) -> Result<[u8; 32], StoreError> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(stored, &mut hash)
        .map_err(|e| StoreError::Corrupt(Cause::msg(format!("api key hash: {e}"))))?;
    Ok(hash)
}

fn record(row: ApiKeyRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        hash: hash(&row.key_hash)?,
        name: row.name,
        prefix: row.prefix,
        created_at: row.created_at.0,
        revoked_at: time(row.revoked_at),
    })
}

impl Tx<'_> {
    /// Inserts `key` unless its name (or hash) is taken.
    pub(crate) async fn insert_api_key(&mut self, key: &ApiKeyRecord) -> Result<bool, StoreError> {
        let row = ApiKeyRow {
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            key_hash: hex::encode(key.hash),
            created_at: Stamp(key.created_at),
            revoked_at: stamp(key.revoked_at),
        };
        let insert = diesel::insert_into(api_keys::table)
            .values(&row)
            .on_conflict_do_nothing();
        let inserted = on_conn!(self, |c| insert.execute(c).await)?;
        Ok(inserted == 1)
    }

    /// Every key, by name.
    pub(crate) async fn api_keys(&mut self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        // `as_select` names the backend: the query is built in each arm of the macro.
        let rows: Vec<ApiKeyRow> = on_conn!(self, |c| api_keys::table
            .select(ApiKeyRow::as_select())
            .order(api_keys::name)
            .load(c)
            .await)?;
        rows.into_iter().map(record).collect()
    }

    /// Revokes the key named `name` (keeping an earlier revocation's time).
    pub(crate) async fn revoke_api_key(
        &mut self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        use api_keys::dsl as k;
        let update = diesel::update(k::api_keys.find(name).filter(k::revoked_at.is_null()))
            .set(k::revoked_at.eq(Some(Stamp(at))));
        on_conn!(self, |c| update.execute(c).await)?;
        let row: Option<ApiKeyRow> = on_conn!(self, |c| k::api_keys
            .find(name)
            .select(ApiKeyRow::as_select())
            .get_result(c)
            .await
            .optional())?;
        row.map(record).transpose()
    }

    /// The hashes of the keys not revoked.
    pub(crate) async fn live_api_key_hashes(&mut self) -> Result<Vec<[u8; 32]>, StoreError> {
        use api_keys::dsl as k;
        let query = k::api_keys
            .filter(k::revoked_at.is_null())
            .select(k::key_hash);
        let rows: Vec<String> = on_conn!(self, |c| query.load(c).await)?;
        rows.iter().map(|h| hash(h)).collect()
    }
}
