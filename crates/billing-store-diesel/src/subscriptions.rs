//! Subscriptions (`subscriptions`): one row per Stripe subscription, with its items (a JSON
//! list) and the positions of the events that last set its snapshot and its status.

use std::collections::BTreeMap;

use async_trait::async_trait;
use billing_domain::SubscriptionStatus;
use billing_ports::{
    Cause, EventPosition, StoreError, SubscriptionRead, SubscriptionRecord, SubscriptionTx,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::prepared::cached;
use crate::schema::{Stamp, subscriptions, time};
use crate::skip_locked::{Counted, locked_rows};
use crate::tx::{Conn, Tx, on_conn};

/// A subscription as stored. Inserted with every column bound (a `None` is `NULL`, never
/// `DEFAULT`), so an upsert's text depends on its number of rows alone.
#[derive(Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = subscriptions, treat_none_as_default_value = false)]
pub(crate) struct SubscriptionRow {
    stripe_subscription_id: String,
    stripe_customer_id: String,
    price_id: Option<String>,
    item_price_ids: String,
    tier: String,
    status: String,
    current_period_start: Option<Stamp>,
    current_period_end: Option<Stamp>,
    cancel_at_period_end: bool,
    canceled_at: Option<Stamp>,
    trial_end: Option<Stamp>,
    grace_period_end: Option<Stamp>,
    dunning_invoice_id: Option<String>,
    snapshot_event_created: Stamp,
    snapshot_event_rank: i16,
    snapshot_event_id: String,
    status_event_created: Stamp,
    status_event_rank: i16,
    status_event_id: String,
}

fn position(created: Stamp, rank: i16, event_id: String) -> Result<EventPosition, StoreError> {
    Ok(EventPosition {
        created: created.0,
        rank: u8::try_from(rank)
            .map_err(|e| StoreError::Corrupt(Cause::context(format!("event rank {rank}"), e)))?,
        event_id,
    })
}

pub(crate) fn subscription_record(row: SubscriptionRow) -> Result<SubscriptionRecord, StoreError> {
    Ok(SubscriptionRecord {
        item_price_ids: serde_json::from_str(&row.item_price_ids).map_err(|e| {
            StoreError::Corrupt(Cause::context(
                format!("item_price_ids {:?}", row.item_price_ids),
                e,
            ))
        })?,
        snapshot_position: position(
            row.snapshot_event_created,
            row.snapshot_event_rank,
            row.snapshot_event_id,
        )?,
        status_position: position(
            row.status_event_created,
            row.status_event_rank,
            row.status_event_id,
        )?,
        stripe_subscription_id: row.stripe_subscription_id,
        stripe_customer_id: row.stripe_customer_id,
        price_id: row.price_id,
        tier: row.tier,
        status: SubscriptionStatus::parse(&row.status),
        current_period_start: time(row.current_period_start),
        current_period_end: time(row.current_period_end),
        cancel_at_period_end: row.cancel_at_period_end,
        canceled_at: time(row.canceled_at),
        trial_end: time(row.trial_end),
        grace_period_end: time(row.grace_period_end),
        dunning_invoice_id: row.dunning_invoice_id,
    })
}

fn subscription_row(s: &SubscriptionRecord) -> Result<SubscriptionRow, StoreError> {
    Ok(SubscriptionRow {
        stripe_subscription_id: s.stripe_subscription_id.clone(),
        stripe_customer_id: s.stripe_customer_id.clone(),
        price_id: s.price_id.clone(),
        item_price_ids: serde_json::to_string(&s.item_price_ids)
            .map_err(|e| StoreError::Query(Cause::context("item_price_ids", e)))?,
        tier: s.tier.clone(),
        status: s.status.as_str().to_owned(),
        current_period_start: s.current_period_start.map(Stamp::stored),
        current_period_end: s.current_period_end.map(Stamp::stored),
        cancel_at_period_end: s.cancel_at_period_end,
        canceled_at: s.canceled_at.map(Stamp::stored),
        trial_end: s.trial_end.map(Stamp::stored),
        grace_period_end: s.grace_period_end.map(Stamp::stored),
        dunning_invoice_id: s.dunning_invoice_id.clone(),
        snapshot_event_created: Stamp::stored(s.snapshot_position.created),
        snapshot_event_rank: i16::from(s.snapshot_position.rank),
        snapshot_event_id: s.snapshot_position.event_id.clone(),
        status_event_created: Stamp::stored(s.status_position.created),
        status_event_rank: i16::from(s.status_position.rank),
        status_event_id: s.status_position.event_id.clone(),
    })
}

#[async_trait]
impl SubscriptionRead for Tx<'_> {
    /// In id order, byte by byte, as a user's access rows list them.
    async fn customer_subscriptions(
        &mut self,
        stripe_customer_id: &str,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        self.write_subscriptions().await?;
        let of_customer = subscriptions::stripe_customer_id.eq(stripe_customer_id);
        let rows: Vec<SubscriptionRow> = on_conn!(self, |c| subscriptions::table
            .filter(of_customer)
            .order(subscriptions::stripe_subscription_id)
            .select(SubscriptionRow::as_select())
            .load(c)
            .await)?;
        rows.into_iter().map(subscription_record).collect()
    }
}

/// The subscriptions of the ids `$1` that no other transaction has locked, read and locked
/// until commit in id order (`FOR UPDATE SKIP LOCKED`), counted with all of those ids that are
/// stored ([`skip_locked`](crate::skip_locked)).
const LOCK_SKIPPING_LOCKED: &str = "SELECT m.total, l.* \
     FROM (SELECT count(*) AS total FROM subscriptions \
     WHERE stripe_subscription_id = ANY($1)) m \
     LEFT JOIN (SELECT * FROM subscriptions WHERE stripe_subscription_id = ANY($1) \
     ORDER BY stripe_subscription_id FOR UPDATE SKIP LOCKED) l ON true \
     ORDER BY l.stripe_subscription_id";

/// Reads and locks the subscriptions of `ids` that no other transaction has locked, in id
/// order (`FOR UPDATE SKIP LOCKED`), with how many of `ids` are stored
/// ([`LOCK_SKIPPING_LOCKED`]), on a connection that may run other statements at once
/// (`pg::pipelined`).
pub(crate) async fn lock_subscriptions_postgres(
    mut conn: &AsyncPgConnection,
    ids: &[String],
) -> QueryResult<Vec<Counted<SubscriptionRow>>> {
    cached(
        diesel::sql_query(LOCK_SKIPPING_LOCKED)
            .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(ids),
    )
    .load(&mut conn)
    .await
}

impl Tx<'_> {
    /// Those of `ids` this transaction has not read and locked yet (nor found not stored).
    pub(crate) fn subscriptions_to_lock(&self, ids: &[String]) -> Vec<String> {
        ids.iter()
            .filter(|id| !self.kept.subscriptions.contains_key(id.as_str()))
            .cloned()
            .collect()
    }

    /// Keeps the subscriptions of `asked` that [`lock_subscriptions_postgres`] read and locked
    /// (`counted`), for this transaction's next reads. When it locked every one stored, the
    /// others of `asked` are kept as not stored: the caller holds the lock of their customer,
    /// which whoever creates one takes first. When one was skipped (locked elsewhere), which
    /// one cannot be told: those not locked are read again at their turn.
    pub(crate) fn keep_subscriptions(
        &mut self,
        asked: &[String],
        counted: Vec<Counted<SubscriptionRow>>,
    ) -> Result<(), StoreError> {
        let (rows, all) = locked_rows(counted);
        for row in rows {
            let record = subscription_record(row)?;
            self.kept
                .subscriptions
                .insert(record.stripe_subscription_id.clone(), Some(record));
        }
        if all {
            for id in asked {
                self.kept.subscriptions.entry(id.clone()).or_insert(None);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl SubscriptionTx for Tx<'_> {
    /// Postgres locks the row until commit (`FOR UPDATE`); SQLite has no row locks and needs
    /// none: one writer at a time holds the whole database.
    async fn subscription(
        &mut self,
        stripe_subscription_id: &str,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        if let Some(kept) = self.kept.subscriptions.get(stripe_subscription_id) {
            return Ok(kept.clone());
        }
        self.write_subscriptions().await?;
        let row: Option<SubscriptionRow> = on_conn!(self,
            postgres: |c| subscriptions::table
                .find(stripe_subscription_id)
                .select(SubscriptionRow::as_select())
                .for_update()
                .get_result(c)
                .await
                .optional(),
            sqlite: |c| subscriptions::table
                .find(stripe_subscription_id)
                .select(SubscriptionRow::as_select())
                .get_result(c)
                .await
                .optional(),
        )?;
        row.map(subscription_record).transpose()
    }

    /// One statement on Postgres (`= ANY(…) FOR UPDATE SKIP LOCKED`, in id order); none on
    /// SQLite, where `subscription` reads each (one writer at a time: nothing to lock).
    async fn lock_subscriptions(
        &mut self,
        stripe_subscription_ids: &[String],
    ) -> Result<(), StoreError> {
        self.write_subscriptions().await?;
        let ids = self.subscriptions_to_lock(stripe_subscription_ids);
        let Conn::Postgres(conn) = &mut self.conn else {
            return Ok(());
        };
        if ids.is_empty() {
            return Ok(());
        }
        let result = async { lock_subscriptions_postgres(conn.ready().await?, &ids).await }.await;
        let counted = result.map_err(|error| self.statement_failed(error))?;
        self.keep_subscriptions(&ids, counted)
    }

    /// Written with the transaction's other saved subscriptions before the next statement
    /// that reads them, or before the commit ([`Tx::write_subscriptions`]).
    async fn save_subscription(
        &mut self,
        subscription: &SubscriptionRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = subscription_row(subscription)?;
        self.access_writes += 1;
        // Kept as a read finds it (its times in whole microseconds); nothing to follow, nothing
        // built when the transaction keeps nothing. If the write fails, the transaction fails
        // with it.
        if !self.kept.is_empty() {
            self.kept
                .subscription_saved(subscription_record(row.clone())?);
        }
        self.saved_subscriptions
            .insert(row.stripe_subscription_id.clone(), (row, Stamp(at)));
        Ok(())
    }
}

/// The most rows one upsert of [`Tx::write_subscriptions`] writes: each number of rows is a
/// statement of its own in the connection's cache ([`cached`]), so their number is bounded.
const ROWS_PER_UPSERT: usize = 8;

/// The upsert of `$values` (distinct subscriptions), every column but the id set from the row
/// inserted.
macro_rules! upsert {
    ($values:expr) => {{
        use subscriptions as s;
        cached(
            diesel::insert_into(s::table)
                .values($values)
                .on_conflict(s::stripe_subscription_id)
                .do_update()
                .set((
                    s::stripe_customer_id.eq(excluded(s::stripe_customer_id)),
                    s::price_id.eq(excluded(s::price_id)),
                    s::item_price_ids.eq(excluded(s::item_price_ids)),
                    s::tier.eq(excluded(s::tier)),
                    s::status.eq(excluded(s::status)),
                    s::current_period_start.eq(excluded(s::current_period_start)),
                    s::current_period_end.eq(excluded(s::current_period_end)),
                    s::cancel_at_period_end.eq(excluded(s::cancel_at_period_end)),
                    s::canceled_at.eq(excluded(s::canceled_at)),
                    s::trial_end.eq(excluded(s::trial_end)),
                    s::grace_period_end.eq(excluded(s::grace_period_end)),
                    s::dunning_invoice_id.eq(excluded(s::dunning_invoice_id)),
                    s::snapshot_event_created.eq(excluded(s::snapshot_event_created)),
                    s::snapshot_event_rank.eq(excluded(s::snapshot_event_rank)),
                    s::snapshot_event_id.eq(excluded(s::snapshot_event_id)),
                    s::status_event_created.eq(excluded(s::status_event_created)),
                    s::status_event_rank.eq(excluded(s::status_event_rank)),
                    s::status_event_id.eq(excluded(s::status_event_id)),
                    s::updated_at.eq(excluded(s::updated_at)),
                )),
        )
    }};
}

/// Subscriptions a transaction saved and has not written yet, the last save of each, by id
/// (so in the order they are written).
pub(crate) type SavedSubscriptions = BTreeMap<String, (SubscriptionRow, Stamp)>;

/// The upsert of `rows` (at most [`ROWS_PER_UPSERT`]), on a Postgres connection that may run
/// other statements at once (`pg::pipelined`).
pub(crate) async fn upsert_postgres(
    mut conn: &AsyncPgConnection,
    rows: &[(SubscriptionRow, Stamp)],
) -> QueryResult<usize> {
    let values: Vec<_> = rows
        .iter()
        .map(|(row, at)| (row, subscriptions::updated_at.eq(*at)))
        .collect();
    upsert!(values).execute(&mut conn).await
}

impl Tx<'_> {
    /// The subscriptions saved and not written yet, taken to be written by the caller, when
    /// there are some and one upsert ([`upsert_postgres`]) writes them all.
    pub(crate) fn take_one_upsert(&mut self) -> Option<Vec<(SubscriptionRow, Stamp)>> {
        let count = self.saved_subscriptions.len();
        (1..=ROWS_PER_UPSERT).contains(&count).then(|| {
            std::mem::take(&mut self.saved_subscriptions)
                .into_values()
                .collect()
        })
    }

    /// Writes the subscriptions saved since the last write: on Postgres one upsert for up to
    /// [`ROWS_PER_UPSERT`] of them, in id order; on SQLite one upsert each (no round trips to
    /// save). Runs before every statement that reads `subscriptions`, and before the commit:
    /// a shared ingest transaction, which answers its reads from what it keeps, writes each
    /// batch's subscriptions in one statement at its end.
    pub(crate) async fn write_subscriptions(&mut self) -> Result<(), StoreError> {
        if self.saved_subscriptions.is_empty() {
            return Ok(());
        }
        let saved: Vec<_> = std::mem::take(&mut self.saved_subscriptions)
            .into_values()
            .collect();
        for rows in saved.chunks(ROWS_PER_UPSERT) {
            on_conn!(self,
                postgres: |c| upsert_postgres(c, rows).await,
                // Diesel writes no multi-row upsert for SQLite.
                sqlite: |c| async {
                    let mut written = 0;
                    for (row, at) in rows {
                        let value = (row, subscriptions::updated_at.eq(*at));
                        written += upsert!(value).execute(&mut *c).await?;
                    }
                    QueryResult::Ok(written)
                }
                .await,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use billing_domain::{SubscriptionStatus, TierId};
    use billing_ports::{
        AccessSnapshot, ChangeKind, ChangeTx, CustomerRecord, CustomerTx, EventPosition, NewChange,
        SubscriptionRecord, SubscriptionTx,
    };
    use chrono::{DateTime, TimeZone, Utc};
    use diesel::QueryableByName;
    use diesel::sql_types::{BigInt, Text};
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    use crate::testing::TestDatabase;
    use crate::tx::Tx;

    #[derive(QueryableByName, Debug)]
    struct Prepared {
        #[diesel(sql_type = Text)]
        statement: String,
        #[diesel(sql_type = BigInt)]
        runs: i64,
    }

    fn at(second: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_765_000_000 + second, 0).unwrap()
    }

    fn subscription(id: &str, status: SubscriptionStatus, second: i64) -> SubscriptionRecord {
        let position = EventPosition {
            created: at(second),
            rank: status.progression_rank(),
            event_id: format!("evt_1Rv{second:04}Hq2eZvKYlo2CmT8w"),
        };
        SubscriptionRecord {
            stripe_subscription_id: id.to_owned(),
            stripe_customer_id: "cus_Wq4Lk9Tz2XbN7v".to_owned(),
            price_id: Some("price_1Rv9Hq2eZvKYlo2CpR0m".to_owned()),
            item_price_ids: vec!["price_1Rv9Hq2eZvKYlo2CpR0m".to_owned()],
            tier: "PRO".to_owned(),
            status,
            current_period_start: Some(at(0)),
            current_period_end: Some(at(2_592_000)),
            cancel_at_period_end: false,
            canceled_at: None,
            trial_end: (second == 1).then(|| at(1_209_600)),
            grace_period_end: None,
            dunning_invoice_id: None,
            snapshot_position: position.clone(),
            status_position: position,
        }
    }

    /// Three saves of two subscriptions (one saved twice) are written by one upsert of two
    /// rows, prepared once, and the last save of each is what is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn saved_subscriptions_are_written_by_one_statement() {
        let db = TestDatabase::postgres().await;
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        let mut tx = Tx::new(&mut conn);
        let last = save_three(&mut tx).await;
        tx.write_subscriptions().await.unwrap();
        // Nothing left to write: no statement.
        tx.write_subscriptions().await.unwrap();
        assert_eq!(tx.subscription(FIRST).await.unwrap(), Some(last));
        assert!(tx.subscription(SECOND).await.unwrap().is_some());
        one_upsert_of_two_rows_ran_once(&mut conn).await;
    }

    /// A shared ingest transaction's last two writes, its feed records and the subscriptions it
    /// saved, go in one round trip: the records' insert writes the subscriptions with it, by
    /// the same one upsert, and nothing is left to write before the commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_feed_records_insert_writes_the_saved_subscriptions_with_them() {
        let db = TestDatabase::postgres().await;
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        let mut tx = Tx::new(&mut conn);
        let last = save_three(&mut tx).await;
        let snapshot = AccessSnapshot {
            tier: TierId::new("PRO"),
            status: Some(SubscriptionStatus::Active),
            reason: "active".to_owned(),
            grace_period_end: None,
            credits: 0,
        };
        let change = |id: &str, kind| NewChange {
            change_id: id.to_owned(),
            user_id: "user_5tPz8Qm1".to_owned(),
            customer_id: Some("cus_Wq4Lk9Tz2XbN7v".to_owned()),
            kind,
            before: snapshot.clone(),
            after: snapshot.clone(),
            amount: None,
            stripe_event_id: Some("evt_1Rv3Ps2eZvKYlo2CnB6d".to_owned()),
            dedupe_key: None,
            created_at: at(4),
        };
        let records = [
            change("chg_7Hq2Lm9Wx4Rt", ChangeKind::TierChanged),
            change("chg_3Kd8Vn1Zs6Pb", ChangeKind::StatusChanged),
        ];
        assert_eq!(tx.insert_changes(&records).await.unwrap(), 2);
        assert!(
            tx.saved_subscriptions.is_empty(),
            "written with the records"
        );
        assert_eq!(tx.subscription(FIRST).await.unwrap(), Some(last));
        assert!(tx.subscription(SECOND).await.unwrap().is_some());
        one_upsert_of_two_rows_ran_once(&mut conn).await;
    }

    const FIRST: &str = "sub_1Rv8Kd2eZvKYlo2CxQ4n";
    const SECOND: &str = "sub_1Rv2Mb2eZvKYlo2Cw7Hs";

    /// Saves a customer and, in `tx`, two of its subscriptions, the first twice: the first's
    /// last save.
    async fn save_three(tx: &mut Tx<'_>) -> SubscriptionRecord {
        let customer = CustomerRecord {
            stripe_customer_id: "cus_Wq4Lk9Tz2XbN7v".to_owned(),
            user_id: Some("user_5tPz8Qm1".to_owned()),
            email: None,
            deleted: false,
        };
        tx.save_customer(&customer, at(0)).await.unwrap();
        tx.save_subscription(&subscription(FIRST, SubscriptionStatus::Trialing, 1), at(1))
            .await
            .unwrap();
        tx.save_subscription(&subscription(SECOND, SubscriptionStatus::Active, 2), at(2))
            .await
            .unwrap();
        let last = subscription(FIRST, SubscriptionStatus::Active, 3);
        tx.save_subscription(&last, at(3)).await.unwrap();
        last
    }

    /// The connection prepared one subscription upsert, of two rows, and ran it once.
    async fn one_upsert_of_two_rows_ran_once(conn: &mut AsyncPgConnection) {
        let prepared: Vec<Prepared> = diesel::sql_query(
            "SELECT statement, generic_plans + custom_plans AS runs FROM pg_prepared_statements
             WHERE statement LIKE 'INSERT INTO \"subscriptions\"%'",
        )
        .load(conn)
        .await
        .unwrap();
        let [upsert] = prepared.as_slice() else {
            panic!("one upsert expected, found {prepared:?}");
        };
        assert_eq!(upsert.runs, 1, "{upsert:?}");
        assert_eq!(
            upsert.statement.matches("), (").count(),
            1,
            "two rows: {upsert:?}"
        );
    }
}
