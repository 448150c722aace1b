//! The in-process gate cache: what a user's access is computed from, kept in memory so the
//! feature check and the entitlements answer without a database round trip.
//!
//! An entry holds the stored facts (the user's customer, its subscriptions, the credit balance
//! and the usage of the metering period it was loaded in), never a decision: the tier, the grace
//! period and the limits are computed from it with the current time on every check, so a trial
//! or a grace period still ends on time while an entry is cached.
//!
//! Freshness:
//! - **On this replica, read-your-writes.** Everything the application commits invalidates the
//!   entries it may change before it returns: an applied webhook (by the customer and the user
//!   it names; the whole cache when it names neither), a customer link, a sync. A load that
//!   raced with an invalidation is answered but not kept (a generation count decides), so an
//!   entry never holds data older than the last invalidation of it. An allowed usage consume
//!   raises the entry's usage to the committed total instead ([`GateCache::note_usage`]):
//!   counters only grow within a period, so the larger of two totals is the newer one.
//! - **An entry lives [`AppSettings::gate_ttl`](crate::AppSettings::gate_ttl) from its load**:
//!   raising its usage does not extend it.
//! - **Other replicas, within milliseconds.** The same invalidation (for a consume: the user)
//!   is handed to a [`GateBroadcast`]
//!   ([`BillingApp::broadcast_gate_changes`](crate::BillingApp::broadcast_gate_changes)),
//!   after the commit. On Postgres that is `billing_store_diesel::GateChannel`: one dedicated
//!   connection per process that sends them with `pg_notify('billing_gate', …)` (coalesced,
//!   asynchronous commit) and `LISTEN`s for the other replicas', which it hands to
//!   [`BillingApp::forget_gate_state`](crate::BillingApp::forget_gate_state). It skips the
//!   notifications of its own connection (this process already forgot those entries; hearing
//!   them again would be harmless, one more reload). The notification is not sent inside the
//!   writing transaction, on purpose: a transaction that notifies takes Postgres' global
//!   notify lock through its commit, which serialises every notifying commit of the cluster
//!   (measured in `docs/benchmarks.md`: 3–6× fewer commits per second at 16 and 64 in flight).
//! - **When a notification is lost, the time to live bounds it.** Other writers (an operator's
//!   SQL), a process that dies between its commit and the notification, and every change made
//!   while a replica's listening connection is down are seen when the entry expires:
//!   staleness is bounded by [`AppSettings::gate_ttl`](crate::AppSettings::gate_ttl). A
//!   listener that (re)connects forgets everything once it is listening again, since it may
//!   have missed notifications; while it is disconnected it retries with backoff.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use billing_domain::{BillingEvent, Catalog, entitlement};
use billing_ports::{GateBroadcast, GateInvalidation, SubscriptionRecord};
use chrono::{DateTime, Utc};

use crate::entitlements::state_of;

/// What a user's access is computed from, as stored when it was loaded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserState {
    /// The Stripe customer linked to the user, if any.
    pub(crate) customer_id: Option<String>,
    /// That customer's subscriptions.
    pub(crate) subscriptions: Vec<SubscriptionRecord>,
    /// The credit balance.
    pub(crate) credits: i64,
    /// The start of the metering period `usage` counts in.
    pub(crate) period_start: DateTime<Utc>,
    /// Every catalog metric's usage in that period.
    pub(crate) usage: Vec<(String, u64)>,
}

/// The subscription that decides a user's access: the one granting the highest tier now; among
/// equals, the one whose last snapshot is newest.
pub(crate) fn deciding<'s>(
    subscriptions: &'s [SubscriptionRecord],
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> Option<&'s SubscriptionRecord> {
    if let [only] = subscriptions {
        return Some(only);
    }
    subscriptions.iter().max_by(|a, b| {
        let rank = |s: &SubscriptionRecord| entitlement(Some(&state_of(s)), catalog, now).tier.rank;
        (rank(a), &a.snapshot_position).cmp(&(rank(b), &b.snapshot_position))
    })
}

/// The cache of [`UserState`]s by user id, with the index that finds them by customer.
pub(crate) struct GateCache {
    /// `None` when caching is off (a zero time to live).
    users: Option<moka::sync::Cache<String, Arc<UserState>>>,
    /// Bumped by every invalidation; guarded by `index` for writers.
    generation: AtomicU64,
    /// The users cached under each customer id (may name users no longer cached).
    index: Mutex<HashMap<String, HashSet<String>>>,
    capacity: u64,
    /// Where this replica's invalidations go for the other replicas (set once, at wiring).
    broadcast: OnceLock<Arc<dyn GateBroadcast>>,
}

/// Entries expire `ttl` after they were first inserted: replacing an entry's value (a usage
/// consume raising its usage) keeps its deadline, so no entry outlives its load by more than
/// the time to live.
struct FromLoad(Duration);

impl moka::Expiry<String, Arc<UserState>> for FromLoad {
    fn expire_after_create(
        &self,
        _user: &String,
        _state: &Arc<UserState>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.0)
    }
}

impl GateCache {
    /// A cache of at most `capacity` users, each kept at most `ttl`; `ttl` zero disables it.
    pub(crate) fn new(ttl: Duration, capacity: u64) -> Self {
        let users = (!ttl.is_zero() && capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(FromLoad(ttl))
                .build()
        });
        Self {
            users,
            generation: AtomicU64::new(0),
            index: Mutex::new(HashMap::new()),
            capacity,
            broadcast: OnceLock::new(),
        }
    }

    /// The cached state of `user`, if any.
    pub(crate) fn get(&self, user: &str) -> Option<Arc<UserState>> {
        self.users.as_ref()?.get(user)
    }

    /// The generation to hand back to [`GateCache::insert`] after a load started now.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps `state` for `user` unless something was invalidated since `generation` was read
    /// (the load may then predate a commit it should show). An entry already cached for the
    /// same period (a concurrent load's, maybe raised by a consume since) keeps the larger
    /// usage of each metric.
    pub(crate) fn insert(&self, user: &str, mut state: Arc<UserState>, generation: u64) {
        let Some(users) = &self.users else {
            return;
        };
        let mut index = self.lock_index();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if let Some(cached) = users.get(user)
            && cached.period_start == state.period_start
        {
            let merged = Arc::make_mut(&mut state);
            for (metric, used) in &mut merged.usage {
                if let Some((_, newer)) = cached.usage.iter().find(|(m, _)| m == metric) {
                    *used = (*used).max(*newer);
                }
            }
        }
        if let Some(customer) = &state.customer_id {
            // The index only grows between invalidations; bound it like the cache.
            if index.len() as u64 > self.capacity.saturating_mul(2) {
                index.clear();
                users.invalidate_all();
            }
            index
                .entry(customer.clone())
                .or_default()
                .insert(user.to_owned());
        }
        users.insert(user.to_owned(), state);
    }

    /// After an allowed consume committed: `user`'s usage of `metric` in the period starting at
    /// `period_start` is now `used`. This replica raises its entry ([`GateCache::raise_usage`]);
    /// the other replicas forget the user (they reload the counter on its next check).
    pub(crate) fn note_usage(
        &self,
        user: &str,
        period_start: DateTime<Utc>,
        metric: &str,
        used: u64,
    ) {
        self.raise_usage(user, period_start, metric, used);
        if let Some(broadcast) = self.broadcast.get() {
            broadcast.publish(&GateInvalidation::user(user));
        }
    }

    /// Here only: records that `user`'s committed usage of `metric` in the period starting at
    /// `period_start` is now `used`: a cached entry of that period keeps the larger of its
    /// usage and `used`, and its deadline. Without such an entry the generation is bumped
    /// instead, so that a load in flight, which may have read the counter before this commit,
    /// is not kept.
    ///
    /// Runs under the index lock, like every insert and invalidation, so an entry forgotten
    /// concurrently is never put back.
    fn raise_usage(&self, user: &str, period_start: DateTime<Utc>, metric: &str, used: u64) {
        let Some(users) = &self.users else {
            return;
        };
        let _index = self.lock_index();
        let Some(cached) = users
            .get(user)
            .filter(|cached| cached.period_start == period_start)
        else {
            self.generation.fetch_add(1, Ordering::AcqRel);
            return;
        };
        if cached
            .usage
            .iter()
            .any(|(m, counted)| m == metric && *counted >= used)
        {
            return;
        }
        let mut raised = UserState::clone(&cached);
        match raised.usage.iter_mut().find(|(m, _)| m == metric) {
            Some((_, counted)) => *counted = used,
            None => raised.usage.push((metric.to_owned(), used)),
        }
        users.insert(user.to_owned(), Arc::new(raised));
    }

    /// Sends every later invalidation of this replica's commits to `broadcast` too; false
    /// (and ignored) when one was set already.
    pub(crate) fn set_broadcast(&self, broadcast: Arc<dyn GateBroadcast>) -> bool {
        self.broadcast.set(broadcast).is_ok()
    }

    /// After a commit: forgets `user`, here and on the other replicas.
    pub(crate) fn invalidate_user(&self, user: &str) {
        self.committed(&GateInvalidation::user(user));
    }

    /// After a commit: forgets the users of `customer` and `user`, here and on the other
    /// replicas.
    pub(crate) fn invalidate_customer(&self, customer: &str, user: Option<&str>) {
        self.committed(&GateInvalidation::of(Some(customer), user));
    }

    /// After a commit: forgets what an applied event may have changed, here and on the other
    /// replicas: the users of the customer it names and the user it names; everything when it
    /// names neither (a refund or dispute known by its charge alone).
    pub(crate) fn invalidate_event(&self, event: &BillingEvent) {
        self.committed(&GateInvalidation::of(
            event.fact.customer_id(),
            event.fact.user_id(),
        ));
    }

    /// Forgets `change` here, then hands it to the broadcast (even when this replica caches
    /// nothing: the others may).
    fn committed(&self, change: &GateInvalidation) {
        self.forget(change);
        if let Some(broadcast) = self.broadcast.get() {
            broadcast.publish(change);
        }
    }

    /// Forgets what `change` names, here only: the users cached under each customer it names
    /// and each user it names, or everything.
    pub(crate) fn forget(&self, change: &GateInvalidation) {
        let Some(users) = &self.users else {
            return;
        };
        let mut index = self.bump();
        match change {
            GateInvalidation::All => {
                index.clear();
                users.invalidate_all();
            }
            GateInvalidation::Keys {
                customers,
                users: named,
            } => {
                for customer in customers {
                    for cached in index.remove(customer).into_iter().flatten() {
                        users.invalidate(&cached);
                    }
                }
                for user in named {
                    users.invalidate(user);
                }
            }
        }
    }

    /// Bumps the generation and returns the index lock (held while invalidating, so an insert
    /// sees either the old generation and is invalidated after, or the new one and skips).
    fn bump(&self) -> MutexGuard<'_, HashMap<String, HashSet<String>>> {
        let index = self.lock_index();
        self.generation.fetch_add(1, Ordering::AcqRel);
        index
    }

    fn lock_index(&self) -> MutexGuard<'_, HashMap<String, HashSet<String>>> {
        // The index is only a hint: a panic elsewhere while it was held leaves it usable.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use billing_domain::facts::{CustomerFacts, Fact};
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 4, 1, 12, 0, 0).unwrap()
    }

    fn state(customer: Option<&str>, credits: i64) -> Arc<UserState> {
        Arc::new(UserState {
            customer_id: customer.map(str::to_owned),
            subscriptions: Vec::new(),
            credits,
            period_start: t0(),
            usage: vec![("api_calls".to_owned(), 7)],
        })
    }

    fn event(fact: Fact) -> BillingEvent {
        BillingEvent {
            id: "evt_1TcQ8r2eZvKYlo2Cf0Xn".to_owned(),
            event_type: "customer.updated".to_owned(),
            api_version: Some("2025-03-31.basil".to_owned()),
            livemode: false,
            created: t0(),
            fact,
        }
    }

    fn customer_event(customer: &str, user: Option<&str>) -> BillingEvent {
        event(Fact::Customer {
            customer: CustomerFacts {
                id: customer.to_owned(),
                email: None,
                metadata_user_id: user.map(str::to_owned),
            },
            deleted: false,
        })
    }

    fn cache() -> GateCache {
        GateCache::new(Duration::from_secs(60), 1_000)
    }

    #[test]
    fn an_event_forgets_the_users_of_its_customer_and_the_user_it_names() {
        let cache = cache();
        for (user, customer) in [
            ("user_a", Some("cus_A")),
            ("user_b", Some("cus_B")),
            ("user_new", None),
        ] {
            cache.insert(user, state(customer, 1), cache.generation());
        }
        cache.invalidate_event(&customer_event("cus_A", Some("user_new")));
        assert!(cache.get("user_a").is_none());
        assert!(cache.get("user_new").is_none());
        assert_eq!(cache.get("user_b").unwrap().credits, 1);
    }

    #[test]
    fn an_event_naming_no_customer_or_user_forgets_everything() {
        let cache = cache();
        cache.insert("user_a", state(Some("cus_A"), 1), cache.generation());
        cache.invalidate_event(&event(Fact::Unhandled));
        assert!(cache.get("user_a").is_none());
    }

    #[test]
    fn a_load_that_raced_an_invalidation_is_not_kept() {
        let cache = cache();
        let before = cache.generation();
        // A commit lands while the load is in flight.
        cache.invalidate_user("user_other");
        cache.insert("user_a", state(Some("cus_A"), 1), before);
        assert!(cache.get("user_a").is_none());
        cache.insert("user_a", state(Some("cus_A"), 2), cache.generation());
        assert_eq!(cache.get("user_a").unwrap().credits, 2);
    }

    /// Records what it was asked to publish.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<GateInvalidation>>);

    impl GateBroadcast for Recorded {
        fn publish(&self, change: &GateInvalidation) {
            self.0.lock().unwrap().push(change.clone());
        }
    }

    #[test]
    fn a_commit_is_published_once_and_a_remote_change_is_not_published_again() {
        let cache = cache();
        let recorded = Arc::new(Recorded::default());
        assert!(cache.set_broadcast(recorded.clone()));
        assert!(!cache.set_broadcast(Arc::new(Recorded::default())));
        cache.invalidate_user("user_a");
        cache.invalidate_event(&customer_event("cus_A", None));
        cache.invalidate_event(&event(Fact::Unhandled));
        cache.forget(&GateInvalidation::user("user_b"));
        assert_eq!(
            *recorded.0.lock().unwrap(),
            vec![
                GateInvalidation::user("user_a"),
                GateInvalidation::Keys {
                    customers: vec!["cus_A".to_owned()],
                    users: Vec::new()
                },
                GateInvalidation::All,
            ]
        );
    }

    #[test]
    fn a_disabled_cache_still_publishes_what_it_commits() {
        let cache = GateCache::new(Duration::ZERO, 1_000);
        let recorded = Arc::new(Recorded::default());
        cache.set_broadcast(recorded.clone());
        cache.invalidate_user("user_a");
        assert_eq!(
            *recorded.0.lock().unwrap(),
            vec![GateInvalidation::user("user_a")]
        );
    }

    #[test]
    fn a_remote_change_forgets_the_users_of_its_customers_and_its_users() {
        let cache = cache();
        for (user, customer) in [
            ("user_a", Some("cus_A")),
            ("user_a2", Some("cus_A")),
            ("user_b", Some("cus_B")),
            ("user_c", None),
            ("user_d", None),
        ] {
            cache.insert(user, state(customer, 1), cache.generation());
        }
        let before = cache.generation();
        cache.forget(&GateInvalidation::Keys {
            customers: vec!["cus_A".to_owned(), "cus_unknown".to_owned()],
            users: vec!["user_c".to_owned()],
        });
        assert_ne!(cache.generation(), before, "a racing load must not be kept");
        for gone in ["user_a", "user_a2", "user_c"] {
            assert!(cache.get(gone).is_none(), "{gone}");
        }
        for kept in ["user_b", "user_d"] {
            assert!(cache.get(kept).is_some(), "{kept}");
        }
        cache.forget(&GateInvalidation::All);
        assert!(cache.get("user_b").is_none());
        assert!(cache.get("user_d").is_none());
    }

    #[test]
    fn a_consume_raises_the_cached_usage_and_never_lowers_it() {
        let cache = cache();
        cache.insert("user_a", state(Some("cus_A"), 1), cache.generation());
        cache.note_usage("user_a", t0(), "api_calls", 12);
        cache.note_usage("user_a", t0(), "ai_generations", 2);
        // A consume answered late, with an older total, changes nothing.
        cache.note_usage("user_a", t0(), "api_calls", 9);
        let cached = cache.get("user_a").unwrap();
        assert_eq!(
            cached.usage,
            [
                ("api_calls".to_owned(), 12),
                ("ai_generations".to_owned(), 2)
            ]
        );
        // A load that read the counter before those consumes keeps their totals.
        cache.insert("user_a", state(Some("cus_A"), 1), cache.generation());
        assert_eq!(cache.get("user_a").unwrap().usage[0].1, 12);
    }

    #[test]
    fn a_consume_of_an_uncached_user_discards_the_loads_in_flight() {
        let cache = cache();
        let before = cache.generation();
        cache.note_usage("user_a", t0(), "api_calls", 12);
        // The load may have read the counter before the consume committed.
        cache.insert("user_a", state(Some("cus_A"), 1), before);
        assert!(cache.get("user_a").is_none());
        // Another period's entry is not raised either.
        cache.insert("user_a", state(Some("cus_A"), 1), cache.generation());
        let later = t0() + chrono::TimeDelta::days(31);
        let generation = cache.generation();
        cache.note_usage("user_a", later, "api_calls", 3);
        assert_eq!(cache.get("user_a").unwrap().usage[0].1, 7);
        assert_ne!(cache.generation(), generation);
    }

    #[test]
    fn a_zero_time_to_live_caches_nothing() {
        let cache = GateCache::new(Duration::ZERO, 1_000);
        cache.insert("user_a", state(None, 1), cache.generation());
        assert!(cache.get("user_a").is_none());
    }
}
