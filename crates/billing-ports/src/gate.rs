//! Telling other replicas what this one committed, so their in-process gate caches forget it.
//!
//! A replica that commits a change to what a user may do (an applied webhook, a usage
//! consume, a customer link, a sync) forgets the affected entries of its own gate cache and
//! hands the same [`GateInvalidation`] to a [`GateBroadcast`]; every other replica receives it
//! and forgets those entries too. Delivery is best effort: a lost message is bounded by the
//! caches' time to live, and a receiver that lost its connection forgets everything when it
//! is back.

/// The cached gate state a committed change may have altered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateInvalidation {
    /// Everything (a change that names no customer or user, or too many to list).
    All,
    /// The users linked to these Stripe customers, and these users.
    Keys {
        /// Stripe customer ids (`cus_…`): every user cached under one of them is forgotten.
        customers: Vec<String>,
        /// User ids.
        users: Vec<String>,
    },
}

impl GateInvalidation {
    /// The state of one user.
    pub fn user(user_id: &str) -> Self {
        Self::Keys {
            customers: Vec::new(),
            users: vec![user_id.to_owned()],
        }
    }

    /// What a change naming `customer` and `user` may have altered: both; everything when it
    /// names neither.
    pub fn of(customer: Option<&str>, user: Option<&str>) -> Self {
        if customer.is_none() && user.is_none() {
            return Self::All;
        }
        Self::Keys {
            customers: customer.into_iter().map(str::to_owned).collect(),
            users: user.into_iter().map(str::to_owned).collect(),
        }
    }
}

/// Carries this replica's committed [`GateInvalidation`]s to the other replicas.
///
/// [`GateBroadcast::publish`] is called after the commit, on the request's path: it must not
/// block (an adapter queues and sends in the background) and cannot fail (a message it could
/// not send is bounded by the caches' time to live; the adapter logs it).
pub trait GateBroadcast: Send + Sync {
    /// Queues `change` for the other replicas.
    fn publish(&self, change: &GateInvalidation);
}
