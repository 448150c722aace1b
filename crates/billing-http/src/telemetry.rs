//! Metrics: names, labels, the Prometheus recorder, and every series registered at zero when
//! the recorder is installed (so `/metrics` is complete before the first request, and a
//! rate over a series never misses its first increment).

use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Webhook deliveries by event type and outcome.
pub(crate) const DELIVERIES: &str = "billing_webhook_deliveries_total";
/// Seconds from receiving a delivery to answering it.
pub(crate) const DELIVERY_SECONDS: &str = "billing_webhook_delivery_seconds";
/// API requests by route and status.
pub(crate) const API_REQUESTS: &str = "billing_api_requests_total";
/// Seconds to answer an API request.
pub(crate) const API_SECONDS: &str = "billing_api_request_seconds";

/// The `/v1` route names (the `route` label).
pub(crate) const API_ROUTES: [&str; 6] = [
    "entitlements",
    "feature",
    "usage",
    "sync",
    "checkout",
    "portal",
];

/// The statuses `/v1` answers with.
const API_STATUSES: [u16; 12] = [200, 400, 401, 402, 404, 408, 413, 415, 422, 500, 502, 503];

/// Outcomes of a delivery whose event was read (labelled with its type).
const EVENT_OUTCOMES: [&str; 6] = [
    "processed",
    "duplicate",
    "stale",
    "unprocessable_event",
    "event_not_applied",
    "database_unavailable",
];

/// Outcomes of a delivery refused before its event type is known (type `unknown`).
const EARLY_OUTCOMES: [&str; 13] = [
    "body_too_large",
    "unreadable_body",
    "request_timeout",
    "missing_signature",
    "malformed_signature",
    "no_v1_signature",
    "signature_mismatch",
    "timestamp_outside_tolerance",
    "unverifiable_body",
    "invalid_signature",
    "invalid_payload",
    "unprocessable_event",
    "database_unavailable",
];

/// Installs the process-wide Prometheus recorder, registers every series at zero, and returns
/// the handle `/metrics` renders.
pub fn install_metrics_recorder() -> Result<PrometheusHandle, BuildError> {
    let buckets = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &buckets)?
        .install_recorder()?;
    register_series();
    Ok(handle)
}

/// Describes every metric and registers each known label set with a zero value.
pub(crate) fn register_series() {
    metrics::describe_counter!(DELIVERIES, "Webhook deliveries by event type and outcome.");
    metrics::describe_histogram!(
        DELIVERY_SECONDS,
        metrics::Unit::Seconds,
        "Seconds from receiving a webhook delivery to answering it."
    );
    metrics::describe_counter!(API_REQUESTS, "API requests by route and status.");
    metrics::describe_histogram!(
        API_SECONDS,
        metrics::Unit::Seconds,
        "Seconds to answer an API request."
    );
    for event_type in billing_stripe::HANDLED_EVENT_TYPES {
        for outcome in EVENT_OUTCOMES {
            metrics::counter!(DELIVERIES, "type" => event_type, "outcome" => outcome).absolute(0);
        }
    }
    metrics::counter!(DELIVERIES, "type" => "unknown", "outcome" => "ignored").absolute(0);
    for outcome in EARLY_OUTCOMES {
        metrics::counter!(DELIVERIES, "type" => "unknown", "outcome" => outcome).absolute(0);
    }
    for outcome in EVENT_OUTCOMES
        .iter()
        .chain(&EARLY_OUTCOMES)
        .chain(&["ignored"])
    {
        // Registering creates the series with zero samples.
        let _ = metrics::histogram!(DELIVERY_SECONDS, "outcome" => *outcome);
    }
    for route in API_ROUTES {
        for status in API_STATUSES {
            metrics::counter!(API_REQUESTS, "route" => route, "status" => status.to_string())
                .absolute(0);
        }
        let _ = metrics::histogram!(API_SECONDS, "route" => route);
    }
}

/// Counts one webhook delivery and its latency.
pub(crate) fn record_delivery(
    event_id: &str,
    event_type: &str,
    outcome: &'static str,
    elapsed: Duration,
) {
    let labels = [
        ("type", event_type.to_owned()),
        ("outcome", outcome.to_owned()),
    ];
    metrics::counter!(DELIVERIES, &labels).increment(1);
    metrics::histogram!(DELIVERY_SECONDS, "outcome" => outcome).record(elapsed.as_secs_f64());
    // The id and type come from the request: as str fields, every formatter escapes them.
    tracing::info!(
        event_id,
        event_type,
        outcome,
        latency_ms = elapsed.as_secs_f64() * 1e3,
        "webhook delivery"
    );
}

/// Counts one API request and its latency.
pub(crate) fn record_api(route: &'static str, status: u16, elapsed: Duration) {
    metrics::counter!(API_REQUESTS, "route" => route, "status" => status.to_string()).increment(1);
    metrics::histogram!(API_SECONDS, "route" => route).record(elapsed.as_secs_f64());
}
