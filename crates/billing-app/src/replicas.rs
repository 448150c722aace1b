//! Several replicas on one database: what the application offers to keep their gate caches
//! in step (see [`crate::gate`] for the freshness contract).

use std::sync::Arc;

use billing_ports::{BillingStore, GateBroadcast, GateInvalidation};

use crate::BillingApp;

impl<S: BillingStore> BillingApp<S> {
    /// From now on, hands every invalidation this replica's commits cause to `broadcast` as
    /// well (after the commit), for the other replicas. Set once per application (clones share
    /// it); false, and `broadcast` unused, when one was set already.
    pub fn broadcast_gate_changes(&self, broadcast: Arc<dyn GateBroadcast>) -> bool {
        self.gate().set_broadcast(broadcast)
    }

    /// Forgets the cached gate state `change` names (a change another replica committed, or
    /// [`GateInvalidation::All`] after notifications may have been missed). Not broadcast
    /// again.
    pub fn forget_gate_state(&self, change: &GateInvalidation) {
        self.gate().forget(change);
    }
}
