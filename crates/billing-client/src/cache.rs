//! The optional in-process entitlement cache: each user's entitlements for a caller-set time
//! to live, forgotten on a change of the user (the change feed, a consume, a sync).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use billing_api::Entitlements;

/// Users' entitlements, bounded in number, each kept at most `ttl`.
pub(crate) struct EntitlementCache {
    entries: moka::sync::Cache<String, Arc<Entitlements>>,
    ttl: Duration,
    /// Counts invalidations: an answer fetched while one happened may predate it, and is not
    /// kept.
    epoch: AtomicU64,
}

impl EntitlementCache {
    pub(crate) fn new(ttl: Duration, max_users: u64) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_users)
                .time_to_live(ttl)
                .build(),
            ttl,
            epoch: AtomicU64::new(0),
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    pub(crate) fn get(&self, user_id: &str) -> Option<Arc<Entitlements>> {
        self.entries.get(user_id)
    }

    /// The invalidation count now; take it before fetching what [`Self::insert_unless_invalidated`]
    /// stores.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps `entitlements` unless something was invalidated since `epoch` (the answer may
    /// predate that change).
    pub(crate) fn insert_unless_invalidated(
        &self,
        user_id: &str,
        entitlements: Arc<Entitlements>,
        epoch: u64,
    ) {
        if self.epoch() == epoch {
            self.entries.insert(user_id.to_owned(), entitlements);
            // An invalidation between the check and the insert removes what was just kept.
            if self.epoch() != epoch {
                self.entries.invalidate(user_id);
            }
        }
    }

    pub(crate) fn forget(&self, user_id: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate(user_id);
    }

    pub(crate) fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
    }
}
