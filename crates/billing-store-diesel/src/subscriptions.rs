//! Subscriptions (`subscriptions`): one row per Stripe subscription, with its items (a JSON
//! list) and the positions of the events that last set its snapshot and its status.

use async_trait::async_trait;
use billing_domain::SubscriptionStatus;
use billing_ports::{
    Cause, EventPosition, StoreError, SubscriptionRead, SubscriptionRecord, SubscriptionTx,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::prepared::cached;
use crate::schema::{Stamp, subscriptions, time};
use crate::tx::{Conn, Tx, on_conn};

#[derive(Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = subscriptions, treat_none_as_null = true)]
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

/// Reads and locks the subscriptions of `ids` that no other transaction has locked, in id
/// order (`FOR UPDATE SKIP LOCKED`), on a connection that may run other statements at once
/// (`pg::pipelined`).
pub(crate) async fn lock_subscriptions_postgres(
    mut conn: &AsyncPgConnection,
    ids: &[String],
) -> QueryResult<Vec<SubscriptionRow>> {
    cached(
        subscriptions::table
            .filter(subscriptions::stripe_subscription_id.eq_any(ids))
            .order(subscriptions::stripe_subscription_id)
            .select(SubscriptionRow::as_select())
            .for_update()
            .skip_locked(),
    )
    .load(&mut conn)
    .await
}

impl Tx<'_> {
    /// Those of `ids` this transaction has not read and locked yet.
    pub(crate) fn subscriptions_to_lock(&self, ids: &[String]) -> Vec<String> {
        ids.iter()
            .filter(|id| !self.kept.subscriptions.contains_key(id.as_str()))
            .cloned()
            .collect()
    }

    /// Keeps `rows`, read and locked by [`lock_subscriptions_postgres`], for this
    /// transaction's next reads.
    pub(crate) fn keep_subscriptions(
        &mut self,
        rows: Vec<SubscriptionRow>,
    ) -> Result<(), StoreError> {
        for row in rows {
            let record = subscription_record(row)?;
            self.kept
                .subscriptions
                .insert(record.stripe_subscription_id.clone(), record);
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
        if let Some(locked) = self.kept.subscriptions.get(stripe_subscription_id) {
            return Ok(Some(locked.clone()));
        }
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
        let ids = self.subscriptions_to_lock(stripe_subscription_ids);
        let Conn::Postgres(conn) = &mut self.conn else {
            return Ok(());
        };
        if ids.is_empty() {
            return Ok(());
        }
        let result = lock_subscriptions_postgres(conn, &ids).await;
        let rows = result.map_err(|error| self.statement_failed(error))?;
        self.keep_subscriptions(rows)
    }

    async fn save_subscription(
        &mut self,
        subscription: &SubscriptionRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = subscription_row(subscription)?;
        self.access_writes += 1;
        // Before the statement: if it fails, the transaction fails with it. Kept as a read
        // finds it (its times in whole microseconds); nothing to follow, nothing built (a
        // transaction of one event keeps nothing).
        if !self.kept.is_empty() {
            self.kept
                .subscription_saved(subscription_record(row.clone())?);
        }
        let upsert = cached(
            diesel::insert_into(subscriptions::table)
                .values((&row, subscriptions::updated_at.eq(Stamp(at))))
                .on_conflict(subscriptions::stripe_subscription_id)
                .do_update()
                .set((&row, subscriptions::updated_at.eq(Stamp(at)))),
        );
        on_conn!(self, |c| upsert.execute(c).await)?;
        Ok(())
    }
}
