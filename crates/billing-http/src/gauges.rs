//! The operator's gauges that are read rather than counted, refreshed by each `/metrics`
//! scrape: the failed events waiting and the oldest one's age, the events received in the last
//! minute (read from the database, so every replica reports the whole deployment's values:
//! aggregate them with `max`), and this process's pool. The delivery lag is a histogram each
//! delivery records (`webhook`).

use std::time::Duration;

use billing_ports::{BillingStore, ErrorChain};
use chrono::TimeDelta;

use crate::HttpState;
use crate::telemetry::{
    EVENTS_RECEIVED_LAST_MINUTE, FAILED_EVENTS, FAILED_OLDEST_AGE, POOL_IN_USE, POOL_WAITING,
};

/// The longest a scrape waits for the event counts; past it, the last values are exported.
const READ_LIMIT: Duration = Duration::from_secs(2);

/// Sets every sampled gauge from the store and the pool now. A failed or slow read keeps the
/// last values and is logged, so `/metrics` still answers while the database is down.
pub(crate) async fn refresh<S: BillingStore>(state: &HttpState<S>) {
    if let Some(pool) = &state.pool_status {
        let (in_use, waiting) = pool();
        metrics::gauge!(POOL_IN_USE).set(in_use as f64);
        metrics::gauge!(POOL_WAITING).set(waiting as f64);
    }
    let now = state.app.clock().now();
    let read = state.app.store().event_stats(now - TimeDelta::minutes(1));
    match actix_web::rt::time::timeout(READ_LIMIT, read).await {
        Ok(Ok(stats)) => {
            metrics::gauge!(FAILED_EVENTS).set(stats.failed as f64);
            let oldest = stats
                .oldest_failed_received_at
                .map_or(0.0, |at| seconds(now - at));
            metrics::gauge!(FAILED_OLDEST_AGE).set(oldest);
            metrics::gauge!(EVENTS_RECEIVED_LAST_MINUTE).set(stats.received_since as f64);
        }
        Ok(Err(e)) => {
            tracing::warn!(
                error = ErrorChain(&e).to_string(),
                "reading the event gauges failed"
            );
        }
        Err(_) => tracing::warn!(
            limit_ms = READ_LIMIT.as_millis() as u64,
            "reading the event gauges timed out"
        ),
    }
}

/// A time difference in seconds, never negative (replicas' clocks may disagree a little).
pub(crate) fn seconds(delta: TimeDelta) -> f64 {
    (delta.num_milliseconds().max(0) as f64) / 1000.0
}
