//! The change feed's outbox (`changes`): records written inside the unit of work that changed a
//! user's access ([`ChangeTx`]), numbered in commit order and read a page at a time
//! ([`FeedStore`](billing_ports::FeedStore)'s queries).
//!
//! A record's place in the feed, `seq`, is not its insert id: on Postgres an id drawn at insert
//! does not follow commit order (a transaction holding id 9 may commit after the one holding
//! 10, and a reader that had passed 10 would never see 9). Records are written with `seq` NULL
//! and numbered by [`Tx::number_changes`] before every read: under one transaction-scoped
//! advisory lock, every committed record still unnumbered gets the next numbers in id order.
//! A record committed later is numbered later, after everything already served. SQLite runs
//! one writing transaction at a time, so there insert order is commit order and a record gets
//! `seq = id` as it is written.

use async_trait::async_trait;
use billing_domain::{SubscriptionStatus, TierId};
use billing_ports::{
    AccessSnapshot, ChangeKind, ChangePurge, ChangeRecord, ChangeTx, GraceEnded, NewChange,
    StoreError, insert_changes_in_turn,
};
use chrono::{DateTime, Utc};
use diesel::connection::TransactionManagerStatus;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{
    AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
    TransactionManager,
};

use crate::credits::{CreditRow, insert_pending_postgres};
use crate::payments::money;
use crate::pg::pipelined;
use crate::prepared::cached;
use crate::schema::{Stamp, change_horizon, changes, customers, stamp, subscriptions, time};
use crate::subscriptions::{SubscriptionRow, upsert_postgres};
use crate::tx::{Conn, Tx, on_conn};

/// Numbers the committed records still unnumbered, in id order after the highest number
/// (Postgres). One simple-protocol round trip: the statements run in one implicit transaction,
/// so the advisory lock is held until the numbers are committed, and the `UPDATE` (a new
/// snapshot, taken after the lock) sees every earlier numbering.
const NUMBER_CHANGES: &str = "\
SELECT pg_advisory_xact_lock(hashtextextended('billing:changes:seq', 0)); \
UPDATE changes AS c SET seq = n.seq \
FROM (SELECT id, (SELECT coalesce(max(seq), 0) FROM changes) \
             + row_number() OVER (ORDER BY id) AS seq \
      FROM changes WHERE seq IS NULL) AS n \
WHERE c.id = n.id";

/// The records at positions `$1` (exclusive) to `$2` the retention deletes, never past the
/// stored horizon (the statement holds it, whatever the caller computed: readers are told of
/// no other gap), all but those a push delivery not yet succeeded points at (it still sends
/// them) and each user's newest `grace_ended` record (the grace-period job's "already
/// recorded" check reads it). Written once for both backends: SQLite reads `$1` and `$2` as
/// named parameters, numbered in the order they first appear, which is their order here.
const PURGE_CHANGES: &str = "\
DELETE FROM changes \
WHERE seq > $1 AND seq <= $2 \
  AND seq <= (SELECT purged_through FROM change_horizon WHERE id = 1) \
  AND NOT EXISTS (SELECT 1 FROM push_deliveries d \
                  WHERE d.change_seq = changes.seq AND d.status <> 'succeeded') \
  AND NOT (kind = 'grace_ended' AND NOT EXISTS ( \
      SELECT 1 FROM changes n \
      WHERE n.user_id = changes.user_id AND n.kind = 'grace_ended' AND n.id > changes.id))";

/// The succeeded deliveries of positions `$1` (exclusive) to `$2`, except each endpoint's
/// newest: the endpoint follows the feed from it (`push::ENQUEUE_POSTGRES`). Their attempts
/// go with them (`ON DELETE CASCADE`).
const PURGE_DELIVERIES: &str = "\
DELETE FROM push_deliveries \
WHERE change_seq > $1 AND change_seq <= $2 AND status = 'succeeded' \
  AND change_seq < (SELECT max(m.change_seq) FROM push_deliveries m \
                    WHERE m.endpoint_id = push_deliveries.endpoint_id)";

#[derive(Insertable)]
#[diesel(table_name = changes)]
struct NewChangeRow<'a> {
    change_id: &'a str,
    user_id: &'a str,
    customer_id: Option<&'a str>,
    kind: &'static str,
    before_tier: &'a str,
    before_status: Option<&'a str>,
    before_reason: &'a str,
    before_grace_end: Option<Stamp>,
    before_credits: i64,
    after_tier: &'a str,
    after_status: Option<&'a str>,
    after_reason: &'a str,
    after_grace_end: Option<Stamp>,
    after_credits: i64,
    amount_minor: Option<i64>,
    currency: Option<&'a str>,
    stripe_event_id: Option<&'a str>,
    dedupe_key: Option<&'a str>,
    created_at: Stamp,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = changes)]
pub(crate) struct ChangeRow {
    seq: Option<i64>,
    change_id: String,
    user_id: String,
    customer_id: Option<String>,
    kind: String,
    before_tier: String,
    before_status: Option<String>,
    before_reason: String,
    before_grace_end: Option<Stamp>,
    before_credits: i64,
    after_tier: String,
    after_status: Option<String>,
    after_reason: String,
    after_grace_end: Option<Stamp>,
    after_credits: i64,
    amount_minor: Option<i64>,
    currency: Option<String>,
    stripe_event_id: Option<String>,
    dedupe_key: Option<String>,
    created_at: Stamp,
}

fn snapshot(
    tier: String,
    status: Option<String>,
    reason: String,
    grace_end: Option<Stamp>,
    credits: i64,
) -> AccessSnapshot {
    AccessSnapshot {
        tier: TierId::new(tier),
        status: status.as_deref().map(SubscriptionStatus::parse),
        reason,
        grace_period_end: time(grace_end),
        credits,
    }
}

impl TryFrom<ChangeRow> for ChangeRecord {
    type Error = StoreError;

    fn try_from(row: ChangeRow) -> Result<Self, StoreError> {
        let amount = match (row.amount_minor, row.currency.as_deref()) {
            (Some(minor), Some(currency)) => Some(money(minor, currency)?),
            _ => None,
        };
        Ok(ChangeRecord {
            seq: row.seq.unwrap_or_default(),
            change: NewChange {
                change_id: row.change_id,
                user_id: row.user_id,
                customer_id: row.customer_id,
                kind: row.kind.parse::<ChangeKind>()?,
                before: snapshot(
                    row.before_tier,
                    row.before_status,
                    row.before_reason,
                    row.before_grace_end,
                    row.before_credits,
                ),
                after: snapshot(
                    row.after_tier,
                    row.after_status,
                    row.after_reason,
                    row.after_grace_end,
                    row.after_credits,
                ),
                amount,
                stripe_event_id: row.stripe_event_id,
                dedupe_key: row.dedupe_key,
                created_at: row.created_at.0,
            },
        })
    }
}

/// `changes` written by one statement on Postgres, in their order (ids drawn in that order),
/// a record whose dedupe key exists or came earlier skipped; how many were written.
async fn insert_all_postgres(
    mut conn: &diesel_async::AsyncPgConnection,
    changes: &[NewChange],
) -> QueryResult<usize> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
    let text = |f: fn(&NewChange) -> &str| changes.iter().map(f).collect::<Vec<_>>();
    let optional =
        |f: fn(&NewChange) -> Option<&str>| changes.iter().map(f).collect::<Vec<Option<&str>>>();
    let number = |f: fn(&NewChange) -> i64| changes.iter().map(f).collect::<Vec<i64>>();
    let moment = |f: fn(&NewChange) -> Option<DateTime<Utc>>| {
        changes
            .iter()
            .map(f)
            .collect::<Vec<Option<DateTime<Utc>>>>()
    };
    cached(
        diesel::sql_query(
            "INSERT INTO changes (change_id, user_id, customer_id, kind, before_tier, \
             before_status, before_reason, before_grace_end, before_credits, after_tier, \
             after_status, after_reason, after_grace_end, after_credits, amount_minor, \
             currency, stripe_event_id, dedupe_key, created_at) \
             SELECT change_id, user_id, customer_id, kind, before_tier, before_status, \
             before_reason, before_grace_end, before_credits, after_tier, after_status, \
             after_reason, after_grace_end, after_credits, amount_minor, currency, \
             stripe_event_id, dedupe_key, created_at \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::timestamptz[], $9::int8[], $10::text[], $11::text[], \
             $12::text[], $13::timestamptz[], $14::int8[], $15::int8[], $16::text[], \
             $17::text[], $18::text[], $19::timestamptz[]) WITH ORDINALITY \
             AS t(change_id, user_id, customer_id, kind, before_tier, before_status, \
             before_reason, before_grace_end, before_credits, after_tier, after_status, \
             after_reason, after_grace_end, after_credits, amount_minor, currency, \
             stripe_event_id, dedupe_key, created_at, n) \
             ORDER BY n \
             ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind::<Array<Text>, _>(text(|c| &c.change_id))
        .bind::<Array<Text>, _>(text(|c| &c.user_id))
        .bind::<Array<Nullable<Text>>, _>(optional(|c| c.customer_id.as_deref()))
        .bind::<Array<Text>, _>(text(|c| c.kind.as_str()))
        .bind::<Array<Text>, _>(text(|c| c.before.tier.as_str()))
        .bind::<Array<Nullable<Text>>, _>(optional(|c| {
            c.before.status.as_ref().map(|s| s.as_str())
        }))
        .bind::<Array<Text>, _>(text(|c| &c.before.reason))
        .bind::<Array<Nullable<Timestamptz>>, _>(moment(|c| c.before.grace_period_end))
        .bind::<Array<BigInt>, _>(number(|c| c.before.credits))
        .bind::<Array<Text>, _>(text(|c| c.after.tier.as_str()))
        .bind::<Array<Nullable<Text>>, _>(optional(|c| c.after.status.as_ref().map(|s| s.as_str())))
        .bind::<Array<Text>, _>(text(|c| &c.after.reason))
        .bind::<Array<Nullable<Timestamptz>>, _>(moment(|c| c.after.grace_period_end))
        .bind::<Array<BigInt>, _>(number(|c| c.after.credits))
        .bind::<Array<Nullable<BigInt>>, _>(
            changes
                .iter()
                .map(|c| c.amount.as_ref().map(|m| m.amount_minor))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            changes
                .iter()
                .map(|c| c.amount.as_ref().map(|m| m.currency.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(optional(|c| c.stripe_event_id.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|c| c.dedupe_key.as_deref()))
        .bind::<Array<Timestamptz>, _>(changes.iter().map(|c| c.created_at).collect::<Vec<_>>()),
    )
    .execute(&mut conn)
    .await
}

#[async_trait]
impl ChangeTx for Tx<'_> {
    /// On SQLite the record is numbered as it is written (`seq = id`); on Postgres it waits
    /// for [`Tx::number_changes`], after its commit. Records waiting for the commit go first.
    async fn insert_change(&mut self, change: &NewChange) -> Result<bool, StoreError> {
        self.write_waiting_changes().await?;
        let (before, after) = (&change.before, &change.after);
        let row = NewChangeRow {
            change_id: &change.change_id,
            user_id: &change.user_id,
            customer_id: change.customer_id.as_deref(),
            kind: change.kind.as_str(),
            before_tier: before.tier.as_str(),
            before_status: before.status.as_ref().map(|s| s.as_str()),
            before_reason: &before.reason,
            before_grace_end: stamp(before.grace_period_end),
            before_credits: before.credits,
            after_tier: after.tier.as_str(),
            after_status: after.status.as_ref().map(|s| s.as_str()),
            after_reason: &after.reason,
            after_grace_end: stamp(after.grace_period_end),
            after_credits: after.credits,
            amount_minor: change.amount.as_ref().map(|m| m.amount_minor),
            currency: change.amount.as_ref().map(|m| m.currency.as_str()),
            stripe_event_id: change.stripe_event_id.as_deref(),
            dedupe_key: change.dedupe_key.as_deref(),
            created_at: Stamp(change.created_at),
        };
        // Cached per shape of its optional columns (a few: which of status, grace end,
        // amount and key a record has).
        let insert = cached(
            diesel::insert_into(changes::table)
                .values(&row)
                .on_conflict(changes::dedupe_key)
                .do_nothing()
                .returning(changes::id),
        );
        let id: Option<i64> = on_conn!(self, |c| insert.get_result(c).await.optional())?;
        let Some(id) = id else {
            return Ok(false);
        };
        if let Conn::Sqlite(_) = self.conn {
            let number = diesel::update(changes::table.find(id)).set(changes::seq.eq(Some(id)));
            on_conn!(self, |c| number.execute(c).await)?;
        }
        Ok(true)
    }

    /// One statement on Postgres (`INSERT … SELECT FROM unnest(…)`, the same text for any
    /// number of records; a single record as `insert_change` writes it), sent with the
    /// upsert of the subscriptions the transaction saved and has not written yet when one
    /// writes them all ([`Tx::write_subscriptions`]); one or two per record on SQLite, in
    /// turn.
    async fn insert_changes(&mut self, changes: &[NewChange]) -> Result<usize, StoreError> {
        self.write_waiting_changes().await?;
        match changes {
            [] => return Ok(0),
            // One row binds less as itself than as nineteen arrays.
            [change] => return Ok(usize::from(self.insert_change(change).await?)),
            _ => {}
        }
        let saved = match self.conn {
            Conn::Postgres(_) => self.take_one_upsert(),
            Conn::Sqlite(_) => None,
        };
        let written = match &mut self.conn {
            Conn::Postgres(conn) => {
                async { with_saved(conn.ready().await?, changes, saved.as_deref(), None).await }
                    .await
            }
            Conn::Sqlite(_) => return insert_changes_in_turn(self, changes).await,
        };
        written.map_err(|error| self.statement_failed(error))
    }

    /// In a Postgres transaction ([`transaction_postgres`](crate::tx::transaction_postgres))
    /// the records wait for the commit, which sends them in its round trip
    /// ([`Tx::commit_with_changes`]); anywhere else they are written now.
    async fn insert_changes_at_commit(
        &mut self,
        changes: Vec<NewChange>,
    ) -> Result<(), StoreError> {
        match &mut self.changes_at_commit {
            Some(waiting) => {
                waiting.extend(changes);
                Ok(())
            }
            None => self.insert_changes(&changes).await.map(|_| ()),
        }
    }
}

impl Tx<'_> {
    /// Writes the records waiting for the commit now, before a record written at once: the
    /// ids, and so the feed, follow the order records were given in, whichever way.
    async fn write_waiting_changes(&mut self) -> Result<(), StoreError> {
        let waiting = match &mut self.changes_at_commit {
            Some(waiting) if !waiting.is_empty() => std::mem::take(waiting),
            _ => return Ok(()),
        };
        self.insert_changes(&waiting).await.map(|_| ())
    }

    /// The end of a Postgres transaction whose work succeeded: when change records wait for
    /// the commit, they (with the saved subscriptions when one upsert writes them all, and
    /// the pending ledger entries when one insert writes them all) and the `COMMIT` are sent
    /// in one round trip, in that order ([`pipelined`]); true then, once the `COMMIT`
    /// answered. Otherwise (no records: records wait only in a top-level transaction) what
    /// was saved is written ([`Tx::write_saved`]), and false says the caller commits. An
    /// error leaves the transaction counted open: the caller rolls back (the transaction may
    /// already have ended, when the `COMMIT` was sent).
    pub(crate) async fn commit_with_changes(&mut self) -> Result<bool, StoreError> {
        type Manager = AnsiTransactionManager;
        // Records wait only in a top-level Postgres transaction (`transaction_postgres`).
        let changes = self.changes_at_commit.take().unwrap_or_default();
        if changes.is_empty() {
            self.write_saved().await?;
            return Ok(false);
        }
        // None saved, or more than one statement writes them: those go first.
        let saved = self.take_one_upsert();
        if saved.is_none() {
            self.write_subscriptions().await?;
        }
        let credits = self.take_one_credit_insert();
        if credits.is_none() {
            self.write_credits().await?;
        }
        let Conn::Postgres(conn) = &mut self.conn else {
            unreachable!("a top-level Postgres transaction");
        };
        let committed = async {
            // A `BEGIN` still pending goes first (ingest's claim always carries it).
            let shared: &AsyncPgConnection = conn.ready().await?;
            let writes = with_saved(shared, &changes, saved.as_deref(), credits.as_deref());
            // What makes this safe: `pipelined` is `Ok` only when every write is. A `COMMIT`
            // in a transaction a failed write aborted answers `ROLLBACK` with no error (and
            // tokio-postgres reads that as 0 rows, `Ok`), so the writes' errors, never the
            // `COMMIT`'s answer, are what says it did not commit. Never send this `COMMIT`
            // without the writes before it, nor ignore their errors.
            pipelined(writes, commit(shared)).await
        }
        .await;
        match committed {
            Ok((_, ())) => {
                // Ended on the server: the connection is out of any transaction.
                *<Manager as TransactionManager<AsyncPgConnection>>::transaction_manager_status_mut(
                    conn.connection(),
                ) = TransactionManagerStatus::default();
                Ok(true)
            }
            Err(error) => Err(self.statement_failed(error)),
        }
    }
}

/// The records `changes` (one statement, [`insert_all_postgres`]) and, when given, the upsert
/// of `saved` subscriptions and the insert of pending ledger entries `credits`
/// ([`insert_pending_postgres`]) after them, in that order, in the same round trip
/// ([`pipelined`]): how many records were written.
async fn with_saved(
    conn: &AsyncPgConnection,
    changes: &[NewChange],
    saved: Option<&[(SubscriptionRow, Stamp)]>,
    credits: Option<&[CreditRow]>,
) -> QueryResult<usize> {
    let saved = async move {
        match saved {
            Some(saved) => upsert_postgres(conn, saved).await.map(drop),
            None => Ok(()),
        }
    };
    let credits = async move {
        match credits {
            Some(credits) => insert_pending_postgres(conn, credits).await.map(drop),
            None => Ok(()),
        }
    };
    pipelined(
        insert_all_postgres(conn, changes),
        pipelined(saved, credits),
    )
    .await
    .map(|(written, _)| written)
}

/// `COMMIT`, prepared once per connection like every statement of ingest's path.
async fn commit(mut conn: &AsyncPgConnection) -> QueryResult<()> {
    cached(diesel::sql_query("COMMIT"))
        .execute(&mut conn)
        .await
        .map(|_| ())
}

impl Tx<'_> {
    /// Numbers the committed records still unnumbered (Postgres; nothing to do on SQLite).
    /// Runs outside any transaction.
    pub(crate) async fn number_changes(&mut self) -> Result<(), StoreError> {
        let numbered = match &mut self.conn {
            Conn::Postgres(conn) => conn.connection().batch_execute(NUMBER_CHANGES).await,
            Conn::Sqlite(_) => Ok(()),
        };
        numbered.map_err(|error| self.statement_failed(error))
    }

    /// Up to `limit` numbered records after `after` (after the retention horizon when
    /// `None`: the records kept before it are not the feed's any more), in order.
    pub(crate) async fn changes_after(
        &mut self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let after = match after {
            Some(after) => after,
            None => self.change_horizon().await?,
        };
        let query = changes::table
            .filter(changes::seq.gt(after))
            .order(changes::seq.asc())
            .limit(i64::from(limit));
        let rows: Vec<ChangeRow> =
            on_conn!(self, |c| query.select(ChangeRow::as_select()).load(c).await)?;
        rows.into_iter().map(ChangeRecord::try_from).collect()
    }

    /// The position through which records may have been purged (0 when none was).
    pub(crate) async fn change_horizon(&mut self) -> Result<i64, StoreError> {
        let query = change_horizon::table.select(change_horizon::purged_through);
        let horizon: Option<i64> = on_conn!(self, |c| query.first(c).await.optional())?;
        Ok(horizon.unwrap_or(0))
    }

    /// One batch of the feed's retention ([`FeedStore::purge_changes`](billing_ports::FeedStore::purge_changes)):
    /// the horizon is moved first, in a statement of its own, then the records and deliveries
    /// are deleted. Whatever stops in between, every record a reader may be served is kept;
    /// the next batch deletes what this one left. A batch that moves nothing sweeps every
    /// position at or before the horizon instead, for the records kept there that may go now
    /// (their delivery succeeded since, a newer `grace_ended` record of their user).
    pub(crate) async fn purge_changes(
        &mut self,
        before: DateTime<Utc>,
        batch: u32,
    ) -> Result<ChangePurge, StoreError> {
        let horizon = self.change_horizon().await?;
        let head = self.change_head().await?;
        let end = horizon.saturating_add(i64::from(batch));
        let fresh = changes::table
            .select(diesel::dsl::min(changes::seq))
            .filter(changes::seq.gt(horizon))
            .filter(changes::seq.le(end))
            .filter(changes::created_at.ge(Stamp(before)));
        let fresh: Option<i64> = on_conn!(self, |c| fresh.get_result(c).await)?;
        let target = end
            .min(head - 1)
            .min(fresh.map_or(i64::MAX, |seq| seq - 1))
            .max(horizon);
        let advanced = target > horizon;
        let (from, through) = if advanced {
            let advance = diesel::update(
                change_horizon::table.filter(change_horizon::purged_through.lt(target)),
            )
            .set(change_horizon::purged_through.eq(target));
            on_conn!(self, |c| advance.execute(c).await)?;
            (horizon, target)
        } else {
            (0, horizon)
        };
        let changes = on_conn!(self, |c| diesel::sql_query(PURGE_CHANGES)
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(through)
            .execute(c)
            .await)?;
        let deliveries = on_conn!(self, |c| diesel::sql_query(PURGE_DELIVERIES)
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(through)
            .execute(c)
            .await)?;
        Ok(ChangePurge {
            horizon: target,
            advanced,
            changes: changes as u64,
            deliveries: deliveries as u64,
        })
    }

    /// The highest number given, 0 when none.
    pub(crate) async fn change_head(&mut self) -> Result<i64, StoreError> {
        let query = changes::table.select(diesel::dsl::max(changes::seq));
        let head: Option<i64> = on_conn!(self, |c| query.get_result(c).await)?;
        Ok(head.unwrap_or(0))
    }

    /// True when a record has number `seq`.
    pub(crate) async fn change_exists(&mut self, seq: i64) -> Result<bool, StoreError> {
        let query = diesel::dsl::select(diesel::dsl::exists(
            changes::table.filter(changes::seq.eq(seq)),
        ));
        on_conn!(self, |c| query.get_result(c).await)
    }

    /// Past-due subscriptions of linked users whose recorded grace period ended at or before
    /// `now`, without a `grace_ended` record of the user written since that end.
    pub(crate) async fn grace_periods_ended(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<GraceEnded>, StoreError> {
        self.write_subscriptions().await?;
        let recorded = changes::table
            .filter(changes::kind.eq(ChangeKind::GraceEnded.as_str()))
            .filter(changes::user_id.nullable().eq(customers::user_id))
            .filter(
                changes::created_at
                    .nullable()
                    .ge(subscriptions::grace_period_end),
            );
        let query = subscriptions::table
            .inner_join(
                customers::table
                    .on(customers::stripe_customer_id.eq(subscriptions::stripe_customer_id)),
            )
            .filter(subscriptions::status.eq(SubscriptionStatus::PastDue.as_str()))
            .filter(subscriptions::grace_period_end.le(Stamp(now)))
            .filter(customers::user_id.is_not_null())
            .filter(diesel::dsl::not(diesel::dsl::exists(recorded)))
            .order(subscriptions::grace_period_end.asc())
            .limit(i64::from(limit))
            .select((
                customers::user_id,
                subscriptions::stripe_subscription_id,
                subscriptions::grace_period_end,
            ));
        let rows: Vec<(Option<String>, String, Option<Stamp>)> =
            on_conn!(self, |c| query.load(c).await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(user, subscription, end)| {
                Some(GraceEnded {
                    user_id: user?,
                    subscription_id: subscription,
                    grace_period_end: end?.0,
                })
            })
            .collect())
    }
}
