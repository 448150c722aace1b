//! The change feed's outbox: one record per change of a user's access, written in the same
//! transaction as the change.
//!
//! An ingest transaction that is not a duplicate ([`Before::take`], after the claim) first
//! takes the lock of the customer the event names (which its effects take first anyway), then
//! finds the users the event may concern (the user it names, the user linked to the customer
//! it names, the user of the payment it names), takes each one's `feed:{user}` lock (before
//! any lock of its effects, in sorted order) and reads each one's [`AccessSnapshot`]. Every
//! writer takes these locks in that order: customer, `feed:` users, payments and rows. The effects run
//! and leave [`Note`]s of what happened that no snapshot shows (a payment, a refund, a
//! dispute). When the event was applied (not stale, not ignored), [`Before::record`] reads the
//! snapshots again (only when the effects wrote to what they are read from, by the store's
//! count of such writes, [`AccessRead::access_writes`](billing_ports::AccessRead); from what
//! the transaction kept, where the store follows its own writes) and writes
//! one record per kind that occurred: the differences between before and after (tier, status,
//! a grace period starting, credits granted) and the notes.
//! A duplicate, a stale event or one that changed nothing writes none.
//!
//! Two transactions that write records of one user hold that user's `feed:` lock until they
//! commit, so their records follow their commit order in the feed, and the last record of a
//! user has the user's access as it stands.
//!
//! A user found only after the effects (a payment row linked by a transaction that committed
//! between the users' read and the payment's lock) comes after locks later in that order: their
//! `feed:` lock is only tried. When another transaction holds it, this one rolls back with
//! [`AppError::FeedLockBusy`] instead of waiting (which could deadlock), and ingest retries it
//! at once with that user among the users locked first.
//!
//! `grace_ended` has no event: [`BillingApp::record_grace_ended`] (a background job) writes it
//! once per grace period (a unique key) after the period's end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

use billing_domain::{AccessReason, BillingEvent, Catalog, Fact, Money, entitlement};
use billing_ports::{
    AccessRows, AccessSnapshot, BillingRead, BillingStore, BillingTx, ChangeKind, ChangePurge,
    ChangeRecord, CustomerRecord, FeedStore, NewChange, ReadAhead, ScopedFutureExt, StoreError,
    SubscriptionRecord,
};
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use crate::BillingApp;
use crate::api_keys::BASE62;
use crate::effects::Context;
use crate::entitlements::state_of;
use crate::error::AppError;
use crate::gate;

/// Something an effect did that the access snapshots do not show.
#[derive(Debug, Clone)]
pub(crate) struct Note {
    /// What happened (a payment, a refund, a dispute).
    pub(crate) kind: ChangeKind,
    /// The user it concerns, when the effect knows it.
    pub(crate) user: Option<String>,
    /// The customer it concerns, when the effect knows it.
    pub(crate) customer: Option<String>,
    /// Its amount.
    pub(crate) amount: Option<Money>,
    /// Written at most once under this key (a payment reported by two events of one
    /// invoice), when it has one.
    pub(crate) once: Option<String>,
}

impl Note {
    /// A note of `kind` about the payment of `customer` / `user`.
    pub(crate) fn new(
        kind: ChangeKind,
        user: Option<&str>,
        customer: Option<&str>,
        amount: Option<Money>,
    ) -> Self {
        Self {
            kind,
            user: user.map(str::to_owned),
            customer: customer.map(str::to_owned),
            amount,
            once: None,
        }
    }

    /// The note written at most once under `key`.
    pub(crate) fn once(mut self, key: String) -> Self {
        self.once = Some(key);
        self
    }
}

/// The notes one event's effects leave.
#[derive(Debug, Default)]
pub(crate) struct Notes(Mutex<Vec<Note>>);

impl Notes {
    /// Records `note`.
    pub(crate) fn push(&self, note: Note) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(note);
    }

    fn take(&self) -> Vec<Note> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The deciding subscription, the access it grants at `now`, and the grace period's end as
/// the entitlements answer states it.
pub(crate) fn decide<'s, 'c>(
    subscriptions: &'s [SubscriptionRecord],
    catalog: &'c Catalog,
    now: DateTime<Utc>,
) -> (
    Option<&'s SubscriptionRecord>,
    billing_domain::Entitlement<'c>,
    Option<DateTime<Utc>>,
) {
    let subscription = gate::deciding(subscriptions, catalog, now);
    let granted = entitlement(subscription.map(state_of).as_ref(), catalog, now);
    let grace_period_end = match &granted.reason {
        AccessReason::InGracePeriod { until } => Some(*until),
        _ => subscription.and_then(|s| s.grace_period_end),
    };
    (subscription, granted, grace_period_end)
}

/// A user's access at `now` from their subscriptions and credit balance.
fn access(
    subscriptions: &[SubscriptionRecord],
    credits: i64,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> AccessSnapshot {
    let (subscription, granted, grace_period_end) = decide(subscriptions, catalog, now);
    AccessSnapshot {
        tier: granted.tier.id.clone(),
        status: subscription.map(|s| s.status.clone()),
        reason: granted.reason.code().to_owned(),
        grace_period_end,
        credits,
    }
}

/// The user linked to a customer, if any.
async fn user_of(tx: &mut dyn BillingTx, customer: &str) -> Result<Option<String>, StoreError> {
    Ok(tx.customer(customer).await?.and_then(|c| c.user_id))
}

/// The users `event` names itself or through `customer` (its customer as read under its
/// lock): those of [`users_named`] known without reading payments.
pub(crate) fn users_of(event: &BillingEvent, customer: Option<CustomerRecord>) -> BTreeSet<String> {
    let mut users = BTreeSet::new();
    users.extend(event.fact.user_id().map(str::to_owned));
    users.extend(customer.and_then(|c| c.user_id));
    users
}

/// Takes the feed locks of `users` (sorted), the locks of `payments` (their ids, sorted), then
/// the link locks of `links` (users an effect will link a customer to, sorted:
/// [`link_lock`](crate::effects::customer::link_lock)) in one statement, and reads all the
/// users' access with them, kept by the transaction for each event's [`Before::take`]
/// (following its writes), then reads and locks `subscriptions` (those no other transaction
/// holds) and which of `credit_sources` are stored ([`ReadAhead`]), all in one round trip
/// where the store can: how a transaction applying several events locks and reads their
/// users before the first effect.
pub(crate) async fn lock_then_keep(
    tx: &mut dyn BillingTx,
    users: BTreeSet<String>,
    payments: BTreeSet<String>,
    links: BTreeSet<String>,
    subscriptions: BTreeSet<String>,
    credit_sources: BTreeSet<String>,
) -> Result<(), StoreError> {
    let locks: Vec<String> = users
        .iter()
        .map(|user| feed_lock(user))
        .chain(payments)
        .chain(
            links
                .iter()
                .map(|user| crate::effects::customer::link_lock(user)),
        )
        .collect();
    let users: Vec<String> = users.into_iter().collect();
    let subscriptions: Vec<String> = subscriptions.into_iter().collect();
    let credit_sources: Vec<String> = credit_sources.into_iter().collect();
    let ahead = ReadAhead {
        subscriptions: &subscriptions,
        credit_sources: &credit_sources,
    };
    tx.lock_then_keep_access(&locks, &users, ahead).await
}

/// The users `event` may change, as stored now; `customer` is the event's customer as read
/// under its lock (see `ingest`).
pub(crate) async fn users_named(
    tx: &mut dyn BillingTx,
    event: &BillingEvent,
    customer: Option<CustomerRecord>,
) -> Result<BTreeSet<String>, StoreError> {
    let mut users = users_of(event, customer);
    let payment = payment_ids(&event.fact);
    if let Some((intent, charge)) = payment.filter(|(i, c)| i.is_some() || c.is_some()) {
        for row in tx.payments_matching(intent, charge).await? {
            users.extend(row.user_id);
            if let Some(customer) = row.stripe_customer_id {
                users.extend(user_of(tx, &customer).await?);
            }
        }
    }
    Ok(users)
}

/// The payment intent and charge a payment, refund or dispute fact names.
pub(crate) fn payment_ids(fact: &Fact) -> Option<(Option<&str>, Option<&str>)> {
    match fact {
        Fact::PaymentIntent { payment_intent, .. } => Some((
            Some(payment_intent.id.as_str()),
            payment_intent.latest_charge_id.as_deref(),
        )),
        Fact::ChargeRefunded(charge) => Some((
            charge.payment_intent_id.as_deref(),
            Some(charge.id.as_str()),
        )),
        Fact::RefundUpdated(refund) => Some((
            refund.payment_intent_id.as_deref(),
            refund.charge_id.as_deref(),
        )),
        Fact::Dispute { dispute, .. } => Some((
            dispute.payment_intent_id.as_deref(),
            dispute.charge_id.as_deref(),
        )),
        _ => None,
    }
}

/// The feed lock of `user`: taken before any other lock by every writer of their records.
fn feed_lock(user: &str) -> String {
    format!("feed:{user}")
}

/// A stable, unique record id: `chg_` and 24 base62 characters of a hash of what makes the
/// record unique (its cause, its user, its kind).
fn change_id(cause: &str, user: &str, kind: ChangeKind) -> String {
    let digest = Sha256::new()
        .chain_update(cause.as_bytes())
        .chain_update([0])
        .chain_update(user.as_bytes())
        .chain_update([0])
        .chain_update(kind.as_str().as_bytes())
        .finalize();
    let mut id = String::from("chg_");
    id.extend(
        digest
            .iter()
            .take(24)
            .map(|b| char::from(BASE62[usize::from(*b % 62)])),
    );
    id
}

/// The kinds of change between two snapshots of one user: every difference but fewer credits
/// (no event takes credits away) is at least one kind, so each user's records chain.
fn differences(before: &AccessSnapshot, after: &AccessSnapshot) -> Vec<ChangeKind> {
    let grace = AccessReason::InGracePeriod {
        until: DateTime::<Utc>::MIN_UTC,
    }
    .code();
    let mut kinds = Vec::new();
    if before.tier != after.tier {
        kinds.push(ChangeKind::TierChanged);
    }
    // The status, or why access holds as it does (a cancelation scheduled, a grace period).
    if before.status != after.status
        || before.reason != after.reason
        || before.grace_period_end != after.grace_period_end
    {
        kinds.push(ChangeKind::StatusChanged);
    }
    if after.reason == grace
        && (before.reason != grace || before.grace_period_end != after.grace_period_end)
    {
        kinds.push(ChangeKind::GraceStarted);
    }
    if after.credits > before.credits {
        kinds.push(ChangeKind::CreditsGranted);
    }
    kinds
}

/// A noted kind's amount and key.
type Noted = (Option<Money>, Option<String>);

/// A user's access as read, and the customer it was read through.
struct Read {
    access: AccessSnapshot,
    customer: Option<String>,
}

/// A user's access decided from their access rows.
fn read_of(rows: AccessRows, ctx: &Context) -> Read {
    Read {
        access: access(&rows.subscriptions, rows.credits, &ctx.catalog, ctx.now),
        customer: rows.customer,
    }
}

/// Reads `user`'s access rows and decides their access from them.
async fn read_access(
    tx: &mut dyn BillingRead,
    ctx: &Context,
    user: &str,
) -> Result<Read, StoreError> {
    Ok(read_of(tx.access_rows(user).await?, ctx))
}

/// The users an event's transaction may change, locked, with their access before its effects.
pub(crate) struct Before {
    users: BTreeMap<String, Read>,
    /// The store's count of writes to access rows when they were read
    /// ([`AccessRead::access_writes`]): unchanged after the effects, they wrote none.
    writes: Option<u64>,
}

/// What caused the records a transaction writes.
pub(crate) struct Cause<'a> {
    /// Unique per transaction (the event id, or a sync's own key): the record ids derive
    /// from it.
    pub(crate) key: &'a str,
    /// The Stripe event, when there is one.
    pub(crate) stripe_event_id: Option<&'a str>,
}

impl Before {
    /// Takes the feed locks of `users` (sorted, before any other lock of the transaction),
    /// reads their access and has the transaction keep it
    /// ([`AccessTx::lock_then_keep_access`](billing_ports::AccessTx::lock_then_keep_access):
    /// the feed locks are what every writer of their rows takes), so that reading it again
    /// after the effects follows the transaction's own writes without a statement where the
    /// store can. What `ahead` names (the subscriptions the effects will change and the
    /// credit sources they may add, under locks held) is read in the same round trip
    /// ([`ReadAhead`]).
    pub(crate) async fn take(
        tx: &mut dyn BillingTx,
        ctx: &Context,
        users: BTreeSet<String>,
        ahead: ReadAhead<'_>,
    ) -> Result<Self, StoreError> {
        let locks: Vec<String> = users.iter().map(|user| feed_lock(user)).collect();
        let users: Vec<String> = users.into_iter().collect();
        tx.lock_then_keep_access(&locks, &users, ahead).await?;
        let mut before = BTreeMap::new();
        for user in users {
            let read = read_access(tx, ctx, &user).await?;
            before.insert(user, read);
        }
        Ok(Self {
            users: before,
            writes: tx.access_writes(),
        })
    }

    /// After the effects were applied: writes one record per kind of change of each user
    /// (those locked by [`Before::take`] and `users`, the users concerned as stored now) and
    /// per note ([`Before::changes`]); returns how many.
    pub(crate) async fn record(
        self,
        tx: &mut dyn BillingTx,
        ctx: &Context,
        cause: &Cause<'_>,
        users: BTreeSet<String>,
    ) -> Result<usize, AppError> {
        let changes = self.changes(tx, ctx, cause, users).await?;
        Ok(tx.insert_changes(&changes).await?)
    }

    /// After the effects were applied: the records [`Before::record`] writes, in order, for the
    /// caller to write later in the same transaction, in order with every other change record
    /// it writes (with [`ChangeTx::insert_changes`](billing_ports::ChangeTx::insert_changes)).
    /// The users' locks are taken and their access read now.
    pub(crate) async fn changes(
        mut self,
        tx: &mut dyn BillingTx,
        ctx: &Context,
        cause: &Cause<'_>,
        users: BTreeSet<String>,
    ) -> Result<Vec<NewChange>, AppError> {
        let mut noted: BTreeMap<String, BTreeMap<ChangeKind, Noted>> = BTreeMap::new();
        for note in ctx.notes.take() {
            let user = match (note.user, &note.customer) {
                (Some(user), _) => Some(user),
                (None, Some(customer)) => user_of(tx, customer).await?,
                (None, None) => None,
            };
            if let Some(user) = user {
                noted
                    .entry(user)
                    .or_default()
                    .insert(note.kind, (note.amount, note.once));
            }
        }
        let mut users = users;
        users.extend(self.users.keys().cloned());
        users.extend(noted.keys().cloned());
        // No write to any access rows since they were read: every user's access is as read.
        let unchanged = self.writes.is_some() && tx.access_writes() == self.writes;
        let mut changes = Vec::new();
        for user in users {
            let locked_before = self.users.remove(&user);
            // Known only after the effects (a payment row linked by a transaction that
            // committed between the users' read and the payment's lock): locked now, before
            // its access is read, so this record follows the user's records in the feed. It
            // comes after locks later in the order, so it is only tried: if a transaction of
            // this user holds it (and may wait for a lock this one holds), roll back; ingest
            // retries with the user locked first (`FeedLockBusy`).
            if locked_before.is_none() && !tx.try_lock_key(&feed_lock(&user)).await? {
                return Err(AppError::FeedLockBusy(user));
            }
            let (before, after) = match locked_before {
                Some(read) if unchanged => {
                    if !noted.contains_key(&user) {
                        continue;
                    }
                    (read.access.clone(), read)
                }
                Some(read) => (read.access, read_access(tx, ctx, &user).await?),
                // A user locked only now: a payment, refund or dispute does not change their
                // access, so it is the same before and after.
                None => {
                    let after = read_access(tx, ctx, &user).await?;
                    (after.access.clone(), after)
                }
            };
            let Read {
                access: after,
                customer,
            } = after;
            let mut kinds: BTreeMap<ChangeKind, Noted> = differences(&before, &after)
                .into_iter()
                .map(|kind| (kind, (None, None)))
                .collect();
            kinds.extend(noted.remove(&user).unwrap_or_default());
            for (kind, (amount, once)) in kinds {
                changes.push(NewChange {
                    change_id: change_id(cause.key, &user, kind),
                    user_id: user.clone(),
                    customer_id: customer.clone(),
                    kind,
                    before: before.clone(),
                    after: after.clone(),
                    amount,
                    stripe_event_id: cause.stripe_event_id.map(str::to_owned),
                    dedupe_key: once,
                    created_at: ctx.now,
                });
            }
        }
        Ok(changes)
    }
}

/// One page of the change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePage {
    /// The records after the cursor, in commit order.
    pub changes: Vec<ChangeRecord>,
    /// The position to read on from: the last record's, else the cursor given, else the head.
    pub next: i64,
}

/// How many ended grace periods one run of [`BillingApp::record_grace_ended`] handles at most.
const GRACE_BATCH: u32 = 100;

impl<S: BillingStore + FeedStore> BillingApp<S> {
    /// Up to `limit` change records after position `after` (from the first kept when `None`
    /// or 0), in commit order; `None` when `after` names no record (beyond the newest, or
    /// never given). [`AppError::CursorExpired`] when `after` is before the retention horizon
    /// ([`FeedStore::change_horizon`]), so records after it may have been purged.
    pub async fn changes(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Option<ChangePage>, AppError> {
        let after = after.filter(|after| *after != 0);
        let changes = self.store().changes_after(after, limit).await?;
        if let Some(after) = after {
            // Read after the rows: the horizon moves before records go, so a cursor at or
            // past it now was past it when the rows were read, and none after it was missing.
            let horizon = self.store().change_horizon().await?;
            if after < horizon {
                return Err(AppError::CursorExpired {
                    cursor: after,
                    horizon,
                });
            }
            // Positions after the horizon are never deleted (the purge's statement is bounded
            // by it) and are numbered without gaps, so a cursor past it with records after it
            // names a record: only an empty page needs the check.
            if after > horizon && changes.is_empty() && !self.store().change_exists(after).await? {
                return Ok(None);
            }
        }
        let next = match (changes.last(), after) {
            (Some(last), _) => last.seq,
            (None, Some(after)) => after,
            (None, None) => self.store().change_head().await?,
        };
        Ok(Some(ChangePage { changes, next }))
    }

    /// One batch of the change feed's retention: records created more than
    /// [`AppSettings::change_retention`](crate::AppSettings::change_retention) ago, at most
    /// [`AppSettings::purge_batch`](crate::AppSettings::purge_batch) positions
    /// ([`FeedStore::purge_changes`]). Run it until it returns `advanced: false`: that last
    /// batch also deletes the records kept earlier that may go now.
    pub async fn purge_changes_batch(&self) -> Result<ChangePurge, StoreError> {
        let before = self.clock().now() - self.settings().change_retention;
        self.store()
            .purge_changes(before, self.settings().purge_batch)
            .await
    }

    /// Writes a `grace_ended` record for each past-due subscription of a linked user whose
    /// recorded grace period has ended and has none yet (at most one per grace period, by a
    /// unique key); returns how many were written. `before` is the user's access just before
    /// the end, `after` their access now.
    pub async fn record_grace_ended(&self) -> Result<usize, AppError> {
        let now = self.clock().now();
        let ended = self.store().grace_periods_ended(now, GRACE_BATCH).await?;
        let mut written = 0;
        for grace in &ended {
            let catalog = self.catalog();
            let recorded = self
                .store()
                .transaction(move |tx| {
                    async move {
                        tx.lock_key(&feed_lock(&grace.user_id)).await?;
                        let still = tx.subscription(&grace.subscription_id).await?;
                        if !still.is_some_and(|s| {
                            s.status == billing_domain::SubscriptionStatus::PastDue
                                && s.grace_period_end == Some(grace.grace_period_end)
                        }) {
                            return Ok::<_, AppError>(false);
                        }
                        let rows = tx.access_rows(&grace.user_id).await?;
                        let just_before = grace.grace_period_end - TimeDelta::microseconds(1);
                        let before =
                            access(&rows.subscriptions, rows.credits, catalog, just_before);
                        let after = access(&rows.subscriptions, rows.credits, catalog, now);
                        let key = format!(
                            "grace_ended:{}:{}",
                            grace.subscription_id,
                            grace.grace_period_end.timestamp_micros()
                        );
                        let change = NewChange {
                            change_id: change_id(&key, &grace.user_id, ChangeKind::GraceEnded),
                            user_id: grace.user_id.clone(),
                            customer_id: rows.customer,
                            kind: ChangeKind::GraceEnded,
                            before,
                            after,
                            amount: None,
                            stripe_event_id: None,
                            dedupe_key: Some(key),
                            created_at: now,
                        };
                        Ok(tx.insert_change(&change).await?)
                    }
                    .scope_boxed()
                })
                .await?;
            if recorded {
                written += 1;
            }
        }
        if written > 0 {
            self.changes_committed();
        }
        Ok(written)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use billing_domain::{SubscriptionStatus, TierId};

    use super::*;

    fn snapshot(tier: &str, status: Option<SubscriptionStatus>, reason: &str) -> AccessSnapshot {
        AccessSnapshot {
            tier: TierId::new(tier),
            status,
            reason: reason.to_owned(),
            grace_period_end: None,
            credits: 0,
        }
    }

    #[test]
    fn each_difference_is_one_kind_and_no_difference_is_none() {
        let free = snapshot("FREE", None, "no_subscription");
        assert!(differences(&free, &free).is_empty());
        let mut pro = snapshot("PRO", Some(SubscriptionStatus::Active), "active");
        pro.credits = 1500;
        assert_eq!(
            differences(&free, &pro),
            [
                ChangeKind::TierChanged,
                ChangeKind::StatusChanged,
                ChangeKind::CreditsGranted
            ]
        );
        let mut grace = snapshot("PRO", Some(SubscriptionStatus::PastDue), "in_grace_period");
        grace.credits = 1500;
        grace.grace_period_end = Some(DateTime::<Utc>::UNIX_EPOCH);
        assert_eq!(
            differences(&pro, &grace),
            [ChangeKind::StatusChanged, ChangeKind::GraceStarted]
        );
        // Fewer credits (none are taken away by an event) is no grant.
        assert!(differences(&grace, &grace).is_empty());
    }

    #[test]
    fn a_record_id_is_stable_and_differs_by_cause_user_and_kind() {
        let id = change_id("evt_1", "user_a", ChangeKind::TierChanged);
        assert_eq!(id, change_id("evt_1", "user_a", ChangeKind::TierChanged));
        assert!(id.starts_with("chg_") && id.len() == 28, "{id}");
        for other in [
            change_id("evt_2", "user_a", ChangeKind::TierChanged),
            change_id("evt_1", "user_b", ChangeKind::TierChanged),
            change_id("evt_1", "user_a", ChangeKind::StatusChanged),
        ] {
            assert_ne!(id, other);
        }
    }
}
