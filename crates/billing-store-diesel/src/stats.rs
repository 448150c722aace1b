//! Operational counts read from the stored events, for the server's gauges.

use billing_ports::{EventStats, EventStatus, StoreError};
use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::schema::{Stamp, stripe_events};
use crate::tx::{Tx, on_conn};

impl Tx<'_> {
    /// The failed events (count, oldest receipt) and the events received since `since`: three
    /// index scans of `(status, received_at)`.
    pub(crate) async fn event_stats(
        &mut self,
        since: DateTime<Utc>,
    ) -> Result<EventStats, StoreError> {
        use stripe_events::dsl as e;
        let failed = EventStatus::Failed.as_str();
        let count = e::stripe_events
            .filter(e::status.eq(failed))
            .select(count_star());
        let failed_count: i64 = on_conn!(self, |c| count.get_result(c).await)?;
        let first = e::stripe_events
            .filter(e::status.eq(failed))
            .select(e::received_at)
            .order(e::received_at)
            .limit(1);
        let oldest: Option<Stamp> = on_conn!(self, |c| first.get_result(c).await.optional())?;
        // Every status spelled out, so the status-led index serves the time range.
        let statuses: Vec<&str> = EventStatus::ALL.iter().map(|s| s.as_str()).collect();
        let recent = e::stripe_events
            .filter(e::status.eq_any(&statuses))
            .filter(e::received_at.ge(Stamp(since)))
            .select(count_star());
        let received: i64 = on_conn!(self, |c| recent.get_result(c).await)?;
        Ok(EventStats {
            failed: u64::try_from(failed_count).unwrap_or(0),
            oldest_failed_received_at: oldest.map(|s| s.0),
            received_since: u64::try_from(received).unwrap_or(0),
        })
    }
}
