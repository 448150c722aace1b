//! A user's access rows (their customer, its subscriptions, their credit balance) read in one
//! statement, the count of writes to them ([`AccessRead`]), and the rows a transaction read
//! under its users' locks and keeps until it writes to them ([`KeptAccess`]).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use billing_ports::{
    AccessRead, AccessRows, AccessTx, CreditRead, LockTx, ReadAhead, StoreError, SubscriptionRecord,
};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

use crate::credits::stored_sources_postgres;
use crate::pg::pipelined;
use crate::prepared::cached;
use crate::schema::{credit_ledger, customers, subscriptions};
use crate::subscriptions::{SubscriptionRow, lock_subscriptions_postgres, subscription_record};
use crate::tx::{Conn, Tx, after_locks, on_conn};

/// One row of the access query: the customer, one of its subscriptions (none when it has
/// none), the user's credit balance.
type AccessRow = (String, Option<SubscriptionRow>, Option<i64>);

/// The user's customer joined to its subscriptions in id order (byte by byte on both backends:
/// the column's collation is `"C"` on Postgres), with the credit balance as a scalar subquery
/// on each row (for every backend, and after a lock).
macro_rules! access_query {
    ($user_id:expr) => {{
        let credits = credit_ledger::table
            .filter(credit_ledger::user_id.eq($user_id))
            .select(sql::<BigInt>(
                "CAST(COALESCE(SUM(credit_ledger.amount), 0) AS BIGINT)",
            ))
            .single_value();
        cached(
            customers::table
                .left_join(
                    subscriptions::table
                        .on(subscriptions::stripe_customer_id.eq(customers::stripe_customer_id)),
                )
                .filter(customers::user_id.eq($user_id))
                .order(subscriptions::stripe_subscription_id)
                .select((
                    customers::stripe_customer_id,
                    Option::<SubscriptionRow>::as_select(),
                    credits,
                )),
        )
    }};
}

/// The access rows of the users a transaction holds the locks of (every writer of a user's
/// rows takes the user's lock, [`AccessTx::lock_then_keep_access`]), as last read, while the
/// transaction wrote none of them, or as its writes left them: read again, they would be the
/// same.
#[derive(Debug, Default)]
pub(crate) struct KeptAccess {
    /// The users whose rows may be kept.
    users: HashSet<String>,
    /// Their rows as read, with the customers they were read through (one at most today:
    /// `customers.user_id` is unique; a list, so a schema allowing more stays right).
    rows: HashMap<String, (AccessRows, Vec<String>)>,
    /// Subscriptions read and locked by [`SubscriptionTx::lock_subscriptions`], or saved by
    /// this transaction, as this transaction last saved them (written before the table's next
    /// read and before the commit, [`Tx::write_subscriptions`]; meanwhile no other transaction
    /// writes them: the row is locked, `FOR UPDATE`, and every writer reads it so first).
    /// `None`: found not stored by `lock_subscriptions` when every stored one asked for was
    /// locked (none is created meanwhile: its creator would hold its customer's lock, which the
    /// caller holds).
    ///
    /// [`SubscriptionTx::lock_subscriptions`]: billing_ports::SubscriptionTx::lock_subscriptions
    pub(crate) subscriptions: HashMap<String, Option<SubscriptionRecord>>,
}

impl KeptAccess {
    /// Whether nothing is kept: no user's access nor any subscription read under locks yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.subscriptions.is_empty()
    }

    /// `user`'s rows, when kept.
    fn get(&self, user_id: &str) -> Option<AccessRows> {
        self.rows.get(user_id).map(|(rows, _)| rows.clone())
    }

    /// Whether `user`'s rows are kept and have no customer: no customer is linked to them
    /// (every writer of `customers.user_id` holds the user's feed lock, and a link this
    /// transaction writes forgets the user's rows).
    pub(crate) fn has_no_customer(&self, user_id: &str) -> bool {
        self.rows
            .get(user_id)
            .is_some_and(|(_, customers)| customers.is_empty())
    }

    /// Keeps `user`'s rows as just read, when their lock is held.
    fn keep(&mut self, user_id: &str, rows: &AccessRows, customers: Vec<String>) {
        if self.users.contains(user_id) {
            self.rows
                .insert(user_id.to_owned(), (rows.clone(), customers));
        }
    }

    /// Forgets `user`'s rows: this transaction wrote to them.
    pub(crate) fn forget_user(&mut self, user_id: &str) {
        self.rows.remove(user_id);
    }

    /// This transaction added `amount` to `user`'s ledger: their kept balance follows.
    pub(crate) fn credited(&mut self, user_id: &str, amount: i64) {
        if let Some((rows, _)) = self.rows.get_mut(user_id) {
            match rows.credits.checked_add(amount) {
                Some(credits) => rows.credits = credits,
                // The database's sum would fail; a read says how.
                None => self.forget_user(user_id),
            }
        }
    }

    /// This transaction wrote `subscription` (as stored): it is kept as written, for
    /// `subscription` to answer (the write locked its row); a user read through its customer
    /// keeps it as written, in its place by id when it is new to them (what reading them back
    /// gives: the access queries order by id byte by byte); a user holding it through another
    /// customer forgets their rows.
    pub(crate) fn subscription_saved(&mut self, subscription: SubscriptionRecord) {
        let (id, customer) = (
            &subscription.stripe_subscription_id,
            &subscription.stripe_customer_id,
        );
        self.subscriptions
            .insert(id.clone(), Some(subscription.clone()));
        self.rows.retain(|_, (rows, customers)| {
            let kept = rows
                .subscriptions
                .iter_mut()
                .find(|s| &s.stripe_subscription_id == id);
            match (customers.contains(customer), kept) {
                (true, Some(kept)) => {
                    *kept = subscription.clone();
                    true
                }
                // New to the customer: in its place, as the access query orders them.
                (true, None) => {
                    let at = rows
                        .subscriptions
                        .partition_point(|s| s.stripe_subscription_id < *id);
                    rows.subscriptions.insert(at, subscription.clone());
                    true
                }
                // Moved from this user's customer to another one (Stripe never does that).
                (false, Some(_)) => false,
                (false, None) => true,
            }
        });
    }

    /// Forgets the rows of every user read through `customer`, or linked to it now
    /// (`user_id`): this transaction wrote to the customer, its subscriptions or its rows.
    pub(crate) fn forget_customer(&mut self, customer_id: &str, user_id: Option<&str>) {
        self.rows
            .retain(|_, (_, customers)| !customers.iter().any(|c| c == customer_id));
        if let Some(user_id) = user_id {
            self.forget_user(user_id);
        }
    }
}

/// `user_id`'s access from the access query's rows (the customer, one of its subscriptions or
/// none) and their balance, with the customers read.
fn access_of(
    rows: impl IntoIterator<Item = (String, Option<SubscriptionRow>)>,
    credits: i64,
) -> Result<(AccessRows, Vec<String>), StoreError> {
    let mut customers: Vec<String> = Vec::new();
    let mut subscriptions = Vec::new();
    for (customer, subscription) in rows {
        if !customers.contains(&customer) {
            customers.push(customer);
        }
        if let Some(subscription) = subscription {
            subscriptions.push(subscription_record(subscription)?);
        }
    }
    let access = AccessRows {
        customer: <[_]>::first(&customers).cloned(),
        subscriptions,
        credits,
    };
    Ok((access, customers))
}

impl Tx<'_> {
    /// `user_id`'s access from the access query's rows, kept when their lock is held. A user
    /// with no customer gets no row; their balance is then read on its own.
    async fn access_from(
        &mut self,
        user_id: &str,
        rows: Vec<AccessRow>,
    ) -> Result<AccessRows, StoreError> {
        let credits = match <[_]>::first(&rows) {
            Some((_, _, credits)) => credits.unwrap_or(0),
            None => self.credit_balance(user_id).await?,
        };
        let rows = rows
            .into_iter()
            .map(|(customer, subscription, _)| (customer, subscription));
        let (access, customers) = access_of(rows, credits)?;
        self.kept.keep(user_id, &access, customers);
        Ok(access)
    }
}

/// One row of the many users' access query: the user, their customer, one of its
/// subscriptions.
type UserAccessRow = (Option<String>, String, Option<SubscriptionRow>);

/// What [`AccessTx::lock_then_keep_access`] read of the users not kept yet.
enum UsersRead<'u> {
    /// One user's rows, by the access query (their balance on each row).
    One(&'u str, Vec<AccessRow>),
    /// Several users' customers and subscriptions, and their balances.
    Many(Vec<UserAccessRow>, Vec<(Option<String>, i64)>),
}

#[async_trait]
impl AccessRead for Tx<'_> {
    /// One statement (`access_query!`), none when kept.
    async fn access_rows(&mut self, user_id: &str) -> Result<AccessRows, StoreError> {
        if let Some(kept) = self.kept.get(user_id) {
            return Ok(kept);
        }
        self.write_saved().await?;
        // Written inside `on_conn!` so `as_select` is built for each backend.
        let rows: Vec<AccessRow> = on_conn!(self, |c| access_query!(user_id).load(c).await)?;
        self.access_from(user_id, rows).await
    }

    fn access_writes(&self) -> Option<u64> {
        Some(self.access_writes)
    }
}

#[async_trait]
impl AccessTx for Tx<'_> {
    /// One round trip on Postgres: the locks and the access query pipelined; none when the
    /// locks are held and the rows kept.
    async fn lock_then_access_rows(
        &mut self,
        keys: &[String],
        user_id: &str,
    ) -> Result<AccessRows, StoreError> {
        if self.kept.rows.contains_key(user_id)
            && self.not_held(keys).is_empty()
            && let Some(kept) = self.kept.get(user_id)
        {
            return Ok(kept);
        }
        self.write_saved().await?;
        let read = after_locks!(self, keys, |c| async move {
            let mut c = c;
            access_query!(user_id).load::<AccessRow>(&mut c).await
        });
        match read {
            Some(rows) => {
                let rows = rows?;
                self.access_from(user_id, rows).await
            }
            None => {
                self.lock_keys(keys).await?;
                self.access_rows(user_id).await
            }
        }
    }

    /// One round trip on Postgres: the locks, then the access of the users not kept yet (one
    /// user: the access query, one statement; more: their customers and subscriptions, then
    /// their balances, two statements with `= ANY` of the users), then the subscriptions to
    /// lock (one statement, `FOR UPDATE SKIP LOCKED`), then which of the credit sources not
    /// seen yet are stored (one statement; those not stored are then added with no statement
    /// of their own, [`CreditTx::add_credit`](billing_ports::CreditTx::add_credit)).
    async fn lock_then_keep_access(
        &mut self,
        keys: &[String],
        users: &[String],
        ahead: ReadAhead<'_>,
    ) -> Result<(), StoreError> {
        let named = users;
        let users: Vec<&str> = users
            .iter()
            .map(String::as_str)
            .filter(|user| !self.kept.rows.contains_key(*user))
            .collect();
        let to_lock = self.subscriptions_to_lock(ahead.subscriptions);
        // SQLite reads nothing ahead: an entry is added by its own statement there.
        let sources = match self.conn {
            Conn::Postgres(_) => self.credit_sources_to_read(ahead.credit_sources),
            Conn::Sqlite(_) => Vec::new(),
        };
        if users.is_empty() && to_lock.is_empty() && sources.is_empty() {
            self.lock_keys(keys).await?;
            // Only once their locks are held: a unit of work that goes on after a busy lock
            // (ingest's shared transaction rolls back whole; an embedding service's may not)
            // must not keep what it reads of them.
            self.kept.users.extend(named.iter().cloned());
            return Ok(());
        }
        self.write_saved().await?;
        let (users, to_lock, asked) = (&users, &to_lock, &sources);
        let read = after_locks!(self, keys, |c| async move {
            let access = async move {
                let (mut rows_conn, mut credits_conn) = (c, c);
                match users.as_slice() {
                    [] => Ok(UsersRead::Many(Vec::new(), Vec::new())),
                    [user] => access_query!(*user)
                        .load::<AccessRow>(&mut rows_conn)
                        .await
                        .map(|rows| UsersRead::One(user, rows)),
                    users => {
                        let rows = cached(
                            customers::table
                                .left_join(
                                    subscriptions::table.on(subscriptions::stripe_customer_id
                                        .eq(customers::stripe_customer_id)),
                                )
                                .filter(customers::user_id.eq_any(users))
                                .order((customers::user_id, subscriptions::stripe_subscription_id))
                                .select((
                                    customers::user_id,
                                    customers::stripe_customer_id,
                                    Option::<SubscriptionRow>::as_select(),
                                )),
                        )
                        .load::<UserAccessRow>(&mut rows_conn);
                        let credits = cached(
                            credit_ledger::table
                                .filter(credit_ledger::user_id.eq_any(users))
                                .group_by(credit_ledger::user_id)
                                .select((
                                    credit_ledger::user_id,
                                    sql::<BigInt>(
                                        "CAST(COALESCE(SUM(credit_ledger.amount), 0) AS BIGINT)",
                                    ),
                                )),
                        )
                        .load::<(Option<String>, i64)>(&mut credits_conn);
                        let (rows, credits) = pipelined(rows, credits).await?;
                        Ok(UsersRead::Many(rows, credits))
                    }
                }
            };
            let locked = async move {
                if to_lock.is_empty() {
                    return Ok(Vec::new());
                }
                lock_subscriptions_postgres(c, to_lock).await
            };
            let stored = stored_sources_postgres(c, asked);
            pipelined(access, pipelined(locked, stored)).await
        });
        let Some(read) = read else {
            // SQLite: the locks are nothing, and each user is read (and kept) in turn; the
            // subscriptions are read at their turn (one writer: nothing to lock).
            self.lock_keys(keys).await?;
            self.kept.users.extend(named.iter().cloned());
            for user in users {
                self.access_rows(user).await?;
            }
            return Ok(());
        };
        let (read, (locked, stored)) = read?;
        self.kept.users.extend(named.iter().cloned());
        self.keep_subscriptions(to_lock, locked)?;
        self.keep_credit_sources(&sources, stored);
        let (rows, credits) = match read {
            UsersRead::One(user, rows) => {
                // Kept by `access_from` (the user's lock is held).
                self.access_from(user, rows).await?;
                return Ok(());
            }
            UsersRead::Many(rows, credits) => (rows, credits),
        };
        let credits: HashMap<String, i64> = credits
            .into_iter()
            .filter_map(|(user, sum)| Some((user?, sum)))
            .collect();
        let mut by_user: HashMap<String, Vec<(String, Option<SubscriptionRow>)>> = HashMap::new();
        for (user, customer, subscription) in rows {
            if let Some(user) = user {
                by_user
                    .entry(user)
                    .or_default()
                    .push((customer, subscription));
            }
        }
        for user in users {
            let rows = by_user.remove(*user).unwrap_or_default();
            let credits = credits.get(*user).copied().unwrap_or(0);
            let (access, customers) = access_of(rows, credits)?;
            self.kept.keep(user, &access, customers);
        }
        Ok(())
    }
}
